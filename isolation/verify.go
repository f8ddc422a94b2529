package isolation

import (
	"context"
	"fmt"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
)

// Verify builds the access graph of the fleet and checks invariants I1–I5 on
// every edge and binding:
//
//   - I1: no edge from a principal of account A to a resource of another
//     account, except export.read on a production export; every grant names a
//     resource its own account declares; no write into production; every
//     route and schedule calls a function its own account declares.
//   - I2: no edge from a production principal or export to another account;
//     only the production account has kind production.
//   - I3: operators hold only control.* actions, never secret.read.
//   - I4: every key is bound to exactly one existing, non-production account.
//   - I5: a deleted account holds no live key and no data key.
//
// Wildcards and path-like names are never patterns: they are counterexamples.
// Unknown fields in a grant spec are counterexamples too (fail closed).
// Verify only reads f; it is safe to call concurrently.
func Verify(ctx context.Context, f *Fleet) Result {
	v := newVerifier(f, nil)
	v.run(ctx)
	return v.result()
}

// BuildGraph returns every edge of the fleet's access graph, in a stable
// order, for reports and inspection.
func BuildGraph(ctx context.Context, f *Fleet) []Edge {
	var edges []Edge
	v := newVerifier(f, func(e Edge) { edges = append(edges, e) })
	v.run(ctx)
	return edges
}

// fnTemplate is the edges of a function spec, independent of the account
// that holds it; templates are shared by every account with the same spec.
type fnTemplate struct {
	err   error
	edges []tmplEdge
}

type tmplEdge struct {
	kind   NodeKind
	name   string
	action Action
	level  string // as written, for error messages
	bad    string // a problem with the level, "" if fine
	origin string
}

type fnKey struct {
	name string
	prod bool
}

type verifier struct {
	f       *Fleet
	emit    func(Edge)
	res     Result
	gate    *marks // nil outside a gate
	sc      scope  // of the check running
	byID    map[silo.AccountID]*AccountState
	decl    map[silo.AccountID]map[string]struct{} // "type/name"; built lazily
	exports map[string]bool                        // production exports
	tmpls   map[fnKey]map[string]*fnTemplate       // by function, then spec bytes
	liveKey map[silo.AccountID]Key                 // a live key per account, for paths
	nFleet  int                                    // violations of SourceFleet, in a gate
}

func newVerifier(f *Fleet, emit func(Edge)) *verifier {
	v := &verifier{f: f, emit: emit, byID: make(map[silo.AccountID]*AccountState, len(f.Accounts)),
		decl: map[silo.AccountID]map[string]struct{}{}, exports: map[string]bool{}, tmpls: map[fnKey]map[string]*fnTemplate{}}
	for i := range f.Accounts {
		as := &f.Accounts[i]
		if _, dup := v.byID[as.Account.ID]; dup {
			v.sc = v.recordScope(as)
			v.violate("I4", fmt.Sprintf("account ID %q is recorded twice: its keys and data could belong to either", as.Account.ID), nil, as.Account.ID)
			continue
		}
		v.byID[as.Account.ID] = as
	}
	v.sc = scope{}
	v.liveKey = make(map[silo.AccountID]Key, len(f.Keys))
	for _, k := range f.Keys {
		if _, ok := v.liveKey[k.Account]; !ok && !k.Revoked {
			v.liveKey[k.Account] = k
		}
	}
	if p := v.byID[silo.ProductionID]; p != nil {
		for _, r := range p.Resources {
			if r.Type == silo.TypeExport {
				v.exports[r.Name] = true
			}
		}
	}
	return v
}

