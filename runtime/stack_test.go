package runtime

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	silo "github.com/silo-run/silo"
)

// Recursive guests of several shapes: f(n) returns 0 for n == 0 and
// otherwise calls f(n-1), keeping values alive across the call in
// different ways, so that their frames on wazero's stack differ. handle
// calls f(depth). Shapes and what each frame holds across the call:
//
//	tiny    nothing
//	locals  500 i64 locals
//	operand 500 values on the operand stack
//	params  100 parameters, passed on
//	merges  50 i64 locals set inside 200 nested ifs (a value per local
//	        at every merge)
//	loops   the same inside 200 nested loops, each with a branch back
const (
	shapeLocals = 500
	shapeValues = 500
	shapeParams = 100
	mergeLocals = 50
	mergeDepth  = 200
)

var stackShapes = []string{"tiny", "locals", "operand", "params", "merges", "loops"}

func recursiveModule(shape string, depth int32) []byte {
	const f = 2 // the recursive function's index
	base := cat(localGet(0), []byte{0x45}, ifEmpty(i32c(0), []byte{0x0F}))
	dec := cat(localGet(0), i32c(1), []byte{0x6B})
	s := hostileSpec{types: [][]byte{functype(repeatByte(0x7F, shapeParams), []byte{0x7F})}}
	var code, locals []byte
	args := i32c(depth)
	switch shape {
	case "tiny":
		code = cat(base, dec, callF(f), i32c(1), []byte{0x6A})
	case "locals":
		locals = cat(leb(1), leb(shapeLocals), []byte{0x7E})
		code = base
		for k := uint32(1); k <= shapeLocals; k++ {
			code = cat(code, localGet(0), []byte{0xAD, 0x42}, sleb(int64(k)), []byte{0x7C, 0x21}, leb(k))
		}
		code = cat(code, dec, callF(f))
		for k := uint32(1); k <= shapeLocals; k++ {
			code = cat(code, localGet(k), []byte{0xA7, 0x6A})
		}
	case "operand":
		code = base
		for k := range int32(shapeValues) {
			code = cat(code, localGet(0), i32c(k), []byte{0x6A})
		}
		code = cat(code, dec, callF(f))
		for range shapeValues {
			code = cat(code, []byte{0x6A})
		}
	case "params":
		s.extraTypes = []uint32{6}
		code = cat(base, dec)
		for k := uint32(1); k < shapeParams; k++ {
			code = cat(code, localGet(k))
		}
		code = cat(code, callF(f), i32c(1), []byte{0x6A})
		for range shapeParams - 1 {
			args = cat(args, i32c(0))
		}
	case "merges", "loops":
		locals = cat(leb(1), leb(mergeLocals), []byte{0x7E})
		code = base
		open, end := cat(localGet(0), []byte{0x04, 0x40}), opEnd // if n { ... }
		if shape == "loops" {
			open, end = []byte{0x03, 0x40}, cat(localGet(0), []byte{0x45, 0x0D, 0x00}, opEnd) // loop { ...; br_if 0 (n == 0, never) }
		}
		for range mergeDepth {
			code = cat(code, open)
		}
		for k := uint32(1); k <= mergeLocals; k++ {
			code = cat(code, localGet(0), []byte{0xAD, 0x42}, sleb(int64(k)), []byte{0x7C, 0x21}, leb(k))
		}
		for range mergeDepth {
			code = cat(code, end)
		}
		code = cat(code, dec, callF(f))
		for k := uint32(1); k <= mergeLocals; k++ {
			code = cat(code, localGet(k), []byte{0xA7, 0x6A})
		}
	default:
		panic("unknown shape " + shape)
	}
	s.handle = cat(args, callF(f), opDrop, returnOK())
	s.extra = [][]byte{code}
	s.extraLocals = [][]byte{locals}
	return s.build()
}

func repeatByte(b byte, n int) []byte { return []byte(strings.Repeat(string(b), n)) }

