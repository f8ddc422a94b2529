package runtime

import (
	"bytes"
	"context"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// Hostile modules that try to make the host allocate outside the linear
// memory at instantiation, or make compiling blow up. Every case is
// refused at Compile; its twin, the same construction a size below the
// cap, compiles and answers.

func tableEntry(min, max uint32) []byte { return cat([]byte{0x70, 0x01}, leb(min), leb(max)) }

func repeat(n int, b []byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// passiveElems is an element section of n passive funcref segments of
// items references to function 0 each.
func passiveElems(n, items int) []byte {
	seg := cat(leb(1), []byte{0x00}, leb(uint32(items)), bytes.Repeat(leb(0), items))
	return vec(repeat(n, seg)...)
}

// nested is handle's code nested depth blocks deep.
func nested(depth int) []byte {
	return cat(bytes.Repeat([]byte{0x02, 0x40}, depth), bytes.Repeat(opEnd, depth), returnOK())
}

// distinctTypes returns n function types, all different: the bits of i
// choose i32 or i64 for each of 16 parameters.
func distinctTypes(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := make([]byte, 16)
		for b := range p {
			p[b] = 0x7F
			if i>>b&1 == 1 {
				p[b] = 0x7E
			}
		}
		out[i] = functype(p, nil)
	}
	return out
}

var globalI32 = []byte{0x7F, 0x00, 0x41, 0x00, 0x0B}

// budgetCases are hostile modules by construction, at size n.
var budgetCases = []struct {
	name      string
	over, ok  int // n refused, n accepted
	build     func(n int) []byte
	wantInMsg string
}{
	{"many full-size tables", 2048, 16, func(n int) []byte {
		return hostileSpec{tables: repeat(n, tableEntry(65536, 65536)), handle: returnOK()}.build()
	}, "host memory per instance"},
	{"many large element segments", 64, 8, func(n int) []byte {
		return hostileSpec{elems: passiveElems(n, 5000), handle: returnOK()}.build()
	}, "host memory per instance"},
	{"many globals", 200_000, 1000, func(n int) []byte {
		return hostileSpec{globals: repeat(n, globalI32), handle: returnOK()}.build()
	}, "host memory per instance"},
	{"many imports", maxFunctions, 1000, func(n int) []byte {
		return hostileSpec{imports: bytes.Repeat(funcImport("silo", "log_enabled", 0), n), nImport: n, handle: returnOK()}.build()
	}, "functions"},
	{"many functions", maxFunctions, 1000, func(n int) []byte {
		return hostileSpec{extra: repeat(n, localGet(0)), handle: returnOK()}.build()
	}, "functions"},
	{"many locals", maxLocals + 1, maxLocals, func(n int) []byte {
		return hostileSpec{locals: cat(leb(1), leb(uint32(n)), []byte{0x7E}), handle: returnOK()}.build()
	}, "locals"},
	{"deep block nesting", maxDepth + 1, 1000, func(n int) []byte {
		return hostileSpec{handle: nested(n)}.build()
	}, "nests blocks"},
	{"deep nesting in many functions", 130, 8, func(n int) []byte {
		f := cat(bytes.Repeat([]byte{0x02, 0x40}, 1024), bytes.Repeat(opEnd, 1024), localGet(0))
		return hostileSpec{extra: repeat(n, f), handle: returnOK()}.build()
	}, "nest"},
	{"many types", maxTypes + 1, 100, func(n int) []byte {
		return hostileSpec{types: distinctTypes(n), handle: returnOK()}.build()
	}, "function types"},
}

func TestHostHeapBombsRefused(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tt := range budgetCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rt.Compile(context.Background(), tt.build(tt.over))
			wantCode(t, err, silo.CodeInvalid)
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("got %q, want a message about %q", err, tt.wantInMsg)
			}
			// Twin: the same construction within the caps compiles and runs.
			resp, err := e.invokeDigest("acme", e.compile(t, tt.build(tt.ok)), Limits{}, "/")
			wantOK(t, resp, err)
		})
	}
}

// TestTableSizeCapBoundary: the per-table cap is exactly MaxTableSize
// entries, for the minimum and the maximum.
func TestTableSizeCapBoundary(t *testing.T) {
	e := newEnv(t, Config{})
	noMax := func(min uint32) []byte { return cat([]byte{0x70, 0x00}, leb(min)) }
	tests := []struct {
		name  string
		table []byte
		ok    bool
	}{
		{"min and max at the cap", tableEntry(65536, 65536), true},
		{"max at the cap", tableEntry(1, 65536), true},
		{"min at the cap, no maximum", noMax(65536), true},
		{"max one over", tableEntry(1, 65537), false},
		{"min one over, no maximum", noMax(65537), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasm := hostileSpec{table: tt.table, handle: returnOK()}.build()
			_, err := e.rt.Compile(context.Background(), wasm)
			if tt.ok {
				if err != nil {
					t.Fatalf("got %v, want the table accepted", err)
				}
				return
			}
			wantCode(t, err, silo.CodeInvalid)
			if !strings.Contains(err.Error(), "over the 65536 cap") {
				t.Errorf("got %q, want it to name the 65536 cap", err)
			}
		})
	}
}

