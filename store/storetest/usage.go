package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// UsageTests are the suite's cases for limit overrides and usage; Run runs
// them with the others.
var usageTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"LimitOverrides", testLimitOverrides},
	{"UsageAdds", testUsageAdds},
	{"UsagePaging", testUsagePaging},
	{"UsageRetention", testUsageRetention},
	{"UsagePurge", testUsagePurge},
}

func testLimitOverrides(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("beta", 0))
	err := s.View(context.Background(), func(tx store.Tx) error { _, err := tx.LimitOverride("acme"); return err })
	wantCode(t, "override never set", err, silo.CodeNotFound)
	want := silo.Limits{Rate: 50, Burst: 75, Concurrency: 8, Storage: 1 << 30, Invocations: 1e6}
	update(t, s, func(tx store.Tx) error { return tx.PutLimitOverride("acme", want) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.LimitOverride("acme")
		if err != nil || got != want {
			t.Errorf("override: got %+v, %v; want %+v", got, err, want)
		}
		if _, err := tx.LimitOverride("beta"); !errors.Is(err, silo.ErrNotFound) {
			t.Errorf("other account's override: got %v, want not found", err)
		}
		return nil
	})
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.PutLimitOverride("nobody", want) })
	wantCode(t, "override of a missing account", err, silo.CodeNotFound)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.PutLimitOverride("acme", silo.Limits{Rate: -1}) })
	wantCode(t, "negative rate", err, silo.CodeInvalid)
	view(t, s, func(tx store.Tx) error { // the bad write changed nothing
		if got, err := tx.LimitOverride("acme"); err != nil || got != want {
			t.Errorf("after a refused write: got %+v, %v; want %+v", got, err, want)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.PutLimitOverride("acme", silo.Limits{}) })
	err = s.View(context.Background(), func(tx store.Tx) error { _, err := tx.LimitOverride("acme"); return err })
	wantCode(t, "override removed", err, silo.CodeNotFound)
}

// day0 is a UTC midnight for the usage cases.
var day0 = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)

func addUsage(t *testing.T, s store.Store, at time.Time, ds ...store.UsageDelta) {
	t.Helper()
	update(t, s, func(tx store.Tx) error { return tx.AddUsage(at, ds) })
}

func readUsage(t *testing.T, s store.Store, q store.UsageQuery) []store.UsageDay {
	t.Helper()
	var out []store.UsageDay
	view(t, s, func(tx store.Tx) error {
		var err error
		out, err = tx.Usage(q)
		return err
	})
	return out
}

func delta(acct silo.AccountID, fn string, n int64) store.UsageDelta {
	return store.UsageDelta{Account: acct, Function: fn, Counters: store.Counters{
		Requests: 3 * n, Errors: n, DurationMicros: 1000 * n, MemoryMiBMicros: 64 * n, BytesIn: 10 * n, BytesOut: 100 * n}}
}

func testUsageAdds(t *testing.T, s store.Store) {
	addUsage(t, s, day0.Add(9*time.Hour+5*time.Minute), delta("acme", "ingest", 3), delta("acme", "list", 1), delta("beta", "ingest", 7))
	addUsage(t, s, day0.Add(9*time.Hour+59*time.Minute), delta("acme", "ingest", 2))
	addUsage(t, s, day0.Add(23*time.Hour), delta("acme", "ingest", 1), delta("acme", "idle", 0))
	addUsage(t, s, day0.Add(24*time.Hour), delta("acme", "ingest", 4))
	got := readUsage(t, s, store.UsageQuery{Account: "acme"})
	var hours [24]store.Counters
	hours[9], hours[23] = delta("", "", 5).Counters, delta("", "", 1).Counters
	want := []store.UsageDay{
		{Account: "acme", Function: "ingest", Day: day0, Hours: &hours, Total: delta("", "", 6).Counters},
		{Account: "acme", Function: "list", Day: day0, Hours: &[24]store.Counters{9: delta("", "", 1).Counters}, Total: delta("", "", 1).Counters},
		{Account: "acme", Function: "ingest", Day: day0.AddDate(0, 0, 1), Hours: &[24]store.Counters{0: delta("", "", 4).Counters}, Total: delta("", "", 4).Counters},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("acme's usage (-want +got):\n%s", diff)
	}
	// The window excludes its end day; the other account is apart.
	got = readUsage(t, s, store.UsageQuery{From: day0, To: day0.AddDate(0, 0, 1)})
	if len(got) != 3 || got[2].Account != "beta" || got[2].Total.Requests != 21 {
		t.Errorf("day0 of every account: got %+v, want acme ingest, acme list, beta ingest (21 requests)", got)
	}
}

