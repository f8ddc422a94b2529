package isolation_test

import (
	"context"
	"path/filepath"
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
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	src := testFleet(t, 2)
	now := time.Now().UTC()
	err = st.Update(ctx, func(tx store.Tx) error {
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
