package isolation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// PrincipalKind is the kind of a principal: who is asking.
type PrincipalKind string

// The principal kinds. A production function is a PrincipalFunction whose
// Account is silo.ProductionID.
const (
	PrincipalFunction PrincipalKind = "function" // a function of an account
	PrincipalKey      PrincipalKind = "key"      // a tenant API key
	PrincipalOperator PrincipalKind = "operator" // the control plane / an operator
)

// Principal is who asks for access.
type Principal struct {
	Kind    PrincipalKind  `json:"kind"`
	Account silo.AccountID `json:"account,omitempty"` // owner; "" for operators
	Name    string         `json:"name"`              // function name, key ID or operator name
}

func (p Principal) String() string {
	switch p.Kind {
	case PrincipalOperator:
		return "operator " + p.Name
	case PrincipalKey:
		return fmt.Sprintf("API key %s of %s", p.Name, p.Account)
	}
	return fmt.Sprintf("function %s of %s", p.Name, p.Account)
}

// Action is what a principal wants to do.
type Action string

// The actions. Control actions all start with "control.".
const (
	ActTableRead     Action = "table.read"
	ActTableWrite    Action = "table.write"
	ActBlobRead      Action = "blob.read"
	ActBlobWrite     Action = "blob.write"
	ActConfigRead    Action = "config.read"
	ActSecretRead    Action = "secret.read"
	ActExportRead    Action = "export.read"
	ActGatewayInvoke Action = "gateway.invoke"

	ActControlCreate      Action = "control.account.create"
	ActControlUpdate      Action = "control.account.update"
	ActControlDelete      Action = "control.account.delete"
	ActControlDeploy      Action = "control.deploy"
	ActControlSecretWrite Action = "control.secret.write"
	ActControlKeyIssue    Action = "control.key.issue"
	ActControlKeyRevoke   Action = "control.key.revoke"
)

// ControlActions are the actions the control plane holds on every account:
// it creates, updates and deletes accounts, deploys to them, writes secrets
// and manages keys. It has no read of tenant data (I3).
var ControlActions = []Action{
	ActControlCreate, ActControlUpdate, ActControlDelete, ActControlDeploy,
	ActControlSecretWrite, ActControlKeyIssue, ActControlKeyRevoke,
}

// IsControl reports whether a is a control-plane action.
func (a Action) IsControl() bool { return strings.HasPrefix(string(a), "control.") }

// IsWrite reports whether a changes data.
func (a Action) IsWrite() bool { return a == ActTableWrite || a == ActBlobWrite }

// resourceType is the type of resource a data action applies to.
func (a Action) resourceType() silo.ResourceType {
	switch a {
	case ActTableRead, ActTableWrite:
		return silo.TypeTable
	case ActBlobRead, ActBlobWrite:
		return silo.TypeBucket
	case ActConfigRead:
		return silo.TypeConfig
	case ActSecretRead:
		return silo.TypeSecret
	case ActExportRead:
		return silo.TypeExport
	case ActGatewayInvoke:
		return silo.TypeRoute
	}
	return ""
}

// Resource is what a principal wants to reach.
type Resource struct {
	Account silo.AccountID    `json:"account"`
	Type    silo.ResourceType `json:"type"`
	Name    string            `json:"name"`
}

func (r Resource) String() string { return fmt.Sprintf("%s %q of %s", r.Type, r.Name, r.Account) }

// Request is one access to decide.
type Request struct {
	Principal Principal `json:"principal"`
	Action    Action    `json:"action"`
	Resource  Resource  `json:"resource"`
}

// Decision is the answer of the decision point: allow or deny, the rule that
// decided, and the reasons (the grants that allowed it, or why nothing did).
// A denial that silo.yaml's grants cannot lift says in Fix what does.
type Decision struct {
	Allow   bool     `json:"allow"`
	Rule    string   `json:"rule"`
	Reasons []string `json:"reasons"`
	Fix     string   `json:"fix,omitempty"`
}