func testUsagePaging(t *testing.T, s store.Store) {
	for d := range 3 {
		addUsage(t, s, day0.AddDate(0, 0, d), delta("b", "f", 1), delta("a", "g", 1), delta("a", "f", 1))
	}
	var all []store.UsageCursor
	q := store.UsageQuery{Limit: 2}
	for range 10 {
		page := readUsage(t, s, q)
		for _, u := range page {
			all = append(all, store.UsageCursor{Day: u.Day, Account: u.Account, Function: u.Function})
		}
		if len(page) < q.Limit {
			break
		}
		last := all[len(all)-1]
		q.After = &last
	}
	var want []store.UsageCursor
	for d := range 3 {
		day := day0.AddDate(0, 0, d)
		for _, k := range [][2]string{{"a", "f"}, {"a", "g"}, {"b", "f"}} {
			want = append(want, store.UsageCursor{Day: day, Account: silo.AccountID(k[0]), Function: k[1]})
		}
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("paged in twos (-want +got):\n%s", diff)
	}
}

func testUsageRetention(t *testing.T, s store.Store) {
	for d := range 10 {
		addUsage(t, s, day0.AddDate(0, 0, d).Add(3*time.Hour), delta("acme", "f", int64(d+1)))
		addUsage(t, s, day0.AddDate(0, 0, d).Add(4*time.Hour), delta("acme", "f", 1))
	}
	var rolled, deleted int64
	update(t, s, func(tx store.Tx) error {
		var err error
		rolled, deleted, err = tx.PruneUsage(day0.AddDate(0, 0, 7), day0.AddDate(0, 0, 2))
		return err
	})
	if rolled != 5 || deleted != 2 {
		t.Errorf("prune: rolled %d, deleted %d; want 5 rolled (days 2-6), 2 deleted (days 0-1)", rolled, deleted)
	}
	got := readUsage(t, s, store.UsageQuery{Account: "acme"})
	if len(got) != 8 {
		t.Fatalf("got %d days after pruning, want 8", len(got))
	}
	for i, u := range got {
		d := i + 2
		if !u.Day.Equal(day0.AddDate(0, 0, d)) || u.Total.Requests != int64(3*(d+2)) {
			t.Errorf("day %d: got %s with %d requests, want %s with %d", d, u.Day, u.Total.Requests, day0.AddDate(0, 0, d), 3*(d+2))
		}
		if hourly := u.Hours != nil; hourly != (d >= 7) {
			t.Errorf("day %d: hourly %v, want hours kept only from day 7", d, hourly)
		}
	}
	// A rolled-up day still takes late usage, into its total.
	addUsage(t, s, day0.AddDate(0, 0, 3), delta("acme", "f", 10))
	if got := readUsage(t, s, store.UsageQuery{Account: "acme", From: day0.AddDate(0, 0, 3), To: day0.AddDate(0, 0, 4)}); len(got) != 1 || got[0].Total.Requests != 45 || got[0].Hours != nil {
		t.Errorf("late usage on a rolled-up day: got %+v, want 45 requests, no hours", got)
	}
	update(t, s, func(tx store.Tx) error { // pruning again rolls up nothing new
		var err error
		rolled, deleted, err = tx.PruneUsage(day0.AddDate(0, 0, 7), day0.AddDate(0, 0, 2))
		return err
	})
	if rolled != 0 || deleted != 0 {
		t.Errorf("second prune: rolled %d, deleted %d; want 0, 0", rolled, deleted)
	}
}

// deleteAndPurge deletes account id and purges it, as reusing its ID does.
func deleteAndPurge(t *testing.T, s store.Store, id silo.AccountID, at time.Time) silo.Account {
	t.Helper()
	a, err := getAccount(t, s, id)
	if err != nil {
		t.Fatal(err)
	}
	a.State, a.Updated = silo.StateDeleted, at
	update(t, s, func(tx store.Tx) error {
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		return tx.PurgeAccount(id)
	})
	return a
}

