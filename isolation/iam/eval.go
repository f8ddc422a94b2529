package iam

import (
	"strings"
)

// Principal is who makes a request.
type Principal struct {
	// Account is the principal's 12-digit AWS account ID; "" for a
	// principal outside every account the verifier knows.
	Account string
	// ARN is the role ARN the principal acts as; "" for "any principal of
	// Account", which every role or user ARN of Account may name, except
	// those in Except (principals the snapshot models on their own).
	ARN    string
	Except []string
	// Service is a service principal such as lambda.amazonaws.com, acting
	// for SourceAccount.
	Service, SourceAccount string
	// OrgID and OrgPath ("o-…/r-…/ou-…/") are the values of
	// aws:PrincipalOrgID and aws:PrincipalOrgPaths; "" outside the
	// organization.
	OrgID, OrgPath string
	// ViaService is the value of kms:ViaService ("" for a direct call) if
	// ViaKnown; else it is unknown and holds for an Allow, not for a Deny.
	ViaService string
	ViaKnown   bool
}

// Doc is a policy with the name a counterexample shows for it.
type Doc struct {
	Name   string
	Policy Policy
}

// Access is what decides a request besides its principal, action and
// resource.
type Access struct {
	// Identity holds the principal's identity policies. Unconstrained
	// means they may allow anything: a principal the snapshot does not
	// show (any principal of an account, one outside the organization).
	Identity      []Doc
	Unconstrained bool
	// Resource is the resource's policy (bucket, table, key or trust
	// policy), nil if it has none.
	Resource        *Doc
	ResourceAccount string
	// PolicyRequired is set for KMS keys and role trust: the resource
	// policy must name the principal, or its account and then the identity
	// policy must allow too.
	PolicyRequired bool
}

// Decide reports whether principal p may do action on resource, a
// resource ARN or an ARN pattern that stands for every resource it matches
// ("arn:aws:s3:::b/*": any object of b), and which statements allow it.
// Statements outside the subset are skipped (Verify reports them).
func Decide(p Principal, action, resource string, a Access) (bool, []string) {
	for _, d := range a.Identity {
		if a.Unconstrained {
			break
		}
		for _, s := range d.Policy.Statements {
			if s.Effect == "Deny" && !s.HasPrincipal && s.applies(p, action, resource, false) {
				return false, nil
			}
		}
	}
	if a.Resource != nil {
		for _, s := range a.Resource.Policy.Statements {
			if s.Effect == "Deny" && s.HasPrincipal && s.namesSurely(p) && s.applies(p, action, resource, false) {
				return false, nil
			}
		}
	}
	var idBy string
	if a.Unconstrained {
		idBy = "any identity policy of account " + orOutside(p.Account)
	} else {
		for _, d := range a.Identity {
			if by := firstAllow(d, p, action, resource); by != "" {
				idBy = by
				break
			}
		}
	}
	var direct, byAccount string
	if a.Resource != nil {
		for _, s := range a.Resource.Policy.Statements {
			if s.Effect != "Allow" || !s.HasPrincipal || len(s.Unsupported) > 0 || !s.applies(p, action, resource, true) {
				continue
			}
			switch s.names(p) {
			case nameDirect:
				if direct == "" {
					direct = cite(a.Resource.Name, s)
				}
			case nameAccount:
				if byAccount == "" {
					byAccount = cite(a.Resource.Name, s)
				}
			}
		}
	}
	switch {
	case p.Service != "":
		return direct != "", nonEmpty(direct)
	case p.Account != "" && p.Account == a.ResourceAccount:
		if a.PolicyRequired {
			if direct != "" {
				return true, nonEmpty(direct)
			}
			return byAccount != "" && idBy != "", nonEmpty(byAccount, idBy)
		}
		if idBy != "" {
			return true, nonEmpty(idBy)
		}
		return direct != "", nonEmpty(direct)
	}
	if idBy == "" {
		return false, nil
	}
	if direct != "" {
		return true, nonEmpty(idBy, direct)
	}
	return byAccount != "", nonEmpty(idBy, byAccount)
}