// The rules a Decision can name.
const (
	RuleGrant       = "grant"        // an explicit grant of the account's policy
	RuleExport      = "export"       // global: tenants may read listed production exports
	RuleControl     = "control"      // global: the control plane manages accounts
	RuleDefaultDeny = "default-deny" // no grant
	RuleI1          = "I1"           // cross-account access
	RuleI2          = "I2"           // production reaching out
	RuleI3          = "I3"           // control plane reading data
	RuleI4          = "I4"           // key used outside its account
)

var (
	reasonControl = []string{"global rule: the control plane creates, updates, deletes and deploys to accounts (control.*)"}
	reasonExport  = "global rule: every account may read production exports, read-only, that its function lists under exports"
)

// grant is one compiled grant: whether it allows writing and why it exists.
type grant struct {
	write   bool
	reasons []string // preallocated so that allowing does not allocate
}

// fnPolicy is the compiled grants of one function.
type fnPolicy struct {
	tables, buckets, config, secrets, exports map[string]grant
}

// exportTarget is what a production export names.
type exportTarget struct {
	Type silo.ResourceType // TypeTable, TypeBucket or TypeConfig
	Name string
}

// AccountPolicy is the compiled policy of one account: what it declares and
// what each of its functions may do. It is immutable once compiled.
type AccountPolicy struct {
	ID        silo.AccountID
	Kind      silo.Kind
	State     silo.State
	functions map[string]*fnPolicy
	declared  map[silo.ResourceType]map[string]struct{}
	routes    map[string]string // route name → function
	exports   map[string]exportTarget
}

// Declares reports whether the account declares a resource of type t named
// name.
func (ap *AccountPolicy) Declares(t silo.ResourceType, name string) bool {
	_, ok := ap.declared[t][name]
	return ok
}

// Origin returns where a grant of a function comes from, in silo.yaml terms,
// e.g. "silo.yaml functions.ingest.tables.findings".
func Origin(acct silo.AccountID, fn, section, name string) string {
	if acct == silo.ProductionID {
		return "silo.yaml production.functions." + fn + "." + section + "." + name
	}
	return "silo.yaml functions." + fn + "." + section + "." + name
}

// Compile compiles an account's policy from its recorded resources.
//
// # Errors
//
// CodeInvalid if a function, route or export spec cannot be decoded, or
// holds a field the decision point does not know (it fails closed: an
// unknown field could mean a wider grant than it understands).
func Compile(a silo.Account, rs []silo.Resource) (*AccountPolicy, error) {
	return compile(a, rs, nil)
}

// internCache shares the compiled grants of identical function specs across
// accounts: tenants on one release hold the same specs, so a fleet of
// 10,000 compiles each function once and the decision point's working set
// stays small. Compiled grants are immutable, and their reasons do not name
// the account (only production's differ), so sharing is safe.
type internCache struct {
	mu  sync.Mutex
	fns map[string]*fnPolicy
}

