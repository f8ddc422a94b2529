package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// The child of TestServersRecoverInterruptedWork reads its store and data
// dir from these.
const (
	recoverStoreEnv = "SILO_RECOVER_CHILD_STORE"
	recoverDirEnv   = "SILO_RECOVER_CHILD_DIR"
)

// TestRecoverChild is the other process of TestServersRecoverInterruptedWork:
// a `silo tenant delete acme` on the shared store that stops inside the
// deletion (journaled, before the provider call), says so on stdout and
// waits there until it is killed.
func TestRecoverChild(t *testing.T) {
	dsn, dir := os.Getenv(recoverStoreEnv), os.Getenv(recoverDirEnv)
	if dsn == "" {
		t.Skip("run by TestServersRecoverInterruptedWork")
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	p := control.New(control.Config{
		Store: isolation.WithWitness(st, filepath.Join(dir, isolation.WitnessFile)), Provider: prov, Feed: st,
		Hook: func(s engine.Step) {
			if s.Account == "acme" && s.Point == "journaled" {
				fmt.Println("journaled")
				select {} // under way until killed
			}
		},
	})
	_, err = p.DeleteAccount(ctx, "acme")
	t.Fatalf("DeleteAccount returned (%v); it should have stopped inside the deletion", err)
}

// TestServersRecoverInterruptedWork: two servers on one PostgreSQL store
// and data dir, and a third process deleting tenant acme on the same store.
// While that process is alive and inside the deletion, both servers'
// recovery passes, run at once, leave it alone (acme stays deleting, its
// intent pending). Once it is killed, the next passes of the running
// servers, run at once, finish the deletion without a restart: once (one
// resumed deletion, one more account.delete event), acme deleted with
// nothing of it left, nothing pending, and globex, the twin, still served.
func TestServersRecoverInterruptedWork(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	clock := rollout.NewManualClock(silotest.Start)
	a := openServer(t, dsn, dir, clock)
	b := openServer(t, dsn, dir, clock)
	if _, err := a.p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	keys := map[silo.AccountID]string{}
	for _, id := range []string{"acme", "globex"} {
		c, err := a.p.CreateAccount(ctx, control.CreateRequest{ID: id, WithKey: true})
		if err != nil {
			t.Fatal(err)
		}
		keys[c.Account.ID] = c.Key
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestRecoverChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), recoverStoreEnv+"="+dsn, recoverDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(kill)
	inside := false
	for sc := bufio.NewScanner(stdout); !inside && sc.Scan(); {
		inside = sc.Text() == "journaled"
	}
	if !inside {
		kill()
		t.Fatalf("the child ended before it was inside the deletion:\n%s", stderr.String())
	}

	both := func() []engine.RecoveryReport {
		t.Helper()
		reps := make([]engine.RecoveryReport, 2)
		var wg sync.WaitGroup
		for i, s := range []*node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if reps[i], err = s.p.Recover(ctx); err != nil {
					t.Errorf("recovery pass: %v", err)
				}
			}()
		}
		wg.Wait()
		return reps
	}
	for _, rep := range both() {
		if rep.Skipped != 1 || rep.Confirmed+rep.Abandoned+rep.Resumed+rep.Settled != 0 {
			t.Errorf("recovery pass while the deletion is under way: %+v; want it skipped", rep)
		}
	}
	if st := state(t, a.p, "acme"); st != silo.StateDeleting {
		t.Errorf("acme is %s while another process deletes it, want deleting", st)
	}
	if n := pendingIntents(t, a.p); n != 1 {
		t.Errorf("%d intents pending while the deletion is under way, want 1", n)
	}

	kill()
	resumed := 0
	for _, rep := range both() {
		resumed += rep.Resumed
	}
	if resumed != 1 {
		t.Errorf("the two passes resumed %d deletions, want 1", resumed)
	}
	if st := state(t, a.p, "acme"); st != silo.StateDeleted {
		t.Errorf("acme is %s after the passes, want deleted", st)
	}
	if err := a.p.VerifyGone(ctx, "acme"); err != nil {
		t.Error(err)
	}
	if n := pendingIntents(t, a.p); n != 0 {
		t.Errorf("%d intents pending after the passes, want 0", n)
	}
	if n := auditCount(t, a.p, "acme", "account.delete"); n != 2 {
		t.Errorf("%d account.delete events for acme, want 2 (the interrupted deletion and the one resumed)", n)
	}
	for _, s := range []*node{a, b} {
		if code, body := s.get(t, "acme", keys["acme"], "/runs"); code == 200 {
			t.Errorf("deleted acme answered 200 %q", body)
		}
		if code, body := s.get(t, "globex", keys["globex"], "/runs"); code != 200 {
			t.Errorf("globex answered %d %q, want 200", code, body)
		}
	}
}

// TestServeRecoversInterruptedWork: a serving platform finishes, by its
// periodic pass (Config.ReapEvery), a deletion whose process died after
// journaling it while the platform was serving: no restart needed.
func TestServeRecoversInterruptedWork(t *testing.T) {
	ctx := context.Background()
	cache := silotest.CacheDir()
	p, err := platform.Open(ctx, platform.Config{
		DataDir: filepath.Join(t.TempDir(), "silo"), Listen: "127.0.0.1:0", ReapEvery: 5 * time.Millisecond,
		BuildCache: filepath.Join(cache, "builds"), CompileCache: filepath.Join(cache, "compiled"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- p.Serve(sctx, nil) }()
	t.Cleanup(func() { stop(); <-served })

	// What `silo tenant delete acme` journals, in a process that then
	// died, while the platform serves.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	journalDeletion(t, p, "acme", dead.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); state(t, p, "acme") != silo.StateDeleted; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the serving platform left acme %s with its deletion interrupted; want it deleted by the periodic pass", state(t, p, "acme"))
		}
	}
	if err := p.VerifyGone(ctx, "acme"); err != nil {
		t.Error(err)
	}
}

// state returns an account's state.
func state(t *testing.T, p *platform.Platform, id silo.AccountID) silo.State {
	t.Helper()
	a, err := p.Plane.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.State
}

// pendingIntents counts the journal's pending intents.
func pendingIntents(t *testing.T, p *platform.Platform) int {
	t.Helper()
	var n int
	if err := p.Store.View(context.Background(), func(tx store.Tx) error {
		ins, err := tx.PendingIntents()
		n = len(ins)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// auditCount counts the audit events of action on account id.
func auditCount(t *testing.T, p *platform.Platform, id silo.AccountID, action string) int {
	t.Helper()
	es, err := p.Plane.AuditLog(context.Background(), 0, 1000, id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Event.Action == action {
			n++
		}
	}
	return n
}

// journalDeletion records account id as deleting, with its deletion
// journaled as pending by process pid on this host: what silo tenant
// delete writes before it asks the provider, in a process that is still
// running or has died.
func journalDeletion(t *testing.T, p *platform.Platform, id silo.AccountID, pid int) {
	t.Helper()
	host, _ := os.Hostname()
	now := time.Now()
	err := p.Store.Update(context.Background(), func(tx store.Tx) error {
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		a.State = silo.StateDeleting
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		_, err = tx.AddIntent(store.Intent{Key: fmt.Sprintf("delete-account/%s/%s~%d~abc", id, host, pid), Account: id, Action: "delete-account", State: store.IntentPending, Created: now, Updated: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
