package spec

import (
	"fmt"
	"strconv"
	"strings"

	silo "github.com/silo-run/silo"
	"go.yaml.in/yaml/v3"
)

func (d *decoder) rollout(n *yaml.Node) Rollout {
	r := Rollout{}
	fs := d.object(n, "rollout", rolloutFields)
	rf, ok := fs["rings"]
	if !ok || isNull(rf.val) {
		d.errorf(n, "rollout: missing rings; list at least one ring, or remove rollout to use the default rings")
		return r
	}
	if rf.val.Kind != yaml.SequenceNode || len(rf.val.Content) == 0 {
		d.errorf(rf.val, "rollout: rings must be a non-empty list of rings, not %s", describe(rf.val))
		return r
	}
	seen := map[string]int{}
	for i, c := range rf.val.Content {
		ring := d.ring(c, i)
		if ring.Name != "" {
			if line, dup := seen[ring.Name]; dup {
				d.errorf(c, "ring %q is declared twice (first at line %d); rename one", ring.Name, line)
			} else {
				seen[ring.Name] = c.Line
			}
		}
		r.Rings = append(r.Rings, ring)
	}
	return r
}

var ringKinds = []string{string(silo.KindTenant), string(silo.KindDeveloper), string(silo.KindEnvironment)}

func (d *decoder) ring(n *yaml.Node, i int) Ring {
	r := Ring{Concurrency: DefaultRingConcurrency, Select: Selector{Percent: 100}, Gates: Gates{OnInconclusive: OnInconclusivePause}}
	ctx := fmt.Sprintf("ring %d", i+1)
	fs := d.object(n, ctx, ringFields)
	if n.Kind != yaml.MappingNode {
		return r
	}
	if f, ok := fs["name"]; !ok {
		d.errorf(n, "%s: missing name", ctx)
	} else if d.name(f.val, "ring") {
		r.Name = f.val.Value
		ctx = fmt.Sprintf("ring %q", r.Name)
	}
	if f, ok := fs["select"]; !ok {
		d.errorf(n, "%s: missing select; add select: {kind: tenant}", ctx)
	} else {
		r.Select = d.selector(f.val, ctx)
	}
	if f, ok := fs["concurrency"]; ok {
		if v, ok := d.integer(f.val, ctx+": concurrency"); ok {
			if v < 1 || v > MaxRingConcurrency {
				d.errorf(f.val, "%s: concurrency %d is out of range; use 1 to %d", ctx, v, MaxRingConcurrency)
			}
			r.Concurrency = v
		}
	}
	if f, ok := fs["bake"]; ok {
		if v, ok := d.duration(f.val, ctx+": bake"); ok {
			if v > MaxBake {
				d.errorf(f.val, "%s: bake %s is over the maximum of 168h (7 days)", ctx, f.val.Value)
			}
			r.Bake = v
		}
	}
	if f, ok := fs["gates"]; ok {
		r.Gates = d.gates(f.val, ctx)
	}
	if f, ok := fs["failure_budget"]; ok {
		r.FailureBudget = d.budget(f.val, ctx)
	}
	if f, ok := fs["on_rollback"]; ok {
		if v, ok := d.text(f.val, ctx+": on_rollback"); ok {
			opts := []string{OnRollbackReturn, OnRollbackKeep}
			if !contains(opts, v) {
				d.errorf(f.val, "%s: on_rollback %q is not return or keep%s", ctx, clip(v), suggest(v, opts))
			}
			if v == OnRollbackKeep {
				r.OnRollback = v
			}
		}
	}
	return r
}

