package platform_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// node is one platform of several on one PostgreSQL database and one
// data dir, with its gateway served and its rollout runner started and
// stopped by the test.
type node struct {
	p       *platform.Platform
	db      *postgres.Store // its store, to cut it off
	mu      sync.Mutex
	events  []rollout.Event // its runner's step boundaries
	gw      *httptest.Server
	stop    context.CancelFunc
	stopped chan struct{}
	cut     bool // its store was closed under it: closing it may fail to flush
}

func openServer(t *testing.T, dsn, dir string, clock *rollout.ManualClock) *node {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open PostgreSQL store: %v", err)
	}
	cache := silotest.CacheDir()
	s := &node{}
	p, err := platform.Open(ctx, platform.Config{
		RolloutHook: func(e rollout.Event) { s.mu.Lock(); s.events = append(s.events, e); s.mu.Unlock() },
		DataDir:     dir, Store: st, Clock: clock, Actor: "test",
		BuildCache: filepath.Join(cache, "builds"), CompileCache: filepath.Join(cache, "compiled"),
		ReapEvery: time.Hour, Refresh: time.Hour,
		Local: local.Config{IdleTimeout: time.Second}, // the servers share the accounts' files
	})
	if err != nil {
		t.Fatalf("open platform: %v", err)
	}
	s.p, s.db, s.gw = p, st, httptest.NewServer(p.Handler())
	t.Cleanup(func() {
		s.stopRunner()
		s.gw.Close()
		if err := p.Close(); err != nil && !s.cut {
			t.Errorf("close platform: %v", err)
		}
	})
	return s
}

// steps returns the tenants its runner applied the rollout to (the
// production account, applied first, left out), and how many step
// boundaries it passed in all.
func (s *node) steps() (applied []silo.AccountID, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Point == "applied" && e.Account != silo.ProductionID {
			applied = append(applied, e.Account)
		}
	}
	return applied, len(s.events)
}

func (s *node) startRunner() {
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.stopped = stop, make(chan struct{})
	go func() { defer close(s.stopped); s.p.Runner.Serve(ctx) }()
}

// stopRunner stops the runner as a server shutting down does, mid-rollout
// or not, and waits until it has stopped.
func (s *node) stopRunner() {
	if s.stop != nil {
		s.stop()
		<-s.stopped
		s.stop = nil
	}
}

// get sends GET path to the tenant's function through this server's gateway.
func (s *node) get(t *testing.T, tenant silo.AccountID, key, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.gw.URL+"/t/"+string(tenant)+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTwoServersShareOneRollout runs two platforms (two servers) on one
// PostgreSQL database and one data dir, both with their rollout runners
// running. The first takes the rollout; while it bakes the canary ring the
// second never takes it over (the lease holds across the two); the first is
// then stopped or killed mid-rollout and the second finishes it. Every tenant runs
// the new release on both servers' gateways (each had every account cached
// from before: the runner's announcements reach the other server), the new
// release was applied
// to each account exactly once (one release.apply audit event per
// account), and the audit chain verifies.
func TestTwoServersShareOneRollout(t *testing.T) {
	t.Parallel() // each mode has its own schema, data dir and clock
	for _, mode := range []string{"stop", "kill"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			twoServersShareOneRollout(t, mode)
		})
	}
}