// violate records a violation: its path, and the accounts it names
// besides those on the path (the account a problem is about, the other
// account a key names), with the fix and, in a gate, the source of the
// check running (v.sc). Violations and the gate's counts by source are
// counted on every violation, listed or not; past MaxCounterexamples a
// gate still lists the first violation of each source.
func (v *verifier) violate(inv, problem string, path []Edge, named ...silo.AccountID) {
	v.res.Violations++
	c := Counterexample{Invariant: inv, Problem: problem, Path: path, Fix: v.sc.fix}
	c.Accounts = namedAccounts(path, named)
	first := false
	if v.gate != nil {
		c.Source = v.source()
		if c.Source == SourceRelease {
			first = v.res.FromRelease == 0
			v.res.FromRelease++
		} else {
			first = v.nFleet == 0
			v.nFleet++
			if c.Touched = v.touches(c.Accounts); c.Touched {
				first = first || v.res.Touched == 0
				v.res.Touched++
			}
		}
	}
	if len(v.res.Counterexamples) < MaxCounterexamples || first {
		v.res.Counterexamples = append(v.res.Counterexamples, c)
	}
}

// namedAccounts returns the accounts of a counterexample: those named and
// those of every node of its path, each once, sorted.
func namedAccounts(path []Edge, named []silo.AccountID) []silo.AccountID {
	var out []silo.AccountID
	add := func(id silo.AccountID) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, id := range named {
		add(id)
	}
	for _, e := range path {
		add(e.From.Account)
		add(e.To.Account)
	}
	slices.Sort(out)
	return out
}

func (v *verifier) edge(e Edge) {
	v.res.Edges++
	if v.emit != nil {
		v.emit(e)
	}
}

func (v *verifier) result() Result {
	r := v.res
	switch {
	case r.Violations > 0:
		r.Status = StatusViolated
	case !v.f.DataKeysKnown:
		r.Status = StatusIncomplete
		r.Incomplete = append(r.Incomplete, "I5: the provider's data keys were not loaded (Fleet.AddDataKeys), so deleted accounts could still hold one")
	case len(r.Incomplete) > 0:
		r.Status = StatusIncomplete
	default:
		r.Status = StatusProved
	}
	return r
}

// declared reports whether account id declares resource t/name.
func (v *verifier) declared(id silo.AccountID, t silo.ResourceType, name string) bool {
	m, ok := v.decl[id]
	if !ok {
		as := v.byID[id]
		if as == nil {
			return false
		}
		m = make(map[string]struct{}, len(as.Resources))
		for _, r := range as.Resources {
			m[r.Key()] = struct{}{}
		}
		v.decl[id] = m
	}
	_, ok = m[string(t)+"/"+name]
	return ok
}

func (v *verifier) run(ctx context.Context) {
	prods := 0
	for i := range v.f.Accounts {
		if i%256 == 0 && ctx.Err() != nil {
			v.sc = scope{release: true, fix: "run the check again"}
			v.violate("I1", "verification was interrupted before every account was checked", nil, AnyAccount)
			return
		}
		as := &v.f.Accounts[i]
		if as.Account.State == silo.StateDeleted {
			v.res.Deleted++ // checked for I5 only: it holds nothing to prove about
		} else {
			v.res.Accounts++
		}
		if as.Account.Kind == silo.KindProduction {
			prods++
		}
		v.account(as)
		delete(v.decl, as.Account.ID) // keep memory flat
	}
	if prods > 1 {
		v.sc = scope{fix: fixRecord}
		for _, as := range v.f.Accounts {
			if as.Account.Kind == silo.KindProduction && v.gate != nil && v.gate.added[as.Account.ID] {
				v.sc.release = true // one is the production account the gate adds
			}
		}
		v.violate("I2", fmt.Sprintf("the fleet has %d accounts of kind production; exactly one may exist", prods), nil)
	}
	v.keys()
	v.sc = scope{}
	v.operators()
}

