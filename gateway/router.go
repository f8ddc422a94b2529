package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// router matches request paths to an account's routes. It is built once per
// route set and is safe for concurrent use.
//
// Patterns follow net/http.ServeMux where it matters for an API:
//
//   - "/findings" matches exactly that path.
//   - "/findings/{id}" matches one non-empty segment and binds it to "id".
//   - "/files/{path...}" matches the rest of the path (at least one segment,
//     possibly empty) and binds it, slashes included, to "path".
//   - a trailing slash, "/files/", matches "/files/" and everything below;
//     "/files/{$}" matches only "/files/".
//
// At each segment a literal beats a wildcard, which beats a rest wildcard;
// among routes with the same path a method-specific route beats a route
// without a method, and GET also serves HEAD. If some route matches the path
// but none the method, the result is 405 with the allowed methods.
type router struct {
	root *node
}

type node struct {
	lits map[string]*node
	wild *node // {name}
	rest *leaf // {name...} or a trailing slash
	end  *leaf // routes that end here
}

// leaf holds the routes that share one path shape, by method ("" = any).
type leaf struct {
	methods map[string]endpoint
}

type endpoint struct {
	function string
	names    []string // wildcard names in order; "" for an anonymous rest
}

// newRouter compiles routes. Methods are upper-cased; "" and "*" mean any
// method.
//
// # Errors
//
// A pattern that is malformed, or two routes with the same method and the
// same path shape (whatever their wildcard names).
func newRouter(routes []Route) (*router, error) {
	rt := &router{root: &node{}}
	seen := make(map[string]string, len(routes))
	for _, r := range routes {
		method := strings.ToUpper(r.Method)
		if method == "*" {
			method = ""
		}
		if !validToken(method) && method != "" {
			return nil, fmt.Errorf("route %s %s: invalid method", r.Method, r.Path)
		}
		if r.Function == "" {
			return nil, fmt.Errorf("route %s %s: no function", r.Method, r.Path)
		}
		n := rt.root
		var names []string
		var shape strings.Builder
		var lf **leaf
		if !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("route %s %s: path must start with '/'", r.Method, r.Path)
		}
		segs := strings.Split(r.Path[1:], "/")
		for i, s := range segs {
			last := i == len(segs)-1
			switch {
			case s == "" && last: // trailing slash: everything below
				names = append(names, "")
				shape.WriteString("/{...}")
				lf = &n.rest
			case s == "":
				return nil, fmt.Errorf("route %s %s: empty segment", r.Method, r.Path)
			case s == "{$}":
				if !last {
					return nil, fmt.Errorf("route %s %s: {$} must end the path", r.Method, r.Path)
				}
				n = n.child("")
				shape.WriteString("/")
				lf = &n.end
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				name, multi := strings.CutSuffix(s[1:len(s)-1], "...")
				if !validName(name) {
					return nil, fmt.Errorf("route %s %s: bad wildcard %q; use {name} or {name...}", r.Method, r.Path, s)
				}
				if slices.Contains(names, name) {
					return nil, fmt.Errorf("route %s %s: wildcard %q used twice", r.Method, r.Path, name)
				}
				names = append(names, name)
				if multi {
					if !last {
						return nil, fmt.Errorf("route %s %s: {%s...} must end the path", r.Method, r.Path, name)
					}
					shape.WriteString("/{...}")
					lf = &n.rest
					break
				}
				if n.wild == nil {
					n.wild = &node{}
				}
				n = n.wild
				shape.WriteString("/{}")
			default:
				if strings.ContainsAny(s, "{}") {
					return nil, fmt.Errorf("route %s %s: segment %q mixes text and a wildcard; a wildcard must be a whole segment", r.Method, r.Path, s)
				}
				lit, err := url.PathUnescape(s)
				if err != nil || lit == "." || lit == ".." {
					return nil, fmt.Errorf("route %s %s: bad segment %q", r.Method, r.Path, s)
				}
				n = n.child(lit)
				shape.WriteString("/" + url.PathEscape(lit))
			}
		}
		if lf == nil {
			lf = &n.end
		}
		key := method + " " + shape.String()
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("routes %q and %q match the same requests", prev, strings.TrimSpace(r.Method+" "+r.Path))
		}
		seen[key] = strings.TrimSpace(r.Method + " " + r.Path)
		if *lf == nil {
			*lf = &leaf{methods: map[string]endpoint{}}
		}
		(*lf).methods[method] = endpoint{function: r.Function, names: names}
	}
	return rt, nil
}

func (n *node) child(lit string) *node {
	if n.lits == nil {
		n.lits = map[string]*node{}
	}
	c := n.lits[lit]
	if c == nil {
		c = &node{}
		n.lits[lit] = c
	}
	return c
}

// match finds the route for method and the decoded path segments. It returns
// the function and its path parameters, or ok false and the methods that
// would have matched the path (empty when nothing matches the path).
func (rt *router) match(method string, segs []string) (fn string, params map[string]string, allow []string, ok bool) {
	m := matcher{method: method, segs: segs}
	if !m.find(rt.root, 0, nil) {
		slices.Sort(m.allow)
		return "", nil, slices.Compact(m.allow), false
	}
	for i, name := range m.ep.names {
		if name == "" {
			continue
		}
		if params == nil {
			params = make(map[string]string, len(m.ep.names))
		}
		params[name] = m.vals[i]
	}
	return m.ep.function, params, nil, true
}

type matcher struct {
	method string
	segs   []string
	ep     endpoint
	vals   []string
	allow  []string
}

func (m *matcher) find(n *node, i int, vals []string) bool {
	if i == len(m.segs) {
		return n.end != nil && m.pick(n.end, vals)
	}
	if c := n.lits[m.segs[i]]; c != nil && m.find(c, i+1, vals) {
		return true
	}
	if n.wild != nil && m.segs[i] != "" && m.find(n.wild, i+1, append(vals, m.segs[i])) {
		return true
	}
	if n.rest != nil {
		return m.pick(n.rest, append(vals, strings.Join(m.segs[i:], "/")))
	}
	return false
}

func (m *matcher) pick(l *leaf, vals []string) bool {
	ep, ok := l.methods[m.method]
	if !ok && m.method == "HEAD" {
		ep, ok = l.methods["GET"]
	}
	if !ok {
		ep, ok = l.methods[""]
	}
	if ok {
		m.ep, m.vals = ep, vals
		return true
	}
	for meth := range l.methods {
		m.allow = append(m.allow, meth)
		if meth == "GET" {
			m.allow = append(m.allow, "HEAD")
		}
	}
	return false
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validToken reports whether s is a non-empty HTTP token (RFC 9110).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