// allocatedDuring returns how many bytes the Go heap allocated while f
// ran: an upper bound of what f made the host hold at any moment.
func allocatedDuring(f func()) uint64 {
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	f()
	goruntime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// stackSlack is what an invocation allocates besides the guest's stack
// (a fresh instance of a small module, the request and the error).
const stackSlack = 1 << 20

// TestDeepRecursionHeapBounded: a guest recursing without end traps with
// a message saying so, and the host allocates at most 4*defaultCallStack for
// its stack; the twin, the same guest recursing to a moderate depth,
// answers. The control runs the tiny guest uninstrumented in plain wazero:
// the same measurement sees wazero grow its stack far past the bound.
func TestDeepRecursionHeapBounded(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{})
	moderate := map[string]int32{"tiny": 1000, "locals": 20, "operand": 20, "params": 100, "merges": 5, "loops": 5}
	for _, shape := range stackShapes {
		t.Run(shape, func(t *testing.T) {
			deep := e.compile(t, recursiveModule(shape, 1<<30))
			var err error
			got := allocatedDuring(func() { _, err = e.invokeDigest("acme", deep, Limits{}, "/") })
			wantCode(t, err, silo.CodeInternal)
			if !strings.Contains(err.Error(), "deeper than its call stack allows") {
				t.Errorf("got %q, want it to say the call stack is too deep", err)
			}
			t.Logf("%s: %d bytes allocated while recursing without end (bound %d)", shape, got, 4*defaultCallStack+stackSlack)
			if got > 4*defaultCallStack+stackSlack {
				t.Errorf("got %d bytes allocated, want at most %d (4*defaultCallStack + slack)", got, 4*defaultCallStack+stackSlack)
			}
			// Twin: a moderate depth answers.
			resp, err := e.invokeDigest("acme", e.compile(t, recursiveModule(shape, moderate[shape])), Limits{}, "/")
			wantOK(t, resp, err)
		})
	}
	t.Run("control: raw wazero", func(t *testing.T) {
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		defer rt.Close(ctx)
		mod, err := rt.InstantiateWithConfig(ctx, recursiveModule("tiny", 1<<30), wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		got := allocatedDuring(func() { err = mod.ExportedFunction("handle").CallWithStack(ctx, make([]uint64, 2)) })
		if err == nil || !strings.Contains(err.Error(), "stack overflow") {
			t.Fatalf("got %v, want wazero's stack overflow", err)
		}
		t.Logf("raw wazero: %d bytes allocated while recursing without end", got)
		if got < 16*4*defaultCallStack {
			t.Errorf("got %d bytes allocated, want over %d: the measurement misses wazero's stack", got, 16*4*defaultCallStack)
		}
	})
}

// TestStackBudgetRestoredOnEveryExit calls, 100,000 times in a loop, a
// function leaving by each way a function can: if one way did not give
// its frame's cost back, the budget would run out within a few thousand
// calls and the guest would trap.
func TestStackBudgetRestoredOnEveryExit(t *testing.T) {
	e := newEnv(t, Config{})
	const calls = 100_000
	loop := func(call []byte) []byte {
		// local 2 counts; call g(local 2) until it reaches calls.
		return cat([]byte{0x03, 0x40}, localGet(2), call,
			localGet(2), i32c(1), []byte{0x6A, 0x22}, leb(2), i32c(calls), []byte{0x49, 0x0D, 0x00}, opEnd, returnOK())
	}
	tests := []struct {
		name  string
		g     []byte // the code of g(i32) -> i32
		typ   uint32 // g's type, if not 2
		drops int    // its results to drop
	}{
		{"end", localGet(0), 0, 1},
		{"return", cat(localGet(0), []byte{0x0F}), 0, 1},
		{"return in a block", cat([]byte{0x02, 0x40}, localGet(0), []byte{0x0F}, opEnd, i32c(0)), 0, 1},
		{"br to the function", cat(localGet(0), []byte{0x0C, 0x00}), 0, 1},
		{"br_if out of a block", cat([]byte{0x02, 0x40}, localGet(0), i32c(1), []byte{0x0D, 0x01}, opDrop, opEnd, i32c(0)), 0, 1},
		{"br_table to the function", cat(localGet(0), i32c(0), []byte{0x0E, 0x00, 0x00}), 0, 1},
		{"several results", cat(localGet(0), localGet(0)), 7, 2},
		{"several results, return", cat(localGet(0), localGet(0), []byte{0x0F}), 7, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := tt.typ
			if typ == 0 {
				typ = 2
			}
			s := hostileSpec{
				types:      [][]byte{functype(nil, nil), functype([]byte{0x7F}, []byte{0x7F, 0x7F})},
				locals:     cat(leb(1), leb(1), []byte{0x7F}),
				handle:     loop(cat(callF(2), []byte(strings.Repeat("\x1A", tt.drops)))),
				extra:      [][]byte{tt.g},
				extraTypes: []uint32{typ},
			}
			resp, err := e.invokeDigest("acme", e.compile(t, s.build()), Limits{}, "/")
			wantOK(t, resp, err)
		})
	}
}