// TestHostBytesCountAgainstMemoryLimit: what the tables cost the host is
// taken off the linear memory the function may use.
func TestHostBytesCountAgainstMemoryLimit(t *testing.T) {
	e := newEnv(t, Config{})
	// 16 tables of 65536 entries: 8 MiB of host memory, 128 pages; the
	// handle grows memory until it fails.
	grow := cat([]byte{0x02, 0x40, 0x03, 0x40}, i32c(1), []byte{0x40, 0x00}, i32c(-1), []byte{0x46, 0x0D, 0x01, 0x0C, 0x00, 0x0B, 0x0B})
	d := e.compile(t, hostileSpec{tables: repeat(16, tableEntry(65536, 65536)), handle: cat(grow, returnOK())}.build())
	_, err := e.invokeDigest("acme", d, Limits{MemoryPages: 100}, "/")
	wantCode(t, err, silo.CodeInvalid)
	if !strings.Contains(err.Error(), "over its memory limit") {
		t.Errorf("got %q, want it to say the memory limit is too small", err)
	}
	// Twin: with 256 pages it runs, and its linear memory stops at 128.
	resp, err := e.invokeDigest("acme", d, Limits{MemoryPages: 256}, "/")
	wantOK(t, resp, err)
	e.rt.mu.Lock()
	var pages uint32
	for k, p := range e.rt.pools {
		if k.digest == d {
			pages = p.idle[0].mod.Memory().Size() / 65536
		}
	}
	e.rt.mu.Unlock()
	if want := uint32(256 - 128 - 1); pages < want || pages > 128 {
		t.Errorf("linear memory after growing = %d pages, want %d-128 (256 less the tables)", pages, want)
	}
}

// TestHostBytesBoundsHeap checks the cost model against the Go heap that
// real instances take: per instance, the heap grows by at most hostBytes
// plus instanceOverhead (and, so that the measurement is known to see the
// allocation, by at least half of hostBytes for the hostile modules).
func TestHostBytesBoundsHeap(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name    string
		wasm    []byte
		hostile bool
	}{
		{"tables", hostileSpec{tables: repeat(12, tableEntry(65536, 65536)), handle: returnOK()}.build(), true},
		{"globals", hostileSpec{globals: repeat(100_000, globalI32), handle: returnOK()}.build(), true},
		{"element segments", hostileSpec{elems: passiveElems(32, 4000), handle: returnOK()}.build(), true},
		{"imports", hostileSpec{imports: bytes.Repeat(funcImport("silo", "log_enabled", 0), 100_000), nImport: 100_000, handle: returnOK()}.build(), true},
		{"go guest", guestWasm, false},
	}
	const instances = 6
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseModule(tt.wasm)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := instrument(m, fuel, defaultCallStack); err != nil {
				t.Fatal(err)
			}
			hb := hostBytes(m)
			d := e.compile(t, tt.wasm)
			path := "/"
			if !tt.hostile {
				path = "/echo"
			}
			// One warm-up instance so that lazily built shared state is
			// not counted.
			resp, err := e.rt.Invoke(context.Background(), Invocation{Account: "warmup", Function: tt.name, Digest: d, Host: e.hosts["acme"], Request: Request{Path: path}})
			wantOK(t, resp, err)
			before := heapAfterGC()
			for i := range instances {
				acct := silo.AccountID(fmt.Sprintf("heap-%d", i))
				resp, err := e.rt.Invoke(context.Background(), Invocation{Account: acct, Function: tt.name, Digest: d, Host: e.hosts["acme"], Request: Request{Path: path}})
				wantOK(t, resp, err)
			}
			per := (int64(heapAfterGC()) - int64(before)) / instances
			t.Logf("%s: hostBytes %d, heap per instance %d", tt.name, hb, per)
			if limit := int64(hb) + instanceOverhead; per > limit {
				t.Errorf("got %d heap bytes per instance, want at most %d (hostBytes %d + instanceOverhead)", per, limit, hb)
			}
			if tt.hostile && per < int64(hb)/2 {
				t.Errorf("got %d heap bytes per instance, want at least half of hostBytes %d: the measurement misses the allocation", per, hb)
			}
			e.rt.Sweep(time.Now().Add(time.Hour))
		})
	}
}

func heapAfterGC() uint64 {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
