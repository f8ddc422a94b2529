package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
	"github.com/silo-run/silo/usage/storage"
)

// open returns the data plane of a new account of a real local provider,
// with the example stack applied (tables findings and sessions, bucket
// uploads).
func open(t testing.TB, id silo.AccountID) (provider.Provider, provider.Data) {
	t.Helper()
	p, err := local.New(local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, id, providertest.Stack(t))
	d, err := p.Data(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

func stored(t *testing.T, tr *storage.Tracker, id silo.AccountID, d provider.Data) map[string]int64 {
	t.Helper()
	us, err := tr.Stored(context.Background(), id, d, []string{"findings", "sessions", "missing"}, []string{"uploads"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, u := range us {
		out[u.Kind+"/"+u.Name] = u.Bytes
	}
	return out
}

// TestCountsBytes: sizes follow puts, overwrites and deletes exactly, and
// data written before the tracker met the account is counted.
// Both of Add's paths are covered: the local provider's Add counted in
// its transaction (AddMetered), and a Data with only the interface's
// methods, whose old value the tracker reads first.
func TestCountsBytes(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "metered", true: "read-first"}[plain], func(t *testing.T) {
			testCountsBytes(t, plain)
		})
	}
}

// plainData hides every method of a Data beyond provider.Data's.
type plainData struct{ provider.Data }

func testCountsBytes(t *testing.T, plain bool) {
	ctx := context.Background()
	_, raw := open(t, "acme")
	if err := raw.Put(ctx, "findings", "before", []byte("0123456789")); err != nil { // 6 + 10
		t.Fatal(err)
	}
	tr := storage.New(storage.Config{})
	d := tr.Data("acme", raw)
	if plain {
		d = tr.Data("acme", plainData{raw})
	}
	steps := []struct {
		name string
		do   func() error
		want map[string]int64
	}{
		{"first sight", func() error { return nil }, map[string]int64{"table/findings": 16, "table/sessions": 0, "bucket/uploads": 0}},
		{"put", func() error { return d.Put(ctx, "findings", "k1", []byte("abcd")) }, map[string]int64{"table/findings": 22, "table/sessions": 0, "bucket/uploads": 0}},
		{"overwrite larger", func() error { return d.Put(ctx, "findings", "k1", []byte("abcdefgh")) }, map[string]int64{"table/findings": 26, "table/sessions": 0, "bucket/uploads": 0}},
		{"overwrite smaller", func() error { return d.Put(ctx, "findings", "k1", []byte("a")) }, map[string]int64{"table/findings": 19, "table/sessions": 0, "bucket/uploads": 0}},
		{"delete", func() error { return d.Delete(ctx, "findings", "before") }, map[string]int64{"table/findings": 3, "table/sessions": 0, "bucket/uploads": 0}},
		{"add creates", func() error { _, err := d.Add(ctx, "sessions", "n", 9); return err }, map[string]int64{"table/findings": 3, "table/sessions": 2, "bucket/uploads": 0}},
		{"add grows", func() error { _, err := d.Add(ctx, "sessions", "n", 991); return err }, map[string]int64{"table/findings": 3, "table/sessions": 5, "bucket/uploads": 0}},
		{"add shrinks", func() error { _, err := d.Add(ctx, "sessions", "n", -999); return err }, map[string]int64{"table/findings": 3, "table/sessions": 2, "bucket/uploads": 0}},
		{"add refused", func() error {
			if _, err := d.Add(ctx, "findings", "k1", 1); silo.ErrorCode(err) != silo.CodeInvalid {
				return fmt.Errorf("Add to a value that is not an integer: %v, want CodeInvalid", err)
			}
			return nil
		}, map[string]int64{"table/findings": 3, "table/sessions": 2, "bucket/uploads": 0}},
		{"blob", func() error { return d.PutBlob(ctx, "uploads", "a/b.txt", make([]byte, 1000)) }, map[string]int64{"table/findings": 3, "table/sessions": 2, "bucket/uploads": 1007}},
		{"blob delete", func() error { return d.DeleteBlob(ctx, "uploads", "a/b.txt") }, map[string]int64{"table/findings": 3, "table/sessions": 2, "bucket/uploads": 0}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := stored(t, tr, "acme", raw)
		for k, w := range s.want {
			if got[k] != w {
				t.Errorf("after %s: %s = %d bytes, want %d", s.name, k, got[k], w)
			}
		}
		if len(got) != len(s.want) {
			t.Errorf("after %s: %v, want %v (a missing table is left out)", s.name, got, s.want)
		}
	}
	// A fresh tracker reads the same sizes from the provider.
	if got := stored(t, storage.New(storage.Config{}), "acme", raw); got["table/findings"] != 3 {
		t.Errorf("recounted findings: %d bytes, want 3", got["table/findings"])
	}
}

// TestAddConcurrent: Adds of one key from many goroutines at once, across
// the lengths of the sum (9 to 10, 99 to 100, 999 to 1000), are counted
// exactly: each is counted from the value it replaced, in its transaction.
// Counted from a read before the write, concurrent Adds that read the same
// value each count the digit it adds.
func TestAddConcurrent(t *testing.T) {
	ctx := context.Background()
	_, raw := open(t, "acme")
	tr := storage.New(storage.Config{Limit: func(context.Context, silo.AccountID) (storage.Limit, error) {
		return storage.Limit{Bytes: 1 << 20}, nil
	}})
	d := tr.Data("acme", raw)
	const writers, adds = 16, 100
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range adds {
				if _, err := d.Add(ctx, "sessions", "count", 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, err := raw.Get(ctx, "sessions", "count"); err != nil || string(v) != "1600" {
		t.Fatalf("count = %q, %v; want 1600", v, err)
	}
	if got, want := stored(t, tr, "acme", raw)["table/sessions"], int64(len("count")+len("1600")); got != want {
		t.Errorf("table/sessions = %d bytes after %d concurrent Adds, want %d", got, writers*adds, want)
	}
}

// TestLimit: a write that would take a table or bucket over the limit is
// refused with the limit named and nothing written; the twin under the
// limit passes, and so do writes that shrink.
func TestLimit(t *testing.T) {
	ctx := context.Background()
	_, raw := open(t, "acme")
	lim := storage.Limit{Bytes: 100, Plan: "free"}
	tr := storage.New(storage.Config{Limit: func(context.Context, silo.AccountID) (storage.Limit, error) { return lim, nil }})
	d := tr.Data("acme", raw)
	// The must twin: exactly at the limit passes (2-byte key + 98 bytes).
	if err := d.Put(ctx, "findings", "k1", make([]byte, 98)); err != nil {
		t.Fatalf("a write up to the limit: %v", err)
	}
	// The must-not: one byte more is refused, with which limit and how to
	// raise it, and the value is not written.
	err := d.Put(ctx, "findings", "k2", []byte("x"))
	if silo.ErrorCode(err) != silo.CodeTooLarge || len(silo.UserMessage(err)) > 240 {
		t.Fatalf("a write over the limit: %v, want CodeTooLarge", err)
	}
	for _, want := range []string{"storage limit", "may hold 100 B per table", `plan "free"`, `table "findings" holds 100 B`, "silo limits set --storage"} {
		if !strings.Contains(silo.UserMessage(err), want) {
			t.Errorf("refusal %q lacks %q", silo.UserMessage(err), want)
		}
	}
	if _, err := raw.Get(ctx, "findings", "k2"); !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("the refused value was written: %v", err)
	}
	// An Add counts as the Put of its sum: refused when that goes over,
	// and nothing is written.
	if _, err := d.Add(ctx, "findings", "n", 1); silo.ErrorCode(err) != silo.CodeTooLarge {
		t.Errorf("an Add over the limit: %v, want CodeTooLarge", err)
	}
	if _, err := raw.Get(ctx, "findings", "n"); !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("the refused Add was written: %v", err)
	}
	// The limit is per table: another table and the bucket have their own.
	if err := d.Put(ctx, "sessions", "s", make([]byte, 99)); err != nil {
		t.Errorf("another table under its own limit: %v", err)
	}
	if err := d.PutBlob(ctx, "uploads", "big", make([]byte, 98)); silo.ErrorCode(err) != silo.CodeTooLarge {
		t.Errorf("a blob over the bucket's limit: %v, want CodeTooLarge", err)
	}
	// Shrinking passes, and then growth fits again.
	if err := d.Put(ctx, "findings", "k1", []byte("short")); err != nil {
		t.Fatalf("shrinking a value: %v", err)
	}
	if err := d.Put(ctx, "findings", "k2", []byte("x")); err != nil {
		t.Errorf("a write under the limit after shrinking: %v", err)
	}
	if n, err := d.Add(ctx, "findings", "n", 1); err != nil || n != 1 {
		t.Errorf("an Add under the limit after shrinking = %d, %v; want 1", n, err)
	}
	// A raised limit applies after the refresh; without a limit nothing is
	// refused.
	lim = storage.Limit{}
	tr2 := storage.New(storage.Config{Limit: func(context.Context, silo.AccountID) (storage.Limit, error) { return lim, nil }})
	if err := tr2.Data("acme", raw).Put(ctx, "findings", "k3", make([]byte, 10_000)); err != nil {
		t.Errorf("without a limit: %v", err)
	}
}

// TestCurrent: the hourly sample reads a table or bucket the tracker has
// not met, takes the counted size of those it has without reading again
// (even past Recount), and opens the account's data only when it must.
func TestCurrent(t *testing.T) {
	ctx := context.Background()
	_, raw := open(t, "acme")
	if err := raw.Put(ctx, "findings", "before", []byte("0123456789")); err != nil { // 6 + 10
		t.Fatal(err)
	}
	clk := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	tr := storage.New(storage.Config{Recount: time.Minute, Now: func() time.Time { return clk }})
	opened := 0
	data := func(context.Context) (provider.Data, error) { opened++; return raw, nil }
	current := func() map[string]int64 {
		t.Helper()
		us, err := tr.Current(ctx, "acme", data, []string{"findings", "missing"}, []string{"uploads"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, u := range us {
			out[u.Kind+"/"+u.Name] = u.Bytes
		}
		return out
	}
	if got := current(); got["table/findings"] != 16 || got["bucket/uploads"] != 0 || len(got) != 2 || opened != 1 {
		t.Errorf("first sample: got %v after %d opens, want findings 16, uploads 0, missing left out, one open", got, opened)
	}
	if err := tr.Data("acme", raw).Put(ctx, "findings", "k", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	// Written behind the tracker's back: a read would see it, the count does not.
	if err := raw.Put(ctx, "findings", "hidden", []byte("xxxxxxxxxx")); err != nil {
		t.Fatal(err)
	}
	clk = clk.Add(time.Hour) // past Recount
	opened = 0
	if got := current(); got["table/findings"] != 20 || opened != 1 {
		t.Errorf("second sample: got %v after %d opens, want findings 20 from the count (the missing table is read again, so one open)", got, opened)
	}
}
