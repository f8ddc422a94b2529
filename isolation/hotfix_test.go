package isolation_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/spec"
)

// Releases for the hotfix probes, each against testFleet (recorded on
// testRelease).
func hotfixReleases() (same, tenants, prod, crossGlobex, crossDeleting, dropRules engine.Release) {
	rel := func(id string, edit func(*spec.Stack)) engine.Release {
		s := testStack()
		edit(s)
		return engine.Release{ID: id, Stack: s, Artifacts: testArtifacts}
	}
	same = rel("r-test", func(*spec.Stack) {})
	// A sound hotfix of every tenant's function list.
	tenants = rel("r-tenants", func(s *spec.Stack) { fn := s.Functions["list"]; fn.Memory *= 2; s.Functions["list"] = fn })
	// A sound hotfix of production alone.
	prod = rel("r-prod", func(s *spec.Stack) {
		fn := s.Production.Functions["refresh"]
		fn.Memory *= 2
		s.Production.Functions["refresh"] = fn
	})
	grant := func(id, table string) engine.Release {
		return rel(id, func(s *spec.Stack) {
			fn := s.Functions["list"]
			fn.Tables = map[string]spec.Access{"findings": spec.AccessRead, table: spec.AccessRead}
			s.Functions["list"] = fn
		})
	}
	crossGlobex = grant("r-cross", "globex/findings")
	crossDeleting = grant("r-cross-deleting", string(tenantName(2))+"/findings")
	// Sound alone: production stops exporting rules and no function of
	// the release is granted it.
	dropRules = rel("r-drop", func(s *spec.Stack) {
		delete(s.Production.Exports, "rules")
		fn := s.Functions["list"]
		fn.Exports = slices.DeleteFunc(slices.Clone(fn.Exports), func(e string) bool { return e == "rules" })
		s.Functions["list"] = fn
	})
	return
}

// Fleets with a violation no release makes, each with its fix.
var (
	keyOnProduction = func(f *isolation.Fleet) { // I2, involves production
		f.Keys = append(f.Keys, isolation.Key{ID: "sk_production_0123456789abcdef", Account: silo.ProductionID})
	}
	globexKeyOnAcme = func(f *isolation.Fleet) { // I4, involves acme and globex
		f.Keys = append(f.Keys, isolation.Key{ID: "sk_globex_fedcba9876543210", Account: "acme"})
	}
	liveKeyOfDeleted = func(f *isolation.Fleet) { // I5, involves t00002, deleted
		for i := range f.Accounts {
			if f.Accounts[i].Account.ID == tenantName(2) {
				f.Accounts[i].Account.State = silo.StateDeleted
				f.Accounts[i].Resources = nil
				f.Accounts[i].HasDataKey = false
			}
		}
	}
	deleting = func(f *isolation.Fleet) { // no violation: t00002 is being deleted, granted rules
		for i := range f.Accounts {
			if f.Accounts[i].Account.ID == tenantName(2) {
				f.Accounts[i].Account.State = silo.StateDeleting
			}
		}
	}
)

func hotfixFleet(t *testing.T, edits ...func(*isolation.Fleet)) *isolation.Fleet {
	f := testFleet(t, 3)
	for _, e := range edits {
		e(f)
	}
	return f
}