func (v *verifier) account(as *AccountState) {
	a := as.Account
	id := a.ID
	v.sc = v.recordScope(as)
	defer func() { v.sc = scope{} }()
	if _, err := silo.ParseID(string(id)); err != nil {
		v.violate("I1", fmt.Sprintf("account ID %q is not a DNS label, so it cannot be isolated by name", id), nil, id)
	}
	if !a.Kind.Valid() {
		v.violate("I1", fmt.Sprintf("account %s has unknown kind %q", id, a.Kind), nil, id)
	}
	if (a.Kind == silo.KindProduction) != (id == silo.ProductionID) {
		v.violate("I2", fmt.Sprintf("account %s has kind %s: only the account named production may have kind production, and it must", id, a.Kind), nil, id)
	}
	if a.State == silo.StateDeleted {
		if v.f.DataKeysKnown && as.HasDataKey {
			v.sc.fix = silo.DeleteCommand(a.Kind, id)
			v.violate("I5", fmt.Sprintf("deleted account %s still has a data key in the provider: its data is recoverable; run %s again, which destroys it", id, silo.DeleteCommand(a.Kind, id)), nil, id)
		}
		return // a deleted account runs nothing: its principals are gone
	}
	if v.f.DataKeysKnown && !as.HasDataKey && a.State != silo.StateProvisioning && a.State != silo.StateDeleting {
		v.res.Incomplete = append(v.res.Incomplete, fmt.Sprintf("account %s is %s but the provider does not hold it", id, a.State))
	}
	gw := Node{Account: id, Kind: NodeGateway}
	v.sc = scope{dep: []*AccountState{as}, fix: fixResources(a)}
	for _, r := range as.Resources {
		switch r.Type {
		case silo.TypeTable, silo.TypeBucket, silo.TypeConfig, silo.TypeSecret:
			v.res.Resources++
			if !simpleName(r.Name) {
				v.violate("I1", fmt.Sprintf("account %s declares %s %q: not a plain name (letters, digits, '.', '_', '-'), so it could alias another account's storage", id, r.Type, r.Name),
					[]Edge{{From: Node{Account: id, Kind: NodeAccount}, To: Node{Account: id, Kind: NodeKind(r.Type), Name: r.Name}, Action: "declare", Origin: "recorded resource " + r.Key() + " of " + string(id)}})
			}
		case silo.TypeFunction:
			v.res.Principals++
			v.function(as, r)
		case silo.TypeRoute:
			v.res.Resources++
			v.route(as, r, gw)
		case silo.TypeExport:
			v.res.Resources++
			v.export(as, r)
		case silo.TypeSchedule:
			v.res.Resources++
			v.schedule(as, r)
		default:
			v.violate("I1", fmt.Sprintf("account %s holds resource %s of unknown type %q: the verifier cannot tell what it reaches", id, r.Key(), r.Type), nil, id)
		}
	}
}

func (v *verifier) template(prod bool, r silo.Resource) *fnTemplate {
	// Keyed by the spec bytes themselves, never by the recorded hash: a spec
	// edited behind the store's back must not reuse a clean template.
	fk := fnKey{name: r.Name, prod: prod}
	m := v.tmpls[fk]
	if m == nil {
		m = map[string]*fnTemplate{}
		v.tmpls[fk] = m
	}
	if t, ok := m[string(r.Spec)]; ok {
		return t
	}
	t := &fnTemplate{}
	m[string(r.Spec)] = t
	var fs silo.FunctionSpec
	if err := strictJSON(r.Spec, &fs); err != nil {
		t.err = err
		return t
	}
	owner := silo.AccountID("")
	if prod {
		owner = silo.ProductionID
	}
	access := func(section string, kind NodeKind, read, write Action, m map[string]string) {
		for _, name := range sortedKeys(m) {
			level := m[name]
			e := tmplEdge{kind: kind, name: name, level: level, action: read, origin: Origin(owner, r.Name, section, name)}
			switch level {
			case "read":
			case "read-write":
				t.edges = append(t.edges, e)
				e.action = write
			default:
				e.bad = fmt.Sprintf("access %q is neither read nor read-write", level)
			}
			t.edges = append(t.edges, e)
		}
	}
	list := func(section string, kind NodeKind, act Action, names []string) {
		for _, name := range names {
			t.edges = append(t.edges, tmplEdge{kind: kind, name: name, action: act, origin: Origin(owner, r.Name, section, name)})
		}
	}
	access("tables", NodeTable, ActTableRead, ActTableWrite, fs.Tables)
	access("buckets", NodeBucket, ActBlobRead, ActBlobWrite, fs.Buckets)
	list("config", NodeConfig, ActConfigRead, fs.Config)
	list("secrets", NodeSecret, ActSecretRead, fs.Secrets)
	list("exports", NodeExport, ActExportRead, fs.Exports)
	return t
}

