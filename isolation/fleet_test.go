package isolation_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// TestLoadFleet records testFleet(2) in a real SQLite store and a real local
// provider, loads it back with LoadFleet + AddDataKeys and proves it; then
// deletes globex in the store while its key stays live and its account stays
// in the provider, and checks both I5 findings.
func TestLoadFleet(t *testing.T) {
	ctx := context.Background()
	st, prov := fleetStores(t)
	src := testFleet(t, 2)
	recordFleet(t, st, src)
	for _, as := range src.Accounts {
		if err := prov.CreateAccount(ctx, as.Account.ID, as.Account.Kind); err != nil {
			t.Fatal(err)
		}
	}

	f, err := isolation.LoadFleet(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if r := isolation.Verify(ctx, f); r.Status != isolation.StatusIncomplete {
		t.Fatalf("without provider facts: got %s, want incomplete", r.Status)
	}
	if err := f.AddDataKeys(ctx, prov); err != nil {
		t.Fatal(err)
	}
	r := isolation.Verify(ctx, f)
	if !r.Proved() || r.Accounts != 3 || len(f.Keys) != 2 {
		t.Fatalf("got %s over %d accounts, %d keys, want proved over 3 with 2 keys:\n%v", r.Status, r.Accounts, len(f.Keys), r.Counterexamples)
	}

	// The twin: globex deleted in the store but its key live and its account
	// (and data key) still in the provider.
	err = st.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Account("globex")
		if err != nil {
			return err
		}
		a.State = silo.StateDeleted
		return tx.UpdateAccount(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err = isolation.LoadFleet(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddDataKeys(ctx, prov); err != nil {
		t.Fatal(err)
	}
	r = isolation.Verify(ctx, f)
	if r.Status != isolation.StatusViolated || r.Violations != 2 {
		t.Fatalf("got %s with %d violations, want 2 (live key, data key):\n%v", r.Status, r.Violations, r.Counterexamples)
	}
	for _, c := range r.Counterexamples {
		if c.Invariant != "I5" {
			t.Errorf("got %s, want I5", c)
		}
	}
}

// fleetStores opens a real SQLite store and a real local provider in a
// temporary directory, closed when the test ends.
func fleetStores(t *testing.T) (*sqlite.Store, *local.Provider) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	return st, prov
}

// recordFleet records the accounts, resources and keys of src in st.
func recordFleet(t *testing.T, st store.Store, src *isolation.Fleet) {
	t.Helper()
	now := time.Now().UTC()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for _, as := range src.Accounts {
			a := as.Account
			a.Created, a.Updated = now, now
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
			for _, r := range as.Resources {
				if err := tx.PutResource(a.ID, r); err != nil {
					return err
				}
			}
		}
		for _, k := range src.Keys {
			if err := tx.PutKey(store.APIKey{ID: k.ID, Account: k.Account, Hash: make([]byte, 32), Created: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCountsLiveAccounts: deleted accounts (probe, environment and
// developer accounts pile up as such) are not counted as the fleet the
// proof holds over, so silo verify's count is the live fleet's; they are
// still checked for I5 and counted apart. The twin: a deleted account whose
// data key the provider still holds is a counterexample, so deleted
// accounts have not left the proof.
func TestVerifyCountsLiveAccounts(t *testing.T) {
	ctx := context.Background()
	st, prov := fleetStores(t)
	src := testFleet(t, 4)
	deleted := map[silo.AccountID]bool{tenantName(2): true, tenantName(3): true}
	keys := src.Keys[:0]
	for _, k := range src.Keys {
		if !deleted[k.Account] {
			keys = append(keys, k)
		}
	}
	src.Keys = keys
	for i := range src.Accounts {
		as := &src.Accounts[i]
		if deleted[as.Account.ID] {
			as.Account.State, as.Resources = silo.StateDeleted, nil
			continue
		}
		if err := prov.CreateAccount(ctx, as.Account.ID, as.Account.Kind); err != nil {
			t.Fatal(err)
		}
	}
	recordFleet(t, st, src)
	verify := func() isolation.Result {
		t.Helper()
		f, err := isolation.LoadFleet(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.AddDataKeys(ctx, prov); err != nil {
			t.Fatal(err)
		}
		return isolation.Verify(ctx, f)
	}
	r := verify()
	if !r.Proved() || r.Accounts != 3 || r.Deleted != 2 {
		t.Fatalf("got %s over %d accounts (%d deleted), want proved over 3 (2 deleted):\n%v", r.Status, r.Accounts, r.Deleted, r.Counterexamples)
	}

	if err := prov.CreateAccount(ctx, tenantName(3), silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	r = verify()
	if r.Status != isolation.StatusViolated || r.Violations != 1 || r.Counterexamples[0].Invariant != "I5" || !strings.Contains(r.Counterexamples[0].Problem, string(tenantName(3))) {
		t.Fatalf("with a deleted account's data key held: got %s, %v, want one I5 counterexample naming %s", r.Status, r.Counterexamples, tenantName(3))
	}
	if r.Accounts != 3 || r.Deleted != 2 {
		t.Errorf("got %d accounts (%d deleted), want 3 (2 deleted)", r.Accounts, r.Deleted)
	}
}
