package dataplane_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/dataplane"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

type fixture struct {
	st  store.Store
	pol *isolation.Policy
	dir *dataplane.Directory
}

// newFixture opens a real SQLite store and local provider with production
// and the accounts given, each declaring table findings and a function
// ingest that writes it.
func newFixture(t testing.TB, states map[silo.AccountID]silo.State) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	prov, err := local.New(local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	table, _ := silo.NewResource(silo.TypeTable, "findings", nil)
	fn, _ := silo.NewResource(silo.TypeFunction, "ingest", silo.FunctionSpec{Handler: "ingest", Tables: map[string]string{"findings": "read-write"}})
	route, _ := silo.NewResource(silo.TypeRoute, "post-findings", silo.RouteSpec{Method: "POST", Path: "/findings", Function: "ingest"})
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive}); err != nil {
			return err
		}
		for id, s := range states {
			if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: s}); err != nil {
				return err
			}
			for _, r := range []silo.Resource{table, fn, route} {
				if err := tx.PutResource(id, r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pol := isolation.NewPolicy()
	dir, err := dataplane.New(dataplane.Config{Store: st, Provider: prov, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, pol: pol, dir: dir}
}

func (f *fixture) setState(t *testing.T, id silo.AccountID, s silo.State) {
	t.Helper()
	err := f.st.Update(context.Background(), func(tx store.Tx) error {
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		a.State = s
		return tx.UpdateAccount(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.dir.Invalidate(id)
}

// writes asks the decision point whether id's function may write its own
// table.
func writes(pol *isolation.Policy, id silo.AccountID) bool {
	return pol.Decide(isolation.Request{
		Principal: isolation.Principal{Kind: isolation.PrincipalFunction, Account: id, Name: "ingest"},
		Action:    isolation.ActTableWrite,
		Resource:  isolation.Resource{Account: id, Type: silo.TypeTable, Name: "findings"},
	}).Allow
}

// TestDeletedAccountsHoldNoPolicy: the directory installs a policy for an
// account it reads exactly when the isolation package's own loader
// (Policy.Load, over the same store) does: an active account holds one and
// its function may write its table (must); one being deleted or deleted
// holds none, so the same write is denied (must not), whichever way the
// account's state went last.
func TestDeletedAccountsHoldNoPolicy(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		path  []silo.State // states in order; the directory reads after each
		holds bool
	}{
		{"active", []silo.State{silo.StateActive}, true},
		{"deleting", []silo.State{silo.StateDeleting}, false},
		{"deleted", []silo.State{silo.StateDeleted}, false},
		{"active then deleting", []silo.State{silo.StateActive, silo.StateDeleting}, false},
		{"active then deleting then deleted", []silo.State{silo.StateActive, silo.StateDeleting, silo.StateDeleted}, false},
		{"suspended then active", []silo.State{silo.StateSuspended, silo.StateActive}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, map[silo.AccountID]silo.State{"acme": tc.path[0]})
			for i, s := range tc.path {
				if i > 0 {
					f.setState(t, "acme", s)
				}
				v, err := f.dir.View(ctx, "acme")
				switch {
				case s == silo.StateDeleted:
					if !errors.Is(err, silo.ErrNotFound) {
						t.Fatalf("View of a deleted account: %v, want not found", err)
					}
				case err != nil:
					t.Fatalf("View in state %s: %v", s, err)
				case v.Account.State != s:
					t.Fatalf("View in state %s says %s", s, v.Account.State)
				}
			}
			if got := f.pol.Account("acme") != nil; got != tc.holds {
				t.Errorf("the directory installed a policy: %v, want %v", got, tc.holds)
			}
			if got := writes(f.pol, "acme"); got != tc.holds {
				t.Errorf("the function may write its table: %v, want %v", got, tc.holds)
			}
			// The one rule: the isolation package's loader agrees.
			other := isolation.NewPolicy()
			if err := other.Load(ctx, f.st, "acme"); err != nil {
				t.Fatal(err)
			}
			if got := other.Account("acme") != nil; got != tc.holds {
				t.Errorf("isolation's Policy.Load installed a policy: %v, want %v", got, tc.holds)
			}
			views, policies := f.dir.Held()
			wantPolicies := 0 // production's is read with its view only
			if tc.holds {
				wantPolicies++
			}
			if views != 1 || policies != wantPolicies {
				t.Errorf("Held = %d views, %d policies; want 1 and %d", views, policies, wantPolicies)
			}
		})
	}
}

// TestPinHoldsPolicyThroughSweep: a pinned account's policy survives a
// sweep long after its last use (must not drop); once unpinned the same
// sweep drops it (must).
func TestPinHoldsPolicyThroughSweep(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[silo.AccountID]silo.State{"acme": silo.StateActive})
	if _, err := f.dir.Pin(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dir.View(ctx, silo.ProductionID); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // past IdleTimeout and Refresh
	f.dir.Sweep(later)
	if f.pol.Account("acme") == nil {
		t.Fatal("a sweep dropped the policy of a pinned account")
	}
	f.dir.Unpin("acme")
	f.dir.Sweep(later)
	if f.pol.Account("acme") != nil {
		t.Error("a sweep kept the policy of an idle, unpinned account")
	}
	if f.pol.Account(silo.ProductionID) == nil {
		t.Error("a sweep dropped production's policy")
	}
}
