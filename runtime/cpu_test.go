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

// mustAll fails the test on the first of errs that is not nil.
func mustAll(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
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

// holdCPU starts an invocation of acct that holds one of its CPU slots
// (parked in a gate on a config read, which keeps the slot) until the
// returned func is called, so that acct counts as wanting CPU.
func (e *env) holdCPU(t *testing.T, acct silo.AccountID) (release func()) {
	t.Helper()
	g := newGate(2, time.Minute)
	done := make(chan []error, 1)
	go func() {
		done <- e.concurrently(acct, gateHost{e.hosts[acct], g}, 1, Request{Path: "/config", Query: map[string][]string{"k": {"gate"}}})
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
			t.Fatalf("%s's holding invocation ended early: %v", acct, errs[0])
		case <-time.After(time.Millisecond):
		}
	}
	return func() {
		g.mu.Lock()
		g.want = 1
		g.cond.Broadcast()
		g.mu.Unlock()
		if errs := <-done; errs[0] != nil {
			t.Errorf("%s's holding invocation: %v", acct, errs[0])
		}
	}
}

// While another account wants CPU, one account never runs more invocations
// in guest code at once than AccountCPU (below GOMAXPROCS by default), so it
// cannot hold every P; alone, it may use every P. An invocation waiting for
// I/O or sleeping does not count, and other accounts are not held up.
func TestAccountCPUCap(t *testing.T) {
	var def Config
	def.setDefaults()
	if got, want := def.AccountCPU, max(1, goruntime.GOMAXPROCS(0)-1); got != want {
		t.Errorf("default AccountCPU = %d, want GOMAXPROCS-1 = %d", got, want)
	}
	e := newEnv(t, Config{AccountCPU: 1})
	const n = 3
	e.rt.cpus.alone = n // as if GOMAXPROCS were n, whatever this machine's
	configGate := Request{Path: "/config", Query: map[string][]string{"k": {"gate"}}}
	t.Run("guest code is capped while another account runs", func(t *testing.T) {
		// Must not: config "gate" holds its caller in guest-side code (a
		// host call that keeps the slot) until a second one arrives; with
		// one CPU slot none ever does.
		defer e.holdCPU(t, "globex")()
		g := newGate(2, 150*time.Millisecond)
		mustAll(t, e.concurrently("acme", gateHost{e.hosts["acme"], g}, n, configGate))
		if g.max != 1 || g.served != n {
			t.Fatalf("%d of acme's invocations ran guest code at once (served %d), want 1 (AccountCPU)", g.max, g.served)
		}
	})
	t.Run("an account alone uses every P", func(t *testing.T) {
		// Must: with no other account wanting CPU, all n run at once.
		g := newGate(n, 5*time.Second)
		mustAll(t, e.concurrently("acme", gateHost{e.hosts["acme"], g}, n, configGate))
		if g.max != n {
			t.Fatalf("%d of acme's invocations ran guest code at once with no other account busy, want all %d", g.max, n)
		}
	})
	t.Run("I/O does not hold the slot", func(t *testing.T) {
		// Must: table reads give the slot back, so all n wait in the
		// host together.
		defer e.holdCPU(t, "globex")()
		g := newGate(n, 5*time.Second)
		mustAll(t, e.concurrently("acme", gateHost{e.hosts["acme"], g}, n, Request{Path: "/kv/get", Query: map[string][]string{"table": {"gate"}}, Params: map[string]string{"key": "k"}}))
		if g.max != n {
			t.Fatalf("%d of acme's invocations waited for I/O together, want all %d", g.max, n)
		}
	})
	t.Run("sleeping does not hold the slot", func(t *testing.T) {
		// Must: n guests of one account that sleep 1 s each are all
		// asleep at once (config reads mark each sleep's start and end).
		defer e.holdCPU(t, "globex")()
		h := &markHost{Host: e.hosts["acme"]}
		mustAll(t, e.concurrently("acme", h, n, Request{Path: "/sleepmark", Query: map[string][]string{"ms": {"1000"}}}))
		if h.max != n {
			t.Fatalf("%d of acme's invocations slept at once, want all %d", h.max, n)
		}
	})
	t.Run("other accounts are not held up", func(t *testing.T) {
		// Must: while acme's invocation holds a slot, globex's runs to
		// the end.
		release := e.holdCPU(t, "acme")
		e.must(t, "globex", Request{Path: "/ping"}, 200)
		release()
	})
}

