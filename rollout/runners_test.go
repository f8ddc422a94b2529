package rollout_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/sqlite"
)

// counter counts provider calls per account and change, per runner.
type counter struct {
	mu    sync.Mutex
	calls map[string]int // "account type/name hash" → calls
	by    map[string]int // runner → calls
}

func (c *counter) hook(owner string) func(engine.Step) {
	return func(s engine.Step) {
		if s.Point != "provider" || s.Change == nil {
			return
		}
		h := ""
		if s.Change.Desired != nil {
			h = s.Change.Desired.Hash
		}
		c.mu.Lock()
		c.calls[string(s.Account)+" "+s.Change.Key()+" "+h]++
		c.by[owner]++
		c.mu.Unlock()
	}
}

// twoRunners runs one rollout with two runners (two "servers") on stores
// st1 and st2, which share state: both run at once, the one that drives it
// is paused midway, and the rollout is resumed with both running again. No
// change is applied to any account twice, and both runners did work.
func twoRunners(t *testing.T, dir string, st1, st2 store.Store) {
	ctx := context.Background()
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	cnt := &counter{calls: map[string]int{}, by: map[string]int{}}
	seedEnv := newEnv(t, dir, opts{store: st1})
	src := replaceOnce(replaceOnce(fmtStack("", "0"), "      bake: 5m\n", ""),
		"      gates: {max_error_rate: 0.05, max_p99_increase: 0.5, min_requests: 100}\n", "")
	v1 := release(t, seedEnv, src, "sha256:1111")
	v2 := release(t, seedEnv, src, "sha256:2222")
	seed(t, seedEnv, v1, 60, 6)
	seedEnv.prov.Close()

	var runners []*rollout.Runner
	var id string
	var finished sync.Map
	// Each phase, a runner pauses the rollout when it has finished
	// pauseAfter accounts in that phase (0: never). Counting per phase keeps
	// the pauses where the test puts them however the work was shared out
	// in the phases before.
	var mu sync.Mutex
	pauseAfter, done := 20, map[int]int{}
	phase := func(after int) {
		mu.Lock()
		pauseAfter, done = after, map[int]int{}
		mu.Unlock()
	}
	for i, st := range []store.Store{st1, st2} {
		owner := []string{"server-a", "server-b"}[i]
		eng := engine.New(engine.Config{Store: st, Provider: prov, Hook: cnt.hook(owner)})
		rn, err := rollout.New(rollout.Config{Store: st, Engine: eng, Provider: prov, Owner: owner, Poll: 10 * time.Millisecond, LeaseTTL: time.Second,
			Hook: func(ev rollout.Event) {
				if ev.Point != "finished" {
					return
				}
				mu.Lock()
				done[i]++
				pause := done[i] == pauseAfter
				mu.Unlock()
				if pause {
					finished.Store(owner, true)
					if _, err := runners[i].Pause(ctx, id); err != nil {
						t.Error(err)
					}
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		runners = append(runners, rn)
	}
	r, err := runners[0].Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id = r.ID
	both := func() {
		var wg sync.WaitGroup
		for _, rn := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := rn.Run(ctx, id); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	both()
	if r, _ = runners[0].Get(ctx, id); r.State != rollout.StatePaused {
		t.Fatalf("after the first run: %s (%s), want paused midway", r.State, r.Reason)
	}
	// A pause is asynchronous: the runner that asked for it may have
	// applied every change before it took hold, leaving nothing to hand over.
	cnt.mu.Lock()
	left := 60 - len(cnt.calls)
	cnt.mu.Unlock()
	// Hand over: the runner that did not drive the first part runs alone
	// until its own pause, on the claims the first one left.
	other := 1
	if _, ok := finished.Load("server-b"); ok {
		other = 0
	}
	phase(10)
	if _, err := runners[other].Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Its Run returns without work while the first runner's lease is
	// live (LeaseTTL); it runs again, resuming if need be, until it has
	// applied some or the rollout finished.
	me := []string{"server-a", "server-b"}[other]
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if err := runners[other].Run(ctx, id); err != nil {
			t.Fatal(err)
		}
		cnt.mu.Lock()
		n := cnt.by[me]
		cnt.mu.Unlock()
		r, _ = runners[other].Get(ctx, id)
		if n > 0 || r.State == rollout.StateSucceeded && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s applied nothing in a minute after the hand-over (rollout %s)", me, r.State)
		}
		if r.State == rollout.StatePaused {
			if _, err := runners[other].Resume(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	// When the first part left fewer than ten accounts, the other runner
	// finished the rollout alone; else both run it to its end.
	if r, _ = runners[0].Get(ctx, id); r.State != rollout.StateSucceeded {
		phase(0)
		if _, err := runners[other].Resume(ctx, id); err != nil {
			t.Fatal(err)
		}
		both()
	}
	if r, _ = runners[0].Get(ctx, id); r.State != rollout.StateSucceeded {
		t.Fatalf("rollout: %s (%s), want succeeded", r.State, r.Reason)
	}
	for k, n := range cnt.calls {
		if n != 1 {
			t.Errorf("%s applied %d times, want once", k, n)
		}
	}
	if len(cnt.calls) != 60 { // 60 tenants, one function change each
		t.Errorf("%d changes applied, want 60", len(cnt.calls))
	}
	if left > 0 && (cnt.by["server-a"] == 0 || cnt.by["server-b"] == 0) {
		t.Errorf("work per runner = %v; want both to have applied some", cnt.by)
	}
	check := &env{store: st1, prov: prov, eng: engine.New(engine.Config{Store: st1, Provider: prov})}
	checkFleet(t, check, map[string]engine.Release{v2.ID: v2})
	_ = silo.ProductionID
}

func TestTwoRunnersSQLite(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	twoRunners(t, dir, st, st)
}

// TestTwoRunnersPostgres runs two runners, each with its own connection
// pool, on one PostgreSQL schema.
func TestTwoRunnersPostgres(t *testing.T) {
	dsn := pgtest.Fresh(t)
	ctx := context.Background()
	a, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	bst, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer bst.Close()
	twoRunners(t, t.TempDir(), a, bst)
}
