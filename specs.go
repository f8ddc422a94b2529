package silo

import (
	"fmt"
	"strings"
	"time"
)

// The data shapes of the engine's work, shared by every layer: the spec of
// each resource type as the engine encodes it into Resource.Spec (providers,
// the decision point and the verifier decode them), a plan of one account,
// and a drift item.

// FunctionSpec is the spec of a function resource: the artifact to run and
// the grants it holds. Grants are policy as data: the decision point and the
// verifier read them from here.
type FunctionSpec struct {
	Artifact    string            `json:"artifact"`
	Handler     string            `json:"handler"`
	Memory      uint64            `json:"memory"`
	Timeout     time.Duration     `json:"timeout"`
	Concurrency int               `json:"concurrency"`
	Tables      map[string]string `json:"tables,omitempty"`  // table → "read" | "read-write"
	Buckets     map[string]string `json:"buckets,omitempty"` // bucket → "read" | "read-write"
	Config      []string          `json:"config,omitempty"`
	Secrets     []string          `json:"secrets,omitempty"`
	Exports     []string          `json:"exports,omitempty"`
}

// ConfigSpec is the spec of a config resource.
type ConfigSpec struct {
	Value string `json:"value"`
}

// RouteSpec is the spec of a route resource.
type RouteSpec struct {
	Method   string `json:"method"`
	Path     string `json:"path"`
	Function string `json:"function"`
}

// ScheduleSpec is the spec of a schedule resource: which function runs, and
// when (a cron expression in UTC, or a fixed interval).
type ScheduleSpec struct {
	Function string `json:"function"`
	Cron     string `json:"cron,omitempty"`
	Every    string `json:"every,omitempty"` // a Go duration, e.g. "15m0s"
}

// ExportSpec is the spec of an export resource of the production account:
// exactly one of Table, Bucket and Config names the exported resource.
// Exports are read-only by construction; there is no mode field to widen.
type ExportSpec struct {
	Table  string `json:"table,omitempty"`
	Bucket string `json:"bucket,omitempty"`
	Config string `json:"config,omitempty"`
}

// Plan is what applying a release to one account would change. It is data:
// print it, save it as JSON, apply it later (Apply refuses it if the account
// changed since).
type Plan struct {
	Account     AccountID `json:"account"`
	Kind        Kind      `json:"kind"`
	Release     string    `json:"release"`
	FromRelease string    `json:"from_release,omitempty"`
	DesiredHash string    `json:"desired_hash"`
	Changes     []Change  `json:"changes"`
	Unchanged   int       `json:"unchanged"`
	Version     int64     `json:"version"` // the account version the plan was made against
	// Provision is set for an account still provisioning (an interrupted
	// onboarding): Apply first makes sure the provider holds the account.
	Provision bool `json:"provision,omitempty"`
}

// Empty reports whether the plan changes no resource.
func (p Plan) Empty() bool { return len(p.Changes) == 0 }

// Touches reports whether applying the plan writes anything: resources or
// only the account's release label.
func (p Plan) Touches() bool { return !p.Empty() || p.Release != p.FromRelease || p.Provision }

// ReleaseOnly reports whether applying the plan moves the account to the
// plan's release and changes none of its resources: the account's release
// label is all it writes. A release that changes only the tenants' stack
// (a function's code, say) is such a plan for the production account,
// which carries only the shared offers.
func (p Plan) ReleaseOnly() bool { return p.Touches() && p.Empty() && !p.Provision }

// Counts returns the number of changes per operation.
func (p Plan) Counts() map[Op]int {
	m := map[Op]int{}
	for _, c := range p.Changes {
		m[c.Op]++
	}
	if p.Unchanged > 0 {
		m[OpNoop] = p.Unchanged
	}
	return m
}

// Loss is one change that destroys data (see Change.DestroysData) and
// every account whose plan makes it, in plan order.
type Loss struct {
	Op       Op           `json:"op"` // OpDelete or OpReplace
	Type     ResourceType `json:"type"`
	Name     string       `json:"name"`
	Accounts []AccountID  `json:"accounts"`
}

// Key returns "type/name".
func (l Loss) Key() string { return string(l.Type) + "/" + l.Name }

// Losses returns the changes of plans that destroy data, one Loss per
// operation and resource in the order first met; nil when there are none.
func Losses(plans []Plan) []Loss {
	var out []Loss
	at := map[string]int{}
	for _, p := range plans {
		for _, c := range p.Changes {
			if !c.DestroysData() {
				continue
			}
			k := string(c.Op) + " " + c.Key()
			i, ok := at[k]
			if !ok {
				i = len(out)
				at[k] = i
				out = append(out, Loss{Op: c.Op, Type: c.Type, Name: c.Name})
			}
			out[i].Accounts = append(out[i].Accounts, p.Account)
		}
	}
	return out
}

// DescribeLosses describes losses in one line, e.g. "deletes table/notes
// in acme, globex", naming at most three accounts per change; "" when
// there are none.
func DescribeLosses(losses []Loss) string {
	parts := make([]string, len(losses))
	for i, l := range losses {
		parts[i] = fmt.Sprintf("%ss %s in %s", l.Op, l.Key(), ShortList(l.Accounts, 3))
	}
	return strings.Join(parts, "; ")
}

// Unconfirmed returns the changes of p that destroy data and that
// confirmed does not list for p's account: what a plan made again, as an
// account is applied, would destroy beyond what the operator confirmed.
func Unconfirmed(p Plan, confirmed []Loss) []Change {
	var more []Change
	for _, c := range p.Changes {
		if c.DestroysData() && !confirmedFor(confirmed, p.Account, c) {
			more = append(more, c)
		}
	}
	return more
}

func confirmedFor(confirmed []Loss, acct AccountID, c Change) bool {
	for _, l := range confirmed {
		if l.Op == c.Op && l.Type == c.Type && l.Name == c.Name {
			for _, a := range l.Accounts {
				if a == acct {
					return true
				}
			}
		}
	}
	return false
}

// ShortList joins ids with ", ", naming the first n and counting the rest:
// ShortList([acme globex hooli initech], 2) is "acme, globex, 2 more". It
// is how a message names accounts that may be many.
func ShortList[ID ~string](ids []ID, n int) string {
	shown := ids[:min(len(ids), max(n, 0))]
	names := make([]string, 0, len(shown)+1)
	for _, id := range shown {
		names = append(names, string(id))
	}
	if more := len(ids) - len(shown); more > 0 {
		names = append(names, fmt.Sprintf("%d more", more))
	}
	return strings.Join(names, ", ")
}

// DataLoss describes the changes of plans that destroy data:
// DescribeLosses(Losses(plans)).
func DataLoss(plans []Plan) string { return DescribeLosses(Losses(plans)) }

// DriftItem is one difference between recorded state and the provider.
type DriftItem struct {
	Key      string `json:"key"`
	Kind     string `json:"kind"` // "missing" (recorded, not held), "extra" (held, not recorded), "changed"
	Recorded string `json:"recorded,omitempty"`
	Actual   string `json:"actual,omitempty"`
}
