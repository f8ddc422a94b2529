package isolation

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
)

// Gate checks a proposed release against the fleet before anything is
// applied: it computes what every live account would hold under rel
// (engine.Desired) and verifies the fleet as it would then be. A fleet
// with no live tenant, developer or environment account gets a stand-in
// tenant (StandIn) holding what every such account would hold under rel
// (engine.Template.Shape), so the per-account part of a release is proved
// before the first account is created on it: accounts are created on the
// current release without passing the gate again.
//
// # Errors
//
// CodeFailedCheck if the fleet would open a path across accounts or break
// another invariant under the release: the refusal counts the violations
// the release makes (what the accounts would hold under it) apart from
// those the fleet has already whatever release it runs (API keys,
// operators, account records, what deleted accounts still hold), names
// the first of each and says what to do about each; a fleet that has any
// is refused every release until it is repaired. The error of
// engine.Desired if an account's resources cannot be computed.
func Gate(ctx context.Context, rel engine.Release, f *Fleet) (Result, error) {
	return GateKeeping(ctx, rel, f, nil)
}

// GateKeeping is Gate for a release that leaves some accounts as they
// are: those keep reports true for (a rollout moves only the accounts its
// rings select) are verified with what they hold as recorded, beside
// what the others would hold under rel. keep nil keeps none.
//
// # Errors
//
// Gate's, and CodeFailedCheck naming the account when a kept account's
// function is granted a production export that rel removes: the release
// would leave it holding a grant production does not back (a developer's
// own build, say, which silo dev would refuse to apply).
func GateKeeping(ctx context.Context, rel engine.Release, f *Fleet, keep func(silo.Account) bool) (Result, error) {
	if err := keptExports(rel, f, keep); err != nil {
		return Result{}, err
	}
	g := f.Clone()
	// Accounts of the same kind with the same parameters hold the same
	// resource names and grants under a release; they differ only in
	// interpolated config values, which are not part of the access graph. So
	// the desired resources are computed once per (kind, parameters).
	memo := map[string][]silo.Resource{}
	for i := range g.Accounts {
		as := &g.Accounts[i]
		if as.Account.State == silo.StateDeleted || as.Account.State == silo.StateDeleting {
			continue
		}
		if keep != nil && as.Account.Kind != silo.KindProduction && keep(as.Account) {
			continue // stays as recorded
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		mk := memoKey(as.Account)
		rs, ok := memo[mk]
		if !ok {
			var err error
			rs, err = engine.Desired(rel.Stack, rel.Artifacts, as.Account)
			if err != nil {
				return Result{}, fmt.Errorf("gate release %s for %s: %w", rel.ID, as.Account.ID, err)
			}
			memo[mk] = rs
		}
		as.Resources = rs
		as.Account.Release = rel.ID
	}
	standIn := silo.AccountID("")
	if _, prod := memo["production"]; len(memo) == 0 || len(memo) == 1 && prod {
		t, err := engine.Compile(rel.Stack, rel.Artifacts)
		if err != nil {
			return Result{}, fmt.Errorf("gate release %s: %w", rel.ID, err)
		}
		rs, err := t.Shape()
		if err != nil {
			return Result{}, fmt.Errorf("gate release %s for new accounts: %w", rel.ID, err)
		}
		if _, ok := memo["production"]; !ok {
			// The first account created on rel creates production too.
			prod := silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive, Release: rel.ID}
			prs, err := t.For(prod)
			if err != nil {
				return Result{}, fmt.Errorf("gate release %s for the production account: %w", rel.ID, err)
			}
			g.Accounts = append(g.Accounts, AccountState{Account: prod, Resources: prs, HasDataKey: true})
		}
		standIn = freeID(g, StandIn)
		g.Accounts = append(g.Accounts, AccountState{
			Account:   silo.Account{ID: standIn, Kind: silo.KindTenant, State: silo.StateActive, Release: rel.ID},
			Resources: rs, HasDataKey: true,
		})
	}
	res := Verify(ctx, g)
	if res.Status != StatusViolated {
		return res, nil
	}
	return res, refusal(ctx, rel, f, res, standIn)
}

// keptExports refuses rel when an account of f that keep keeps (a live
// account other than production) runs a function granted an export that
// production exports as recorded and rel's production section drops.
func keptExports(rel engine.Release, f *Fleet, keep func(silo.Account) bool) error {
	if keep == nil || rel.Stack == nil {
		return nil
	}
	had := map[string]bool{}
	for _, as := range f.Accounts {
		if as.Account.ID != silo.ProductionID {
			continue
		}
		for _, r := range as.Resources {
			if r.Type == silo.TypeExport {
				had[r.Name] = true
			}
		}
	}
	for _, as := range f.Accounts {
		a := as.Account
		if a.Kind == silo.KindProduction || a.State == silo.StateDeleted || a.State == silo.StateDeleting || !keep(a) {
			continue
		}
		for _, r := range as.Resources {
			if r.Type != silo.TypeFunction {
				continue
			}
			var fs silo.FunctionSpec
			if err := json.Unmarshal(r.Spec, &fs); err != nil {
				return fmt.Errorf("gate release %s: read function %s of %s: %w", rel.ID, r.Name, a.ID, err)
			}
			for _, e := range fs.Exports {
				if _, still := rel.Stack.Production.Exports[e]; had[e] && !still {
					what := "that account"
					if a.Kind == silo.KindDeveloper {
						what = "that developer's silo.yaml (silo dev applies it when saved)"
					}
					return silo.Errorf(silo.CodeFailedCheck, "release %s refused: it removes export %q from production, and %s account %s, which no ring of the release selects, runs release %s whose function %s is granted it: the rollout would leave %s holding a grant production no longer backs, which breaks I1 in every proof of the installation. Remove the grant from %s first, or select %s in a ring of this silo.yaml (rollout.rings) so that the rollout moves it, then deploy again; nothing was changed",
						rel.ID, e, a.Kind, a.ID, a.Release, r.Name, a.ID, what, a.ID)
				}
			}
		}
	}
	return nil
}

