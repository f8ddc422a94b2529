package platform_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// manualNow is a clock a test moves by hand.
type manualNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualNow) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualNow) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestFailingDeletionBacksOff: a deletion the provider keeps failing (the
// local provider's trash made a file, so the account's directory cannot be
// moved out) is retried by the recovery passes once per pass at most, and
// not before its wait has passed: 10 s after the first failed retry, 20 s
// after the next; passes within the wait make no provider call (counted
// as the deletions the engine journals: one per call). The account shows
// as failing, with the cause, while it waits. Its twins: a pass after the
// wait retries; once the fault is gone it deletes the account. A deletion
// cut off in a dead process whose resumed attempt fails is tried once in
// that pass, not twice. An onboarding the provider keeps failing (a file
// where the local provider creates the account's directory) backs off
// the same way, and finishes once the file is gone.
func TestFailingDeletionBacksOff(t *testing.T) {
	ctx := context.Background()
	cache := silotest.CacheDir()
	dir := filepath.Join(t.TempDir(), "silo")
	clock := &manualNow{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	logBuf := &syncBuffer{}
	p, err := platform.Open(ctx, platform.Config{
		DataDir: dir, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logBuf, nil)),
		BuildCache: filepath.Join(cache, "builds"), CompileCache: filepath.Join(cache, "compiled"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: string(id)}); err != nil {
			t.Fatal(err)
		}
	}
	trash := filepath.Join(dir, "accounts", "trash")
	breakTrash := func() {
		if err := os.Remove(trash); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(trash, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	breakTrash()
	if err := p.DeleteAccount(ctx, "acme"); err == nil {
		t.Fatal("acme deleted with the provider's trash unusable; want the deletion to fail")
	}
	// globex's deletion was cut off in a process that died.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	journalDeletion(t, p, "globex", dead.Process.Pid)

	// initech's onboarding was cut off after its registry row, and a
	// file stands where the provider would create its directory.
	if err := p.Store.Update(ctx, func(tx store.Tx) error {
		now := clock.Now()
		return tx.CreateAccount(silo.Account{ID: "initech", Kind: silo.KindTenant, State: silo.StateProvisioning, Created: now, Updated: now, Version: 1})
	}); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, "accounts", "initech")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// calls counts the attempts to delete or onboard an account: the
	// engine journals each provider call of a deletion; an onboarding
	// that fails before any provider change (planning fails on the
	// blocked directory) is counted by the failure it logs.
	calls := func(id silo.AccountID) int {
		t.Helper()
		if id == "initech" {
			return strings.Count(logBuf.String(), "could not finish an interrupted onboarding")
		}
		var n int
		if err := p.Store.View(ctx, func(tx store.Tx) error {
			ins, err := tx.(store.Lister).Journal(0, 0)
			for _, in := range ins {
				if in.Account == id && (in.Action == "delete-account" || in.Action == "create-account") {
					n++
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pass := func() {
		t.Helper()
		if _, err := p.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}
	acme, globex, initech := calls("acme"), calls("globex"), calls("initech")

	pass() // each retried once, each fails
	if n := calls("initech") - initech; n != 1 {
		t.Errorf("the first pass called the provider %d times to onboard initech, want 1", n)
	}
	if n := calls("acme") - acme; n != 1 {
		t.Errorf("the first pass called the provider %d times to delete acme, want 1", n)
	}
	if n := calls("globex") - globex; n != 1 {
		t.Errorf("the first pass called the provider %d times to delete globex (cut off, resumed), want 1", n)
	}
	probs := p.Plane.AccountProblems(ctx, account(t, p, "acme"))
	if len(probs) == 0 || !strings.Contains(probs[0].Problem, "its deletion did not finish: the last attempt failed (") ||
		!strings.Contains(probs[0].Problem, clock.Now().Add(engine.FirstRetryWait).Format(time.RFC3339)) {
		t.Errorf("acme's problems %v; want its deletion failing, with the cause and the next attempt's time", probs)
	}

	for _, step := range []struct {
		advance time.Duration
		retried bool
	}{
		{0, false},
		{engine.FirstRetryWait - time.Second, false},
		{time.Second, true},                            // 10 s after the first failure
		{2*engine.FirstRetryWait - time.Second, false}, // the wait doubled
		{time.Second, true},
	} {
		clock.Add(step.advance)
		before := map[silo.AccountID]int{"acme": calls("acme"), "initech": calls("initech")}
		pass()
		for id, n := range before {
			if got := calls(id) - n; (got == 1) != step.retried || got > 1 {
				t.Errorf("a pass %s after the start: %d provider call(s) for %s; want retried %v (once)", clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), got, id, step.retried)
			}
		}
	}
	if probs := p.Plane.AccountProblems(ctx, account(t, p, "initech")); len(probs) == 0 || !strings.Contains(probs[0].Problem, "its onboarding did not finish (it has no release yet): the last attempt failed (") {
		t.Errorf("initech's problems %v; want its onboarding failing, with the cause", probs)
	}

	// The fault gone, the next pass after the wait finishes both.
	if err := os.Remove(trash); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(trash, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	clock.Add(engine.MaxRetryWait)
	pass()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if s := state(t, p, id); s != silo.StateDeleted {
			t.Errorf("%s is %s after the fault was gone and its wait passed; want deleted", id, s)
		}
	}
	if s := state(t, p, "initech"); s != silo.StateActive {
		t.Errorf("initech is %s after the fault was gone and its wait passed; want active", s)
	}
}

func account(t *testing.T, p *platform.Platform, id silo.AccountID) silo.Account {
	t.Helper()
	a, err := p.Plane.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
