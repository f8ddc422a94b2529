package iam

import (
	"fmt"
	"sort"
	"strings"
)

// Snapshot is the IAM state of an organization as AWS holds it: every
// account silo manages, with its roles and policies and its resources with
// their resource policies. The AWS provider reads it; tests build it by hand.
type Snapshot struct {
	OrgID string `json:"org_id"`
	// Management is the management account's ID. Its principals are not
	// read; ControlPlane and DataPlane name the ones silo uses.
	Management   string    `json:"management"`
	Root         string    `json:"root"`                    // the root ID, in the management account's org path
	ControlPlane []string  `json:"control_plane,omitempty"` // principal ARNs of the control plane
	DataPlane    []string  `json:"data_plane,omitempty"`    // principal ARNs of the data plane
	Accounts     []Account `json:"accounts"`
}

// Account is one member account.
type Account struct {
	ID        string     `json:"id"`   // AWS account ID
	Silo      string     `json:"silo"` // silo account ID
	Kind      string     `json:"kind"` // tenant, developer, environment or production
	OrgPath   string     `json:"org_path"`
	Roles     []Role     `json:"roles"`
	Resources []Resource `json:"resources"`
	// Problems lists what could not be read (a policy AWS did not return);
	// each makes the result unverifiable.
	Problems []string `json:"problems,omitempty"`
}

// Role is an IAM role with its trust policy and identity policies.
// Declared, for a function's execution role, is the policy its declared
// grants make: what the role may do beyond it is a counterexample.
type Role struct {
	ARN      string `json:"arn"`
	Trust    Doc    `json:"trust"`
	Policies []Doc  `json:"policies"`
	Declared *Doc   `json:"declared,omitempty"`
}

// ResourceKind is the kind of a resource.
type ResourceKind string

// The resource kinds Verify checks.
const (
	Table  ResourceKind = "table"
	Bucket ResourceKind = "bucket"
	Config ResourceKind = "config"
	Secret ResourceKind = "secret" // an SSM SecureString parameter
	Key    ResourceKind = "key"
	// LegacySecret is a Secrets Manager secret, as an earlier silo stored
	// secrets, until it is moved to SSM.
	LegacySecret ResourceKind = "legacy-secret"
)

// Resource is a resource of an account. Exported marks a production
// resource shared read-only with the other accounts.
type Resource struct {
	Kind     ResourceKind `json:"kind"`
	Name     string       `json:"name"` // silo's name, for messages
	ARN      string       `json:"arn"`
	Policy   *Doc         `json:"policy,omitempty"`
	Exported bool         `json:"exported,omitempty"`
}

// probe is one action checked on a resource: on the ARN, on its
// objects (a bucket's "<arn>/*"), or on its parent path (a parameter's
// path, which ssm:GetParametersByPath reads with everything below it). read marks the actions an export allows
// (reads), data those the control plane must not hold (I3): reading table
// items, objects or secret values, or decrypting. Listing object keys and
// reading config values, which the control plane writes itself, are reads
// but not data.
type probe struct {
	action     string
	objects    bool
	read, data bool
	parent     bool
}

var probes = map[ResourceKind][]probe{
	Table: {
		{"dynamodb:GetItem", false, true, true, false}, {"dynamodb:Query", false, true, true, false}, {"dynamodb:Scan", false, true, true, false},
		{"dynamodb:PutItem", false, false, false, false}, {"dynamodb:DeleteItem", false, false, false, false}, {"dynamodb:PutResourcePolicy", false, false, false, false},
	},
	Bucket: {
		{"s3:ListBucket", false, true, false, false}, {"s3:GetObject", true, true, true, false},
		{"s3:PutObject", true, false, false, false}, {"s3:DeleteObject", true, false, false, false}, {"s3:PutBucketPolicy", false, false, false, false},
	},
	Config: {{"ssm:GetParameter", false, true, false, false}, {"ssm:PutParameter", false, false, false, false}},
	Secret: {
		{"ssm:GetParameter", false, true, true, false}, {"ssm:GetParameters", false, true, true, false},
		{"ssm:GetParametersByPath", false, true, true, true}, {"ssm:PutParameter", false, false, false, false},
	},
	LegacySecret: {{"secretsmanager:GetSecretValue", false, true, true, false}, {"secretsmanager:PutSecretValue", false, false, false, false}},
	Key:          {{"kms:Decrypt", false, true, true, false}, {"kms:PutKeyPolicy", false, false, false, false}},
}

