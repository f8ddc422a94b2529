// Package iam evaluates a documented subset of AWS IAM policies, without the
// AWS SDK, and proves silo's isolation invariants on the policies an AWS
// organization holds (Verify over a Snapshot).
//
// # The subset
//
// Evaluated: Effect Allow and Deny; Principal "*", {"AWS": "*"}, AWS
// account IDs, account root ARNs and role ARNs, and {"Service": ...};
// Action and NotAction, Resource and NotResource, with the wildcards "*" and
// "?" (actions case-insensitive); conditions with the operators
// StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals,
// ArnLike and the ForAnyValue: forms of StringEquals and StringLike, on the
// keys aws:PrincipalOrgPaths, aws:PrincipalOrgID, aws:SourceAccount and
// kms:ViaService.
//
// Everything else (NotPrincipal, Federated or CanonicalUser principals,
// other condition operators or keys, IfExists, policy variables, unknown
// statement elements) is outside the subset: the statement is reported as
// unverifiable, and a Snapshot that holds one is never proved.
//
// Evaluation over-approximates what a principal can do: a condition on a
// key whose value the verifier does not know (kms:ViaService) holds for an
// Allow and does not hold for a Deny; a Deny applies to a resource pattern
// only if it covers all of it. So a "no" from the evaluator is a proof
// within the subset, and a "yes" may be a false alarm.
package iam

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Policy is a parsed policy document.
type Policy struct {
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect string // "Allow" or "Deny"
	// HasPrincipal says whether the statement names principals (resource
	// and trust policies); identity policies have none.
	HasPrincipal bool
	AnyPrincipal bool     // "*" or {"AWS": "*"}
	AWS          []string // account IDs, account root ARNs, role ARNs
	Services     []string
	Actions      []string
	NotAction    bool // Actions lists the NotAction element
	Resources    []string
	NotResource  bool // Resources lists the NotResource element
	Conditions   []Condition
	// Unsupported lists why the statement is outside the subset; such a
	// statement is never evaluated.
	Unsupported []string
}

// Condition is one test of a Condition element: Op(Key, Values).
type Condition struct {
	Op, Key string
	Values  []string
}

// The condition operators and keys of the subset.
var (
	operators = map[string]bool{
		"StringEquals": true, "StringNotEquals": true, "StringLike": true, "StringNotLike": true,
		"ArnEquals": true, "ArnLike": true,
		"ForAnyValue:StringEquals": true, "ForAnyValue:StringLike": true,
	}
	conditionKeys = map[string]bool{
		"aws:principalorgpaths": true, "aws:principalorgid": true, "aws:sourceaccount": true, "kms:viaservice": true,
	}
)

