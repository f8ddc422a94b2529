package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// Every "must not" test here has a "must" twin next to it.

// recursionModule's handle calls f(n), where f(n) = f(n-1) + f(n-1): 2^n
// calls, depth n, and not a single loop, so wazero's own cancellation (which
// checks at loop headers) never sees it.
func recursionModule(n int32) []byte { return recursionModuleNotify(n, false) }

// recursionModuleNotify optionally calls the imports env.start() -> i32
// before and env.done() -> i32 after the recursion.
func recursionModuleNotify(n int32, notify bool) []byte {
	var imp, before, after []byte
	nImp := 0
	if notify {
		imp, nImp = cat(funcImport("env", "start", 3), funcImport("env", "done", 3)), 2
		before, after = cat(callF(0), opDrop), cat(callF(1), opDrop)
	}
	f := uint32(2 + nImp) // function index of the extra function
	rec := cat(localGet(0), []byte{0x41, 0x01, 0x6B}, callF(f))
	return hostileSpec{
		imports: imp, nImport: nImp,
		handle: cat(before, i32c(n), callF(f), opDrop, after, returnOK()),
		extra: [][]byte{cat(
			localGet(0), []byte{0x45}, ifEmpty(i32c(0), []byte{0x0F}),
			rec, rec, []byte{0x6A},
		)},
	}.build()
}

func (e *env) compile(t *testing.T, wasm []byte) string {
	t.Helper()
	d, err := e.rt.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return d
}

func (e *env) invokeDigest(acct silo.AccountID, digest string, lim Limits, path string) (Response, error) {
	return e.rt.Invoke(context.Background(), Invocation{
		Account: acct, Function: "fn-" + digest[:8], Digest: digest, Limits: lim,
		Host: e.hosts[acct], Request: Request{Path: path},
	})
}

func wantOK(t *testing.T, resp Response, err error) {
	t.Helper()
	if err != nil || resp.Status != 200 {
		t.Fatalf("got %d %q, %v; want 200", resp.Status, resp.Body, err)
	}
}

func wantCode(t *testing.T, err error, code silo.Code) {
	t.Helper()
	if err == nil || silo.ErrorCode(err) != code {
		t.Fatalf("got error %v, want code %s", err, code)
	}
}

func TestDeepRecursionStopped(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{})
	deep := e.compile(t, recursionModule(60))
	shallow := e.compile(t, recursionModule(10))
	resp, err := e.invokeDigest("acme", deep, Limits{Timeout: 200 * time.Millisecond}, "/")
	wantCode(t, err, silo.CodeUnavailable)
	// Twin: the same code with a small n answers.
	resp, err = e.invokeDigest("acme", shallow, Limits{Timeout: 5 * time.Second}, "/")
	wantOK(t, resp, err)
	// Another tenant is unaffected.
	e.must(t, "globex", Request{Path: "/echo"}, 200)
}

func TestInfiniteLoopStopped(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{})
	_, err := e.invokeLim(t, "acme", Limits{Timeout: 200 * time.Millisecond}, Request{Path: "/loop"})
	wantCode(t, err, silo.CodeUnavailable)
	e.must(t, "acme", Request{Path: "/echo"}, 200) // twin: a fresh instance answers
	e.must(t, "globex", Request{Path: "/echo"}, 200)
}

func TestSleepPastDeadlineStopped(t *testing.T) {
	e := newEnv(t, Config{})
	_, err := e.invokeLim(t, "acme", Limits{Timeout: 200 * time.Millisecond}, Request{Path: "/sleep"})
	wantCode(t, err, silo.CodeUnavailable)
	e.must(t, "acme", Request{Path: "/echo"}, 200)
}

func TestHostCallBlockingPastDeadline(t *testing.T) {
	e := newEnv(t, Config{})
	// The host blocks for a minute ignoring ctx; Invoke returns at the deadline.
	_, err := e.invokeLim(t, "acme", Limits{Timeout: 200 * time.Millisecond, Concurrency: 4},
		Request{Path: "/kv/get", Params: map[string]string{"key": "k"}, Query: map[string][]string{"table": {"block"}}})
	wantCode(t, err, silo.CodeUnavailable)
	// Twin: a host call that returns is fine, in the same account.
	e.must(t, "acme", Request{Path: "/kv", Params: map[string]string{"key": "k"}, Body: []byte("v")}, 200)
}