func (v *verifier) function(as *AccountState, r silo.Resource) {
	id := as.Account.ID
	from := Node{Account: id, Kind: NodeFunction, Name: r.Name}
	prod := id == silo.ProductionID
	if !simpleName(r.Name) {
		v.violate(inv(prod, "I1"), fmt.Sprintf("account %s has a function named %q: a principal name must be plain, never a pattern or path", id, r.Name),
			[]Edge{{From: from, To: Node{Account: id, Kind: NodeAccount}, Action: "run", Origin: "recorded resource " + r.Key() + " of " + string(id)}})
	}
	t := v.template(prod, r)
	if t.err != nil {
		v.violate(inv(prod, "I1"), fmt.Sprintf("function %s of %s has a grant spec the verifier cannot read (%v): an unknown field could widen access, so it fails closed", r.Name, id, t.err),
			[]Edge{{From: from, To: Node{Account: id, Kind: NodeAccount}, Action: "grant", Origin: "recorded resource function/" + r.Name + " of " + string(id)}})
		return
	}
	for _, te := range t.edges {
		owner := id
		if te.kind == NodeExport {
			owner = silo.ProductionID // exports are production's
		}
		acct, name, problem := resolve(owner, te.name)
		e := Edge{From: from, To: Node{Account: acct, Kind: te.kind, Name: name}, Action: te.action, Origin: te.origin}
		v.edge(e)
		switch {
		case te.bad != "":
			v.fnViolation(as, "I1", fmt.Sprintf("%s: %s", e.Origin, te.bad), e)
		case problem != "":
			v.fnViolation(as, inv(prod || acct == silo.ProductionID && te.action.IsWrite(), "I1"), fmt.Sprintf("function %s of %s: grant name %q is %s", r.Name, id, te.name, problem), e)
		case prod && acct != silo.ProductionID:
			v.fnViolation(as, "I2", fmt.Sprintf("production function %s reaches %s: nothing in production may reach another account", r.Name, e.To), e)
		case acct != id && te.kind == NodeExport:
			if !v.exports[name] {
				// What production exports is part of the check.
				sc := v.sc
				v.sc.dep = append([]*AccountState{as}, v.byID[silo.ProductionID])
				v.fnViolation(as, "I1", fmt.Sprintf("function %s of %s is granted export %q, which production does not export", r.Name, id, name), e)
				v.sc = sc
			}
		case acct != id:
			what := "reaches"
			if te.action.IsWrite() {
				what = "can write"
			}
			v.fnViolation(as, "I1", fmt.Sprintf("function %s of %s %s %s: across accounts only production exports are readable", r.Name, id, what, e.To), e)
		case te.kind == NodeExport:
			if !v.exports[name] {
				v.fnViolation(as, "I1", fmt.Sprintf("production function %s is granted export %q, which production does not export", r.Name, name), e)
			}
		case !v.declared(id, silo.ResourceType(te.kind), name):
			v.fnViolation(as, "I1", fmt.Sprintf("function %s of %s is granted %s %q, which its account does not declare (a grant must name a resource of its own account)", r.Name, id, te.kind, name), e)
		}
	}
}

func inv(cond bool, otherwise string) string {
	if cond {
		return "I2"
	}
	return otherwise
}

// fnViolation records a violation of a function's edge, prefixed with the
// path by which the account's API keys reach the function, if any.
func (v *verifier) fnViolation(as *AccountState, invariant, problem string, e Edge) {
	v.violate(invariant, problem, append(v.entryPath(as, e.From.Name), e))
}

