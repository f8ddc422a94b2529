package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// stack has a canary ring (tenants with ring=canary) gated on error rate
// and p99, then everyone.
const stack = `version: 1
name: demo
params:
  ring: {type: string, default: main}
  region: {type: string, default: eu}
functions:
  ingest:
    source: ./fn.wasm
    tables: {findings: read-write}
tables: {findings: {}}
config:
  where: "${param.region}"
routes:
  - {method: POST, path: /findings, function: ingest}
rollout:
  rings:
    - name: canary
      select: {kind: tenant, params: {ring: canary}}
      concurrency: 4
      bake: 5m
      gates: {max_error_rate: 0.05, max_p99_increase: 0.5, min_requests: 100%s}
    - name: everyone
      select: {kind: tenant}
      concurrency: 8
      failure_budget: %s
`

type env struct {
	dir   string
	store store.Store
	prov  *local.Provider
	eng   *engine.Engine
	run   *rollout.Runner
	rec   *rollout.Recorder
	clock *rollout.ManualClock

	mu      sync.Mutex
	applies map[silo.AccountID]int // provider calls per account
	plans   map[silo.AccountID]int // plans the runner made per account
	onBake  func(ring string)
	onPlan  func(a silo.Account)   // before each plan the runner makes
	onEvent func(ev rollout.Event) // after opts.hook, for each event of the runner
}

type opts struct {
	store  store.Store
	owner  string
	wall   bool
	hook   func(rollout.Event)
	noOpen bool
}

