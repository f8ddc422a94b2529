package spec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/silo-run/silo"
)

// ResolveParams returns the value of every declared parameter for a tenant
// that set the parameters given: given values are type-checked and put in
// canonical form ("007" becomes "7", "TRUE" becomes "true"), defaults fill in
// the rest.
//
// # Errors
//
// An *Error with CodeInvalid naming every unknown parameter (with the nearest
// declared name), every value of the wrong type or outside the enum, and every
// required parameter not given.
func (s *Stack) ResolveParams(given map[string]string) (map[string]string, error) {
	declared := make([]string, 0, len(s.Params))
	for name := range s.Params {
		declared = append(declared, name)
	}
	sort.Strings(declared)
	var problems []string
	names := make([]string, 0, len(given))
	for name := range given {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := s.Params[name]; !ok {
			if len(declared) == 0 {
				problems = append(problems, fmt.Sprintf("unknown parameter %q: the stack declares no parameters", clip(name)))
			} else {
				problems = append(problems, fmt.Sprintf("unknown parameter %q%s; declared: %s", clip(name), suggest(name, declared), strings.Join(declared, ", ")))
			}
		}
	}
	out := make(map[string]string, len(s.Params))
	for _, name := range declared {
		p := s.Params[name]
		v, ok := given[name]
		if !ok {
			if p.Required {
				problems = append(problems, fmt.Sprintf("parameter %q is required; set it (e.g. --param %s=...)", name, name))
				continue
			}
			out[name] = p.Default
			continue
		}
		c, err := p.check(v)
		if err != "" {
			problems = append(problems, fmt.Sprintf("parameter %q: %s", name, err))
			continue
		}
		out[name] = c
	}
	if len(problems) > 0 {
		return nil, silo.Errorf(silo.CodeInvalid, "%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// check type-checks v against p and returns its canonical form, or a
// message saying what is wrong.
func (p Param) check(v string) (string, string) {
	var c string
	switch p.Type {
	case ParamInt:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "", fmt.Sprintf("%q is not an int; write a whole number such as 42", clip(v))
		}
		c = strconv.FormatInt(n, 10)
	case ParamBool:
		b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
		if err != nil {
			return "", fmt.Sprintf("%q is not a bool; write true or false", clip(v))
		}
		c = strconv.FormatBool(b)
	default:
		c = v
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if e == c {
				return c, ""
			}
		}
		return "", fmt.Sprintf("%q is not one of %s%s", clip(v), strings.Join(p.Enum, ", "), suggest(c, p.Enum))
	}
	return c, ""
}

// Interpolate replaces ${tenant.id} and ${param.NAME} in s with the tenant's
// ID and its resolved parameter values (see ResolveParams). "$${" writes a
// literal "${".
//
// # Errors
//
// An *Error with CodeInvalid for an unterminated or unknown reference, or a
// parameter missing from params.
func Interpolate(s string, tenantID string, params map[string]string) (string, error) {
	var b strings.Builder
	err := scanRefs(s, func(lit string) { b.WriteString(lit) }, func(ref string) string {
		switch {
		case ref == "tenant.id":
			b.WriteString(tenantID)
		case strings.HasPrefix(ref, "param."):
			v, ok := params[ref[len("param."):]]
			if !ok {
				return fmt.Sprintf("uses an unknown parameter ${%s}", ref)
			}
			b.WriteString(v)
		default:
			return fmt.Sprintf("uses unknown reference ${%s}; use ${tenant.id} or ${param.NAME}", ref)
		}
		return ""
	})
	if err != "" {
		return "", silo.Errorf(silo.CodeInvalid, "%s in %q", err, clip(s))
	}
	return b.String(), nil
}

// scanRefs walks s, calling lit for literal text and ref for the inside of
// each ${...}. It stops at the first problem, which ref may return, and
// returns it.
func scanRefs(s string, lit func(string), ref func(string) string) string {
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			lit(s)
			return ""
		}
		if i > 0 && s[i-1] == '$' { // "$${" escapes
			lit(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		lit(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "has an unterminated ${ (write $${ for a literal ${)"
		}
		if msg := ref(s[i+2 : i+end]); msg != "" {
			return msg
		}
		s = s[i+end+1:]
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