func TestMemoryBomb(t *testing.T) {
	e := newEnv(t, Config{})
	// A Go guest allocating without end: the runtime refuses memory past the
	// page limit, Go's allocator gives up, the instance is discarded.
	_, err := e.invokeLim(t, "acme", Limits{MemoryPages: 256}, Request{Path: "/membomb"})
	wantCode(t, err, silo.CodeInternal)
	if msg := silo.UserMessage(err); !strings.Contains(msg, "probably ran out of memory") || !strings.Contains(msg, "limit") {
		t.Errorf("memory bomb: %q; want it to say the memory is at its limit", msg)
	}
	// Twin: a trap with memory to spare says nothing of memory.
	trap := e.compile(t, hostileSpec{handle: opUnreachable}.build())
	_, err = e.invokeDigest("acme", trap, Limits{MemoryPages: 256}, "/")
	if msg := silo.UserMessage(err); !strings.Contains(msg, "crashed (it trapped)") || strings.Contains(msg, "memory") {
		t.Errorf("trap: %q; want a crash that says nothing of memory", msg)
	}
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	e.must(t, "globex", Request{Path: "/echo"}, 200)

	// A raw memory.grow loop: growth stops at the limit (memory.grow returns
	// -1) and the module answers; the limit held.
	bomb := hostileSpec{handle: cat(
		[]byte{0x02, 0x40, 0x03, 0x40}, i32c(1), []byte{0x40, 0x00}, i32c(-1), []byte{0x46, 0x0D, 0x01, 0x0C, 0x00, 0x0B, 0x0B},
		returnOK())}.build()
	d := e.compile(t, bomb)
	resp, err := e.invokeDigest("acme", d, Limits{MemoryPages: 8}, "/")
	wantOK(t, resp, err)
	e.rt.mu.Lock()
	var pages uint32
	for k, p := range e.rt.pools {
		if k.digest == d {
			pages = p.idle[0].mod.Memory().Size() / 65536
		}
	}
	e.rt.mu.Unlock()
	if pages != 8 {
		t.Errorf("memory after bomb = %d pages, want 8 (the limit)", pages)
	}
}

func TestTableGrowWithoutMaxRefused(t *testing.T) {
	e := newEnv(t, Config{})
	grow := cat([]byte{0xD0, 0x70}, i32c(1000000), []byte{0xFC, 0x0F, 0x00}, opDrop, returnOK())
	noMax := hostileSpec{table: []byte{0x70, 0x00, 0x01}, handle: grow}.build()
	_, err := e.rt.Compile(context.Background(), noMax)
	wantCode(t, err, silo.CodeInvalid)
	if !strings.Contains(err.Error(), "no maximum") {
		t.Errorf("message %q does not say why", err)
	}
	tooBig := hostileSpec{table: []byte{0x70, 0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x04}, handle: grow}.build()
	_, err = e.rt.Compile(context.Background(), tooBig)
	wantCode(t, err, silo.CodeInvalid)
	// Twin: the same growth on a table with a small maximum compiles and
	// runs; table.grow just fails inside the guest.
	withMax := hostileSpec{table: []byte{0x70, 0x01, 0x01, 0x0A}, handle: grow}.build()
	resp, err := e.invokeDigest("acme", e.compile(t, withMax), Limits{}, "/")
	wantOK(t, resp, err)
}

func TestImportsRefused(t *testing.T) {
	e := newEnv(t, Config{})
	ok := returnOK()
	tests := []struct {
		name string
		imp  []byte
		want string
	}{
		{"env import", funcImport("env", "foo", 3), `module "env"`},
		{"wasi sock_accept", funcImport("wasi_snapshot_preview1", "sock_accept", 5), "sock_accept"},
		{"wasi path_open", funcImport("wasi_snapshot_preview1", "path_open", 5), "path_open"},
		{"unknown silo call", funcImport("silo", "kv_get_other_account", 4), "does not provide"},
		{"wrong signature", funcImport("silo", "config_get", 5), "signature"},
		{"checkpoint itself", funcImport("silo", "checkpoint", 3), "does not provide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rt.Compile(context.Background(), hostileSpec{imports: tt.imp, nImport: 1, handle: ok}.build())
			wantCode(t, err, silo.CodeInvalid)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not mention %q", err, tt.want)
			}
		})
	}
	// Twin: declared imports compile and run.
	good := hostileSpec{imports: cat(funcImport("silo", "config_get", 4), funcImport("wasi_snapshot_preview1", "fd_write", 5)), nImport: 2, handle: ok}.build()
	resp, err := e.invokeDigest("acme", e.compile(t, good), Limits{}, "/")
	wantOK(t, resp, err)
}

