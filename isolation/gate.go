package isolation

import (
	"bytes"
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
// Each violation of the result says where it comes from
// (Counterexample.Source): what the release declares, or the fleet's own
// records. A release that makes no violation and touches none of the
// fleet's passes even while the fleet has some: the error is nil, the
// result has Status StatusViolated, and GateWarning says what to repair.
// A violation of the fleet is touched when the release changes what an
// account it involves holds (its recorded resources differ from what the
// release gives it), or changes the production account while an account
// it involves is not deleted (its functions may read production's
// exports), or changes any account while it involves every account.
//
// # Errors
//
// CodeFailedCheck if the release makes a violation or touches one of the
// fleet's: the refusal counts the violations the release makes apart
// from those the fleet has already (API keys, operators, account records,
// what accounts being deleted or deleted still hold), names the first of
// each and says what to do about each. The error of engine.Desired if an
// account's resources cannot be computed.
func Gate(ctx context.Context, rel engine.Release, f *Fleet) (Result, error) {
	return GateKeeping(ctx, rel, f, nil)
}

// GateKeeping is Gate for a release that leaves some accounts as they
// are: those keep reports true for (a rollout moves only the accounts its
// rings select) are verified with what they hold as recorded, beside
// what the others would hold under rel. keep nil keeps none. What a kept
// account holds is the fleet's (SourceFleet), and the release does not
// change it.
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
	m := &marks{declared: map[*AccountState]bool{}, added: map[silo.AccountID]bool{}, changed: map[silo.AccountID]bool{}}
	var moved []int // indexes in g of the accounts whose resources rel declares
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
		if !sameResources(as.Resources, rs) {
			m.changed[as.Account.ID] = true
		}
		as.Resources = rs
		as.Account.Release = rel.ID
		moved = append(moved, i)
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
			moved = append(moved, len(g.Accounts)-1)
			m.added[prod.ID], m.changed[prod.ID] = true, true
		}
		standIn = freeID(g, StandIn)
		g.Accounts = append(g.Accounts, AccountState{
			Account:   silo.Account{ID: standIn, Kind: silo.KindTenant, State: silo.StateActive, Release: rel.ID},
			Resources: rs, HasDataKey: true,
		})
		moved = append(moved, len(g.Accounts)-1)
		m.added[standIn], m.changed[standIn] = true, true
	}
	for _, i := range moved { // g.Accounts grows no more: the pointers hold
		m.declared[&g.Accounts[i]] = true
	}
	v := newVerifier(g, nil)
	v.gate = m
	v.run(ctx)
	res := v.result()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Status != StatusViolated || res.FromRelease == 0 && res.Touched == 0 {
		return res, nil
	}
	return res, refusal(rel, res, standIn)
}

// marks is what a gate tells the verifier about the fleet it checks.
type marks struct {
	declared map[*AccountState]bool  // accounts whose resources the release declares
	added    map[silo.AccountID]bool // accounts the gate adds (stand-in, production it creates)
	changed  map[silo.AccountID]bool // accounts whose resources the release changes, or adds
}

// scope is what the check running reads, for violate: the accounts whose
// resources it reads (dep), whether it is the release's whatever it read
// (release), and the fix of what it finds.
type scope struct {
	dep     []*AccountState
	release bool
	fix     string
}

// fixRecord is the fix of an account record no silo command writes.
const fixRecord = `no silo command repairs it: restore a backup taken before the change (docs/operations.md, "Restoring"), then run silo verify`

// fixResources is the fix of what account a holds.
func fixResources(a silo.Account) string {
	if a.State == silo.StateDeleting {
		return "run " + silo.DeleteCommand(a.Kind, a.ID) + " again, which finishes the deletion"
	}
	return "fix silo.yaml and deploy it (silo deploy)"
}

// recordScope is the scope of the checks of account as's record: the
// fleet's, unless the gate added the account.
func (v *verifier) recordScope(as *AccountState) scope {
	return scope{release: v.gate != nil && v.gate.added[as.Account.ID], fix: fixRecord}
}

// source is the source of a violation found in scope v.sc, in a gate.
func (v *verifier) source() Source {
	if v.sc.release {
		return SourceRelease
	}
	for _, as := range v.sc.dep {
		if v.gate.declared[as] {
			return SourceRelease
		}
	}
	return SourceFleet
}

// touches reports whether the release changes what a violation of the
// fleet involving accounts ids is about (see Gate).
func (v *verifier) touches(ids []silo.AccountID) bool {
	ch := v.gate.changed
	for _, id := range ids {
		if ch[id] || id == AnyAccount && len(ch) > 0 {
			return true
		}
		if as := v.byID[id]; as != nil && as.Account.State != silo.StateDeleted && ch[silo.ProductionID] {
			return true // its functions may read production's exports
		}
	}
	return false
}