func orOutside(account string) string {
	if account == "" {
		return "outside the organization"
	}
	return account
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func cite(doc string, s Statement) string {
	if s.Sid != "" {
		return doc + " (statement " + s.Sid + ")"
	}
	return doc
}

func firstAllow(d Doc, p Principal, action, resource string) string {
	for _, s := range d.Policy.Statements {
		if s.Effect == "Allow" && !s.HasPrincipal && len(s.Unsupported) == 0 && s.applies(p, action, resource, true) {
			return cite(d.Name, s)
		}
	}
	return ""
}

type naming int

const (
	nameNone naming = iota
	nameDirect
	nameAccount // the principal's account: IAM decides within it
)

// names reports how the statement's Principal element names p.
func (s *Statement) names(p Principal) naming {
	if s.AnyPrincipal {
		return nameDirect
	}
	if p.Service != "" {
		for _, v := range s.Services {
			if strings.EqualFold(v, p.Service) {
				return nameDirect
			}
		}
		return nameNone
	}
	if p.Account == "" {
		return nameNone
	}
	got := nameNone
	for _, v := range s.AWS {
		acct, rest := splitPrincipal(v)
		if acct != p.Account {
			continue
		}
		switch {
		case rest == "root":
			got = nameAccount
		case p.ARN != "":
			if v == p.ARN {
				return nameDirect
			}
		case !contains(p.Except, v):
			return nameDirect
		}
	}
	return got
}

// namesSurely reports whether a Deny's Principal element names p for
// certain: "any principal of an account" is surely named only through the
// account or "*".
func (s *Statement) namesSurely(p Principal) bool {
	n := s.names(p)
	if n == nameDirect && p.ARN == "" && p.Service == "" && !s.AnyPrincipal {
		return false
	}
	return n != nameNone
}

// splitPrincipal returns the account of an AWS principal value and what
// follows "account:" ("root" for the account itself).
func splitPrincipal(v string) (string, string) {
	if len(v) == 12 && strings.Trim(v, "0123456789") == "" {
		return v, "root"
	}
	parts := strings.SplitN(v, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", ""
	}
	return parts[4], parts[5]
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// applies reports whether the statement's action, resource and conditions
// match a request. allow selects the over-approximation: an Allow matches
// if it may, a Deny only if it surely does.
func (s *Statement) applies(p Principal, action, resource string, allow bool) bool {
	if len(s.Unsupported) > 0 {
		return false
	}
	hit := false
	for _, a := range s.Actions {
		if Glob(strings.ToLower(a), strings.ToLower(action)) {
			hit = true
			break
		}
	}
	if hit == s.NotAction {
		return false
	}
	if !s.resourceMatches(resource, allow) {
		return false
	}
	for _, c := range s.Conditions {
		if !c.holds(p, allow) {
			return false
		}
	}
	return true
}

func (s *Statement) resourceMatches(resource string, allow bool) bool {
	for _, r := range s.Resources {
		var m bool
		switch {
		case allow && !s.NotResource, !allow && s.NotResource:
			m = Overlap(r, resource)
		default:
			m = Covers(r, resource)
		}
		if m {
			return !s.NotResource
		}
	}
	return s.NotResource
}

// holds reports whether the condition holds for principal p; a key whose
// value is unknown holds for an Allow (allow) and not for a Deny.
func (c Condition) holds(p Principal, allow bool) bool {
	var v string
	switch c.Key {
	case "aws:principalorgid":
		v = p.OrgID
	case "aws:principalorgpaths":
		v = p.OrgPath
	case "aws:sourceaccount":
		v = p.SourceAccount
	case "kms:viaservice":
		if !p.ViaKnown {
			return allow
		}
		v = p.ViaService
	default:
		return allow
	}
	negated := strings.Contains(c.Op, "Not")
	if v == "" {
		return negated
	}
	like := strings.HasSuffix(c.Op, "Like")
	hit := false
	for _, want := range c.Values {
		if like && Glob(want, v) || !like && want == v {
			hit = true
			break
		}
	}
	return hit != negated
}

// Glob reports whether s matches pattern, where "*" matches any run of
// characters and "?" any one character.
func Glob(pattern, s string) bool {
	return Overlap(pattern, escapeLiteral(s))
}

// escapeLiteral marks s as literal for Overlap: wildcards in s match only
// themselves. Resource names never hold the marker byte.
func escapeLiteral(s string) string {
	if !strings.ContainsAny(s, "*?") {
		return s
	}
	s = strings.ReplaceAll(s, "*", "\x00")
	return strings.ReplaceAll(s, "?", "\x01")
}

// Overlap reports whether some string matches both patterns.
func Overlap(a, b string) bool {
	wa, wb := strings.ContainsAny(a, "*?"), strings.ContainsAny(b, "*?")
	switch {
	case !wa && !wb:
		return a == b
	case !wb:
		return match(a, b)
	case !wa:
		return match(b, a)
	}
	return overlap(a, b)
}

// match reports whether the literal s matches pattern, in linear time
// with one backtracking point.
func match(pattern, s string) bool {
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// overlap decides Overlap for two patterns with wildcards.
func overlap(a, b string) bool {
	memo := map[[2]int]bool{}
	seen := map[[2]int]bool{}
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		k := [2]int{i, j}
		if seen[k] {
			return memo[k]
		}
		seen[k] = true
		var r bool
		switch {
		case i == len(a) && j == len(b):
			r = true
		case i < len(a) && a[i] == '*':
			r = rec(i+1, j) || j < len(b) && rec(i, j+1)
		case j < len(b) && b[j] == '*':
			r = rec(i, j+1) || i < len(a) && rec(i+1, j)
		case i < len(a) && j < len(b):
			r = (a[i] == b[j] || a[i] == '?' || b[j] == '?') && rec(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return rec(0, 0)
}

// Covers reports, conservatively, whether every string matching pattern q
// matches pattern p: true only when that is certain (q is literal and
// matches p, p is "*", p equals q, or p is a literal prefix followed by
// "*" that q starts with).
func Covers(p, q string) bool {
	if p == "*" || p == q {
		return true
	}
	if !strings.ContainsAny(q, "*?") {
		return Glob(p, q)
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok && !strings.ContainsAny(prefix, "*?") {
		return strings.HasPrefix(q, prefix)
	}
	return false
}