// entryPath returns key → gateway → route → function for a function reached
// through a route by a live key of the account, or nil.
func (v *verifier) entryPath(as *AccountState, fn string) []Edge {
	id := as.Account.ID
	for _, r := range as.Resources {
		if r.Type != silo.TypeRoute {
			continue
		}
		var rs silo.RouteSpec
		if strictJSON(r.Spec, &rs) != nil || rs.Function != fn {
			continue
		}
		path := []Edge{
			{From: Node{Account: id, Kind: NodeGateway}, To: Node{Account: id, Kind: NodeRoute, Name: r.Name}, Action: ActGatewayInvoke, Origin: "silo.yaml routes[" + r.Name + "]"},
			{From: Node{Account: id, Kind: NodeRoute, Name: r.Name}, To: Node{Account: id, Kind: NodeFunction, Name: fn}, Action: "call", Origin: "silo.yaml routes[" + r.Name + "].function"},
		}
		if k, ok := v.liveKey[id]; ok {
			path = append([]Edge{keyEdge(k)}, path...)
		}
		return path
	}
	return nil
}

func keyEdge(k Key) Edge {
	return Edge{From: Node{Account: k.Account, Kind: NodeKey, Name: k.ID}, To: Node{Account: k.Account, Kind: NodeGateway}, Action: ActGatewayInvoke,
		Origin: fmt.Sprintf("api key %s bound to %s", k.ID, displayAccount(k.Account))}
}

func displayAccount(a silo.AccountID) string {
	if a == "" {
		return "no account"
	}
	return string(a)
}

func (v *verifier) route(as *AccountState, r silo.Resource, gw Node) {
	id := as.Account.ID
	rn := Node{Account: id, Kind: NodeRoute, Name: r.Name}
	in := Edge{From: gw, To: rn, Action: ActGatewayInvoke, Origin: "silo.yaml routes[" + r.Name + "]"}
	v.edge(in)
	var rs silo.RouteSpec
	if err := strictJSON(r.Spec, &rs); err != nil {
		v.violate("I4", fmt.Sprintf("route %q of %s has a spec the verifier cannot read (%v); it fails closed", r.Name, id, err), []Edge{in})
		return
	}
	acct, name, problem := resolve(id, rs.Function)
	out := Edge{From: rn, To: Node{Account: acct, Kind: NodeFunction, Name: name}, Action: "call", Origin: "silo.yaml routes[" + r.Name + "].function"}
	v.edge(out)
	switch {
	case id == silo.ProductionID || problem != "" || acct != id || !v.declared(id, silo.TypeFunction, name):
	default:
		return
	}
	path := []Edge{in, out}
	if k, ok := v.liveKey[id]; ok {
		path = append([]Edge{keyEdge(k)}, path...)
	}
	switch {
	case id == silo.ProductionID:
		v.violate("I2", fmt.Sprintf("the production account has route %q: production is not reachable through the gateway", r.Name), path)
	case problem != "":
		v.violate("I4", fmt.Sprintf("route %q of %s points at %q, which is %s: %s's keys would reach another account's function", r.Name, id, rs.Function, problem, id), path)
	case acct != id:
		v.violate("I4", fmt.Sprintf("route %q of %s calls a function of %s", r.Name, id, acct), path)
	case !v.declared(id, silo.TypeFunction, name):
		v.violate("I1", fmt.Sprintf("route %q of %s points at function %q, which the account does not declare", r.Name, id, name), path)
	}
}