// Finding is one counterexample: Principal, through the roles in Via, may
// do Action on Resource.
type Finding struct {
	Invariant string   `json:"invariant"`
	Principal string   `json:"principal"`
	Via       []string `json:"via,omitempty"` // roles assumed, in order
	Action    string   `json:"action"`
	Resource  string   `json:"resource"`
	Account   string   `json:"account"` // the resource's AWS account
	Because   []string `json:"because"` // the policies that allow each step
	Problem   string   `json:"problem"`
}

func (f Finding) String() string {
	via := ""
	if len(f.Via) > 0 {
		via = " through " + strings.Join(f.Via, " then ")
	}
	return fmt.Sprintf("%s: %s%s may %s on %s: %s (allowed by %s)", f.Invariant, f.Principal, via, f.Action, f.Resource, f.Problem, strings.Join(f.Because, "; "))
}

// Result is the outcome of Verify.
type Result struct {
	Findings     []Finding `json:"findings,omitempty"`
	Unverifiable []string  `json:"unverifiable,omitempty"`
	Principals   int       `json:"principals"`
	Resources    int       `json:"resources"`
	Checked      int       `json:"checked"` // requests decided
}

// Proved reports whether no counterexample was found and everything was
// within the subset.
func (r Result) Proved() bool { return len(r.Findings) == 0 && len(r.Unverifiable) == 0 }

// owner is whom a starting principal acts for.
type owner struct {
	kind    string // "outside", "control", "data", or an account kind
	account string // AWS account, for account kinds
	label   string
}

type start struct {
	p     Principal
	who   owner
	ident Access // identity part only
}

// Verify proves silo's invariants on the snapshot:
//
//   - I1: no principal of a tenant, developer or environment account, and no
//     principal outside the organization, may act on another account's
//     resources or assume a role there, except the read actions on
//     exported production resources.
//   - I2: no principal of the production account may act on another
//     account's resources or assume a role outside production.
//   - I3: the control plane's principals, and any other principal of the
//     management account, may not read table items, objects or secret
//     values, or decrypt with a data key, of any account.
//
// Principals are every role of the snapshot reachable by sts:AssumeRole
// from: any principal of each account (whose identity policies are not
// read, so they may allow anything), any principal outside the
// organization, the Lambda service and every service a trust policy names,
// each acting for each account, and the control and data plane principals. The data plane may read every
// account's data by design and is not checked. I4 (API keys) and I5
// (deleted accounts' keys) are not IAM questions; isolation.Verify proves
// them.
func Verify(s Snapshot) Result {
	var res Result
	accounts := map[string]*Account{}
	for i := range s.Accounts {
		a := &s.Accounts[i]
		accounts[a.ID] = a
		for _, p := range a.Problems {
			res.Unverifiable = append(res.Unverifiable, "account "+label(a)+": "+p)
		}
		for _, r := range a.Roles {
			res.Unverifiable = append(res.Unverifiable, unsupported("trust policy of "+r.ARN, r.Trust)...)
			for _, d := range r.Policies {
				res.Unverifiable = append(res.Unverifiable, unsupported(d.Name, d)...)
			}
		}
		for _, r := range a.Resources {
			if r.Policy != nil {
				res.Unverifiable = append(res.Unverifiable, unsupported(r.Policy.Name, *r.Policy)...)
			}
			res.Resources++
		}
	}
	named := append(append([]string(nil), s.ControlPlane...), s.DataPlane...)
	var starts []start
	services := trustedServices(s)
	for _, a := range s.Accounts {
		starts = append(starts, start{Principal{Account: a.ID, OrgID: s.OrgID, OrgPath: a.OrgPath}, owner{a.Kind, a.ID, "any principal of account " + label(&a)}, Access{Unconstrained: true}})
		for _, svc := range services {
			who := "the service " + svc + " acting for account " + label(&a)
			if svc == "lambda.amazonaws.com" {
				who = "a Lambda function of account " + label(&a)
			}
			starts = append(starts, start{Principal{Service: svc, SourceAccount: a.ID}, owner{a.Kind, a.ID, who}, Access{}})
		}
	}
	starts = append(starts, start{Principal{}, owner{kind: "outside", label: "any principal outside the organization"}, Access{Unconstrained: true}})
	if s.Management != "" {
		mgmt := Principal{Account: s.Management, OrgID: s.OrgID, OrgPath: s.OrgID + "/" + s.Root + "/"}
		other := mgmt
		other.Except = named
		starts = append(starts, start{other, owner{kind: "control", label: "any other principal of the management account " + s.Management}, Access{Unconstrained: true}})
		for _, arn := range s.ControlPlane {
			p := mgmt
			p.ARN = arn
			p.Account, _ = splitPrincipal(arn)
			starts = append(starts, start{p, owner{kind: "control", label: "the control plane " + arn}, Access{Unconstrained: true}})
		}
		for _, arn := range s.DataPlane {
			p := mgmt
			p.ARN = arn
			p.Account, _ = splitPrincipal(arn)
			starts = append(starts, start{p, owner{kind: "data", label: "the data plane " + arn}, Access{Unconstrained: true}})
		}
	}
	res.Principals = len(starts)
	for _, st := range starts {
		res.Findings = append(res.Findings, explore(s, accounts, st, &res.Checked)...)
	}
	sort.Strings(res.Unverifiable)
	res.Unverifiable = dedup(res.Unverifiable)
	return res
}

