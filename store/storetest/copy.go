package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// FillEveryTable writes at least one record of every kind a store holds
// into s, an empty store: accounts (one deleted, one purged), a resource, a limit
// override, a key, a release made current, a rollout with a step, an
// intent, a setting, usage (a day of hours and a day rolled up), stored
// bytes, schedule claims (one finished, one held) and audit entries. A test
// of a copy fills the source with it, so that whatever a copy leaves
// behind shows.
func FillEveryTable(t *testing.T, s store.Store) {
	t.Helper()
	gone := tenant("gone", 0)
	gone.State = silo.StateDeleted
	create(t, s, tenant("acme", 0), gone, tenant("former", 0))
	deleteAndPurge(t, s, "former", at(1))
	r, _ := silo.NewResource(silo.TypeTable, "visits", map[string]string{"pk": "id"})
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutResource("acme", r); err != nil {
			return err
		}
		if err := tx.PutLimitOverride("acme", silo.Limits{Rate: 7, Burst: 3}); err != nil {
			return err
		}
		if err := tx.PutKey(store.APIKey{ID: "sk_acme_1", Account: "acme", Hash: []byte("hash-1"), Name: "ci", Created: at(1)}); err != nil {
			return err
		}
		if err := tx.PutRelease(store.Release{ID: "rel-1", Created: at(1)}); err != nil {
			return err
		}
		if _, err := tx.SetCurrentRelease("rel-1"); err != nil {
			return err
		}
		if err := tx.CreateRollout(rollout("ro-000001", "rel-1", false, 2)); err != nil {
			return err
		}
		if err := tx.ClaimStep(store.RolloutStep{StepKey: stepKey("ro-000001", "acme", "apply"), Created: at(2)}); err != nil {
			return err
		}
		if _, err := tx.AddIntent(store.Intent{Key: "apply/acme/1", Account: "acme", Action: "apply", State: store.IntentPending, Created: at(2), Updated: at(2)}); err != nil {
			return err
		}
		if err := tx.PutSetting("operator", "ops"); err != nil {
			return err
		}
		hello := store.UsageDelta{Account: "acme", Function: "hello", Counters: store.Counters{Requests: 154, Errors: 2, DurationMicros: 9000}}
		for _, when := range []time.Time{T0, T0.Add(-10 * 24 * time.Hour)} {
			if err := tx.AddUsage(when, []store.UsageDelta{hello}); err != nil {
				return err
			}
		}
		// The older day is rolled up, as retention leaves it.
		if _, _, err := tx.PruneUsage(T0.Add(-5*24*time.Hour), T0.Add(-100*24*time.Hour)); err != nil {
			return err
		}
		if err := tx.SetStored(T0, []store.StoredSample{{Account: "acme", Kind: store.StoredTable, Name: "visits", Bytes: 4096}}); err != nil {
			return err
		}
		for _, c := range scheduleClaims() {
			if err := tx.ClaimScheduleRun(c, c.Due); err != nil {
				return err
			}
		}
		if err := tx.FinishScheduleRun(scheduleClaims()[0]); err != nil {
			return err
		}
		for _, p := range publications() {
			if err := tx.PublishMetrics(p.incarnation, p.at, p.ms); err != nil {
				return err
			}
		}
		for _, action := range []string{"tenant.create", "limits.set"} {
			if _, err := tx.AppendAudit(store.AuditEvent{Time: at(3), Actor: "cli:ops", Action: action, Account: "acme"}); err != nil {
				return err
			}
		}
		return nil
	})
}

// scheduleClaims are FillEveryTable's claims: the first finished, the
// second held.
func scheduleClaims() []store.ScheduleClaim {
	return []store.ScheduleClaim{
		{Account: "acme", Schedule: "nightly", Due: at(0), Owner: "server-a", Until: at(5)},
		{Account: "acme", Schedule: "hourly", Due: at(60), Owner: "server-b", Until: at(65)},
	}
}

// testCopyEverything copies a store holding every kind of record and finds
// the limit overrides, usage, stored bytes and schedule claims in the copy
// as they were (testCopy checks releases and rollouts; the CLI's round trip
// the rest); a target holding only usage is not empty, and is refused.
func testCopyEverything(t *testing.T, src store.Store, open func(t *testing.T) store.Store) {
	FillEveryTable(t, src)
	type records struct {
		Overrides map[silo.AccountID]silo.Limits
		Purged    []silo.Account
		Usage     []store.UsageDay
		Stored    []store.StoredDay
		Runs      []store.ScheduleRun
		Metrics   []store.ReleaseMetrics
	}
	read := func(s store.Store) records {
		r := records{Overrides: map[silo.AccountID]silo.Limits{}}
		view(t, s, func(tx store.Tx) error {
			for _, id := range []silo.AccountID{"acme", "gone"} {
				if l, err := tx.LimitOverride(id); err == nil {
					r.Overrides[id] = l
				}
			}
			var err error
			if r.Purged, err = tx.PurgedAccounts(""); err != nil {
				return err
			}
			if r.Usage, err = tx.Usage(store.UsageQuery{}); err != nil {
				return err
			}
			if r.Stored, err = tx.Stored(store.UsageQuery{}); err != nil {
				return err
			}
			if r.Runs, err = tx.(store.Lister).ScheduleRuns(); err != nil {
				return err
			}
			r.Metrics, err = tx.(store.Lister).PublishedMetrics()
			return err
		})
		return r
	}
	dst := open(t)
	t.Cleanup(func() { dst.Close() })
	n, err := store.Copy(context.Background(), dst, src)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	want, got := read(src), read(dst)
	if len(want.Overrides) != 1 || len(want.Purged) != 1 || len(want.Usage) != 2 || len(want.Stored) != 1 || len(want.Runs) != 2 || len(want.Metrics) != 5 {
		t.Fatalf("the source holds %d overrides, %d purged accounts, %d usage days, %d stored days, %d schedule claims, %d rows of metrics; want 1, 1, 2, 1, 2, 5", len(want.Overrides), len(want.Purged), len(want.Usage), len(want.Stored), len(want.Runs), len(want.Metrics))
	}
	if want.Usage[0].Hours != nil || want.Usage[1].Hours == nil {
		t.Fatalf("the source's usage: the older day should be rolled up, the newer one hourly: %+v", want.Usage)
	}
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("the copy's overrides, purged accounts, usage, stored bytes, schedule claims and published metrics (-source +copy):\n%s", d)
	}
	if n.LimitOverrides != 1 || n.Usage != 2 || n.Stored != 1 || n.ScheduleRuns != 2 || n.Metrics != 5 {
		t.Errorf("Copy counted %+v; want 1 override, 2 usage days, 1 stored day, 2 schedule claims, 5 rows of metrics", n)
	}
	// The held claim is still held in the copy: a second claim of its
	// schedule before it expires is refused, as it was in the source.
	err = dst.Update(context.Background(), func(tx store.Tx) error {
		c := scheduleClaims()[1]
		c.Due, c.Owner = at(120), "server-c"
		return tx.ClaimScheduleRun(c, at(61))
	})
	wantCode(t, "ClaimScheduleRun while the copied claim is held", err, silo.CodeConflict)

	usageOnly := open(t)
	t.Cleanup(func() { usageOnly.Close() })
	update(t, usageOnly, func(tx store.Tx) error {
		return tx.AddUsage(T0, []store.UsageDelta{{Account: "acme", Function: "hello", Counters: store.Counters{Requests: 1}}})
	})
	_, err = store.Copy(context.Background(), usageOnly, src)
	wantCode(t, "Copy into a store that holds only usage", err, silo.CodeConflict)
}
