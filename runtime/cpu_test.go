package runtime

import (
	"context"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// gate counts the host calls in flight and holds each until want are in
// flight together, or until wait has passed; max is the most seen at once.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	in     int
	max    int
	want   int
	wait   time.Duration
	served int
}

func newGate(want int, wait time.Duration) *gate {
	g := &gate{want: want, wait: wait}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.in++
	g.max = max(g.max, g.in)
	g.cond.Broadcast()
	timedOut := false
	timeout := time.AfterFunc(g.wait, func() {
		g.mu.Lock()
		timedOut = true
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer timeout.Stop()
	for g.max < g.want && !timedOut {
		g.cond.Wait()
	}
	g.in--
	g.served++
}

// gateHost is the real DataHost, except that config "gate" and table
// "gate" pass through a gate: a host call that keeps the CPU slot (config)
// and one that gives it back (a table read).
type gateHost struct {
	Host
	g *gate
}

func (h gateHost) Config(ctx context.Context, key string) (string, error) {
	if key == "gate" {
		h.g.pass()
		return "open", nil
	}
	return h.Host.Config(ctx, key)
}

func (h gateHost) Get(ctx context.Context, table, key string) ([]byte, error) {
	if table == "gate" {
		h.g.pass()
		return []byte("open"), nil
	}
	return h.Host.Get(ctx, table, key)
}

// markHost is the real DataHost, except that config reads of "mark-start"
// and "mark-end" count the guests between the two.
type markHost struct {
	Host
	mu       sync.Mutex
	cur, max int
}

func (h *markHost) Config(ctx context.Context, key string) (string, error) {
	switch key {
	case "mark-start", "mark-end":
		h.mu.Lock()
		defer h.mu.Unlock()
		if key == "mark-start" {
			h.cur++
			h.max = max(h.max, h.cur)
		} else {
			h.cur--
		}
		return "", nil
	}
	return h.Host.Config(ctx, key)
}

// concurrently runs n invocations of req in acct with host h and returns
// their errors.
func (e *env) concurrently(acct silo.AccountID, h Host, n int, req Request) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.rt.Invoke(context.Background(), Invocation{
				Account: acct, Function: "api", Digest: e.guest, Host: h, Request: req,
				Limits: Limits{Timeout: 10 * time.Second},
			})
			if err == nil && resp.Status != 200 {
				err = silo.Errorf(silo.CodeInternal, "status %d: %s", resp.Status, resp.Body)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errs
}

// One account never runs more invocations in guest code at once than
// AccountCPU (below GOMAXPROCS by default), so it cannot hold every P; an
// invocation waiting for I/O does not count, and other accounts are not
// held up by it.
func TestAccountCPUCap(t *testing.T) {
	var def Config
	def.setDefaults()
	if got, want := def.AccountCPU, max(1, goruntime.GOMAXPROCS(0)-1); got != want {
		t.Errorf("default AccountCPU = %d, want GOMAXPROCS-1 = %d", got, want)
	}
	e := newEnv(t, Config{AccountCPU: 1})
	const n = 3
	t.Run("guest code is capped", func(t *testing.T) {
		// Must not: config "gate" holds its caller in guest-side code (a
		// host call that keeps the slot) until a second one arrives; with
		// one CPU slot none ever does.
		g := newGate(2, 150*time.Millisecond)
		for _, err := range e.concurrently("acme", gateHost{e.hosts["acme"], g}, n, Request{Path: "/config", Query: map[string][]string{"k": {"gate"}}}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if g.max != 1 || g.served != n {
			t.Fatalf("%d of acme's invocations ran guest code at once (served %d), want 1 (AccountCPU)", g.max, g.served)
		}
	})
	t.Run("I/O does not hold the slot", func(t *testing.T) {
		// Must: table reads give the slot back, so all n wait in the
		// host together.
		g := newGate(n, 5*time.Second)
		for _, err := range e.concurrently("acme", gateHost{e.hosts["acme"], g}, n, Request{Path: "/kv/get", Query: map[string][]string{"table": {"gate"}}, Params: map[string]string{"key": "k"}}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if g.max != n {
			t.Fatalf("%d of acme's invocations waited for I/O together, want all %d", g.max, n)
		}
	})
	t.Run("sleeping does not hold the slot", func(t *testing.T) {
		// Must: n guests of one account that sleep 300 ms each are all
		// asleep at once (config reads mark each sleep's start and end).
		h := &markHost{Host: e.hosts["acme"]}
		for _, err := range e.concurrently("acme", h, n, Request{Path: "/sleepmark", Query: map[string][]string{"ms": {"300"}}}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if h.max != n {
			t.Fatalf("%d of acme's invocations slept at once, want all %d", h.max, n)
		}
	})
	t.Run("other accounts are not held up", func(t *testing.T) {
		// Must: while acme's invocation holds acme's only slot, globex's
		// runs to the end.
		g := newGate(2, 5*time.Second)
		done := make(chan []error)
		go func() {
			done <- e.concurrently("acme", gateHost{e.hosts["acme"], g}, 1, Request{Path: "/config", Query: map[string][]string{"k": {"gate"}}})
		}()
		for {
			g.mu.Lock()
			in := g.in
			g.mu.Unlock()
			if in == 1 {
				break
			}
			select {
			case errs := <-done:
				t.Fatalf("acme's invocation ended (%v) before it was seen holding its slot", errs[0])
			case <-time.After(time.Millisecond):
			}
		}
		e.must(t, "globex", Request{Path: "/ping"}, 200)
		g.mu.Lock()
		in := g.in
		g.mu.Unlock()
		if in != 1 {
			t.Errorf("acme's invocation left its slot before globex's finished (in flight %d); the check shows nothing", in)
		}
		g.mu.Lock()
		g.want = 1 // let acme's go
		g.cond.Broadcast()
		g.mu.Unlock()
		if errs := <-done; errs[0] != nil {
			t.Fatal(errs[0])
		}
	})
}
