// Package storetest is the behaviour suite every store.Store implementation
// must pass: store/sqlite and store/postgres run it against real databases.
//
// It owns no state of its own. It imports the silo root package, package
// store, the standard library and go-cmp; it must not import any store
// implementation or driver.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Run runs the suite. open must return a new, empty store for every call,
// independent of every other store it returned; Run closes it at the end of
// the subtest (open may also register its own cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"AccountCRUD", testAccountCRUD},
		{"AccountValidation", testAccountValidation},
		{"VersionConflict", testVersionConflict},
		{"SecondProduction", testSecondProduction},
		{"DuplicateID", testDuplicateID},
		{"Purge", testPurge},
		{"Filters", testFilters},
		{"Paging", testPaging},
		{"Resources", testResources},
		{"Intents", testIntents},
		{"Keys", testKeys},
		{"Releases", testReleases},
		{"CurrentRelease", testCurrentRelease},
		{"ProbeReleases", testProbeReleases},
		{"ReleaseOrigins", testReleaseOrigins},
		{"Rollouts", testRollouts},
		{"Steps", testSteps},
		{"Audit", testAudit},
		{"AuditConcurrent", testAuditConcurrent},
		{"Settings", testSettings},
		{"Rollback", testRollback},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"ViewCannotWrite", testViewCannotWrite},
		{"ConflictKeepsTxUsable", testConflictKeepsTxUsable},
		{"CancelledContext", testCancelledContext},
		{"ViewDuringUpdate", testViewDuringUpdate},
		{"NoLostUpdates", testNoLostUpdates},
		{"Lister", testLister},
	}
	tests = append(tests, usageTests...)
	tests = append(tests, storedTests...)
	tests = append(tests, scheduleTests...)
	tests = append(tests, metricsTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
	t.Run("Copy", func(t *testing.T) {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		testCopy(t, s, open)
	})
	t.Run("CopyEverything", func(t *testing.T) {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		testCopyEverything(t, s, open)
	})
}

// T0 is the base time of the suite, at microsecond precision as the
// stores keep it.
var T0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

func at(minutes int) time.Time { return T0.Add(time.Duration(minutes) * time.Minute) }

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

func update(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func wantCode(t *testing.T, what string, err error, want silo.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %s", what, want)
	}
	if got := silo.ErrorCode(err); got != want {
		t.Fatalf("%s: got error %v (code %s), want code %s", what, err, got, want)
	}
}

func tenant(id string, minute int) silo.Account {
	return silo.Account{
		ID: silo.AccountID(id), Kind: silo.KindTenant, Name: "Tenant " + id,
		Params: map[string]string{"plan": "pro", "ring": "1"},
		State:  silo.StateActive, Created: at(minute), Updated: at(minute),
	}
}

func create(t *testing.T, s store.Store, as ...silo.Account) {
	t.Helper()
	update(t, s, func(tx store.Tx) error {
		for _, a := range as {
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
		}
		return nil
	})
}

func getAccount(t *testing.T, s store.Store, id silo.AccountID) (silo.Account, error) {
	t.Helper()
	var a silo.Account
	err := s.View(context.Background(), func(tx store.Tx) error {
		var err error
		a, err = tx.Account(id)
		return err
	})
	return a, err
}
