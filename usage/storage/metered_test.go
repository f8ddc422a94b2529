package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	silo "github.com/silo-run/silo"
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

// TestPutDeleteConcurrent: Puts of values of different sizes and Deletes
// of one key from many goroutines at once are counted exactly, each from
// the value it replaced. Counted from a read before the write, two writes
// that read the same value each count the change from it.
func TestPutDeleteConcurrent(t *testing.T) {
	ctx := context.Background()
	_, raw := open(t, "acme")
	tr := storage.New(storage.Config{})
	d := tr.Data("acme", raw)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 50 {
				var err error
				if (i+j)%5 == 0 {
					err = d.Delete(ctx, "sessions", "k")
				} else {
					err = d.Put(ctx, "sessions", "k", make([]byte, 1+i*7+j))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := int64(0)
	if v, err := raw.Get(ctx, "sessions", "k"); err == nil {
		want = int64(len("k") + len(v))
	}
	if got := stored(t, tr, "acme", raw)["table/sessions"]; got != want {
		t.Errorf("table/sessions = %d bytes after concurrent Puts and Deletes of one key, want %d", got, want)
	}
}

// TestLimitUnread: while the account's limit cannot be read, a write that
// would grow a table fails with that error and writes nothing; the twins,
// writes that shrink it (a smaller value, a Delete, an Add to fewer
// digits), pass.
func TestLimitUnread(t *testing.T) {
	ctx := context.Background()
	_, raw := open(t, "acme")
	if err := raw.Put(ctx, "sessions", "k", make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Add(ctx, "sessions", "n", 100); err != nil {
		t.Fatal(err)
	}
	down := errors.New("the store is unreachable")
	tr := storage.New(storage.Config{Limit: func(context.Context, silo.AccountID) (storage.Limit, error) {
		return storage.Limit{}, down
	}})
	d := tr.Data("acme", raw)
	if err := d.Put(ctx, "sessions", "k", make([]byte, 101)); !errors.Is(err, down) {
		t.Errorf("a growing Put without the limit: %v, want %v", err, down)
	}
	if v, err := raw.Get(ctx, "sessions", "k"); err != nil || len(v) != 100 {
		t.Errorf("the refused Put was written: %d bytes, %v", len(v), err)
	}
	if _, err := d.Add(ctx, "sessions", "n", 900); !errors.Is(err, down) {
		t.Errorf("a growing Add without the limit: %v, want %v", err, down)
	}
	for _, w := range []struct {
		name  string
		write func() error
	}{
		{"a shrinking Put", func() error { return d.Put(ctx, "sessions", "k", make([]byte, 10)) }},
		{"a shrinking Add", func() error { _, err := d.Add(ctx, "sessions", "n", -91); return err }},
		{"a Delete", func() error { return d.Delete(ctx, "sessions", "k") }},
		{"a Delete of none", func() error { return d.Delete(ctx, "sessions", "none") }},
	} {
		if err := w.write(); err != nil {
			t.Errorf("%s without the limit: %v, want it to pass", w.name, err)
		}
	}
}
