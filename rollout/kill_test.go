package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// killTenants is the CI size of the kill test; kill_long_test.go raises it.
var killTenants = 1000

// TestKillChild is the runner process of TestKill: it recovers the journal,
// drives the active rollout and SIGKILLs itself at step SILO_KILL_AT.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("SILO_KILL_DIR")
	if dir == "" {
		t.Skip("child process of TestKill")
	}
	at, _ := strconv.ParseInt(os.Getenv("SILO_KILL_AT"), 10, 64)
	var steps atomic.Int64
	began := time.Now()
	report := os.Getenv("SILO_KILL_REPORT") != ""
	var reported atomic.Bool
	step := func() {
		if n := steps.Add(1); at > 0 && n == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	e := newEnv(t, dir, opts{owner: "kill-test", wall: true, hook: func(rollout.Event) { step() }})
	e.eng = engine.New(engine.Config{Store: e.store, Provider: e.prov, Hook: func(engine.Step) { step() }})
	run, err := rollout.New(rollout.Config{Store: e.store, Engine: e.eng, Provider: e.prov, Owner: "kill-test",
		Poll: 50 * time.Millisecond, Hook: func(ev rollout.Event) {
			if report && ev.Point == "finished" && !reported.Swap(true) {
				fmt.Fprintf(os.Stderr, "resumed-after: %d\n", time.Since(began).Nanoseconds())
			}
			step()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.eng.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := run.Active(ctx)
		if errors.Is(err, silo.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.State != rollout.StateRunning {
			t.Fatalf("rollout %s is %s: %s", r.ID, r.State, r.Reason)
		}
		if err := run.Run(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKill SIGKILLs the runner process at 10 random moments of a rollout of
// a one-function change to killTenants tenants and restarts it each time:
// the rollout converges with every tenant on the target or the previous
// release, no duplicated resource, no orphan, and no pending intent.
func TestKill(t *testing.T) {
	if os.Getenv("SILO_KILL_DIR") != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	dir := t.TempDir()
	seedEnv := func() (engine.Release, engine.Release, string) {
		e := newEnv(t, dir, opts{})
		defer e.prov.Close()
		defer e.store.Close()
		src := replaceOnce(replaceOnce(fmtStack("", "0"), "      bake: 5m\n", ""),
			"      gates: {max_error_rate: 0.05, max_p99_increase: 0.5, min_requests: 100}\n", "")
		v1 := release(t, e, src, "sha256:1111")
		v2 := release(t, e, src, "sha256:2222")
		seed(t, e, v1, killTenants, killTenants/20)
		r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return v1, v2, r.ID
	}
	v1, v2, id := seedEnv()
	// Each touched tenant takes 6 steps (3 engine, 3 runner); kill within
	// the first half of what is left so that every kill lands mid-rollout.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killed := 0
	for i := 0; i < 11; i++ {
		at := 0
		if i < 10 {
			at = 1 + rng.IntN(killTenants*6/20)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SILO_KILL_DIR="+dir, "SILO_KILL_AT="+strconv.Itoa(at))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
			killed++
		case err != nil:
			t.Fatalf("runner %d: %v\n%s", i, err, out)
		}
	}
	t.Logf("%d tenants, runner killed %d times", killTenants, killed)
	if killed < 5 {
		t.Errorf("only %d of 10 kills landed mid-rollout", killed)
	}
	e := newEnv(t, dir, opts{})
	r := get(t, e, id)
	if r.State != rollout.StateSucceeded {
		t.Fatalf("rollout %s: %s (%s)", id, r.State, r.Reason)
	}
	rels := releases(t, e)
	n := 0
	for _, rel := range rels {
		if rel == v2.ID {
			n++
		}
	}
	if n != killTenants+1 {
		t.Errorf("%d accounts on the target, want %d", n, killTenants+1)
	}
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1, v2.ID: v2})
	// Every claim of the rollout is finished.
	if err := e.store.View(ctx, func(tx store.Tx) error {
		for i := 0; i < killTenants; i++ {
			ring := "everyone"
			if i < killTenants/20 {
				ring = "canary"
			}
			st, err := tx.Step(store.StepKey{Rollout: id, Ring: ring, Account: tenant(i), Step: "apply"})
			if err != nil {
				return err
			}
			if st.State != store.IntentDone {
				t.Errorf("step %s is %s: %s", st.StepKey, st.State, st.Error)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
