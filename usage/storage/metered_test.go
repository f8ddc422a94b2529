package storage_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/silo-run/silo/usage/storage"
)

// TestAddInRetriedGroup: Adds that share commits with writes that fail
// (Puts into a table the account does not have, which fail inside the
// shared transaction, so the group is run again without them) are each
// counted once: a group run again admits its Adds again, and the second
// admission replaces the first.
func TestAddInRetriedGroup(t *testing.T) {
	ctx := context.Background()
	p, raw := open(t, "acme")
	tr := storage.New(storage.Config{})
	d := tr.Data("acme", raw)
	if _, err := d.Add(ctx, "sessions", "seed", 1); err != nil { // the size is known before the race
		t.Fatal(err)
	}
	c0, w0 := p.(interface{ Commits() (int64, int64) }).Commits()
	const writers, adds = 8, 50
	var wg sync.WaitGroup
	var done atomic.Bool
	var failed atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				if err := raw.Put(ctx, "nosuchtable", "k", []byte("v")); err == nil {
					t.Error("a Put into a missing table succeeded")
					return
				}
				failed.Add(1)
			}
		})
	}
	var adders sync.WaitGroup
	for i := range writers {
		adders.Go(func() {
			for j := range adds {
				if _, err := d.Add(ctx, "sessions", fmt.Sprintf("k%d-%02d", i, j), 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	adders.Wait()
	done.Store(true)
	wg.Wait()
	c1, w1 := p.(interface{ Commits() (int64, int64) }).Commits()
	if c1-c0 >= w1-w0 {
		t.Fatalf("%d writes in %d commits: the test needs shared commits", w1-w0, c1-c0)
	}
	got := stored(t, tr, "acme", raw)["table/sessions"]
	want := stored(t, storage.New(storage.Config{}), "acme", raw)["table/sessions"]
	if got != want || want != int64(len("seed1")+writers*adds*len("k0-00"+"1")) {
		t.Errorf("table/sessions counted %d bytes, read back %d, want %d (%d failing writes beside the Adds)", got, want, len("seed1")+writers*adds*len("k0-00"+"1"), failed.Load())
	}
}