// TestGoGuestRecursion: the Go guest recursing a thousand deep answers;
// recursing without end, it stops with the stack message (long before
// Go's own stack limit or the memory limit) and the host's allocations
// stay bounded; the same instance's account and another tenant answer.
func TestGoGuestRecursion(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{})
	got := e.must(t, "acme", Request{Path: "/recurse", Query: map[string][]string{"n": {"1000"}}}, 200)
	if got != "1000" {
		t.Errorf("got %q, want 1000", got)
	}
	var err error
	alloc := allocatedDuring(func() {
		_, err = e.invokeLim(t, "acme", Limits{}, Request{Path: "/recurse", Query: map[string][]string{"n": {fmt.Sprint(1 << 30)}}})
	})
	t.Logf("go guest recursing without end: %v; %d bytes allocated", err, alloc)
	wantCode(t, err, silo.CodeInternal)
	if !strings.Contains(err.Error(), "deeper than its call stack allows") {
		t.Errorf("got %q, want it to say the call stack is too deep", err)
	}
	if alloc > 4*defaultCallStack+stackSlack {
		t.Errorf("got %d bytes allocated, want at most %d", alloc, 4*defaultCallStack+stackSlack)
	}
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	e.must(t, "globex", Request{Path: "/echo"}, 200)
}

// TestMaxCallStackConfigured: the budget is Config.MaxCallStack. A
// recursion 10,000 deep traps under the default and answers with 8 MiB.
func TestMaxCallStackConfigured(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	wasm := recursiveModule("tiny", 10_000)
	small := newEnv(t, Config{})
	_, err := small.invokeDigest("acme", small.compile(t, wasm), Limits{}, "/")
	wantCode(t, err, silo.CodeInternal)
	if !strings.Contains(err.Error(), "deeper than its call stack allows (2.0 MiB") {
		t.Errorf("got %q, want the stack message naming 2.0 MiB", err)
	}
	big := newEnv(t, Config{MaxCallStack: 8 << 20})
	resp, err := big.invokeDigest("acme", big.compile(t, wasm), Limits{}, "/")
	wantOK(t, resp, err)

	if err := (Config{MaxCallStack: maxCallStack + 1}).Validate(); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("MaxCallStack over the cap: got %v, want CodeInvalid", err)
	}
	if err := (Config{MaxCallStack: maxCallStack}).Validate(); err != nil {
		t.Errorf("MaxCallStack at the cap: got %v, want nil", err)
	}
}

// TestStackBudgetResetPerCall: the runtime sets the budget before every
// call, so a budget left spent (as a trap leaves it) does not carry over.
func TestStackBudgetResetPerCall(t *testing.T) {
	e := newEnv(t, Config{})
	d := e.compile(t, recursiveModule("tiny", 100))
	resp, err := e.invokeDigest("acme", d, Limits{}, "/")
	wantOK(t, resp, err)
	e.rt.mu.Lock()
	spent := 0
	for k, p := range e.rt.pools {
		if k.digest == d {
			p.idle[0].stackLeft.Set(0)
			spent++
		}
	}
	e.rt.mu.Unlock()
	if spent != 1 {
		t.Fatalf("found %d idle instances, want 1", spent)
	}
	resp, err = e.invokeDigest("acme", d, Limits{}, "/")
	wantOK(t, resp, err)
}