// testUsagePurge: purging a deleted account to reuse its ID keeps its
// usage, under its creation time, and lists it as purged; the new account
// with the ID reads none of it, its own usage goes apart, and usage
// metered for the old account after the purge still goes to the old one.
// Retention forgets the purged account with its usage.
func testUsagePurge(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("other", 0))
	addUsage(t, s, day0, delta("acme", "f", 1), delta("other", "f", 1))
	update(t, s, func(tx store.Tx) error { return tx.PutLimitOverride("acme", silo.Limits{Rate: 5}) })
	old := deleteAndPurge(t, s, "acme", at(3))
	view(t, s, func(tx store.Tx) error {
		got, err := tx.PurgedAccounts("acme")
		want := []silo.Account{{ID: "acme", Kind: silo.KindTenant, Name: old.Name, Params: old.Params, State: silo.StateDeleted, Created: at(0), Updated: at(3)}}
		if d := cmp.Diff(want, got); err != nil || d != "" {
			t.Errorf("purged accounts named acme: %v (-want +got):\n%s", err, d)
		}
		if all, err := tx.PurgedAccounts(""); err != nil || len(all) != 1 {
			t.Errorf("every purged account: got %+v, %v; want acme only", all, err)
		}
		return nil
	})
	kept := readUsage(t, s, store.UsageQuery{Account: "acme"})
	if len(kept) != 1 || !kept[0].Created.Equal(at(0)) || kept[0].Total.Requests != 3 {
		t.Fatalf("usage of the purged acme: got %+v, want its 3 requests under its creation %s", kept, at(0))
	}
	if got := readUsage(t, s, store.UsageQuery{Account: "other"}); len(got) != 1 || !got[0].Created.Equal(at(0)) {
		t.Errorf("usage of the other account: got %+v, want 1 day", got)
	}

	create(t, s, tenant("acme", 5)) // the same ID again inherits nothing
	err := s.View(context.Background(), func(tx store.Tx) error { _, err := tx.LimitOverride("acme"); return err })
	wantCode(t, "override of a new account with a purged account's ID", err, silo.CodeNotFound)
	if got := readUsage(t, s, store.UsageQuery{Account: "acme", Created: at(5)}); len(got) != 0 {
		t.Errorf("usage of the new acme before it ran anything: got %+v, want none", got)
	}
	addUsage(t, s, day0, delta("acme", "f", 2))                                                                                   // the new one's
	addUsage(t, s, day0, store.UsageDelta{Account: "acme", Created: at(0), Function: "f", Counters: store.Counters{Requests: 1}}) // the old one's, flushed late
	if got := readUsage(t, s, store.UsageQuery{Account: "acme", Created: at(5)}); len(got) != 1 || got[0].Total.Requests != 6 || !got[0].Created.Equal(at(5)) {
		t.Errorf("usage of the new acme: got %+v, want its own 6 requests only", got)
	}
	if got := readUsage(t, s, store.UsageQuery{Account: "acme", Created: at(0)}); len(got) != 1 || got[0].Total.Requests != 4 {
		t.Errorf("usage of the purged acme after its ID was reused: got %+v, want its 3 requests and the 1 flushed late", got)
	}
	both := readUsage(t, s, store.UsageQuery{Account: "acme"})
	if len(both) != 2 || !both[0].Created.Equal(at(0)) || !both[1].Created.Equal(at(5)) {
		t.Errorf("usage of both accounts named acme: got %+v, want the purged one's day, then the new one's", both)
	}
	// Paging passes from one account to the next with the same ID.
	page := readUsage(t, s, store.UsageQuery{Account: "acme", Limit: 1})
	next := readUsage(t, s, store.UsageQuery{Account: "acme", Limit: 1, After: &store.UsageCursor{Day: page[0].Day, Account: page[0].Account, Created: page[0].Created, Function: page[0].Function}})
	if len(page) != 1 || len(next) != 1 || !next[0].Created.Equal(at(5)) {
		t.Errorf("usage of acme in pages of one: got %+v then %+v, want the purged one's day, then the new one's", page, next)
	}

	// Retention keeps the purged account while its usage may be kept...
	update(t, s, func(tx store.Tx) error { _, _, err := tx.PruneUsage(day0, day0); return err })
	view(t, s, func(tx store.Tx) error {
		if got, err := tx.PurgedAccounts("acme"); err != nil || len(got) != 1 {
			t.Errorf("purged accounts after a prune that keeps its usage: got %+v, %v; want acme", got, err)
		}
		return nil
	})
	// ...and forgets it with its usage.
	update(t, s, func(tx store.Tx) error { _, _, err := tx.PruneUsage(at(24*60*30), at(24*60*30)); return err })
	view(t, s, func(tx store.Tx) error {
		if got, err := tx.PurgedAccounts(""); err != nil || len(got) != 0 {
			t.Errorf("purged accounts after their usage was pruned: got %+v, %v; want none", got, err)
		}
		return nil
	})
}