// Parse parses a policy document, URL-encoded as IAM returns it or not.
//
// # Errors
//
// If doc is not a JSON policy document. A well-formed statement outside the
// subset is no error: it is marked Unsupported.
func Parse(doc string) (Policy, error) {
	doc = strings.TrimSpace(doc)
	if strings.HasPrefix(doc, "%7B") || strings.HasPrefix(doc, "%7b") {
		if d, err := url.QueryUnescape(doc); err == nil {
			doc = d
		}
	}
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		return Policy{}, fmt.Errorf("not a policy document: %w", err)
	}
	var sts []map[string]json.RawMessage
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw.Statement, &one); err != nil {
			return Policy{}, fmt.Errorf("statement: %w", err)
		}
		sts = append(sts, one)
	} else if err := json.Unmarshal(raw.Statement, &sts); err != nil {
		return Policy{}, fmt.Errorf("statements: %w", err)
	}
	var p Policy
	for i, st := range sts {
		s, err := parseStatement(st)
		if err != nil {
			return Policy{}, fmt.Errorf("statement %d: %w", i, err)
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

func parseStatement(st map[string]json.RawMessage) (Statement, error) {
	var s Statement
	unsupported := func(format string, args ...any) { s.Unsupported = append(s.Unsupported, fmt.Sprintf(format, args...)) }
	for k := range st {
		switch k {
		case "Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		case "NotPrincipal":
			unsupported("NotPrincipal")
		default:
			unsupported("element %s", k)
		}
	}
	if v, ok := st["Sid"]; ok {
		json.Unmarshal(v, &s.Sid)
	}
	if err := json.Unmarshal(st["Effect"], &s.Effect); err != nil || s.Effect != "Allow" && s.Effect != "Deny" {
		return s, fmt.Errorf("Effect must be Allow or Deny")
	}
	var err error
	switch a, na := st["Action"], st["NotAction"]; {
	case a != nil && na == nil:
		s.Actions, err = strings1(a)
	case na != nil && a == nil:
		s.Actions, err = strings1(na)
		s.NotAction = true
	default:
		return s, fmt.Errorf("exactly one of Action and NotAction is needed")
	}
	if err != nil {
		return s, fmt.Errorf("Action: %w", err)
	}
	switch r, nr := st["Resource"], st["NotResource"]; {
	case r != nil && nr == nil:
		s.Resources, err = strings1(r)
	case nr != nil && r == nil:
		s.Resources, err = strings1(nr)
		s.NotResource = true
	case r == nil && nr == nil:
		// A trust policy has no Resource: the role itself.
		s.Resources = []string{"*"}
	default:
		return s, fmt.Errorf("both Resource and NotResource")
	}
	if err != nil {
		return s, fmt.Errorf("Resource: %w", err)
	}
	if pr, ok := st["Principal"]; ok {
		s.HasPrincipal = true
		var star string
		if json.Unmarshal(pr, &star) == nil {
			if star != "*" {
				return s, fmt.Errorf("Principal %q: only \"*\" may be a string", star)
			}
			s.AnyPrincipal = true
		} else {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(pr, &m); err != nil {
				return s, fmt.Errorf("Principal: %w", err)
			}
			for k, v := range m {
				vals, err := strings1(v)
				if err != nil {
					return s, fmt.Errorf("Principal %s: %w", k, err)
				}
				switch k {
				case "AWS":
					for _, v := range vals {
						if v == "*" {
							s.AnyPrincipal = true
						} else if strings.ContainsAny(v, "*?") {
							unsupported("AWS principal pattern %s", v)
						}
					}
					s.AWS = append(s.AWS, vals...)
				case "Service":
					s.Services = append(s.Services, vals...)
				default:
					unsupported("%s principal", k)
				}
			}
		}
	}
	if c, ok := st["Condition"]; ok {
		var m map[string]map[string]json.RawMessage
		if err := json.Unmarshal(c, &m); err != nil {
			return s, fmt.Errorf("Condition: %w", err)
		}
		for op, keys := range m {
			if !operators[op] {
				unsupported("condition operator %s", op)
			}
			for k, v := range keys {
				vals, err := strings1(v)
				if err != nil {
					return s, fmt.Errorf("Condition %s %s: %w", op, k, err)
				}
				if !conditionKeys[strings.ToLower(k)] {
					unsupported("condition key %s", k)
				}
				for _, v := range vals {
					if strings.Contains(v, "${") {
						unsupported("policy variable in %s", k)
					}
				}
				s.Conditions = append(s.Conditions, Condition{Op: op, Key: strings.ToLower(k), Values: vals})
			}
		}
		sort.Slice(s.Conditions, func(i, j int) bool {
			a, b := s.Conditions[i], s.Conditions[j]
			return a.Op+" "+a.Key < b.Op+" "+b.Key
		})
	}
	sort.Strings(s.Unsupported)
	return s, nil
}

// strings1 decodes a string or a list of strings (numbers and booleans,
// which conditions allow, as their text).
func strings1(raw json.RawMessage) ([]string, error) {
	var one any
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	switch v := one.(type) {
	case string:
		return []string{v}, nil
	case bool, float64:
		return []string{fmt.Sprint(v)}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			switch x := x.(type) {
			case string:
				out = append(out, x)
			case bool, float64:
				out = append(out, fmt.Sprint(x))
			default:
				return nil, fmt.Errorf("a list of strings is needed")
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("a string or a list of strings is needed")
}