func (c *internCache) function(acct silo.AccountID, name string, spec []byte, fs silo.FunctionSpec) *fnPolicy {
	if c == nil {
		return compileFunction(acct, name, fs)
	}
	prefix := "t\x00"
	if acct == silo.ProductionID {
		prefix = "p\x00"
	}
	k := prefix + name + "\x00" + string(spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if fp, ok := c.fns[k]; ok {
		return fp
	}
	fp := compileFunction(acct, name, fs)
	if len(c.fns) < 100000 {
		c.fns[k] = fp
	}
	return fp
}

func compile(a silo.Account, rs []silo.Resource, cache *internCache) (*AccountPolicy, error) {
	ap := &AccountPolicy{
		ID: a.ID, Kind: a.Kind, State: a.State,
		functions: map[string]*fnPolicy{},
		declared:  map[silo.ResourceType]map[string]struct{}{},
		routes:    map[string]string{},
	}
	for _, r := range rs {
		m := ap.declared[r.Type]
		if m == nil {
			m = map[string]struct{}{}
			ap.declared[r.Type] = m
		}
		m[r.Name] = struct{}{}
		switch r.Type {
		case silo.TypeFunction:
			var fs silo.FunctionSpec
			if err := strictJSON(r.Spec, &fs); err != nil {
				return nil, silo.Errorf(silo.CodeInvalid, "account %s: function %q has a spec the decision point cannot read (%v); redeploy the account", a.ID, r.Name, err)
			}
			ap.functions[r.Name] = cache.function(a.ID, r.Name, r.Spec, fs)
		case silo.TypeRoute:
			var rs silo.RouteSpec
			if err := strictJSON(r.Spec, &rs); err != nil {
				return nil, silo.Errorf(silo.CodeInvalid, "account %s: route %q has a spec the decision point cannot read (%v); redeploy the account", a.ID, r.Name, err)
			}
			ap.routes[r.Name] = rs.Function
		case silo.TypeExport:
			if a.ID != silo.ProductionID {
				continue // only production exports; the verifier reports the rest
			}
			var es silo.ExportSpec
			if err := strictJSON(r.Spec, &es); err != nil {
				return nil, silo.Errorf(silo.CodeInvalid, "export %q has a spec the decision point cannot read (%v); redeploy the production account", r.Name, err)
			}
			t, ok := exportOf(es)
			if !ok {
				continue // zero or several targets: exports nothing
			}
			if ap.exports == nil {
				ap.exports = map[string]exportTarget{}
			}
			ap.exports[r.Name] = t
		}
	}
	return ap, nil
}

func exportOf(es silo.ExportSpec) (exportTarget, bool) {
	n := 0
	var t exportTarget
	if es.Table != "" {
		n, t = n+1, exportTarget{silo.TypeTable, es.Table}
	}
	if es.Bucket != "" {
		n, t = n+1, exportTarget{silo.TypeBucket, es.Bucket}
	}
	if es.Config != "" {
		n, t = n+1, exportTarget{silo.TypeConfig, es.Config}
	}
	return t, n == 1
}

func compileFunction(acct silo.AccountID, fn string, fs silo.FunctionSpec) *fnPolicy {
	fp := &fnPolicy{}
	access := func(section string, m map[string]string) map[string]grant {
		out := make(map[string]grant, len(m))
		for name, level := range m {
			var write bool
			switch level {
			case "read":
			case "read-write":
				write = true
			default:
				continue // unknown level grants nothing
			}
			out[name] = grant{write: write, reasons: []string{Origin(acct, fn, section, name) + ": " + level}}
		}
		return out
	}
	list := func(section string, names []string) map[string]grant {
		out := make(map[string]grant, len(names))
		for _, name := range names {
			out[name] = grant{reasons: []string{Origin(acct, fn, section, name)}}
		}
		return out
	}
	fp.tables = access("tables", fs.Tables)
	fp.buckets = access("buckets", fs.Buckets)
	fp.config = list("config", fs.Config)
	fp.secrets = list("secrets", fs.Secrets)
	fp.exports = make(map[string]grant, len(fs.Exports))
	for _, name := range fs.Exports {
		fp.exports[name] = grant{reasons: []string{Origin(acct, fn, "exports", name), reasonExport}}
	}
	return fp
}

// strictJSON decodes b into v, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the spec")
	}
	return nil
}

// Policy is the decision point: the compiled policy of every account plus
// the global rules. The zero value is not usable; call NewPolicy. It is safe
// for concurrent use; Set and Remove take effect for the next decision.
type Policy struct {
	intern   internCache
	mu       sync.RWMutex
	accounts map[silo.AccountID]*AccountPolicy
}

// NewPolicy returns an empty policy: it denies everything but control
// actions of operators.
func NewPolicy() *Policy {
	return &Policy{accounts: map[silo.AccountID]*AccountPolicy{}, intern: internCache{fns: map[string]*fnPolicy{}}}
}

// PolicyFromFleet compiles the policy of every account of f that is not
// deleted.
//
// # Errors
//
// The first account that does not compile (see Compile).
func PolicyFromFleet(f *Fleet) (*Policy, error) {
	p := NewPolicy()
	for i := range f.Accounts {
		as := &f.Accounts[i]
		ap, err := p.Compile(as.Account, as.Resources)
		if err != nil {
			return nil, err
		}
		if ap != nil {
			p.Set(ap)
		}
	}
	return p, nil
}