func TestModuleSizeCapBeforeDecoding(t *testing.T) {
	e := newEnv(t, Config{})
	rt, err := New(Config{MaxModuleSize: 4096, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	// Garbage over the cap: refused for its size (decoding would have said
	// "not valid wasm").
	_, err = rt.Compile(context.Background(), make([]byte, 5000))
	wantCode(t, err, silo.CodeInvalid)
	if !strings.Contains(err.Error(), "over the 4096 byte limit") {
		t.Errorf("message %q is not about size", err)
	}
	// A huge data segment is over the cap too.
	huge := hostileSpec{handle: returnOK()}.build()
	huge = cat(huge, sect(0, cat(name("padding"), make([]byte, 8192))))
	_, err = rt.Compile(context.Background(), huge)
	wantCode(t, err, silo.CodeInvalid)
	// Twin: a small module compiles and runs.
	d, err := rt.Compile(context.Background(), hostileSpec{handle: returnOK()}.build())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "small", Digest: d, Host: e.hosts["acme"]})
	wantOK(t, resp, err)
}

func TestTrapContained(t *testing.T) {
	e := newEnv(t, Config{})
	trap := e.compile(t, hostileSpec{handle: opUnreachable}.build())
	_, err := e.invokeDigest("acme", trap, Limits{}, "/")
	wantCode(t, err, silo.CodeInternal)
	e.must(t, "globex", Request{Path: "/echo"}, 200)
	e.must(t, "acme", Request{Path: "/echo"}, 200)
}

func TestStuckGuestsDoNotStarveOthers(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{Limits: Limits{Concurrency: 64}})
	n := 2*goruntime.GOMAXPROCS(0) + 1
	deep := e.compile(t, recursionModule(60))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	stuckDone := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv := Invocation{Account: "acme", Function: "api", Digest: e.guest, Host: e.hosts["acme"], Request: Request{Path: "/loop"}, Limits: Limits{Timeout: time.Hour}}
			if i%2 == 1 {
				inv.Digest, inv.Function = deep, "deep"
			}
			_, err := e.rt.Invoke(ctx, inv)
			if silo.ErrorCode(err) != silo.CodeUnavailable {
				t.Errorf("stuck guest %d: %v", i, err)
			}
			mu.Lock()
			stuckDone++
			mu.Unlock()
		}()
	}
	// Wait until every stuck guest is running.
	for {
		s := e.rt.Stats()
		if s.Instances-s.Idle >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		e.must(t, "globex", Request{Path: "/echo"}, 200)
	}
	mu.Lock()
	done := stuckDone
	mu.Unlock()
	if done != 0 {
		t.Errorf("%d stuck guests returned before the well-behaved tenant's requests; want 0", done)
	}
	cancel()
	wg.Wait()
	// Twin: once cancelled, the stuck guests are gone.
	for e.rt.Stats().Instances > e.rt.Stats().Idle {
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConcurrencyCap(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{QueueWait: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := e.rt.Invoke(ctx, Invocation{Account: "acme", Function: "api", Digest: e.guest, Host: e.hosts["acme"],
			Limits: Limits{Concurrency: 1, Timeout: time.Hour}, Request: Request{Path: "/loop"}})
		done <- err
	}()
	<-started
	for e.rt.Stats().Instances == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := e.invokeLim(t, "acme", Limits{Concurrency: 1}, Request{Path: "/echo"})
	wantCode(t, err, silo.CodeTooMany)
	// Twins: another account, and another function of acme, are not
	// limited by this function's cap.
	e.must(t, "globex", Request{Path: "/echo"}, 200)
	resp, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "other", Digest: e.guest, Host: e.hosts["acme"], Request: Request{Path: "/echo"}})
	wantOK(t, resp, err)
	cancel()
	<-done
	// Once acme's slot is free again (the stuck guest has stopped), acme answers.
	for {
		resp, err := e.invokeLim(t, "acme", Limits{Concurrency: 1}, Request{Path: "/echo"})
		if err == nil {
			if resp.Status != 200 {
				t.Fatalf("status %d", resp.Status)
			}
			break
		}
		if !errors.Is(err, &silo.Error{Code: silo.CodeTooMany}) {
			t.Fatal(err)
		}
	}
}