// trustedServices lists, sorted, the service principals any trust policy
// names, and always Lambda's: each acts for every account in turn.
func trustedServices(s Snapshot) []string {
	seen := map[string]bool{"lambda.amazonaws.com": true}
	for _, a := range s.Accounts {
		for _, r := range a.Roles {
			for _, st := range r.Trust.Policy.Statements {
				for _, svc := range st.Services {
					seen[strings.ToLower(svc)] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for svc := range seen {
		out = append(out, svc)
	}
	sort.Strings(out)
	return out
}

func label(a *Account) string {
	if a.Silo == "" {
		return a.ID
	}
	return a.ID + " (" + a.Silo + ")"
}

func unsupported(name string, d Doc) []string {
	var out []string
	for i, s := range d.Policy.Statements {
		if len(s.Unsupported) > 0 {
			id := s.Sid
			if id == "" {
				id = fmt.Sprint(i)
			}
			out = append(out, fmt.Sprintf("%s, statement %s: %s is outside the evaluated subset of IAM", name, id, strings.Join(s.Unsupported, ", ")))
		}
	}
	return out
}

func dedup(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// hop is a principal reached by assuming roles, with its path.
type hop struct {
	p       Principal
	access  Access
	via     []string
	because []string
	account string // the account whose identity the hop acts as
	role    *Role  // the role assumed last, nil for the start
}

// escalations are actions a function never declares: holding one on any
// role of its account is a grant beyond its spec.
var escalations = []string{"sts:AssumeRole", "iam:PassRole", "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"}

// explore finds every counterexample of one starting principal.
func explore(s Snapshot, accounts map[string]*Account, st start, checked *int) []Finding {
	var out []Finding
	first := hop{p: st.p, access: st.ident, account: st.p.Account}
	queue := []hop{first}
	seen := map[string]bool{}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		for _, a := range s.Accounts {
			for _, r := range a.Roles {
				if seen[r.ARN] {
					continue
				}
				acc := h.access
				acc.Resource, acc.ResourceAccount, acc.PolicyRequired = &r.Trust, a.ID, true
				*checked++
				ok, because := Decide(h.p, "sts:AssumeRole", r.ARN, acc)
				if !ok {
					continue
				}
				seen[r.ARN] = true
				path := append(append([]string(nil), h.via...), r.ARN)
				why := append(append([]string(nil), h.because...), because...)
				if problem, inv := crossing(st.who, a, probe{action: "sts:AssumeRole"}, false); problem != "" {
					out = append(out, Finding{Invariant: inv, Principal: st.who.label, Via: h.via, Action: "sts:AssumeRole", Resource: r.ARN, Account: a.ID, Because: why, Problem: problem})
				}
				next := hop{
					p:       Principal{Account: a.ID, ARN: r.ARN, OrgID: s.OrgID, OrgPath: a.OrgPath},
					access:  Access{Identity: r.Policies},
					via:     path,
					because: why,
					account: a.ID,
					role:    &r,
				}
				queue = append(queue, next)
			}
		}
		out = append(out, resources(s, h, st, checked)...)
	}
	return out
}

// resources checks what hop h may do on every resource.
func resources(s Snapshot, h hop, st start, checked *int) []Finding {
	if h.p.Service != "" {
		return nil // a service principal acts only through the roles it assumes
	}
	var out []Finding
	if h.role != nil && h.role.Declared != nil {
		roles := "arn:aws:iam::" + h.account + ":role/*"
		for _, action := range escalations {
			*checked++
			acc := Access{Identity: h.access.Identity, ResourceAccount: h.account}
			ok, because := Decide(h.p, action, roles, acc)
			if !ok {
				continue
			}
			if declared, _ := Decide(h.p, action, roles, Access{Identity: []Doc{*h.role.Declared}, ResourceAccount: h.account}); declared {
				continue
			}
			out = append(out, Finding{
				Invariant: "I1", Principal: st.who.label, Via: h.via, Action: action, Resource: roles, Account: h.account,
				Because: append(append([]string(nil), h.because...), because...), Problem: "the execution role " + h.role.ARN + " holds a grant its function does not declare",
			})
		}
	}
	for _, a := range s.Accounts {
		for _, r := range a.Resources {
			if r.Policy == nil && a.ID != h.p.Account {
				continue // across accounts only a resource policy can allow
			}
			for _, pr := range probes[r.Kind] {
				arn := r.ARN
				if pr.objects {
					arn += "/*"
				}
				if pr.parent {
					arn = arn[:strings.LastIndex(arn, "/")]
				}
				acc := h.access
				acc.Resource, acc.ResourceAccount, acc.PolicyRequired = r.Policy, a.ID, r.Kind == Key
				*checked++
				ok, because := Decide(h.p, pr.action, arn, acc)
				if !ok {
					continue
				}
				if r.Kind == Key && pr.action == "kms:Decrypt" && onlyThroughStores(h, arn, acc) {
					continue
				}
				problem, inv := crossing(st.who, a, pr, r.Exported)
				if problem == "" && h.role != nil && h.role.Declared != nil && beyondDeclared(h, pr.action, arn, acc) {
					problem, inv = "the execution role "+h.role.ARN+" holds a grant its function does not declare", "I1"
				}
				if problem == "" {
					continue
				}
				out = append(out, Finding{
					Invariant: inv, Principal: st.who.label, Via: h.via, Action: pr.action, Resource: arn, Account: a.ID,
					Because: append(append([]string(nil), h.because...), because...), Problem: problem,
				})
			}
		}
	}
	return out
}

// stores are the services through which a kms:Decrypt is no reach of its
// own: S3 and DynamoDB decrypt only what their own resource policies let
// the caller read, and those are checked on their own.
var stores = []string{"s3.", "dynamodb."}

// onlyThroughStores reports whether hop h may decrypt with key resource
// only through S3 or DynamoDB: never directly, nor through any other
// service a policy names.
func onlyThroughStores(h hop, resource string, acc Access) bool {
	vias := []string{"", "other.amazonaws.com"}
	docs := append([]Doc(nil), acc.Identity...)
	if acc.Resource != nil {
		docs = append(docs, *acc.Resource)
	}
	for _, d := range docs {
		for _, st := range d.Policy.Statements {
			for _, c := range st.Conditions {
				if c.Key == "kms:viaservice" {
					vias = append(vias, c.Values...)
				}
			}
		}
	}
	for _, via := range vias {
		store := false
		for _, s := range stores {
			store = store || strings.HasPrefix(via, s)
		}
		if store {
			continue
		}
		p := h.p
		p.ViaService, p.ViaKnown = via, true
		if ok, _ := Decide(p, "kms:Decrypt", resource, acc); ok {
			return false
		}
	}
	return true
}

// beyondDeclared reports whether the role of hop h may do action on
// resource in some request its declared grants would refuse. kms:ViaService
// is tried with each value the role's policies name, and absent, so that a
// grant without the condition is told from one with it.
func beyondDeclared(h hop, action, resource string, acc Access) bool {
	vias := []string{""}
	for _, d := range h.role.Policies {
		for _, st := range d.Policy.Statements {
			for _, c := range st.Conditions {
				if c.Key == "kms:viaservice" {
					vias = append(vias, c.Values...)
				}
			}
		}
	}
	declared := acc
	declared.Identity = []Doc{*h.role.Declared}
	for _, via := range vias {
		p := h.p
		p.ViaService, p.ViaKnown = via, true
		if ok, _ := Decide(p, action, resource, acc); !ok {
			continue
		}
		if ok, _ := Decide(p, action, resource, declared); !ok {
			return true
		}
	}
	return false
}

// crossing returns what is wrong, if anything, with a principal acting for
// who doing pr on something of account a.
func crossing(who owner, a Account, pr probe, exported bool) (string, string) {
	to := "account " + label(&a)
	switch who.kind {
	case "data":
		return "", ""
	case "control":
		if pr.data {
			return "the control plane could read data of " + to, "I3"
		}
		return "", ""
	case "outside":
		return "a principal outside the organization reaches " + to, "I1"
	case "production":
		if a.ID != who.account {
			return "the production account reaches " + to, "I2"
		}
		return "", ""
	}
	if a.ID == who.account {
		return "", ""
	}
	if a.Kind == "production" {
		if exported && pr.read {
			return "", ""
		}
		if exported {
			return "more than read on a production export of " + to, "I1"
		}
		return "a tenant reaches an unexported resource or role of " + to, "I1"
	}
	return "one account reaches " + to, "I1"
}