// HoldsPolicy reports whether an account in state s holds a policy: every
// account does but one deleted or being deleted, whose requests are all
// denied. It is the one rule for it: Compile (and so Load, PolicyFromFleet
// and the data plane's directory) applies it.
func HoldsPolicy(s silo.State) bool {
	return s != silo.StateDeleted && s != silo.StateDeleting
}

// Compile compiles account a's policy from its recorded resources, sharing
// identical function grants with the accounts compiled before (see
// internCache), without installing it; nil (and no error) for an account
// that holds none (HoldsPolicy).
//
// # Errors
//
// As the package's Compile.
func (p *Policy) Compile(a silo.Account, rs []silo.Resource) (*AccountPolicy, error) {
	if !HoldsPolicy(a.State) {
		return nil, nil
	}
	return compile(a, rs, &p.intern)
}

// Set installs or replaces an account's compiled policy.
func (p *Policy) Set(ap *AccountPolicy) {
	p.mu.Lock()
	p.accounts[ap.ID] = ap
	p.mu.Unlock()
}

// Remove forgets an account: every later request involving it is denied.
func (p *Policy) Remove(id silo.AccountID) {
	p.mu.Lock()
	delete(p.accounts, id)
	p.mu.Unlock()
}

// Account returns an account's compiled policy, or nil.
func (p *Policy) Account(id silo.AccountID) *AccountPolicy {
	p.mu.RLock()
	ap := p.accounts[id]
	p.mu.RUnlock()
	return ap
}

func allow(rule string, reasons []string) Decision {
	return Decision{Allow: true, Rule: rule, Reasons: reasons}
}

func deny(rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reasons: []string{fmt.Sprintf(format, args...)}}
}

// Decide decides one request. It is a pure function of the request and the
// installed policy: default deny, and every decision says why. A key
// principal is taken as authenticated (the gateway checks the key itself);
// Decide checks what the key's account binding allows. Its cost
// depends only on the principal's own account policy and production's,
// never on the size of the fleet.
func (p *Policy) Decide(r Request) Decision {
	pr, act, res := r.Principal, r.Action, r.Resource
	switch pr.Kind {
	case PrincipalOperator:
		if act == ActSecretRead || strings.HasSuffix(string(act), "secret.read") {
			return deny(RuleI3, "the control plane never reads secret values (I3): secrets are write-only through its API")
		}
		if act.IsControl() {
			return allow(RuleControl, reasonControl)
		}
		return deny(RuleI3, "the control plane never reads or writes tenant data (I3); %s is a data action", act)
	case PrincipalKey:
		if act != ActGatewayInvoke {
			return deny(RuleI4, "an API key only invokes routes through the gateway; it holds no %s", act)
		}
		if pr.Account == "" || pr.Account != res.Account {
			return deny(RuleI4, "API key %s is bound to account %q and is worthless against account %q (I4)", pr.Name, pr.Account, res.Account)
		}
		if res.Account == silo.ProductionID {
			return deny(RuleI2, "the production account is not reachable through the gateway")
		}
		ap := p.Account(res.Account)
		if ap == nil {
			return deny(RuleDefaultDeny, "account %q has no policy (unknown or deleted)", res.Account)
		}
		if ap.State != silo.StateActive {
			return deny(RuleDefaultDeny, "account %s is %s", ap.ID, ap.State)
		}
		if res.Type != silo.TypeRoute {
			return deny(RuleDefaultDeny, "an API key invokes routes, not a %s", res.Type)
		}
		if _, ok := ap.routes[res.Name]; !ok {
			return deny(RuleDefaultDeny, "account %s has no route %q", ap.ID, res.Name)
		}
		return allow(RuleGrant, keyRouteReason)
	case PrincipalFunction:
		return p.decideFunction(pr, act, res)
	}
	return deny(RuleDefaultDeny, "unknown principal kind %q", pr.Kind)
}

var keyRouteReason = []string{"an account's own API keys invoke the account's routes (gateway)"}