// A release that adds no violation and changes nothing the fleet's
// violations involve passes, with a warning naming each of them and its
// fix; one that adds a violation, or changes what a violation of the
// fleet involves, is refused. The probes try to get a cross-tenant grant,
// or a change to what a wrongly bound key reaches, through the warning.
func TestGateHotfix(t *testing.T) {
	ctx := context.Background()
	same, tenants, prod, crossGlobex, crossDeleting, dropRules := hotfixReleases()
	for _, tc := range []struct {
		name  string
		rel   engine.Release
		fleet []func(*isolation.Fleet)
		// warns: the gate passes with a warning saying these; refuses:
		// it refuses, saying these. notSays: neither says these.
		warns, refuses, notSays []string
	}{
		// The twins: hotfixes that pass with the warning.
		{name: "same release, key on production", rel: same, fleet: edits(keyOnProduction), warns: []string{
			"release r-test passed the isolation gate", "the fleet already breaks isolation in 1 place(s)",
			"I2: API key sk_production_0123456789abcdef is bound to the production account", "repair: silo keys remove sk_production_0123456789abcdef",
		}},
		{name: "tenants' hotfix, key on production", rel: tenants, fleet: edits(keyOnProduction), warns: []string{
			"release r-tenants passed", "repair: silo keys remove sk_production_0123456789abcdef"}},
		{name: "production's hotfix, live key of a deleted account", rel: prod, fleet: edits(liveKeyOfDeleted), warns: []string{
			"release r-prod passed", "I5: API key sk_t00002_0123456789abcdef is live but its account t00002 is deleted", "repair: silo keys remove sk_t00002_0123456789abcdef"}},
		{name: "same release, globex's key on acme", rel: same, fleet: edits(globexKeyOnAcme), warns: []string{
			"I4: API key sk_globex_fedcba9876543210 names account \"globex\" but is bound to acme", "repair: silo keys remove sk_globex_fedcba9876543210"}},
		{name: "same release, two violations", rel: same, fleet: edits(keyOnProduction, liveKeyOfDeleted), warns: []string{
			"breaks isolation in 2 place(s)", "sk_production_0123456789abcdef", "sk_t00002_0123456789abcdef"}},

		// The probes: each must be refused.
		{name: "adds a cross-tenant grant while the fleet has a violation", rel: crossGlobex, fleet: edits(keyOnProduction), refuses: []string{
			"release r-cross refused: it would break isolation in 3 place(s); first: I1: function list of acme: grant name \"globex/findings\" is a path naming account globex",
			"The fleet also breaks isolation in 1 place(s) already", "repair: silo keys remove sk_production_0123456789abcdef",
		}, notSays: []string{"adds no violation"}},
		{name: "grant into an account being deleted, while the fleet has a violation", rel: crossDeleting, fleet: edits(keyOnProduction, deleting), refuses: []string{
			"release r-cross-deleting refused: it would break isolation in 2 place(s); first: I1: function list of acme: grant name \"t00002/findings\" is a path naming account t00002",
			"The fleet also breaks isolation in 1 place(s) already",
		}, notSays: []string{"adds no violation"}},
		{name: "drops an export an account being deleted is granted, while the fleet has a violation", rel: dropRules, fleet: edits(keyOnProduction, deleting), refuses: []string{
			"release r-drop refused: it would break isolation in 1 place(s); first: I1: function list of t00002 is granted export \"rules\", which production does not export",
		}, notSays: []string{"adds no violation"}},
		{name: "tenants' hotfix changes what globex's key on acme reaches", rel: tenants, fleet: edits(globexKeyOnAcme), refuses: []string{
			"release r-tenants refused: the fleet already breaks isolation in 1 place(s), and the release changes what 1 of them involve",
			"first: I4: API key sk_globex_fedcba9876543210", "repair: silo keys remove sk_globex_fedcba9876543210",
		}, notSays: []string{"fix silo.yaml"}},
		{name: "production's hotfix changes what acme's functions read, globex's key on acme", rel: prod, fleet: edits(globexKeyOnAcme), refuses: []string{
			"release r-prod refused: the fleet already breaks isolation in 1 place(s), and the release changes what 1 of them involve"}},
		{name: "production's hotfix, key on production", rel: prod, fleet: edits(keyOnProduction), refuses: []string{
			"release r-prod refused: the fleet already breaks isolation in 1 place(s), and the release changes what 1 of them involve"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := isolation.Gate(ctx, tc.rel, hotfixFleet(t, tc.fleet...))
			if tc.refuses != nil {
				if silo.ErrorCode(err) != silo.CodeFailedCheck {
					t.Fatalf("Gate = %v (result %d violations), want a refusal", err, res.Violations)
				}
				assertSays(t, silo.UserMessage(err), tc.refuses, tc.notSays)
				return
			}
			if err != nil {
				t.Fatalf("Gate = %v, want it to pass with a warning", err)
			}
			if res.Status != isolation.StatusViolated || res.FromRelease != 0 || res.Touched != 0 {
				t.Fatalf("result: status %s, %d from the release, %d touched; want counterexamples, all the fleet's, none touched", res.Status, res.FromRelease, res.Touched)
			}
			for _, c := range res.Counterexamples {
				if c.Source != isolation.SourceFleet || c.Touched {
					t.Errorf("counterexample %q: source %q, touched %v; want the fleet's, untouched", c.Problem, c.Source, c.Touched)
				}
			}
			assertSays(t, isolation.GateWarning(tc.rel.ID, res), tc.warns, tc.notSays)
		})
	}
}

func edits(edits ...func(*isolation.Fleet)) []func(*isolation.Fleet) { return edits }

func assertSays(t *testing.T, msg string, says, notSays []string) {
	t.Helper()
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("%q does not say %q", msg, s)
		}
	}
	for _, s := range notSays {
		if strings.Contains(msg, s) {
			t.Errorf("%q says %q", msg, s)
		}
	}
}