// refusal is Gate's error for release rel, under which the fleet f would
// have the counterexamples of res. It tells the release's own (what the
// accounts would hold under it) from those the fleet has already, whatever
// release it runs: those of f with no resource on any live account (API
// keys, operators, account records, and what deleted accounts still hold).
// Each group is counted, its first named, and the refusal says what to do
// about each: fix silo.yaml for the release's, repair the fleet for the
// others. standIn is the stand-in tenant Gate added, if any.
func refusal(ctx context.Context, rel engine.Release, f *Fleet, res Result, standIn silo.AccountID) error {
	bare := f.Clone()
	for i := range bare.Accounts {
		if st := bare.Accounts[i].Account.State; st != silo.StateDeleted && st != silo.StateDeleting {
			bare.Accounts[i].Resources = nil
		}
	}
	already := Verify(ctx, bare)
	if err := ctx.Err(); err != nil {
		return err
	}
	// A counterexample of res is the fleet's when the bare fleet has the
	// same one. Counting the bare fleet's alone would overcount: with no
	// resources on live accounts, production exports nothing, so the
	// export grants of an account being deleted are counterexamples there
	// and not under rel.
	inFleet := map[string]int{}
	for _, c := range already.Counterexamples {
		inFleet[c.Invariant+"\x00"+c.Problem]++
	}
	var own, fleet []Counterexample
	for _, c := range res.Counterexamples {
		if k := c.Invariant + "\x00" + c.Problem; inFleet[k] > 0 {
			inFleet[k]--
			fleet = append(fleet, c)
		} else {
			own = append(own, c)
		}
	}
	nFleet := len(fleet)
	if res.Violations > len(res.Counterexamples) || already.Violations > len(already.Counterexamples) {
		// Past MaxCounterexamples not every one is listed: count by totals.
		nFleet = max(nFleet, min(already.Violations, res.Violations))
	}
	nOwn := res.Violations - nFleet
	first := func(cs []Counterexample) string {
		if len(cs) == 0 {
			return "more than the verifier lists"
		}
		s := describe(cs[0])
		if r := repairOf(cs[0]); r != "" {
			s += " (repair: " + r + ")"
		}
		if standIn != "" && (Result{Counterexamples: cs[:1]}).Involving(standIn) != nil {
			s += fmt.Sprintf(" (%s stands for every account created on this release)", standIn)
		}
		return s
	}
	const repair = `silo verify lists every violation, and docs/operations.md ("A fleet the isolation gate refuses") says how to repair each kind`
	switch {
	case nFleet == 0:
		return silo.Errorf(silo.CodeFailedCheck, "release %s refused: it would break isolation in %d place(s); first: %s; fix silo.yaml and build again", rel.ID, nOwn, first(own))
	case nOwn == 0:
		return silo.Errorf(silo.CodeFailedCheck, "release %s refused: the fleet already breaks isolation in %d place(s), whatever release it runs, and the gate passes no release until it is repaired; first: %s. The release adds no violation of its own. Repair the fleet, then deploy again: %s; nothing was changed", rel.ID, nFleet, first(fleet), repair)
	}
	return silo.Errorf(silo.CodeFailedCheck, "release %s refused: it would break isolation in %d place(s); first: %s; fix silo.yaml and build again. The fleet also breaks isolation in %d place(s) already, whatever release it runs; first: %s. Repair those too: %s; nothing was changed", rel.ID, nOwn, first(own), nFleet, first(fleet), repair)
}

// StandIn is the ID Gate gives the stand-in tenant it adds to a fleet that
// has no live tenant, developer or environment account (or, if an account
// of that ID was ever recorded, StandIn with a number appended).
const StandIn silo.AccountID = "new-account"

// freeID returns id, or id-2, id-3, ... if an account of f has it.
func freeID(f *Fleet, id silo.AccountID) silo.AccountID {
	taken := make(map[silo.AccountID]bool, len(f.Accounts))
	for _, as := range f.Accounts {
		taken[as.Account.ID] = true
	}
	out := id
	for i := 2; taken[out]; i++ {
		out = silo.AccountID(fmt.Sprintf("%s-%d", id, i))
	}
	return out
}

func memoKey(a silo.Account) string {
	if a.Kind == silo.KindProduction {
		return "production"
	}
	keys := make([]string, 0, len(a.Params))
	for k := range a.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(string(a.Kind))
	for _, k := range keys {
		fmt.Fprintf(&b, "\x00%q=%q", k, a.Params[k])
	}
	return b.String()
}
