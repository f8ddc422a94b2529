package platform_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// TestServeRetriesFailedDeletion: a deletion that failed in the provider
// (here its files: the local provider's trash made a file, so the
// account's directory cannot be moved out, even by root) leaves the
// account deleting; once the fault is gone, a serving platform's reaper
// finishes it without anyone running the delete again. Its twins: an
// account deleted without a fault is not deleted again, and a deletion
// still under way in a live process is left to that process.
func TestServeRetriesFailedDeletion(t *testing.T) {
	ctx := context.Background()
	cache := silotest.CacheDir()
	dir := filepath.Join(t.TempDir(), "silo")
	p, err := platform.Open(ctx, platform.Config{
		DataDir: dir, Listen: "127.0.0.1:0", ReapEvery: 5 * time.Millisecond,
		BuildCache: filepath.Join(cache, "builds"), CompileCache: filepath.Join(cache, "compiled"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []silo.AccountID{"acme", "globex", "hooli"} {
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: string(id)}); err != nil {
			t.Fatal(err)
		}
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- p.Serve(sctx, nil) }()
	t.Cleanup(func() { stop(); <-served })

	if err := p.DeleteAccount(ctx, "globex"); err != nil {
		t.Fatal(err)
	}

	// hooli's deletion is under way in another command, alive.
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	journalDeletion(t, p, "hooli", other.Process.Pid)

	trash := filepath.Join(dir, "accounts", "trash")
	if err := os.Remove(trash); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trash, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = p.DeleteAccount(ctx, "acme")
	if err == nil {
		t.Fatal("acme deleted with the provider's trash unusable; want the deletion to fail")
	}
	if s := state(t, p, "acme"); s != silo.StateDeleting {
		t.Fatalf("acme is %s after its deletion failed (%v), want deleting", s, err)
	}
	if err := os.Remove(trash); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(trash, 0o700); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); state(t, p, "acme") != silo.StateDeleted; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the serving platform left acme %s after its deletion failed and the fault was fixed; want it deleted by the reaper", state(t, p, "acme"))
		}
	}
	if err := p.VerifyGone(ctx, "acme"); err != nil {
		t.Error(err)
	}
	// The pass that finished acme saw globex deleted and hooli deleting
	// under a live process: neither was deleted again.
	if n := deletions(t, p, "globex"); n != 1 {
		t.Errorf("globex, deleted without a fault, was deleted %d times; want once", n)
	}
	if n := deletions(t, p, "hooli"); n != 1 || state(t, p, "hooli") != silo.StateDeleting {
		t.Errorf("hooli, being deleted by a live process, has %d deletion(s) journaled and is %s; want 1, left deleting to that process", n, state(t, p, "hooli"))
	}
	if n := deletions(t, p, "acme"); n < 2 {
		t.Errorf("acme has %d deletion(s) journaled; want the failed one and the retry", n)
	}
}

// deletions counts the deletions of account id in the journal.
func deletions(t *testing.T, p *platform.Platform, id silo.AccountID) int {
	t.Helper()
	var n int
	if err := p.Store.View(context.Background(), func(tx store.Tx) error {
		ins, err := tx.(store.Lister).Journal(0, 0)
		for _, in := range ins {
			if in.Account == id && in.Action == "delete-account" {
				n++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