// twoServersShareOneRollout is TestTwoServersShareOneRollout with the first
// server stopped cleanly (mode "stop": its runner gives the lease back) or
// cut off from the database (mode "kill": its connections are closed, so
// it can neither renew nor give back its lease, and the second server takes
// the rollout over only once the lease has expired on the clock).
func twoServersShareOneRollout(t *testing.T, mode string) {
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	clock := rollout.NewManualClock(silotest.Start)
	a := openServer(t, dsn, dir, clock)
	b := openServer(t, dsn, dir, clock)
	ctx := context.Background()

	app := silotest.CopyExample(t)
	spec := filepath.Join(app, "silo.yaml")
	src, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(src), "\nrollout:")
	if i < 0 {
		t.Fatal("the example has no rollout section; update the test")
	}
	// A canary ring that bakes on the fake clock and then everyone: no
	// traffic gates, since each server judges traffic by its own runtime.
	rings := string(src[:i]) + `
rollout:
  rings:
    - name: canary
      select: {kind: tenant, params: {plan: pro}}
      bake: 1m
    - name: everyone
      select: {kind: tenant}
      bake: 0s
`
	if err := os.WriteFile(spec, []byte(rings), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.p.Deploy(ctx, app); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	keys := map[silo.AccountID]string{}
	tenants := []struct {
		id   string
		plan string
		on   *node
	}{{"acme", "pro", a}, {"globex", "free", b}, {"initech", "free", a}, {"umbrella", "free", b}}
	for _, tn := range tenants {
		c, err := tn.on.p.CreateAccount(ctx, control.CreateRequest{ID: tn.id, Params: map[string]string{"plan": tn.plan}, WithKey: true})
		if err != nil {
			t.Fatalf("create %s: %v", tn.id, err)
		}
		keys[c.Account.ID] = c.Key
	}

	// Both gateways serve every tenant before the rollout, so each has
	// its view of every account cached (for an hour: Refresh).
	for id, key := range keys {
		for name, s := range map[string]*node{"a": a, "b": b} {
			if code, body := s.get(t, id, key, "/findings"); code != http.StatusOK || strings.Contains(body, `"version"`) {
				t.Fatalf("%s through %s before the rollout: got %d %s, want 200 without a version", id, name, code, body)
			}
		}
	}
	edit(t, app, "v2")
	rel, err := a.p.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	a.startRunner()
	r, err := a.p.Runner.Start(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r = waitRollout(t, a.p.Runner, r.ID, "canary baking on a", func(r rollout.Rollout) bool { return ringPhase(r, "canary") == rollout.PhaseBaking })
	ownerA := r.Owner
	if ownerA == "" {
		t.Fatalf("a drives the rollout but holds no lease: %+v", r)
	}
	b.startRunner()
	// b polls for work every second: give it three chances to take the
	// rollout over while a still holds it.
	for range 3 {
		time.Sleep(time.Second)
		if r, err = b.p.Runner.Get(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if r.Owner != ownerA {
			t.Fatalf("while a drives the rollout, its owner became %q, want a's %q", r.Owner, ownerA)
		}
	}

	if _, n := b.steps(); n != 0 {
		t.Fatalf("b's runner passed %d step boundaries while a held the rollout, want 0", n)
	}
	if applied, _ := a.steps(); len(applied) != 1 || applied[0] != "acme" {
		t.Fatalf("a applied the release to %v before the bake, want [acme] (the canary ring)", applied)
	}
	servers := map[string]*node{"a": a, "b": b}
	if mode == "stop" {
		a.stopRunner() // a server shuts down mid-rollout
	} else {
		a.cut = true
		a.db.Close() // a server dies mid-rollout: its lease stays
		delete(servers, "a")
		time.Sleep(2 * time.Second) // b polls (every second) and finds the lease held
		if r, err = b.p.Runner.Get(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if r.Owner != ownerA || r.State != rollout.StateRunning {
			t.Fatalf("with a dead but its lease not expired: owner %q, state %s; want a's %q, running", r.Owner, r.State, ownerA)
		}
		if _, n := b.steps(); n != 0 {
			t.Fatalf("b's runner passed %d step boundaries while a's lease held, want 0", n)
		}
	}
	clock.Advance(time.Minute)
	r = waitRollout(t, b.p.Runner, r.ID, "done by b", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
	if r.State != rollout.StateSucceeded {
		t.Fatalf("rollout: got %s (%s), want succeeded", r.State, r.Reason)
	}
	appliedA, _ := a.steps()
	appliedB, _ := b.steps()
	if got := append(appliedA, appliedB...); len(got) != len(keys) {
		t.Errorf("applied by a %v and by b %v, want each of the %d tenants once", appliedA, appliedB, len(keys))
	}
	if len(appliedB) != len(keys)-1 {
		t.Errorf("b applied the release to %v, want the %d tenants of the everyone ring after taking over", appliedB, len(keys)-1)
	}
	// The server that did not apply an account learns of it by the
	// announcement, which may still be on its way: poll for up to a minute
	// (its own refresh would take an hour).
	for id, key := range keys {
		for name, s := range servers {
			for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
				code, body := s.get(t, id, key, "/findings")
				if code == http.StatusOK && strings.Contains(body, `"version":"v2"`) {
					break
				}
				if time.Since(start) > time.Minute {
					t.Errorf("%s through %s after the rollout: got %d %s, want v2", id, name, code, body)
					break
				}
			}
		}
	}

	applied := map[silo.AccountID]int{}
	err = b.p.Store.View(ctx, func(tx store.Tx) error {
		es, err := tx.Audit(0, 100000)
		for _, e := range es {
			if e.Event.Action == "release.apply" && strings.Contains(string(e.Event.Detail), rel.ID) {
				applied[e.Event.Account]++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range keys {
		if applied[id] != 1 {
			t.Errorf("release %s applied to %s %d times, want once (all: %v)", rel.ID, id, applied[id], applied)
		}
	}
	if n, err := b.p.Plane.VerifyAudit(ctx); err != nil || n == 0 {
		t.Errorf("VerifyAudit: got %d entries, %v, want a chain that verifies", n, err)
	}
}
