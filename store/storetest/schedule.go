package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

var scheduleTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"ScheduleClaims", testScheduleClaims},
	{"ScheduleClaimsConcurrent", testScheduleClaimsConcurrent},
}

func claim(s store.Store, c store.ScheduleClaim, now time.Time) error {
	return s.Update(context.Background(), func(tx store.Tx) error { return tx.ClaimScheduleRun(c, now) })
}

// testScheduleClaims: a due time is claimed once; a later one only once the
// earlier run finished or its claim expired; never an earlier one again.
func testScheduleClaims(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("globex", 0))
	a := store.ScheduleClaim{Account: "acme", Schedule: "nightly", Due: at(0), Owner: "a", Until: at(10)}
	b := a
	b.Owner = "b"
	if err := claim(s, a, at(0)); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	wantCode(t, "the same due time by another server", claim(s, b, at(0)), silo.CodeConflict)
	wantCode(t, "the same due time by the same server", claim(s, a, at(0)), silo.CodeConflict)
	// Another schedule, another account: claims of their own.
	other := a
	other.Schedule = "hourly"
	if err := claim(s, other, at(0)); err != nil {
		t.Fatalf("another schedule: %v", err)
	}
	other.Schedule, other.Account = "nightly", "globex"
	if err := claim(s, other, at(0)); err != nil {
		t.Fatalf("another account: %v", err)
	}
	// The next due time while the run is still going and held: refused.
	next := b
	next.Due, next.Until = at(5), at(15)
	wantCode(t, "the next due time while the run is held", claim(s, next, at(5)), silo.CodeConflict)
	// Past its claim (its server died): the next due time is claimed.
	if err := claim(s, next, at(10)); err != nil {
		t.Fatalf("the next due time after the claim expired: %v", err)
	}
	// A finish by the server that lost the claim changes nothing.
	update(t, s, func(tx store.Tx) error { return tx.FinishScheduleRun(a) })
	later := a
	later.Due, later.Until = at(4), at(20)
	wantCode(t, "an earlier due time than the one claimed", claim(s, later, at(11)), silo.CodeConflict)
	later.Due = at(8)
	wantCode(t, "the next due time while b's run is held", claim(s, later, at(11)), silo.CodeConflict)
	// Finished: the next due time is claimed before the claim expires.
	update(t, s, func(tx store.Tx) error { return tx.FinishScheduleRun(next) })
	later.Due = at(4)
	wantCode(t, "a due time before the finished one", claim(s, later, at(11)), silo.CodeConflict)
	later.Due = at(12)
	if err := claim(s, later, at(12)); err != nil {
		t.Fatalf("the next due time after the run finished: %v", err)
	}
	// An unknown account: not found.
	missing := a
	missing.Account = "initech"
	wantCode(t, "an unknown account", claim(s, missing, at(0)), silo.CodeNotFound)
	// Purging the account removes its claims: a new account of the same
	// ID claims the same due time afresh.
	update(t, s, func(tx store.Tx) error {
		g, err := tx.Account("globex")
		if err != nil {
			return err
		}
		g.State = silo.StateDeleted
		if err := tx.UpdateAccount(g); err != nil {
			return err
		}
		return tx.PurgeAccount("globex")
	})
	create(t, s, tenant("globex", 1))
	if err := claim(s, other, at(0)); err != nil {
		t.Fatalf("a re-created account: %v", err)
	}
}

// testScheduleClaimsConcurrent: servers claiming the same due times at once
// win each exactly once.
func testScheduleClaimsConcurrent(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0))
	const servers, dues = 4, 10
	won := make([]int, dues)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, servers)
	for w := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range dues {
				c := store.ScheduleClaim{Account: "acme", Schedule: "tick", Due: at(d), Owner: string(rune('a' + w)), Until: at(d + 100)}
				err := claim(s, c, at(d))
				switch {
				case err == nil:
					mu.Lock()
					won[d]++
					mu.Unlock()
					if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.FinishScheduleRun(c) }); err != nil {
						errs <- err
						return
					}
				case silo.ErrorCode(err) != silo.CodeConflict:
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("claim: %v", err)
	}
	for d, n := range won {
		if n > 1 {
			t.Errorf("due time %d: claimed %d times, want at most once", d, n)
		}
	}
	if won[0] != 1 {
		t.Errorf("the first due time: claimed %d times, want once", won[0])
	}
}