// schedule checks a schedule: it calls one function, which must be a
// function its own account declares. The platform runs a schedule as a call
// of that function in the schedule's account; a schedule naming another
// account's function (a path), a pattern, or a function its account does
// not declare could only mean a run outside the account, so each is a
// counterexample.
func (v *verifier) schedule(as *AccountState, r silo.Resource) {
	id := as.Account.ID
	sn := Node{Account: id, Kind: NodeSchedule, Name: r.Name}
	origin := "silo.yaml schedules." + r.Name + ".function"
	var ss silo.ScheduleSpec
	if err := strictJSON(r.Spec, &ss); err != nil {
		v.violate("I1", fmt.Sprintf("schedule %q of %s has a spec the verifier cannot read (%v): an unknown field could make it run elsewhere, so it fails closed", r.Name, id, err),
			[]Edge{{From: sn, To: Node{Account: id, Kind: NodeAccount}, Action: "call", Origin: "recorded resource " + r.Key() + " of " + string(id)}})
		return
	}
	acct, name, problem := resolve(id, ss.Function)
	e := Edge{From: sn, To: Node{Account: acct, Kind: NodeFunction, Name: name}, Action: "call", Origin: origin}
	v.edge(e)
	switch {
	case problem != "":
		v.violate("I1", fmt.Sprintf("schedule %q of %s calls %q, which is %s: a schedule runs a function of its own account only", r.Name, id, ss.Function, problem), []Edge{e})
	case !v.declared(id, silo.TypeFunction, name):
		v.violate("I1", fmt.Sprintf("schedule %q of %s calls function %q, which its account does not declare", r.Name, id, name), []Edge{e})
	}
}

func (v *verifier) export(as *AccountState, r silo.Resource) {
	id := as.Account.ID
	en := Node{Account: id, Kind: NodeExport, Name: r.Name}
	origin := "silo.yaml production.exports." + r.Name
	if id != silo.ProductionID {
		v.violate("I1", fmt.Sprintf("account %s holds export %q: only production may share resources with other accounts", id, r.Name),
			[]Edge{{From: en, To: Node{Account: AnyAccount, Kind: NodeAccount}, Action: ActExportRead, Origin: "recorded resource export/" + r.Name + " of " + string(id)}})
		return
	}
	var es silo.ExportSpec
	if err := strictJSON(r.Spec, &es); err != nil {
		v.violate("I2", fmt.Sprintf("export %q has a spec the verifier cannot read (%v): exports are read-only by construction, and an unknown field (e.g. a mode) could widen them", r.Name, err),
			[]Edge{{From: en, To: Node{Account: AnyAccount, Kind: NodeAccount}, Action: ActExportRead, Origin: origin}})
		return
	}
	type tgt struct {
		kind NodeKind
		name string
	}
	var ts []tgt
	if es.Table != "" {
		ts = append(ts, tgt{NodeTable, es.Table})
	}
	if es.Bucket != "" {
		ts = append(ts, tgt{NodeBucket, es.Bucket})
	}
	if es.Config != "" {
		ts = append(ts, tgt{NodeConfig, es.Config})
	}
	if len(ts) != 1 {
		v.violate("I1", fmt.Sprintf("export %q names %d resources; an export shares exactly one table, bucket or config value", r.Name, len(ts)),
			[]Edge{{From: en, To: Node{Account: id, Kind: NodeAccount}, Action: ActExportRead, Origin: origin}})
	}
	for _, t := range ts {
		acct, name, problem := resolve(id, t.name)
		e := Edge{From: en, To: Node{Account: acct, Kind: t.kind, Name: name}, Action: ActExportRead, Origin: origin + "." + string(t.kind)}
		v.edge(e)
		path := append(v.exportReader(r.Name), e)
		switch {
		case problem != "":
			v.violate("I2", fmt.Sprintf("export %q names %q, which is %s", r.Name, t.name, problem), path)
		case acct != id:
			v.violate("I2", fmt.Sprintf("export %q shares %s: production may only share its own resources", r.Name, e.To), path)
		case !v.declared(id, silo.ResourceType(t.kind), name):
			v.violate("I1", fmt.Sprintf("export %q names %s %q, which production does not declare", r.Name, t.kind, name), path)
		}
	}
}

