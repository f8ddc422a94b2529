package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func testAccountCRUD(t *testing.T, s store.Store) {
	exp := at(60 * 24)
	a := tenant("acme", 0)
	a.Release, a.StackHash = "rel-1", "abc"
	e := silo.Account{ID: "demo-1", Kind: silo.KindEnvironment, State: silo.StateProvisioning, Created: at(1), Updated: at(1), Expires: &exp}
	create(t, s, a, e)

	for _, want := range []silo.Account{a, e} {
		want.Version = 1
		got, err := getAccount(t, s, want.ID)
		if err != nil {
			t.Fatalf("Account(%s): %v", want.ID, err)
		}
		if d := cmp.Diff(want, got, cmpOpts...); d != "" {
			t.Errorf("Account(%s) mismatch (-want +got):\n%s", want.ID, d)
		}
	}

	_, err := getAccount(t, s, "nobody")
	wantCode(t, "Account(nobody)", err, silo.CodeNotFound)
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("Account(nobody): errors.Is(err, ErrNotFound) = false for %v", err)
	}

	// Update every mutable field.
	got, _ := getAccount(t, s, "acme")
	got.Name, got.State, got.Release, got.StackHash = "Acme Corp", silo.StateSuspended, "rel-2", "def"
	got.Params = map[string]string{"plan": "enterprise"}
	got.Updated = at(5)
	update(t, s, func(tx store.Tx) error { return tx.UpdateAccount(got) })
	want := got
	want.Version = 2
	got2, err := getAccount(t, s, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got2, cmpOpts...); d != "" {
		t.Errorf("after UpdateAccount (-want +got):\n%s", d)
	}

	// Clearing optional fields.
	got2.Params, got2.Expires = nil, nil
	update(t, s, func(tx store.Tx) error { return tx.UpdateAccount(got2) })
	got3, _ := getAccount(t, s, "acme")
	if len(got3.Params) != 0 || got3.Expires != nil || got3.Version != 3 {
		t.Errorf("after clearing: got params %v expires %v version %d, want none, nil, 3", got3.Params, got3.Expires, got3.Version)
	}

	err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.UpdateAccount(silo.Account{ID: "nobody", Kind: silo.KindTenant, State: silo.StateActive, Version: 1})
	})
	wantCode(t, "UpdateAccount(nobody)", err, silo.CodeNotFound)
}

func testAccountValidation(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		a    silo.Account
		want silo.Code // "" means accepted
	}{
		{"valid tenant", tenant("ok-1", 0), ""},
		{"valid developer", silo.Account{ID: "dev-ann", Kind: silo.KindDeveloper, State: silo.StateActive}, ""},
		{"bad kind", silo.Account{ID: "x1", Kind: "pet", State: silo.StateActive}, silo.CodeInvalid},
		{"bad ID", silo.Account{ID: "Not_An_ID", Kind: silo.KindTenant, State: silo.StateActive}, silo.CodeInvalid},
		{"empty ID", silo.Account{Kind: silo.KindTenant, State: silo.StateActive}, silo.CodeInvalid},
		{"no state", silo.Account{ID: "x2", Kind: silo.KindTenant}, silo.CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateAccount(tc.a) })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CreateAccount: %v, want success", err)
				}
				got, err := getAccount(t, s, tc.a.ID)
				if err != nil || got.Version != 1 {
					t.Fatalf("after create: got %+v, %v; want version 1", got, err)
				}
				if got.Created.IsZero() || got.Updated.IsZero() {
					t.Errorf("zero Created/Updated were not filled in: %+v", got)
				}
				return
			}
			wantCode(t, "CreateAccount", err, tc.want)
		})
	}
}

func testVersionConflict(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0))
	a1, _ := getAccount(t, s, "acme")
	b1 := a1 // a second reader of version 1

	a1.Name = "first writer"
	update(t, s, func(tx store.Tx) error { return tx.UpdateAccount(a1) })

	b1.Name = "second writer"
	err := s.Update(context.Background(), func(tx store.Tx) error { return tx.UpdateAccount(b1) })
	wantCode(t, "stale UpdateAccount", err, silo.CodeConflict)
	if !errors.Is(err, silo.ErrConflict) {
		t.Errorf("errors.Is(err, ErrConflict) = false for %v", err)
	}
	got, _ := getAccount(t, s, "acme")
	if got.Name != "first writer" || got.Version != 2 {
		t.Errorf("after stale write: got name %q version %d, want %q 2", got.Name, got.Version, "first writer")
	}

	// Must twin: re-reading and retrying succeeds.
	got.Name = "second writer"
	update(t, s, func(tx store.Tx) error { return tx.UpdateAccount(got) })
	got, _ = getAccount(t, s, "acme")
	if got.Name != "second writer" || got.Version != 3 {
		t.Errorf("after retry: got name %q version %d, want %q 3", got.Name, got.Version, "second writer")
	}

	// Two updates in one transaction: the second must carry the new version.
	update(t, s, func(tx store.Tx) error {
		a, err := tx.Account("acme")
		if err != nil {
			return err
		}
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		if err := tx.UpdateAccount(a); !errors.Is(err, silo.ErrConflict) {
			return fmt.Errorf("second update with the same version: got %v, want conflict", err)
		}
		a.Version++
		return tx.UpdateAccount(a)
	})
	got, _ = getAccount(t, s, "acme")
	if got.Version != 5 {
		t.Errorf("got version %d, want 5", got.Version)
	}
}

