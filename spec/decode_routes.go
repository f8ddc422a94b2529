package spec

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

func (d *decoder) routes(n *yaml.Node) []Route {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "routes must be a list of {method, path, function}, not %s", describe(n))
		return nil
	}
	var out []Route
	seen := map[string]int{}
	for i, c := range n.Content {
		ctx := fmt.Sprintf("route %d", i+1)
		fs := d.object(c, ctx, routeFields)
		if c.Kind != yaml.MappingNode {
			continue
		}
		r := Route{}
		ok := true
		for _, k := range routeFields {
			if _, has := fs[k]; !has {
				d.errorf(c, "%s: missing %s", ctx, k)
				ok = false
			}
		}
		if mf, has := fs["method"]; has {
			if m, good := d.text(mf.val, ctx+": method"); good {
				r.Method = m
				if !contains(methods, m) {
					hint := suggest(m, methods)
					if contains(methods, strings.ToUpper(m)) {
						hint = fmt.Sprintf(" (write %s)", strings.ToUpper(m))
					}
					d.errorf(mf.val, "%s: method %q is not one of %s%s", ctx, clip(m), strings.Join(methods, ", "), hint)
					ok = false
				}
			} else {
				ok = false
			}
		}
		var pattern string
		if pf, has := fs["path"]; has {
			if p, good := d.text(pf.val, ctx+": path"); good {
				r.Path = p
				pattern, good = d.routePath(pf.val, p)
				ok = ok && good
				ctx = fmt.Sprintf("route %s %s", r.Method, clip(p))
			} else {
				ok = false
			}
		}
		if ff, has := fs["function"]; has {
			if fn, good := d.text(ff.val, ctx+": function"); good {
				r.Function = fn
				fnNode, rctx := ff.val, ctx
				d.later = append(d.later, func(st *Stack) {
					missing(d, fnNode, st.Functions, "functions", "%s points at function %q", rctx, clip(fnNode.Value))
				})
			}
		}
		if ok {
			key := r.Method + " " + pattern
			if line, dup := seen[key]; dup {
				d.errorf(c, "%s duplicates the route at line %d; remove one", ctx, line)
			} else {
				seen[key] = c.Line
			}
		}
		out = append(out, r)
	}
	return out
}

// schedules reads the schedules: each names a function and exactly one of
// cron and every.
func (d *decoder) schedules(n *yaml.Node) map[string]Schedule {
	out := map[string]Schedule{}
	for _, f := range d.entries(n, "schedules") {
		if !d.name(f.key, "schedule") {
			continue
		}
		ctx := fmt.Sprintf("schedule %q", f.key.Value)
		fs := d.object(f.val, ctx, scheduleFields)
		if f.val.Kind != yaml.MappingNode {
			continue
		}
		s := Schedule{}
		if ff, has := fs["function"]; !has {
			d.errorf(f.val, "%s: missing function", ctx)
		} else if fn, good := d.text(ff.val, ctx+": function"); good {
			s.Function = fn
			fnNode, sctx := ff.val, ctx
			d.later = append(d.later, func(st *Stack) {
				missing(d, fnNode, st.Functions, "functions", "%s runs function %q", sctx, clip(fnNode.Value))
			})
		}
		cf, hasCron := fs["cron"]
		ef, hasEvery := fs["every"]
		switch {
		case hasCron && hasEvery:
			d.errorf(f.val, "%s: give cron or every, not both", ctx)
		case !hasCron && !hasEvery:
			d.errorf(f.val, "%s: missing cron or every; add cron: \"0 3 * * *\" (daily at 03:00 UTC) or every: 10m", ctx)
		case hasCron:
			if expr, good := d.text(cf.val, ctx+": cron"); good {
				if _, err := parseCron(expr); err != nil {
					d.errorf(cf.val, "%s: cron %q: %v", ctx, clip(expr), err)
				}
				s.Cron = expr
			}
		default:
			if v, good := d.duration(ef.val, ctx+": every"); good {
				if v < MinEvery || v > MaxEvery {
					d.errorf(ef.val, "%s: every %s is out of range; use 1m to 168h (a week)", ctx, clip(ef.val.Value))
				}
				s.Every = v
			}
		}
		if df, has := fs["description"]; has {
			s.Description, _ = d.str(df.val, ctx+": description")
		}
		out[f.key.Value] = s
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// routePath checks a route path and returns its pattern with wildcard names
// erased, for finding duplicates.
func (d *decoder) routePath(n *yaml.Node, p string) (string, bool) {
	bad := func(why string) (string, bool) {
		d.errorf(n, "route path %q %s", clip(p), why)
		return "", false
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return bad("must start with /")
	case len(p) > 1024:
		return bad("is longer than 1024 characters")
	case strings.Contains(p, "//"):
		return bad("must not contain //")
	}
	segs := strings.Split(p[1:], "/")
	params := map[string]bool{}
	pattern := make([]string, len(segs))
	for i, s := range segs {
		if m := wildcardRE.FindStringSubmatch(s); m != nil {
			if params[m[1]] {
				return bad(fmt.Sprintf("names {%s} twice", m[1]))
			}
			params[m[1]] = true
			if m[2] != "" && i != len(segs)-1 {
				return bad(fmt.Sprintf("has {%s...} before the last segment", m[1]))
			}
			pattern[i] = "{" + m[2] + "}"
			continue
		}
		if strings.Contains(s, "..") {
			return bad("must not contain ..")
		}
		if !segmentRE.MatchString(s) {
			return bad(fmt.Sprintf("has an invalid segment %q; use letters, digits, -._~ and {name} for parameters", clip(s)))
		}
		pattern[i] = s
	}
	return "/" + strings.Join(pattern, "/"), true
}
