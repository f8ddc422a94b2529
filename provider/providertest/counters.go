package providertest

import (
	"context"
	"math"
	"strconv"
	"sync"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// testCounters holds Add to its contract: a base-10 integer as text, a
// missing key counting as 0, one atomic step per call, and a refused Add
// (not an integer, overflow, bad key, missing table) changing nothing.
func testCounters(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")

	steps := []struct {
		delta int64
		want  int64
	}{{5, 5}, {-7, -2}, {0, -2}, {math.MaxInt64, math.MaxInt64 - 2}}
	for _, s := range steps {
		got, err := d.Add(ctx, "findings", "n", s.delta)
		must(t, "Add "+strconv.FormatInt(s.delta, 10), err)
		if got != s.want {
			t.Errorf("Add(%d) = %d, want %d", s.delta, got, s.want)
		}
		if v, err := d.Get(ctx, "findings", "n"); err != nil || string(v) != strconv.FormatInt(s.want, 10) {
			t.Errorf("Get after Add(%d) = %q, %v; want %d as text", s.delta, v, err, s.want)
		}
	}
	// Refused: the value stays as it was.
	_, err := d.Add(ctx, "findings", "n", 3)
	wantCode(t, "Add past the largest int64", err, silo.CodeInvalid)
	if v, _ := d.Get(ctx, "findings", "n"); string(v) != strconv.FormatInt(math.MaxInt64-2, 10) {
		t.Errorf("after a refused Add Get = %q, want it unchanged", v)
	}
	must(t, "Put low", d.Put(ctx, "findings", "low", []byte(strconv.FormatInt(math.MinInt64+1, 10))))
	_, err = d.Add(ctx, "findings", "low", -2)
	wantCode(t, "Add past the smallest int64", err, silo.CodeInvalid)
	for _, v := range []string{"high", "", " 1", "1.5", "0x10", "99999999999999999999"} {
		must(t, "Put "+v, d.Put(ctx, "findings", "text", []byte(v)))
		_, err := d.Add(ctx, "findings", "text", 1)
		wantCode(t, "Add to "+strconv.Quote(v), err, silo.CodeInvalid)
		if got, _ := d.Get(ctx, "findings", "text"); string(got) != v {
			t.Errorf("after a refused Add to %q Get = %q, want it unchanged", v, got)
		}
	}
	// A value written by Put counts from there (the "must" twin of the
	// refusals above).
	must(t, "Put 41", d.Put(ctx, "findings", "put", []byte("41")))
	if got, err := d.Add(ctx, "findings", "put", 1); err != nil || got != 42 {
		t.Errorf("Add to a Put 41 = %d, %v; want 42", got, err)
	}
	_, err = d.Add(ctx, "findings", "", 1)
	wantCode(t, "Add with an empty key", err, silo.CodeInvalid)
	_, err = d.Get(ctx, "findings", "")
	wantCode(t, "Get with an empty key", err, silo.CodeInvalid)

	// Concurrent Adds lose nothing and each sees its own sum.
	const writers, each = 8, 10
	var wg sync.WaitGroup
	seen := make(chan int64, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n, err := d.Add(ctx, "sessions", "hits", 1)
				if err != nil {
					t.Errorf("concurrent Add: %v", err)
					return
				}
				seen <- n
			}
		}()
	}
	wg.Wait()
	close(seen)
	got := map[int64]bool{}
	for n := range seen {
		if got[n] {
			t.Errorf("two concurrent Adds returned the same sum %d", n)
		}
		got[n] = true
	}
	if v, _ := d.Get(ctx, "sessions", "hits"); string(v) != strconv.Itoa(writers*each) || len(got) != writers*each {
		t.Errorf("after %d concurrent Adds of 1: value %q, %d distinct sums; want %d", writers*each, v, len(got), writers*each)
	}
}