func testSecondProduction(t *testing.T, s store.Store) {
	prod := silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive, Created: at(0), Updated: at(0)}
	create(t, s, prod)

	err := s.Update(context.Background(), func(tx store.Tx) error {
		return tx.CreateAccount(silo.Account{ID: "prod-2", Kind: silo.KindProduction, State: silo.StateActive})
	})
	wantCode(t, "second production account", err, silo.CodeConflict)
	if _, err := getAccount(t, s, "prod-2"); !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("refused production account was stored: %v", err)
	}

	// Must twin: accounts of other kinds are still accepted.
	create(t, s, tenant("acme", 1), silo.Account{ID: "dev-ann", Kind: silo.KindDeveloper, State: silo.StateActive})

	// Turning a tenant into a second production account is refused too.
	a, _ := getAccount(t, s, "acme")
	a.Kind = silo.KindProduction
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.UpdateAccount(a) })
	wantCode(t, "tenant turned production", err, silo.CodeConflict)

	n := 0
	view(t, s, func(tx store.Tx) error {
		var err error
		n, err = tx.CountAccounts(store.Filter{Kind: silo.KindProduction, IncludeDeleted: true})
		return err
	})
	if n != 1 {
		t.Errorf("got %d production accounts, want 1", n)
	}
}

func testDuplicateID(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0))
	dup := tenant("acme", 1)
	dup.Name = "impostor"
	err := s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateAccount(dup) })
	wantCode(t, "duplicate ID", err, silo.CodeConflict)
	got, _ := getAccount(t, s, "acme")
	if got.Name != "Tenant acme" {
		t.Errorf("duplicate overwrote the account: name %q", got.Name)
	}
	// Must twin: a different ID is accepted.
	create(t, s, tenant("acme-2", 1))

	// A deleted account keeps its ID until it is purged.
	got.State = silo.StateDeleted
	update(t, s, func(tx store.Tx) error { return tx.UpdateAccount(got) })
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateAccount(dup) })
	wantCode(t, "ID of a deleted account", err, silo.CodeConflict)
	update(t, s, func(tx store.Tx) error { return tx.PurgeAccount("acme") })
	create(t, s, dup)
	got, _ = getAccount(t, s, "acme")
	if got.Name != "impostor" || got.Version != 1 {
		t.Errorf("after purge and re-create: got %q version %d, want %q 1", got.Name, got.Version, "impostor")
	}
}