// sameResources reports whether a and b hold the same resources, specs
// included, in any order.
func sameResources(a, b []silo.Resource) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]silo.Resource, len(a))
	for _, r := range a {
		m[r.Key()] = r
	}
	for _, r := range b {
		o, ok := m[r.Key()]
		if !ok || o.Hash != r.Hash || !bytes.Equal(o.Spec, r.Spec) {
			return false
		}
		delete(m, r.Key())
	}
	return len(m) == 0
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

// refusal is Gate's error for release rel, whose result res has
// violations the release makes, or of the fleet's it touches. Each group
// is counted (over every violation, listed or not), its first named, and
// the refusal says what to do about each: fix silo.yaml for the
// release's, repair the fleet for the others. standIn is the stand-in
// tenant Gate added, if any.
func refusal(rel engine.Release, res Result, standIn silo.AccountID) error {
	var own, fleet, touched []Counterexample
	for _, c := range res.Counterexamples {
		switch {
		case c.Source == SourceRelease:
			own = append(own, c)
		case c.Touched:
			touched = append(touched, c)
			fleet = append(fleet, c)
		default:
			fleet = append(fleet, c)
		}
	}
	nOwn, nFleet := res.FromRelease, res.Violations-res.FromRelease
	first := func(cs []Counterexample) string {
		if len(cs) == 0 {
			return "more than the verifier lists" // not reached: a gate lists the first of each
		}
		s := describe(cs[0])
		if cs[0].Source == SourceFleet && cs[0].Fix != "" {
			s += " (repair: " + cs[0].Fix + ")"
		}
		if standIn != "" && (Result{Counterexamples: cs[:1]}).Involving(standIn) != nil {
			s += fmt.Sprintf(" (%s stands for every account created on this release)", standIn)
		}
		return s
	}
	const repair = `silo verify lists every violation, and docs/operations.md ("A fleet the isolation gate refuses") says how to repair each kind`
	switch {
	case nOwn > 0 && nFleet == 0:
		return silo.Errorf(silo.CodeFailedCheck, "release %s refused: it would break isolation in %d place(s); first: %s; fix silo.yaml and build again", rel.ID, nOwn, first(own))
	case nOwn == 0:
		return silo.Errorf(silo.CodeFailedCheck, "release %s refused: the fleet already breaks isolation in %d place(s), and the release changes what %d of them involve, which could make them worse; first: %s. The release adds no violation of its own, and it would pass with a warning if it changed nothing those involve. Repair the fleet, then deploy again: %s; nothing was changed", rel.ID, nFleet, res.Touched, first(touched), repair)
	}
	return silo.Errorf(silo.CodeFailedCheck, "release %s refused: it would break isolation in %d place(s); first: %s; fix silo.yaml and build again. The fleet also breaks isolation in %d place(s) already, whatever release it runs; first: %s. Repair those too: %s; nothing was changed", rel.ID, nOwn, first(own), nFleet, first(fleet), repair)
}

// GateWarning returns the warning for release rel that Gate passed with
// result res while the fleet breaks isolation: how many violations, and
// each listed one with its fix. "" when res has no violation.
func GateWarning(rel string, res Result) string {
	if res.Violations == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "release %s passed the isolation gate: it adds no violation and changes nothing the fleet's involve, but the fleet already breaks isolation in %d place(s); repair each (docs/operations.md, \"A fleet the isolation gate refuses\"):", rel, res.Violations)
	n := 0
	for _, c := range res.Counterexamples {
		n++
		fmt.Fprintf(&b, "\n  %s", describe(c))
		if c.Fix != "" {
			fmt.Fprintf(&b, "; repair: %s", c.Fix)
		}
	}
	if n < res.Violations {
		fmt.Fprintf(&b, "\n  ... and %d more: silo verify lists every one", res.Violations-n)
	}
	return b.String()
}

// StandIn is the ID Gate gives the stand-in tenant it adds to a fleet that
// has no live tenant, developer or environment account (or, if an account
// of that ID was ever recorded, StandIn with a number appended).
const StandIn silo.AccountID = "new-account"

// freeID returns id, or id-2, id-3, ... if an account or a key of f has
// it.
func freeID(f *Fleet, id silo.AccountID) silo.AccountID {
	taken := make(map[silo.AccountID]bool, len(f.Accounts))
	for _, as := range f.Accounts {
		taken[as.Account.ID] = true
	}
	for _, k := range f.Keys { // a key bound to no account must stay one
		taken[k.Account] = true
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
