package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// TestDevBuildAppliesToDeveloperAccountsOnly: a release only silo dev
// stored is neither applied to a tenant nor a tenant created on it, and
// the refusal changes nothing; the twin: a developer account takes it,
// applied or created on it.
func TestDevBuildAppliesToDeveloperAccountsOnly(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir(), nil)
	v1 := release(t, stackV1, "sha256:aaaa")
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "dev-ann", Kind: silo.KindDeveloper}, v1); err != nil {
		t.Fatal(err)
	}
	st, err := spec.Parse("silo.yaml", []byte(stackV2))
	if err != nil {
		t.Fatal(err)
	}
	dev, stored, err := engine.NewRelease(st, map[string]string{"ingest": "sha256:aaaa"}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	stored.Origin = store.DevOrigin("dev-ann")
	if err := e.store.Update(ctx, func(tx store.Tx) error { return tx.PutRelease(stored) }); err != nil {
		t.Fatal(err)
	}
	const refused = "is a developer's build from silo dev of dev-ann"

	for _, tc := range []struct {
		id      silo.AccountID
		refused bool
	}{{"acme", true}, {"dev-ann", false}} {
		p, err := e.eng.PlanAccount(ctx, account(t, e, tc.id), dev)
		if err != nil || !p.Touches() {
			t.Fatalf("plan of %s onto the dev build: %+v, %v; want changes", tc.id, p, err)
		}
		err = e.eng.Apply(ctx, p)
		got := account(t, e, tc.id).Release
		switch {
		case tc.refused && (silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), refused) || got != v1.ID):
			t.Errorf("apply of the dev build to %s: %v, account on %s; want invalid saying %q, account still on %s", tc.id, err, got, refused, v1.ID)
		case !tc.refused && (err != nil || got != dev.ID):
			t.Errorf("apply of the dev build to %s: %v, account on %s; want it on %s", tc.id, err, got, dev.ID)
		}
	}
	// The refused apply changed nothing of acme.
	if p, err := e.eng.PlanAccount(ctx, account(t, e, "acme"), v1); err != nil || p.Touches() {
		t.Errorf("acme after the refused apply: plan onto %s %+v, %v; want nothing to change", v1.ID, p, err)
	}

	for _, tc := range []struct {
		acct    silo.Account
		refused bool
	}{
		{silo.Account{ID: "globex", Kind: silo.KindTenant}, true},
		{silo.Account{ID: "dev-bob", Kind: silo.KindDeveloper}, false},
	} {
		a, err := e.eng.CreateAccount(ctx, tc.acct, dev)
		switch {
		case tc.refused && (silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(err.Error(), refused)):
			t.Errorf("create %s on the dev build: %v; want invalid saying %q", tc.acct.ID, err, refused)
		case !tc.refused && (err != nil || a.Release != dev.ID):
			t.Errorf("create %s on the dev build: %+v, %v; want it on %s", tc.acct.ID, a, err, dev.ID)
		}
	}
	if err := e.store.View(ctx, func(tx store.Tx) error { _, err := tx.Account("globex"); return err }); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("globex after its creation on the dev build was refused: %v; want no such account", err)
	}
	ids, err := e.prov.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == "globex" {
			t.Errorf("the provider holds globex after its creation on the dev build was refused: %v", ids)
		}
	}
}