func testPurge(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("other", 0))
	r, _ := silo.NewResource(silo.TypeTable, "findings", map[string]string{"pk": "id"})
	for _, id := range []silo.AccountID{"acme", "other"} {
		update(t, s, func(tx store.Tx) error {
			if err := tx.PutResource(id, r); err != nil {
				return err
			}
			return tx.PutKey(store.APIKey{ID: "sk_" + string(id), Account: id, Hash: []byte{1, 2, 3}, Created: at(1)})
		})
	}
	for _, id := range []silo.AccountID{"acme", "other"} {
		if err := publish(s, publication{"inc-a", at(1), []store.ReleaseMetrics{{Account: id, Release: "rel-1", Requests: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(context.Background(), func(tx store.Tx) error { return tx.PurgeAccount("acme") })
	wantCode(t, "purge an active account", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.PurgeAccount("nobody") })
	wantCode(t, "purge a missing account", err, silo.CodeNotFound)

	a, _ := getAccount(t, s, "acme")
	a.State = silo.StateDeleted
	update(t, s, func(tx store.Tx) error {
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		return tx.PurgeAccount("acme")
	})
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.Account("acme"); !errors.Is(err, silo.ErrNotFound) {
			t.Errorf("purged account: got %v, want not found", err)
		}
		if _, err := tx.Key("sk_acme"); !errors.Is(err, silo.ErrNotFound) {
			t.Errorf("key of purged account: got %v, want not found", err)
		}
		if ms, err := tx.ReleaseMetrics("acme", "rel-1"); err != nil || len(ms) != 0 {
			t.Errorf("request metrics of the purged account: got %v, %v; want none (a new acme would count them)", ms, err)
		}
		if ms, err := tx.ReleaseMetrics("other", "rel-1"); err != nil || len(ms) != 1 {
			t.Errorf("other account's request metrics: got %v, %v; want 1", ms, err)
		}
		// Must twin: the other account keeps everything.
		rs, err := tx.Resources("other")
		if err != nil || len(rs) != 1 {
			t.Errorf("other account's resources: got %v, %v; want 1", rs, err)
		}
		if _, err := tx.Key("sk_other"); err != nil {
			t.Errorf("other account's key: %v", err)
		}
		return nil
	})
}

// fleet is a set of accounts for filter tests. The IDs are chosen so that
// byte order and common locale collations disagree.
func fleet() []silo.Account {
	var as []silo.Account
	add := func(id string, k silo.Kind, st silo.State) {
		as = append(as, silo.Account{ID: silo.AccountID(id), Kind: k, State: st, Created: at(len(as)), Updated: at(len(as))})
	}
	add("production", silo.KindProduction, silo.StateActive)
	for i, id := range []string{"a", "a-b", "a0", "ab", "b", "b-1", "b1", "zeta", "acme", "acme-corp", "acme2"} {
		st := []silo.State{silo.StateActive, silo.StateSuspended, silo.StateDeleted, silo.StateProvisioning}[i%4]
		add(id, silo.KindTenant, st)
	}
	add("dev-ann", silo.KindDeveloper, silo.StateActive)
	add("dev-bob", silo.KindDeveloper, silo.StateDeleted)
	add("demo", silo.KindEnvironment, silo.StateActive)
	return as
}

// model applies f to as the way the contract says a store must.
func model(as []silo.Account, f store.Filter) []silo.AccountID {
	var ids []silo.AccountID
	for _, a := range as {
		switch {
		case f.Kind != "" && a.Kind != f.Kind,
			f.State != "" && a.State != f.State,
			f.State == "" && !f.IncludeDeleted && a.State == silo.StateDeleted,
			f.After != "" && a.ID <= f.After:
			continue
		}
		ids = append(ids, a.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if f.Limit > 0 && len(ids) > f.Limit {
		ids = ids[:f.Limit]
	}
	return ids
}

func testFilters(t *testing.T, s store.Store) {
	as := fleet()
	create(t, s, as...)
	tests := []struct {
		name string
		f    store.Filter
	}{
		{"everything live", store.Filter{}},
		{"including deleted", store.Filter{IncludeDeleted: true}},
		{"tenants", store.Filter{Kind: silo.KindTenant}},
		{"tenants including deleted", store.Filter{Kind: silo.KindTenant, IncludeDeleted: true}},
		{"developers", store.Filter{Kind: silo.KindDeveloper}},
		{"suspended", store.Filter{State: silo.StateSuspended}},
		{"deleted by state", store.Filter{State: silo.StateDeleted}},
		{"active tenants", store.Filter{Kind: silo.KindTenant, State: silo.StateActive}},
		{"after a-b", store.Filter{After: "a-b", IncludeDeleted: true}},
		{"limit 3", store.Filter{Limit: 3}},
		{"after and limit", store.Filter{After: "acme", Limit: 4, IncludeDeleted: true}},
		{"no match", store.Filter{Kind: silo.KindEnvironment, State: silo.StateSuspended}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := model(as, tc.f)
			view(t, s, func(tx store.Tx) error {
				got, err := tx.Accounts(tc.f)
				if err != nil {
					return err
				}
				ids := make([]silo.AccountID, len(got))
				for i, a := range got {
					ids[i] = a.ID
				}
				if d := cmp.Diff(want, ids, cmpOpts...); d != "" {
					t.Errorf("Accounts(%+v) IDs (-want +got):\n%s", tc.f, d)
				}
				n, err := tx.CountAccounts(tc.f)
				if err != nil {
					return err
				}
				if n != len(want) {
					t.Errorf("CountAccounts(%+v) = %d, want %d", tc.f, n, len(want))
				}
				return nil
			})
		})
	}
	// Full records come back from a listing, not just IDs.
	view(t, s, func(tx store.Tx) error {
		got, err := tx.Accounts(store.Filter{Kind: silo.KindEnvironment})
		if err != nil {
			return err
		}
		want := as[len(as)-1]
		want.Version = 1
		if d := cmp.Diff([]silo.Account{want}, got, cmpOpts...); d != "" {
			t.Errorf("listed record (-want +got):\n%s", d)
		}
		return nil
	})
}

func testPaging(t *testing.T, s store.Store) {
	var as []silo.Account
	for i := range 53 {
		as = append(as, tenant(fmt.Sprintf("t%03d", (i*37)%53), i)) // inserted out of order
	}
	create(t, s, as...)
	want := model(as, store.Filter{})
	for _, size := range []int{1, 7, 53, 100} {
		var got []silo.AccountID
		f := store.Filter{Limit: size}
		for pages := 0; ; pages++ {
			if pages > 60 {
				t.Fatalf("page size %d: paging does not end", size)
			}
			var page []silo.Account
			view(t, s, func(tx store.Tx) error {
				var err error
				page, err = tx.Accounts(f)
				return err
			})
			for _, a := range page {
				got = append(got, a.ID)
			}
			if len(page) < size {
				break
			}
			f.After = page[len(page)-1].ID
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("page size %d: concatenated pages (-want +got):\n%s", size, d)
		}
	}
}