func (d *decoder) selector(n *yaml.Node, ring string) Selector {
	s := Selector{Percent: 100}
	ctx := ring + ": select"
	fs := d.object(n, ctx, selectorFields)
	if n.Kind != yaml.MappingNode {
		return s
	}
	if f, ok := fs["kind"]; !ok {
		d.errorf(n, "%s: missing kind; use tenant, developer or environment", ctx)
	} else if k, ok := d.text(f.val, ctx+": kind"); ok {
		s.Kind = silo.Kind(k)
		if !contains(ringKinds, k) {
			hint := suggest(k, ringKinds)
			if k == string(silo.KindProduction) {
				hint = "; the production account is deployed with every release, not in a ring"
			}
			d.errorf(f.val, "%s: kind %q is not tenant, developer or environment%s", ctx, clip(k), hint)
		}
	}
	if f, ok := fs["params"]; ok {
		for _, e := range d.entries(f.val, ctx+": params") {
			v, ok := d.str(e.val, fmt.Sprintf("%s: param %q", ctx, e.key.Value))
			if !ok {
				continue
			}
			if s.Params == nil {
				s.Params = map[string]string{}
			}
			s.Params[e.key.Value] = v
			key, val := e.key, e.val
			d.later = append(d.later, func(st *Stack) {
				p, ok := st.Params[key.Value]
				if !ok {
					missing(d, key, st.Params, "params", "%s selects on param %q", ctx, clip(key.Value))
					return
				}
				c, msg := p.check(val.Value)
				if msg != "" {
					d.errorf(val, "%s: param %q: %s", ctx, key.Value, msg)
					return
				}
				// Canonical form, so that selection compares resolved values.
				st.setSelectorParam(ring, key.Value, c)
			})
		}
	}
	if f, ok := fs["percent"]; ok {
		if v, ok := d.number(f.val, ctx+": percent", true); ok {
			if f.val.Tag == "!!str" { // "5%" was read as a fraction
				v *= 100
			}
			if v < 0 || v > 100 {
				d.errorf(f.val, "%s: percent %s is out of range; use 0 to 100", ctx, f.val.Value)
			}
			s.Percent = v
		}
	}
	return s
}

// setSelectorParam sets a selector param of the ring named in ctx (`ring
// "x"`) to its canonical value.
func (s *Stack) setSelectorParam(ctx, key, value string) {
	for i := range s.Rollout.Rings {
		if fmt.Sprintf("ring %q", s.Rollout.Rings[i].Name) == ctx && s.Rollout.Rings[i].Select.Params != nil {
			s.Rollout.Rings[i].Select.Params[key] = value
		}
	}
}

func (d *decoder) gates(n *yaml.Node, ring string) Gates {
	g := Gates{OnInconclusive: OnInconclusivePause}
	ctx := ring + ": gates"
	fs := d.object(n, ctx, gatesFields)
	if f, ok := fs["max_error_rate"]; ok {
		if v, ok := d.number(f.val, ctx+": max_error_rate", true); ok {
			if v <= 0 || v > 1 {
				d.errorf(f.val, "%s: max_error_rate %s is out of range; use a fraction above 0 and at most 1 (or 0%%-100%%), or omit it to skip the gate", ctx, f.val.Value)
			}
			g.MaxErrorRate = v
		}
	}
	if f, ok := fs["max_p99_increase"]; ok {
		if v, ok := d.number(f.val, ctx+": max_p99_increase", true); ok {
			if v <= 0 || v > 100 {
				d.errorf(f.val, "%s: max_p99_increase %s is out of range; use a percentage such as 20%% (above 0, at most 10000%%), or omit it to skip the gate", ctx, f.val.Value)
			}
			g.MaxP99Increase = v
		}
	}
	if f, ok := fs["min_requests"]; ok {
		if v, ok := d.integer(f.val, ctx+": min_requests"); ok {
			if v < 0 {
				d.errorf(f.val, "%s: min_requests %d is negative", ctx, v)
			}
			g.MinRequests = v
		}
	}
	if f, ok := fs["smoke"]; ok {
		if v, ok := d.text(f.val, ctx+": smoke"); ok {
			g.Smoke = v
			node := f.val
			d.later = append(d.later, func(st *Stack) {
				missing(d, node, st.Functions, "functions", "%s: smoke points at function %q", ctx, clip(node.Value))
			})
		}
	}
	if f, ok := fs["on_inconclusive"]; ok {
		if v, ok := d.text(f.val, ctx+": on_inconclusive"); ok {
			opts := []string{OnInconclusivePause, OnInconclusiveRollback}
			if !contains(opts, v) {
				d.errorf(f.val, "%s: on_inconclusive %q is not pause or rollback%s", ctx, clip(v), suggest(v, opts))
			}
			g.OnInconclusive = v
		}
	}
	return g
}

func (d *decoder) budget(n *yaml.Node, ring string) Budget {
	ctx := ring + ": failure_budget"
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		v, ok := d.integer(n, ctx)
		if ok && v < 0 {
			d.errorf(n, "%s %d is negative", ctx, v)
		}
		return Budget{Count: v}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.HasSuffix(n.Value, "%") {
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(n.Value, "%")), 64)
		if err == nil && v >= 0 && v <= 100 {
			return Budget{Percent: v}
		}
		d.errorf(n, "%s %q is out of range; use 0%% to 100%%", ctx, clip(n.Value))
		return Budget{}
	}
	d.errorf(n, "%s must be a count such as 1 or a percentage such as 10%%, not %s", ctx, describe(n))
	return Budget{}
}
