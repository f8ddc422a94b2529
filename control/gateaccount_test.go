package control_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// withPlan declares a tenant parameter "plan", so that parameter changes
// can be tried.
func withPlan(s *spec.Stack) {
	s.Params = map[string]spec.Param{"plan": {Type: spec.ParamString, Default: "free"}}
}

// crossing is withPlan plus a function granted every table (a wildcard,
// which the spec parser refuses; built directly, as a release stored by a
// silo older than the gate might be).
func crossing(s *spec.Stack) {
	withPlan(s)
	f := s.Functions["f"]
	f.Tables = map[string]spec.Access{"*": spec.AccessRead}
	s.Functions["f"] = f
}

// crossingProduction is withPlan plus a production function granted a
// table production does not declare: a problem of production alone.
func crossingProduction(s *spec.Stack) {
	withPlan(s)
	s.Production.Functions = map[string]spec.Function{"g": {Source: "./g.wasm", Tables: map[string]spec.Access{"undeclared": spec.AccessRead}}}
}

// makeCurrent records rel as current directly in the store, without the
// gate: what a silo older than the gate left behind.
func makeCurrent(t *testing.T, st store.Store, rel engine.Release) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.SetCurrentRelease(rel.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot is everything an onboarding or a parameter change could have
// written: the registry with each account's version and parameters, the
// audit log's length and the accounts the provider holds.
func snapshot(t *testing.T, st store.Store, prov *local.Provider) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	err := st.View(ctx, func(tx store.Tx) error {
		as, err := tx.Accounts(store.Filter{IncludeDeleted: true})
		if err != nil {
			return err
		}
		for _, a := range as {
			fmt.Fprintf(&b, "%s %s v%d %s %v; ", a.ID, a.State, a.Version, a.Release, a.Params)
		}
		es, err := tx.Audit(0, 0)
		fmt.Fprintf(&b, "audit %d; ", len(es))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := prov.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "provider %v", ids)
	return b.String()
}

// TestOnboardingGatesTheCurrentRelease: a current release that never
// passed the isolation gate (made current by hand, as a silo older than
// the gate did) reaches no account: creating an account (the first one,
// which creates production too, or a later one) and changing an account's
// parameters are refused with the release named and what to do, and
// nothing is written, in the registry, the audit log or the provider. The
// twins: on a release that passes the gate, the same requests go through.
func TestOnboardingGatesTheCurrentRelease(t *testing.T) {
	ctx := context.Background()
	refused := func(t *testing.T, what string, err error, rel engine.Release, acct string) {
		t.Helper()
		msg := silo.UserMessage(err)
		if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(msg, "release "+rel.ID+" would break isolation in account "+acct) || !strings.Contains(msg, "nothing was changed. Deploy a release that passes the isolation gate") {
			t.Fatalf("%s on an ungated release: %v; want failed_check naming release %s and account %s, and what to do", what, err, rel.ID, acct)
		}
	}

	t.Run("first account", func(t *testing.T) {
		p, st, prov := openWithProvider(t)
		// The first account creates production on the release too: a
		// release whose production part breaks isolation is refused as
		// well as one whose tenant part does.
		for _, mutate := range []func(*spec.Stack){crossing, crossingProduction} {
			bad := release(t, st, mutate)
			makeCurrent(t, st, bad)
			before := snapshot(t, st, prov)
			_, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme", WithKey: true})
			refused(t, "creating the first account", err, bad, "acme")
			if after := snapshot(t, st, prov); after != before {
				t.Errorf("a refused first onboarding wrote something:\nbefore %s\nafter  %s", before, after)
			}
		}
		good := release(t, st, withPlan)
		makeCurrent(t, st, good)
		c, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme", WithKey: true})
		if err != nil || c.Account.State != silo.StateActive || c.Key == "" {
			t.Fatalf("first account on a release that passes the gate: %+v, %v; want it active with a key", c.Account, err)
		}
		if prod, err := p.Account(ctx, silo.ProductionID); err != nil || prod.State != silo.StateActive {
			t.Fatalf("production after the first account: %+v, %v; want it active", prod, err)
		}
	})

	t.Run("later account and parameters", func(t *testing.T) {
		p, st, prov := openWithProvider(t)
		good := release(t, st, withPlan)
		if err := p.SetCurrent(ctx, good); err != nil {
			t.Fatal(err)
		}
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
			t.Fatal(err)
		}
		// A wildcard grant, and a grant naming another account's table
		// by a path.
		traversal := func(s *spec.Stack) {
			withPlan(s)
			f := s.Functions["f"]
			f.Tables = map[string]spec.Access{"../acme/t": spec.AccessReadWrite}
			s.Functions["f"] = f
		}
		for _, mutate := range []func(*spec.Stack){crossing, traversal} {
			bad := release(t, st, mutate)
			makeCurrent(t, st, bad)
			before := snapshot(t, st, prov)
			_, err := p.CreateAccount(ctx, control.CreateRequest{ID: "globex", WithKey: true})
			refused(t, "creating an account", err, bad, "globex")
			_, err = p.UpdateParams(ctx, "acme", map[string]string{"plan": "pro"}, "Acme")
			refused(t, "changing parameters", err, bad, "acme")
			if after := snapshot(t, st, prov); after != before {
				t.Errorf("a refused onboarding or parameter change wrote something:\nbefore %s\nafter  %s", before, after)
			}
		}

		makeCurrent(t, st, good)
		if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "globex"}); err != nil {
			t.Fatalf("creating an account on a release that passes the gate: %v", err)
		}
		if _, err := p.UpdateParams(ctx, "acme", map[string]string{"plan": "pro"}, ""); err != nil {
			t.Fatalf("changing parameters on a release that passes the gate: %v", err)
		}
		if a, err := p.Account(ctx, "acme"); err != nil || a.Params["plan"] != "pro" {
			t.Fatalf("acme after its parameter change: %+v, %v; want plan=pro", a.Params, err)
		}
	})
}