// The share hands slots over first come first served, gives a slot granted
// as its waiter gave up to the next, and counts an account as wanting CPU
// exactly while it runs or waits.
func TestCPUShare(t *testing.T) {
	c := &cpus{shared: 1, alone: 2}
	a, b := &cpuShare{cpus: c}, &cpuShare{cpus: c}
	never := make(chan struct{})
	if !a.take(never) || !a.take(never) {
		t.Fatal("alone, an account takes its second slot at once")
	}
	if c.active.Load() != 1 {
		t.Fatalf("active = %d, want 1", c.active.Load())
	}
	// b arrives: the shared limit applies to both from now on.
	if !b.take(never) {
		t.Fatal("b's first slot")
	}
	gaveUp := make(chan struct{})
	close(gaveUp)
	if a.take(gaveUp) {
		t.Fatal("a over its shared limit got a slot")
	}
	got := make(chan bool)
	go func() { got <- a.take(never) }()
	for {
		a.mu.Lock()
		w := len(a.waiting)
		a.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	a.release() // running 2 → 1: still at the shared limit, no hand-over
	select {
	case <-got:
		t.Fatal("a waiter got a slot while a was at its shared limit")
	case <-time.After(20 * time.Millisecond):
	}
	a.release() // running 1 → 0: handed over
	if !<-got {
		t.Fatal("the waiter did not get the released slot")
	}
	a.release()
	b.release()
	if c.active.Load() != 0 || a.running != 0 || b.running != 0 {
		t.Fatalf("after every release: active %d, running %d/%d; want 0", c.active.Load(), a.running, b.running)
	}
}

// waitFor polls until s has n waiters.
func waitFor(s *cpuShare, n int) {
	for {
		s.mu.Lock()
		w := len(s.waiting)
		s.mu.Unlock()
		if w == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// When the other account stops wanting CPU, an account's limit rises from
// shared to alone at once: its waiter gets the slot that is now its own,
// not only when one of its account's slots comes back.
func TestCPUShareOtherAccountLeaves(t *testing.T) {
	c := &cpus{shared: 1, alone: 2}
	a, b := &cpuShare{cpus: c}, &cpuShare{cpus: c}
	never := make(chan struct{})
	if !b.take(never) || !a.take(never) {
		t.Fatal("each account's first slot")
	}
	got := make(chan bool, 1)
	go func() { got <- a.take(never) }()
	waitFor(a, 1)
	// Must not: while b runs, a is at its shared limit.
	select {
	case <-got:
		t.Fatal("a's waiter got a slot while b wanted CPU")
	case <-time.After(20 * time.Millisecond):
	}
	// Must: b's last slot comes back, a is alone, its waiter runs while
	// a's first slot is still held.
	b.release()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("a's waiter gave up")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a's waiter still waits for a slot after b left (a alone may run 2)")
	}
	a.release()
	a.release()
	if c.active.Load() != 0 || len(c.queued) != 0 {
		t.Fatalf("after every release: active %d, %d shares queued; want 0", c.active.Load(), len(c.queued))
	}
}

// The same through the runtime: an account's invocation waiting for its
// share while another account held a slot runs as soon as that other
// account's invocation ends, next to the account's own invocation that
// still holds its slot.
func TestCPUWaiterRunsWhenOtherAccountEnds(t *testing.T) {
	if goruntime.GOMAXPROCS(0) < 2 {
		t.Skip("an account alone may run as many as the shared limit with one P")
	}
	e := newEnv(t, Config{AccountCPU: 1})
	releaseGlobex := e.holdCPU(t, "globex")
	releaseAcme := e.holdCPU(t, "acme")
	defer releaseAcme()
	done := make(chan []error, 1)
	go func() { done <- e.concurrently("acme", e.hosts["acme"], 1, Request{Path: "/ping"}) }()
	e.rt.mu.Lock()
	share := &e.rt.accounts["acme"].cpu
	e.rt.mu.Unlock()
	waitFor(share, 1)
	releaseGlobex()
	select {
	case errs := <-done:
		mustAll(t, errs)
	case <-time.After(5 * time.Second): // well within the invocation's 10 s timeout
		t.Fatal("acme's invocation still waits for CPU after globex's ended, while acme alone may use every P")
	}
}

// An invocation waiting for its account's CPU share holds no instance: a
// busy function runs on as many instances as run guest code at once, not
// one per waiting request (each a separate guest heap, cold in the
// processor's caches when its turn comes).
func TestWaitingForCPUHoldsNoInstance(t *testing.T) {
	e := newEnv(t, Config{AccountCPU: 1})
	defer e.holdCPU(t, "globex")()
	release := e.holdCPU(t, "acme") // acme's one slot while globex is busy
	before := e.rt.Stats().Instances
	const n = 6
	done := make(chan []error, 1)
	go func() { done <- e.concurrently("acme", e.hosts["acme"], n, Request{Path: "/ping"}) }()
	e.rt.mu.Lock()
	share := &e.rt.accounts["acme"].cpu
	e.rt.mu.Unlock()
	for waiting := 0; waiting < n; {
		select {
		case errs := <-done:
			release()
			t.Fatalf("acme's invocations ended while its CPU slot was held: %v", errs)
		case <-time.After(time.Millisecond):
		}
		share.mu.Lock()
		waiting = len(share.waiting)
		share.mu.Unlock()
	}
	release()
	// Must: once the slot is free, every waiting invocation runs.
	mustAll(t, <-done)
	// They ran one at a time, mostly on the instance the holder frees: a
	// waiter whose turn comes before the previous invocation has put its
	// instance back starts one more (a race, lost more often under the race
	// detector). Taking an instance before the CPU slot gives each waiter
	// its own: n.
	if got := e.rt.Stats().Instances - before; got > n/2 {
		t.Fatalf("%d invocations that waited for one CPU slot left %d new instances, want at most %d", n, got, n/2)
	}
}
