package runtime

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
)

// The idle sweep drops an account's state once it has no instance and
// nothing in flight, keeps its metrics, and tells OnIdle; an account with a
// warm instance or a running invocation keeps its state.
func TestIdleAccountStateDropped(t *testing.T) {
	var mu sync.Mutex
	var idle []silo.AccountID
	e := newEnv(t, Config{IdleTimeout: time.Hour, OnIdle: func(id silo.AccountID, _ time.Time) {
		mu.Lock()
		idle = append(idle, id)
		mu.Unlock()
	}})
	e.must(t, "acme", Request{Path: "/echo", Body: []byte("12345")}, 200)
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	e.must(t, "globex", Request{Path: "/echo"}, 200)
	before := e.rt.Metrics("acme")
	if before.Invocations != 2 || before.BytesIn != 5 {
		t.Fatalf("acme metrics before idle: %+v", before)
	}

	// Must not: warm instances keep their accounts.
	e.rt.sweep(time.Now())
	if s := e.rt.Stats(); s.Accounts != 2 || s.Instances != 2 {
		t.Fatalf("before the idle timeout: %d accounts, %d instances; want 2 and 2", s.Accounts, s.Instances)
	}
	// Must not: an account held by an invocation is kept even with no instance.
	held := e.rt.account("globex")
	e.rt.sweep(time.Now().Add(2 * time.Hour))
	if s := e.rt.Stats(); s.Accounts != 1 || s.Instances != 0 {
		t.Fatalf("after the idle timeout with globex held: %d accounts, %d instances; want 1 and 0", s.Accounts, s.Instances)
	}
	mu.Lock()
	if !slices.Equal(idle, []silo.AccountID{"acme"}) {
		t.Errorf("OnIdle calls = %v, want [acme]", idle)
	}
	mu.Unlock()
	e.rt.unref(held)
	// Must: once free, it goes too.
	e.rt.sweep(time.Now().Add(2 * time.Hour))
	if s := e.rt.Stats(); s.Accounts != 0 {
		t.Fatalf("after release: %d accounts, want 0", s.Accounts)
	}

	// The metrics survive the drop...
	if diff := cmp.Diff(before, e.rt.Metrics("acme")); diff != "" {
		t.Errorf("acme metrics after the drop (-before +after):\n%s", diff)
	}
	// ...and keep counting when the account comes back.
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	after := e.rt.Metrics("acme")
	var n uint64
	for _, c := range after.Durations {
		n += c
	}
	if after.Invocations != 3 || after.BytesIn != 5 || n != 3 {
		t.Errorf("acme metrics after it came back: %d invocations, %d bytes in, %d in the histogram; want 3, 5, 3", after.Invocations, after.BytesIn, n)
	}
	if got := e.rt.Metrics("acme").Sub(before); got.Invocations != 1 {
		t.Errorf("window across the drop: %d invocations, want 1", got.Invocations)
	}
}

// Evict closes one account's idle instances and no one else's.
func TestEvictAccount(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	e.must(t, "globex", Request{Path: "/echo"}, 200)
	if n := e.rt.Evict("acme"); n != 1 {
		t.Fatalf("Evict(acme) closed %d instances, want 1", n)
	}
	s := e.rt.Stats()
	// Must: acme holds none; must not: globex's stays warm.
	if s.IdlePerAccount["acme"] != 0 || s.IdlePerAccount["globex"] != 1 || s.Instances != 1 {
		t.Fatalf("after Evict(acme): %+v, want only globex's instance", s)
	}
	if n := e.rt.Evict("acme"); n != 0 {
		t.Errorf("second Evict(acme) closed %d, want 0", n)
	}
	e.must(t, "acme", Request{Path: "/echo"}, 200) // a new instance serves
}

// TestInstancesWithinConcurrency runs many more callers than a function's
// concurrency: the instances it starts stay within that concurrency (a
// caller that takes a slot given back finds the instance back in its pool,
// rather than starting another). The twin: as many callers as the
// concurrency start that many instances at most, and at least one.
func TestInstancesWithinConcurrency(t *testing.T) {
	for _, tc := range []struct{ concurrency, callers int }{{2, 8}, {2, 2}, {1, 12}} {
		e := newEnv(t, Config{IdleTimeout: time.Hour})
		var wg sync.WaitGroup
		errs := make([]error, tc.callers)
		for i := range tc.callers {
			wg.Go(func() {
				for range 400 {
					resp, err := e.invokeLim(t, "acme", Limits{Concurrency: tc.concurrency, Timeout: time.Minute}, Request{Path: "/echo"})
					if err == nil && resp.Status != 200 {
						err = fmt.Errorf("status %d", resp.Status)
					}
					if err != nil {
						errs[i] = err
						return
					}
				}
			})
		}
		wg.Wait()
		mustAll(t, errs)
		if s := e.rt.Stats(); s.Instances < 1 || s.Instances > tc.concurrency {
			t.Errorf("concurrency %d, %d callers: %d instances started, want 1 to %d", tc.concurrency, tc.callers, s.Instances, tc.concurrency)
		}
	}
}
