package isolation

import (
	"fmt"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
)

// NodeKind is the kind of a node of the access graph.
type NodeKind string

// The node kinds: principals, the gateway of an account, and resources.
const (
	NodeFunction NodeKind = "function"
	NodeKey      NodeKind = "key"
	NodeOperator NodeKind = "operator"
	NodeGateway  NodeKind = "gateway"
	NodeAccount  NodeKind = "account" // an account as a whole (control actions)
	NodeRoute    NodeKind = "route"
	NodeTable    NodeKind = "table"
	NodeBucket   NodeKind = "bucket"
	NodeConfig   NodeKind = "config"
	NodeSecret   NodeKind = "secret"
	NodeExport   NodeKind = "export"
	NodeSchedule NodeKind = "schedule" // a schedule: it calls a function of its account
)

// AnyAccount is the account of a node that stands for every account: the
// target of a wildcard grant or of an operator's control actions.
const AnyAccount silo.AccountID = "*"

// Node is a principal or resource of the access graph.
type Node struct {
	Account silo.AccountID `json:"account"`
	Kind    NodeKind       `json:"kind"`
	Name    string         `json:"name"`
}

func (n Node) String() string {
	switch n.Kind {
	case NodeGateway:
		return "gateway of " + string(n.Account)
	case NodeOperator:
		return "operator " + n.Name
	case NodeAccount:
		if n.Account == AnyAccount {
			return "every account"
		}
		return "account " + string(n.Account)
	}
	acct := string(n.Account)
	if n.Account == AnyAccount {
		acct = "every account"
	}
	return fmt.Sprintf("%s %q of %s", n.Kind, n.Name, acct)
}

// Edge is one capability: From may do Action to To, because of Origin.
type Edge struct {
	From   Node   `json:"from"`
	To     Node   `json:"to"`
	Action Action `json:"action"`
	Origin string `json:"origin"`
}

func (e Edge) String() string {
	return fmt.Sprintf("%s --%s--> %s  [%s]", e.From, e.Action, e.To, e.Origin)
}

// Counterexample is one violation of an invariant: a path through the access
// graph (each edge with its origin) and what is wrong with it.
type Counterexample struct {
	Invariant string `json:"invariant"` // "I1".."I5"
	Problem   string `json:"problem"`
	Path      []Edge `json:"path,omitempty"`
	// Accounts are the accounts the counterexample names: the one its
	// problem is about, the others it names, and those of every node of
	// its path (AnyAccount for a path that reaches every account), sorted.
	Accounts []silo.AccountID `json:"accounts,omitempty"`
	// Fix says how to repair it, when the verifier knows: the command
	// that does (silo keys remove for a key record, the deletion to run
	// again for an account being deleted or deleted), or what to change.
	Fix string `json:"fix,omitempty"`
	// Source and Touched are set in a gate's result only (Gate,
	// GateKeeping; "" and false in Verify's). Source says where the
	// violation comes from: what the release declares, or the fleet's
	// records, which are what they are whatever release ships. Touched,
	// for a violation of the fleet, says the release changes what an
	// account it involves holds (see GateKeeping).
	Source  Source `json:"source,omitempty"`
	Touched bool   `json:"touched,omitempty"`
}

// Source is where a violation a gate finds comes from.
type Source string

// The sources.
const (
	// SourceRelease: the check read resources the release declares (those
	// of the accounts it moves, or adds to the check), or could not
	// finish.
	SourceRelease Source = "release"
	// SourceFleet: the check read only the fleet's own records: API keys,
	// operators, account records, and the resources of accounts the
	// release leaves as they are (being deleted or deleted, or kept).
	SourceFleet Source = "fleet"
)

func (c Counterexample) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", c.Invariant, c.Problem)
	for _, e := range c.Path {
		fmt.Fprintf(&b, "\n    %s", e)
	}
	return b.String()
}

// Status is the outcome of a verification.
type Status string

// The statuses. There is no "unknown": every edge is decided.
const (
	StatusProved     Status = "proved"
	StatusViolated   Status = "counterexamples"
	StatusIncomplete Status = "incomplete" // no violation, but a fact was missing (see Result.Incomplete)
)

// MaxCounterexamples bounds how many counterexamples a Result holds (a
// gate's result holds, beyond it, the first of each source and the first
// touched); Violations counts them all.
const MaxCounterexamples = 1000

// Result is the outcome of Verify.
type Result struct {
	Status Status `json:"status"`
	// Accounts is how many accounts the proof holds over: every account
	// but the deleted ones, the fleet silo tenant list shows.
	Accounts int `json:"accounts"`
	// Deleted is how many deleted accounts were checked for I5 (no live
	// key, no data key); they hold nothing else to prove about. A deleted
	// account whose ID a new account took is not in the fleet: its row
	// and keys were removed as the ID was taken.
	Deleted int `json:"deleted"`
	// DeletedKeys is how many API keys of those deleted accounts were
	// checked for I5 (none may be live). They are not in Principals.
	DeletedKeys int `json:"deleted_keys"`
	// Principals counts the functions and API keys of the accounts in
	// Accounts (not deleted), API keys bound to no existing account, and
	// the operators.
	Principals int `json:"principals"`
	Resources  int `json:"resources"`
	Edges      int `json:"edges"`
	Violations int `json:"violations"`
	// FromRelease and Touched are a gate's counts, over every violation
	// (listed or not): those of SourceRelease, and those of SourceFleet
	// the release touches. Zero in Verify's result.
	FromRelease     int              `json:"from_release,omitempty"`
	Touched         int              `json:"touched,omitempty"`
	Counterexamples []Counterexample `json:"counterexamples,omitempty"`
	Incomplete      []string         `json:"incomplete,omitempty"`
}

// Proved reports whether every invariant holds.
func (r Result) Proved() bool { return r.Status == StatusProved }

// Involving returns the counterexamples that involve account id: those
// that name it (Counterexample.Accounts: as the account a problem is about,
// as another account the problem names, or on the path) or name every
// account (AnyAccount).
func (r Result) Involving(id silo.AccountID) []Counterexample {
	var out []Counterexample
	for _, c := range r.Counterexamples {
		if c.involves(id) {
			out = append(out, c)
		}
	}
	return out
}

func (c Counterexample) involves(id silo.AccountID) bool {
	if slices.Contains(c.Accounts, id) || slices.Contains(c.Accounts, AnyAccount) {
		return true
	}
	for _, e := range c.Path { // a counterexample built without Accounts
		if e.From.Account == id || e.To.Account == id || e.From.Account == AnyAccount || e.To.Account == AnyAccount {
			return true
		}
	}
	return false
}