// TestFrameOverBudgetRefused: a module with a function whose one frame
// is estimated over MaxCallStack could never call it; Compile says so.
func TestFrameOverBudgetRefused(t *testing.T) {
	wasm := recursiveModule("merges", 1)
	rt, err := New(Config{MaxCallStack: 64 << 10, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	_, err = rt.Compile(context.Background(), wasm)
	wantCode(t, err, silo.CodeInvalid)
	if !strings.Contains(err.Error(), "of call stack") {
		t.Errorf("got %q, want it to name the frame's call stack", err)
	}
	// Twin: under the default the same module compiles and answers.
	d := newEnv(t, Config{})
	resp, err := d.invokeDigest("acme", d.compile(t, wasm), Limits{}, "/")
	wantOK(t, resp, err)
}

// TestGoGuestFrames records the Go guest's largest frame estimate, which
// must leave room under the default budget for a deep call chain.
func TestGoGuestFrames(t *testing.T) {
	m, err := parseModule(guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	out, err := instrument(m, fuel, defaultCallStack)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go guest: largest frame estimate %d bytes; module %d bytes, instrumented %d", m.code.maxFrame, len(guestWasm), len(out))
	if m.code.maxFrame > defaultCallStack/8 {
		t.Errorf("got a largest frame of %d bytes, want at most %d (an eighth of the default budget)", m.code.maxFrame, defaultCallStack/8)
	}
}

// TestInstrumentationNamesRefused: the globals and the local that
// instrument adds come after the module's own, so code naming an index
// past its own would name them once instrumented, and could refill its
// fuel or its stack budget. Compile refuses it; the twins, naming a
// global or local the module declares, compile and answer.
func TestInstrumentationNamesRefused(t *testing.T) {
	e := newEnv(t, Config{})
	set := func(op byte, idx uint32) []byte { return cat(i32c(1<<30), []byte{op}, leb(idx)) }
	get := func(op byte, idx uint32) []byte { return cat([]byte{op}, leb(idx), opDrop) }
	tests := []struct {
		name    string
		spec    hostileSpec
		refused bool
	}{
		{"global.set of the fuel global", hostileSpec{handle: cat(set(0x24, 0), returnOK())}, true},
		{"global.set of the stack global", hostileSpec{handle: cat(set(0x24, 1), returnOK())}, true},
		{"global.get past the module's globals", hostileSpec{globals: [][]byte{globalI32}, handle: cat(get(0x23, 1), returnOK())}, true},
		{"local.set of the added local", hostileSpec{handle: cat(set(0x21, 2), returnOK())}, true},
		{"local.tee of the added local", hostileSpec{handle: cat(set(0x22, 2), opDrop, returnOK())}, true},
		{"local.get of the added local", hostileSpec{handle: cat(get(0x20, 2), returnOK())}, true},
		{"twin: global.set of its own global", hostileSpec{globals: [][]byte{{0x7F, 0x01, 0x41, 0x00, 0x0B}}, handle: cat(set(0x24, 0), returnOK())}, false},
		{"twin: local.set of its own local", hostileSpec{locals: cat(leb(1), leb(1), []byte{0x7F}), handle: cat(set(0x21, 2), returnOK())}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.rt.Compile(context.Background(), tt.spec.build())
			if tt.refused {
				wantCode(t, err, silo.CodeInvalid)
				if !strings.Contains(err.Error(), "which it does not declare") {
					t.Errorf("got %q, want it to name the undeclared index", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			resp, err := e.invokeDigest("acme", d, Limits{}, "/")
			wantOK(t, resp, err)
		})
	}
}
