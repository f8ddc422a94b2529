//go:build linux

package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
	"github.com/silo-run/silo/usage/storage"
)

// TestAddInFailedCommit: on a full file system (a small tmpfs, where the
// machine lets the test mount one), Adds that share a commit with a write
// that needs new space fail with it, after the tracker admitted them in
// the transaction; their bytes are taken off again, so the count still
// matches what the store holds. The twin: the Adds that committed are
// counted.
func TestAddInFailedCommit(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); run as root to test a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	ctx := context.Background()
	p, err := local.New(local.Config{Dir: filepath.Join(dir, "silo")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	raw, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	tr := storage.New(storage.Config{})
	d := tr.Data("acme", raw)
	if _, err := d.Add(ctx, "sessions", "seed", 1); err != nil { // the size is known before the disk fills
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break // full
		}
	}
	f.Close()

	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { // new pages each time: every commit holding this fails
		for !done.Load() {
			if err := raw.Put(ctx, "findings", "big", make([]byte, 64<<10)); err == nil {
				t.Error("a 64 KiB Put on a full disk succeeded")
				return
			}
		}
	})
	var ok, failed atomic.Int64
	var adders sync.WaitGroup
	for i := range 8 {
		adders.Go(func() {
			for j := range 50 {
				if _, err := d.Add(ctx, "sessions", fmt.Sprintf("k%d-%02d", i, j), 1); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	adders.Wait()
	done.Store(true)
	wg.Wait()
	if failed.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("%d Adds failed and %d succeeded: the test needs both", failed.Load(), ok.Load())
	}
	got := stored(t, tr, "acme", raw)["table/sessions"]
	want := stored(t, storage.New(storage.Config{}), "acme", raw)["table/sessions"]
	if got != want || want != int64(len("seed1"))+ok.Load()*int64(len("k0-001")) {
		t.Errorf("table/sessions counted %d bytes, read back %d, want %d (%d Adds failed, %d committed)", got, want, int64(len("seed1"))+ok.Load()*int64(len("k0-001")), failed.Load(), ok.Load())
	}
}