func newEnv(t testing.TB, dir string, o opts) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dir: dir, rec: &rollout.Recorder{}, applies: map[silo.AccountID]int{}, plans: map[silo.AccountID]int{}, clock: rollout.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	e.store = o.store
	if e.store == nil {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		e.store = st
		t.Cleanup(func() { st.Close() })
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	e.prov = prov
	var clock rollout.Clock = e.clock
	if o.wall {
		clock = rollout.WallClock{}
	}
	// One clock for the engine and the runner, as a server has: an
	// account's Created and a rollout's are comparable.
	e.eng = engine.New(engine.Config{Store: e.store, Provider: prov, Concurrency: 16, Now: clock.Now, Hook: func(s engine.Step) {
		if s.Point == "provider" && s.Change != nil {
			e.mu.Lock()
			e.applies[s.Account]++
			e.mu.Unlock()
		}
	}})
	e.run, err = rollout.New(rollout.Config{Store: e.store, Engine: planCounter{e.eng, e}, Provider: prov, Metrics: e.rec, Clock: clock,
		Owner: o.owner, Poll: 20 * time.Millisecond, LeaseTTL: 2 * time.Second,
		Hook: func(ev rollout.Event) {
			if ev.Point == "bake" && e.onBake != nil {
				e.onBake(ev.Ring)
			}
			if o.hook != nil {
				o.hook(ev)
			}
			if e.onEvent != nil {
				e.onEvent(ev)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// planCounter is the real engine, counting the plans the runner makes.
type planCounter struct {
	*engine.Engine
	e *env
}

func (c planCounter) PlanAccount(ctx context.Context, a silo.Account, rel engine.Release) (silo.Plan, error) {
	c.e.mu.Lock()
	c.e.plans[a.ID]++
	on := c.e.onPlan
	c.e.mu.Unlock()
	if on != nil {
		on(a)
	}
	return c.Engine.PlanAccount(ctx, a, rel)
}

func release(t testing.TB, e *env, src, digest string) engine.Release {
	t.Helper()
	st, err := spec.Parse("silo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rel, stored, err := engine.NewRelease(st, map[string]string{"ingest": digest}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Update(context.Background(), func(tx store.Tx) error { return tx.PutRelease(stored) }); err != nil {
		t.Fatal(err)
	}
	return rel
}

// seed creates production and n tenants on rel (the first canary of them
// with ring=canary) and makes rel current.
func seed(t testing.TB, e *env, rel engine.Release, n, canary int, extra ...func(i int, p map[string]string)) {
	t.Helper()
	seedAccounts(t, e, rel, n, canary, extra...)
	if err := e.store.Update(context.Background(), func(tx store.Tx) error { _, err := tx.SetCurrentRelease(rel.ID); return err }); err != nil {
		t.Fatal(err)
	}
}

// seedAccounts is seed without making rel current: as before a first
// deploy.
func seedAccounts(t testing.TB, e *env, rel engine.Release, n, canary int, extra ...func(i int, p map[string]string)) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction}, rel); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		params := map[string]string{}
		if i < canary {
			params["ring"] = "canary"
		}
		for _, f := range extra {
			f(i, params)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(id silo.AccountID) {
			defer func() { <-sem; wg.Done() }()
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: silo.KindTenant, Params: params}, rel); err != nil {
				errs <- err
			}
		}(tenant(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.applies, e.plans = map[silo.AccountID]int{}, map[silo.AccountID]int{}
	e.mu.Unlock()
}

func tenant(i int) silo.AccountID { return silo.AccountID(fmt.Sprintf("t%05d", i)) }

// profile is how a release behaves under traffic.
type profile struct {
	errEvery int // every errEvery-th request fails (0: none)
	latency  time.Duration
}

// traffic sends n requests to each tenant through the recorder, behaving as
// the release the tenant runs according to the registry.
func traffic(t testing.TB, e *env, n int, by map[string]profile) {
	t.Helper()
	var accts []silo.Account
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		accts, err = tx.Accounts(store.Filter{Kind: silo.KindTenant})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		p := by[a.Release]
		for i := 1; i <= n; i++ {
			e.rec.Record(a.ID, a.Release, p.latency+time.Duration(i%7)*100*time.Microsecond, p.errEvery > 0 && i%p.errEvery == 0)
		}
	}
}

func get(t testing.TB, e *env, id string) rollout.Rollout {
	t.Helper()
	r, err := e.run.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func releases(t testing.TB, e *env) map[silo.AccountID]string {
	t.Helper()
	out := map[silo.AccountID]string{}
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		as, err := tx.Accounts(store.Filter{})
		for _, a := range as {
			out[a.ID] = a.Release
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFleet checks that every account's live resources are those of the
// release the registry says it runs, which is one of want; that the
// provider holds no account the registry does not; and that the journal
// has no pending intent.
func checkFleet(t testing.TB, e *env, want map[string]engine.Release) {
	t.Helper()
	ctx := context.Background()
	var accts []silo.Account
	var pending []store.Intent
	if err := e.store.View(ctx, func(tx store.Tx) error {
		var err error
		if accts, err = tx.Accounts(store.Filter{}); err != nil {
			return err
		}
		pending, err = tx.PendingIntents()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(pending) > 0 {
		t.Errorf("%d pending intents left, e.g. %s", len(pending), pending[0].Key)
	}
	held, err := e.prov.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	known := map[silo.AccountID]bool{}
	for _, a := range accts {
		known[a.ID] = true
	}
	for _, id := range held {
		if !known[id] {
			t.Errorf("orphan provider account %s", id)
		}
	}
	for _, a := range accts {
		rel, ok := want[a.Release]
		if !ok {
			t.Errorf("%s runs release %q, want one of the target or previous", a.ID, a.Release)
			continue
		}
		desired, err := engine.Desired(rel.Stack, rel.Artifacts, a)
		if err != nil {
			t.Fatal(err)
		}
		live, err := e.prov.Resources(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range live {
			if seen[r.Key()] {
				t.Errorf("%s: duplicated resource %s", a.ID, r.Key())
			}
			seen[r.Key()] = true
		}
		if silo.SetHash(live) != silo.SetHash(desired) {
			t.Errorf("%s: live resources are not those of release %s", a.ID, a.Release)
		}
		if d, err := e.eng.Drift(ctx, a.ID); err != nil || len(d) > 0 {
			t.Errorf("%s: drift %v, %v", a.ID, d, err)
		}
	}
}

// drive runs the rollout until it stops running.
func drive(t testing.TB, e *env, id string) rollout.Rollout {
	t.Helper()
	if err := e.run.Run(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return get(t, e, id)
}

func fmtStack(extraGates, budget string) string { return fmt.Sprintf(stack, extraGates, budget) }

var (
	good = profile{errEvery: 1000, latency: 4 * time.Millisecond}
	bad  = profile{errEvery: 5, latency: 4 * time.Millisecond}      // 20% errors
	slow = profile{errEvery: 1000, latency: 304 * time.Millisecond} // +300 ms
)

func TestGates(t *testing.T) {
	cases := []struct {
		name         string
		gates        string
		target       profile
		perTenant    int  // requests per tenant during the bake
		outage       bool // metrics unavailable at the gate
		wantState    rollout.State
		wantVerdict  string
		wantEveryone bool // the everyone ring got the release
	}{
		{name: "good release promotes", target: good, perTenant: 100, wantState: rollout.StateSucceeded, wantVerdict: rollout.Pass, wantEveryone: true},
		{name: "20% errors roll back", target: bad, perTenant: 100, wantState: rollout.StateFailed, wantVerdict: rollout.Fail},
		{name: "+300ms rolls back", target: slow, perTenant: 100, wantState: rollout.StateFailed, wantVerdict: rollout.Fail},
		{name: "too little traffic pauses", target: good, perTenant: 5, wantState: rollout.StatePaused, wantVerdict: rollout.Inconclusive},
		{name: "too little traffic with on_inconclusive rollback rolls back", gates: ", on_inconclusive: rollback", target: good, perTenant: 5, wantState: rollout.StateFailed, wantVerdict: rollout.Inconclusive},
		{name: "metrics outage pauses", target: good, perTenant: 100, outage: true, wantState: rollout.StatePaused, wantVerdict: rollout.Inconclusive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			src := fmtStack(tc.gates, "0")
			v1 := release(t, e, src, "sha256:1111")
			v2 := release(t, e, src, "sha256:2222")
			seed(t, e, v1, 20, 4)
			traffic(t, e, 200, map[string]profile{v1.ID: good})
			e.onBake = func(ring string) {
				traffic(t, e, tc.perTenant, map[string]profile{v1.ID: good, v2.ID: tc.target})
				e.rec.SetFailing(tc.outage)
				e.clock.Advance(5 * time.Minute)
			}
			r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = drive(t, e, r.ID)
			if r.State != tc.wantState {
				t.Fatalf("state = %s (%s), want %s", r.State, r.Reason, tc.wantState)
			}
			canary := r.Rings[1]
			if canary.Verdict == nil || canary.Verdict.Result != tc.wantVerdict {
				t.Fatalf("canary verdict = %+v, want %s", canary.Verdict, tc.wantVerdict)
			}
			rels := releases(t, e)
			for i := 0; i < 20; i++ {
				id := tenant(i)
				want := v1.ID
				switch {
				case i < 4 && tc.wantState == rollout.StatePaused:
					want = v2.ID // applied, waiting for a verdict
				case tc.wantEveryone:
					want = v2.ID
				}
				if rels[id] != want {
					t.Errorf("%s on %s, want %s", id, rels[id], want)
				}
				if i >= 4 && !tc.wantEveryone && e.applies[id] > 0 {
					t.Errorf("%s (ring everyone) was applied %d times before the canary passed", id, e.applies[id])
				}
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1, v2.ID: v2})
			if tc.wantState == rollout.StatePaused {
				// Never promotes while paused; resuming with enough traffic does.
				e.rec.SetFailing(false)
				e.onBake = func(string) {
					traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: good})
					e.clock.Advance(5 * time.Minute)
				}
				if _, err := e.run.Resume(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
				if r = drive(t, e, r.ID); r.State != rollout.StateSucceeded {
					t.Fatalf("after resume: %s (%s), want succeeded", r.State, r.Reason)
				}
			}
		})
	}
}

// A failure budget stops the rollout with no more than budget+concurrency
// failures; a budget that covers the failures lets it finish.
func TestFailureBudget(t *testing.T) {
	for _, tc := range []struct {
		budget    string
		wantState rollout.State
	}{{"2", rollout.StateFailed}, {"100%", rollout.StateSucceeded}} {
		t.Run("budget "+tc.budget, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			v1 := release(t, e, fmtStack("", tc.budget), "sha256:1111")
			// v2 needs a region every tenant without one cannot satisfy:
			// the plan fails for those accounts, a real per-account failure.
			src2 := fmtStack("", tc.budget)
			src2 = replaceOnce(src2, "region: {type: string, default: eu}", "region: {type: string, enum: [eu, us], required: true}")
			v2 := release(t, e, src2, "sha256:2222")
			seed(t, e, v1, 40, 0, func(i int, p map[string]string) { // half the tenants have a region
				if i%2 == 0 {
					p["region"] = "us"
				}
			})
			r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r = drive(t, e, r.ID)
			if r.State != tc.wantState {
				t.Fatalf("state = %s (%s), want %s", r.State, r.Reason, tc.wantState)
			}
			everyone := r.Rings[2]
			if tc.wantState == rollout.StateFailed {
				if everyone.Failed > 2+8 {
					t.Errorf("%d failures, want at most budget 2 + concurrency 8", everyone.Failed)
				}
				if everyone.Failed <= 2 {
					t.Errorf("%d failures, want more than the budget", everyone.Failed)
				}
				for id, rel := range releases(t, e) {
					if id != silo.ProductionID && rel != v1.ID {
						t.Errorf("%s on %s after the ring rolled back, want %s", id, rel, v1.ID)
					}
				}
			} else if everyone.Failed != 20 {
				t.Errorf("%d failures, want 20", everyone.Failed)
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1, v2.ID: v2})
		})
	}
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("not found: " + old)
}

func TestSelection(t *testing.T) {
	// Percentile is stable and spreads accounts evenly.
	in := 0
	for i := 0; i < 10000; i++ {
		p := rollout.Percentile(tenant(i))
		if p != rollout.Percentile(tenant(i)) || p < 0 || p >= 100 {
			t.Fatalf("percentile of %s = %v, not stable in [0,100)", tenant(i), p)
		}
		if p < 5 {
			in++
		}
	}
	if in < 400 || in > 600 {
		t.Errorf("5%% selects %d of 10000, want about 500", in)
	}
}

func TestOperatorControls(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222")
	seed(t, e, v1, 10, 2)
	traffic(t, e, 200, map[string]profile{v1.ID: good})
	// Pause during the canary bake.
	var id string
	e.onBake = func(string) {
		if _, err := e.run.Pause(ctx, id); err != nil {
			t.Error(err)
		}
		traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: good})
		e.clock.Advance(5 * time.Minute)
	}
	r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id = r.ID
	// A second deploy is refused with a message naming the active rollout.
	if _, err := e.run.Start(ctx, v1.ID, rollout.Options{}); silo.ErrorCode(err) != silo.CodeConflict {
		t.Fatalf("second deploy: %v, want conflict", err)
	}
	if r = drive(t, e, id); r.State != rollout.StatePaused {
		t.Fatalf("state = %s, want paused", r.State)
	}
	if got := r.Rings[1].Releases[v2.ID]; got != 2 {
		t.Errorf("paused: the canary ring counts %d account(s) on the target, want 2", got)
	}
	e.onBake = func(string) {
		traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: good})
		e.clock.Advance(5 * time.Minute)
	}
	if r, err = e.run.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r.Rings[1].Releases != nil {
		t.Errorf("resumed: the canary ring still counts %v, want no counts while running", r.Rings[1].Releases)
	}
	if r = drive(t, e, id); r.State != rollout.StateSucceeded {
		t.Fatalf("state = %s (%s), want succeeded", r.State, r.Reason)
	}
	checkFleet(t, e, map[string]engine.Release{v2.ID: v2})
	// Rolling back the whole fleet is a rollout of its own.
	rb, err := e.run.Rollback(ctx, id, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rb = drive(t, e, rb.ID); rb.State != rollout.StateSucceeded || rb.Release != v1.ID {
		t.Fatalf("rollback = %s to %s (%s), want succeeded to %s", rb.State, rb.Release, rb.Reason, v1.ID)
	}
	if r = get(t, e, id); r.State != rollout.StateRolledBack || r.RolledBackBy != rb.ID {
		t.Fatalf("original = %s by %q, want rolled_back by %s", r.State, r.RolledBackBy, rb.ID)
	}
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
	// Abort leaves accounts where they are.
	r, err = e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.run.Abort(ctx, r.ID); err != nil || r.State != rollout.StateAborted {
		t.Fatalf("abort: %s, %v", r.State, err)
	}
	if r = drive(t, e, r.ID); r.State != rollout.StateAborted {
		t.Fatalf("state after abort = %s", r.State)
	}
	if _, err := e.run.Start(ctx, v2.ID, rollout.Options{}); err != nil {
		t.Fatalf("deploy after abort: %v", err)
	}
	if _, err := e.run.Get(ctx, "ro-999999"); !errors.Is(err, silo.ErrNotFound) {
		t.Fatalf("unknown rollout: %v", err)
	}
	_ = os.Getenv
}

// TestPlanOncePerPass: a rollout without gates plans each account it
// changes once, in the pass that applies it (the plan that finds the change
// is the one applied), and each account it leaves alone once too; a
// second Start of the same release, current on every account, plans each
// account once (to find data it would destroy), applies nothing and starts
// nothing. (Start plans each account once more, to find data it would
// destroy; that is counted apart.)
func TestPlanOncePerPass(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := ungated() // no gates, no bake: nothing plans but the passes that apply
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222")
	const n = 12
	seed(t, e, v1, n, 3)
	ids := []silo.AccountID{silo.ProductionID}
	for i := range n {
		ids = append(ids, tenant(i))
	}
	for _, target := range []engine.Release{v2, v2} {
		e.mu.Lock()
		e.plans, e.applies = map[silo.AccountID]int{}, map[silo.AccountID]int{}
		e.mu.Unlock()
		r, err := e.run.Start(ctx, target.ID, rollout.Options{})
		_, current := errors.AsType[*rollout.UpToDate](err)
		if err != nil && !current {
			t.Fatal(err)
		}
		e.mu.Lock()
		for _, id := range ids {
			if e.plans[id] != 1 {
				t.Errorf("starting rollout %s planned %s %d times, want once", r.ID, id, e.plans[id])
			}
		}
		e.plans = map[silo.AccountID]int{}
		touched := len(e.applies)
		e.mu.Unlock()
		if current {
			if touched != 0 || r.ID != "" {
				t.Errorf("Start of the current release: rollout %q, %d accounts changed; want none, none", r.ID, touched)
			}
			continue
		}
		if got := drive(t, e, r.ID); got.State != rollout.StateSucceeded {
			t.Fatalf("rollout %s: %s (%s)", r.ID, got.State, got.Reason)
		}
		e.mu.Lock()
		for _, id := range ids {
			if e.plans[id] != 1 {
				t.Errorf("rollout %s planned %s %d times, want once", r.ID, id, e.plans[id])
			}
		}
		touched = len(e.applies)
		e.mu.Unlock()
		if touched != n {
			t.Errorf("rollout %s changed %d accounts in the provider", r.ID, touched)
		}
	}
}