// Past MaxCounterexamples, the split between the release's violations and
// the fleet's is counted on every violation, not on those listed: an
// account being deleted (first in the fleet, so its violations are
// listed first) holds more cross-account grants than the verifier lists,
// and a release adds a cross-tenant grant (listed past the bound), or
// changes what a wrongly bound key reaches (a key is checked after every
// account). Both are refused, counted and named; the twin, a release that
// changes nothing, passes with the warning, which says how many it does
// not list.
func TestGateHotfixPastMaxCounterexamples(t *testing.T) {
	ctx := context.Background()
	same, tenants, _, crossGlobex, _, _ := hotfixReleases()
	n := isolation.MaxCounterexamples + 1
	big := func(edits ...func(*isolation.Fleet)) *isolation.Fleet {
		f := hotfixFleet(t, edits...)
		old := isolation.AccountState{Account: silo.Account{ID: "aaa-old", Kind: silo.KindTenant, State: silo.StateDeleting, Release: "r-old"}, HasDataKey: true}
		for i := range n {
			fs := silo.FunctionSpec{Handler: "handle", Memory: 64 << 20, Concurrency: 1, Tables: map[string]string{"ghost/findings": "read"}}
			r := silo.Resource{Type: silo.TypeFunction, Name: fmt.Sprintf("f%04d", i), Spec: mustJSON(fs)}
			r.Hash = r.ComputeHash()
			old.Resources = append(old.Resources, r)
		}
		f.Accounts = append([]isolation.AccountState{old}, f.Accounts...)
		return f
	}
	t.Run("a cross-tenant grant past the bound", func(t *testing.T) {
		res, err := isolation.Gate(ctx, crossGlobex, big())
		if silo.ErrorCode(err) != silo.CodeFailedCheck {
			t.Fatalf("Gate = %v, want a refusal", err)
		}
		if res.FromRelease != 3 || res.Violations != n+3 {
			t.Errorf("%d of %d violations from the release, want 3 of %d", res.FromRelease, res.Violations, n+3)
		}
		assertSays(t, silo.UserMessage(err), []string{
			"release r-cross refused: it would break isolation in 3 place(s); first: I1: function list of acme: grant name \"globex/findings\" is a path naming account globex",
			fmt.Sprintf("The fleet also breaks isolation in %d place(s) already", n),
		}, []string{"adds no violation", "more than the verifier lists"})
	})
	t.Run("a touched key past the bound", func(t *testing.T) {
		res, err := isolation.Gate(ctx, tenants, big(globexKeyOnAcme))
		if silo.ErrorCode(err) != silo.CodeFailedCheck {
			t.Fatalf("Gate = %v (%d touched), want a refusal", err, res.Touched)
		}
		assertSays(t, silo.UserMessage(err), []string{
			fmt.Sprintf("release r-tenants refused: the fleet already breaks isolation in %d place(s), and the release changes what 1 of them involve, which could make them worse; first: I4: API key sk_globex_fedcba9876543210", n+1),
		}, []string{"more than the verifier lists"})
	})
	t.Run("twin: the same release passes with the warning", func(t *testing.T) {
		res, err := isolation.Gate(ctx, same, big())
		if err != nil {
			t.Fatalf("Gate = %v, want it to pass with a warning", err)
		}
		assertSays(t, isolation.GateWarning(same.ID, res), []string{
			fmt.Sprintf("the fleet already breaks isolation in %d place(s)", n),
			"function f0000 of aaa-old: grant name \"ghost/findings\"", "repair: run silo tenant delete aaa-old again",
			"... and 1 more: silo verify lists every one",
		}, nil)
	})
}

// What a release declares for production is its own: an account being
// deleted granted an export production does not export is refused even
// when the release leaves production as it is (the release could export
// it, or have dropped it). The twin: the same fleet without the grant
// passes.
func TestGateHotfixExportGrantReadsProduction(t *testing.T) {
	ctx := context.Background()
	same, _, _, _, _, _ := hotfixReleases()
	ghost := func(f *isolation.Fleet) {
		mutateFn(t, f, tenantName(2), "list", func(fs *silo.FunctionSpec) { fs.Exports = append(fs.Exports, "ghost") })
	}
	_, err := isolation.Gate(ctx, same, hotfixFleet(t, keyOnProduction, deleting, ghost))
	if silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Fatalf("Gate = %v, want a refusal", err)
	}
	assertSays(t, silo.UserMessage(err), []string{"it would break isolation in 1 place(s); first: I1: function list of t00002 is granted export \"ghost\""}, nil)
	if _, err := isolation.Gate(ctx, same, hotfixFleet(t, keyOnProduction, deleting)); err != nil {
		t.Fatalf("twin: Gate = %v, want it to pass", err)
	}
}

// The stand-in tenant of a fleet with no tenant never takes the ID of an
// account a key is bound to: the key bound to no existing account stays
// a violation (passed with the warning), instead of reaching the
// stand-in.
func TestGateStandInAvoidsKeyAccounts(t *testing.T) {
	ctx := context.Background()
	f := testFleet(t, 0)
	f.Keys = append(f.Keys, isolation.Key{ID: "sk_new-account_0123456789abcdef", Account: isolation.StandIn})
	res, err := isolation.Gate(ctx, testRelease(t), f)
	if err != nil {
		t.Fatalf("Gate = %v, want it to pass with a warning", err)
	}
	assertSays(t, isolation.GateWarning("r-test", res), []string{"API key sk_new-account_0123456789abcdef is bound to account new-account, which does not exist"}, nil)
}