func (p *Policy) decideFunction(pr Principal, act Action, res Resource) Decision {
	p.mu.RLock()
	ap := p.accounts[pr.Account]
	prod := p.accounts[silo.ProductionID]
	p.mu.RUnlock()
	if ap == nil {
		return deny(RuleDefaultDeny, "account %q has no policy (unknown or deleted)", pr.Account)
	}
	fp := ap.functions[pr.Name]
	if fp == nil {
		return deny(RuleDefaultDeny, "account %s has no function %q", pr.Account, pr.Name)
	}
	want := act.resourceType()
	if want == "" || want == silo.TypeRoute {
		return deny(RuleDefaultDeny, "a function holds no %s", act)
	}
	if res.Type != want {
		return deny(RuleDefaultDeny, "%s applies to a %s, not a %s", act, want, res.Type)
	}
	if res.Account != pr.Account {
		if pr.Account == silo.ProductionID {
			return deny(RuleI2, "nothing in the production account can reach account %q (I2)", res.Account)
		}
		if res.Account != silo.ProductionID || act != ActExportRead {
			return deny(RuleI1, "%s may not %s %s: only its own account's resources and production exports (read-only) are reachable (I1)", pr, act, res)
		}
	}
	var g grant
	var ok bool
	switch act {
	case ActTableRead, ActTableWrite:
		g, ok = fp.tables[res.Name]
	case ActBlobRead, ActBlobWrite:
		g, ok = fp.buckets[res.Name]
	case ActConfigRead:
		g, ok = fp.config[res.Name]
	case ActSecretRead:
		g, ok = fp.secrets[res.Name]
	case ActExportRead:
		g, ok = fp.exports[res.Name]
		if ok && prod == nil {
			d := deny(RuleDefaultDeny, "there is no production account to export %q", res.Name)
			d.Fix = "the grant is in silo.yaml; deploy a release (silo deploy) to create the production account with its exports"
			return d
		}
		if ok && !hasExport(prod, res.Name) {
			d := deny(RuleDefaultDeny, "production has no export %q (the grant is there, the export is not)", res.Name)
			d.Fix = fmt.Sprintf("declare %q under production.exports in silo.yaml and deploy it (silo deploy), or stop reading it", res.Name)
			return d
		}
		if ok {
			return allow(RuleExport, g.reasons)
		}
	}
	if !ok {
		return deny(RuleDefaultDeny, "no grant: %s holds no %s grant on %s", pr, act, res)
	}
	if act.IsWrite() && !g.write {
		return deny(RuleDefaultDeny, "no grant: %s may only read %s (%s)", pr, res, g.reasons[0])
	}
	if act != ActExportRead && !ap.Declares(res.Type, res.Name) {
		return deny(RuleDefaultDeny, "account %s declares no %s %q", ap.ID, res.Type, res.Name)
	}
	return allow(RuleGrant, g.reasons)
}

func hasExport(prod *AccountPolicy, name string) bool {
	_, ok := prod.exports[name]
	return ok
}

// Export resolves a production export to the resource it names.
func (p *Policy) Export(name string) (t silo.ResourceType, target string, ok bool) {
	prod := p.Account(silo.ProductionID)
	if prod == nil {
		return "", "", false
	}
	e, ok := prod.exports[name]
	return e.Type, e.Name, ok
}

// Load recompiles one account's policy from the store: call it after every
// apply to the account (and after it is deleted, which removes it).
//
// # Errors
//
// The store's error, or Compile's; on error the installed policy of the
// account is left as it was.
func (p *Policy) Load(ctx context.Context, st store.Store, id silo.AccountID) error {
	var a silo.Account
	var rs []silo.Resource
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		if a, err = tx.Account(id); err != nil {
			return err
		}
		rs, err = tx.Resources(id)
		return err
	})
	if errors.Is(err, silo.ErrNotFound) {
		p.Remove(id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load policy of %s: %w", id, err)
	}
	ap, err := p.Compile(a, rs)
	if err != nil {
		return err
	}
	if ap == nil {
		p.Remove(id)
		return nil
	}
	p.Set(ap)
	return nil
}

// LoadPolicy compiles the policy of every live account in the store.
func LoadPolicy(ctx context.Context, st store.Store) (*Policy, error) {
	f, err := LoadFleet(ctx, st)
	if err != nil {
		return nil, err
	}
	return PolicyFromFleet(f)
}