// exportReader returns an edge from some non-production function granted the
// export, to show who would follow a bad export, or nil.
func (v *verifier) exportReader(export string) []Edge {
	for i := range v.f.Accounts {
		as := &v.f.Accounts[i]
		if as.Account.ID == silo.ProductionID || as.Account.State == silo.StateDeleted {
			continue
		}
		for _, r := range as.Resources {
			if r.Type != silo.TypeFunction {
				continue
			}
			t := v.template(false, r)
			for _, te := range t.edges {
				if te.kind == NodeExport && te.name == export {
					return []Edge{{From: Node{Account: as.Account.ID, Kind: NodeFunction, Name: r.Name}, To: Node{Account: silo.ProductionID, Kind: NodeExport, Name: export}, Action: ActExportRead, Origin: te.origin}}
				}
			}
		}
	}
	return nil
}

func (v *verifier) keys() {
	seen := make(map[string]silo.AccountID, len(v.f.Keys))
	for _, k := range v.f.Keys {
		v.sc = scope{fix: "silo keys remove " + k.ID}
		e := keyEdge(k)
		as := v.byID[k.Account]
		if as != nil && as.Account.State == silo.StateDeleted {
			// Checked for I5 (it must not be live), but a deleted account
			// runs nothing: the key is no principal and reaches nothing.
			v.res.DeletedKeys++
		} else {
			v.edge(e)
			v.res.Principals++
		}
		path := []Edge{e}
		if prev, ok := seen[k.ID]; ok && prev != k.Account {
			v.violate("I4", fmt.Sprintf("API key %s is bound to two accounts (%s and %s)", k.ID, displayAccount(prev), displayAccount(k.Account)), path, prev)
		}
		seen[k.ID] = k.Account
		switch {
		case k.Account == "":
			v.violate("I4", fmt.Sprintf("API key %s is bound to no account", k.ID), path)
			continue
		case !validID(k.Account):
			v.violate("I4", fmt.Sprintf("API key %s is bound to %q, which is not one account (a pattern or invalid ID)", k.ID, k.Account), path)
			continue
		case as == nil:
			v.violate("I4", fmt.Sprintf("API key %s is bound to account %s, which does not exist", k.ID, k.Account), path)
			continue
		case k.Account == silo.ProductionID:
			v.violate("I2", fmt.Sprintf("API key %s is bound to the production account, which no key may reach", k.ID), path)
		}
		if named, ok := keyAccount(k.ID); !ok || named != k.Account {
			v.violate("I4", fmt.Sprintf("API key %s names account %q but is bound to %s: a key must be bound to exactly the one account it names", k.ID, named, k.Account), path, named)
		}
		switch {
		case k.Revoked:
		case as.Account.State == silo.StateDeleted:
			v.violate("I5", fmt.Sprintf("API key %s is live but its account %s is deleted; revoke it", k.ID, k.Account), path)
		case as.Account.State == silo.StateDeleting:
			v.res.Incomplete = append(v.res.Incomplete, fmt.Sprintf("account %s is being deleted and its key %s is still live (the gateway refuses it); run silo tenant delete %s again if the deletion is stuck", k.Account, k.ID, k.Account))
		}
	}
}

// keyAccount returns the account named by a key ID "sk_<account>_<id>".
func keyAccount(id string) (silo.AccountID, bool) {
	rest, ok := strings.CutPrefix(id, "sk_")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return "", false
	}
	return silo.AccountID(rest[:i]), true
}

func (v *verifier) operators() {
	for _, o := range v.f.Operators {
		v.res.Principals++
		from := Node{Kind: NodeOperator, Name: o.Name}
		for _, a := range o.Actions {
			e := Edge{From: from, To: Node{Account: AnyAccount, Kind: NodeAccount}, Action: a, Origin: o.Origin}
			v.edge(e)
			switch {
			case a == ActSecretRead || strings.HasSuffix(string(a), "secret.read"):
				v.violate("I3", fmt.Sprintf("operator %s holds %s: the control plane must never read secret values", o.Name, a), []Edge{e})
			case !a.IsControl():
				v.violate("I3", fmt.Sprintf("operator %s holds %s: the control plane must never reach tenant data", o.Name, a), []Edge{e})
			}
		}
	}
}