func TestResidue(t *testing.T) {
	e := newEnv(t, Config{})
	set := Request{Path: "/residue/set", Query: map[string][]string{"m": {"acme-marker"}}}
	get := Request{Path: "/residue/get"}
	e.must(t, "acme", set, 200)
	// Twin: acme's warm instance may see its own marker.
	if got := e.must(t, "acme", get, 200); got != "acme-marker" {
		t.Errorf("acme warm instance: marker %q, want acme-marker (instance not reused?)", got)
	}
	// globex never sees it, on any of its instances.
	for i := 0; i < 3; i++ {
		if got := e.must(t, "globex", get, 200); got != "" {
			t.Fatalf("globex sees marker %q", got)
		}
	}
	// Nor does acme on another release (digest) of the same code.
	other := e.compile(t, cat(guestWasm, sect(0, cat(name("release"), []byte("2")))))
	resp, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "api", Digest: other, Host: e.hosts["acme"], Request: get})
	wantOK(t, Response{Status: resp.Status}, err)
	if string(resp.Body) != "" {
		t.Errorf("acme's other release sees marker %q", resp.Body)
	}
	s := e.rt.Stats()
	if s.IdlePerAccount["acme"] != 2 || s.IdlePerAccount["globex"] != 1 {
		t.Errorf("instances per account = %v, want acme 2, globex 1", s.IdlePerAccount)
	}
}

func TestIdleEviction(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	e.must(t, "globex", Request{Path: "/echo"}, 200)
	e.rt.sweep(time.Now())
	if s := e.rt.Stats(); s.Instances != 2 {
		t.Fatalf("before idle timeout: %d instances, want 2 (warm)", s.Instances)
	}
	e.rt.sweep(time.Now().Add(2 * time.Hour))
	if s := e.rt.Stats(); s.Instances != 0 || s.Idle != 0 {
		t.Fatalf("after idle timeout: %+v, want no instances", s)
	}
	e.must(t, "acme", Request{Path: "/echo"}, 200) // twin: cold start works
}

var _ = fmt.Sprint

// TestResidueInGlobals: a wasm global is instance state too. The module
// counts its invocations in a mutable global and answers with the count as
// the first body byte.
func TestResidueInGlobals(t *testing.T) {
	e := newEnv(t, Config{})
	counter := hostileSpec{
		globals: [][]byte{{0x7F, 0x01, 0x41, 0x00, 0x0B}}, // (mut i32) = 0
		handle: cat(
			[]byte{0x23, 0x00}, i32c(1), []byte{0x6A, 0x24, 0x00}, // g += 1
			i32c(okAddr+4), []byte{0x23, 0x00}, []byte{0x3A, 0x00, 0x00}, // mem[body] = g
			returnOK()),
	}.build()
	d := e.compile(t, counter)
	first := func(acct silo.AccountID) byte {
		t.Helper()
		resp, err := e.invokeDigest(acct, d, Limits{}, "/")
		wantOK(t, resp, err)
		return resp.Body[0]
	}
	if got := first("acme"); got != 1 {
		t.Fatalf("acme first call: count %d, want 1", got)
	}
	// Twin: acme's warm instance keeps its own global.
	if got := first("acme"); got != 2 {
		t.Errorf("acme second call: count %d, want 2 (warm instance)", got)
	}
	// globex starts from a fresh instance.
	if got := first("globex"); got != 1 {
		t.Errorf("globex first call: count %d, want 1; it sees acme's instance state", got)
	}
}

func TestWallClockOnlyIfGranted(t *testing.T) {
	e := newEnv(t, Config{})
	inv := Invocation{Account: "acme", Function: "api", Digest: e.guest, Host: e.hosts["acme"], Request: Request{Path: "/now"}}
	resp, err := e.rt.Invoke(context.Background(), inv)
	wantOK(t, resp, err)
	if string(resp.Body) != "2022" {
		t.Errorf("without grant: year %s, want the fixed 2022", resp.Body)
	}
	inv.WallClock = true
	resp, err = e.rt.Invoke(context.Background(), inv)
	wantOK(t, resp, err)
	if want := fmt.Sprint(time.Now().Year()); string(resp.Body) != want {
		t.Errorf("with grant: year %s, want %s", resp.Body, want)
	}
}

func TestAccountConcurrencyCap(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{AccountConcurrency: 1, QueueWait: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.rt.Invoke(ctx, Invocation{Account: "acme", Function: "stuck", Digest: e.guest, Host: e.hosts["acme"],
			Limits: Limits{Timeout: time.Hour}, Request: Request{Path: "/loop"}})
		done <- err
	}()
	for e.rt.Stats().Instances == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// Another function of the same account: the account's one slot is taken.
	_, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "other", Digest: e.guest, Host: e.hosts["acme"], Request: Request{Path: "/echo"}})
	wantCode(t, err, silo.CodeTooMany)
	// Twin: another account has its own.
	e.must(t, "globex", Request{Path: "/echo"}, 200)
	cancel()
	<-done
}
