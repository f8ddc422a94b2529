package spec

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/silo-run/silo"
	"go.yaml.in/yaml/v3"
)

// PlanParam is the tenant parameter whose value names a tenant's plan in the
// limits section.
const PlanParam = "plan"

var limitsFields = jsonFields(reflect.TypeFor[silo.Limits]())

// limits reads the limits section: a mapping from plan name (a value of the
// plan parameter) to the limits of that plan. Whole-file checks (the plan
// parameter is declared with an enum, every enum value has limits and every
// plan is an enum value) run once the params are decoded.
func (d *decoder) limits(n *yaml.Node) map[string]silo.Limits {
	out := map[string]silo.Limits{}
	var keys []*yaml.Node
	for _, f := range d.entries(n, "limits") {
		ctx := fmt.Sprintf("limits of plan %q", clip(f.key.Value))
		keys = append(keys, f.key)
		out[f.key.Value] = d.planLimits(f.val, ctx)
	}
	d.later = append(d.later, func(st *Stack) {
		p, ok := st.Params[PlanParam]
		if !ok {
			d.errorf(n, "limits are chosen by the tenant param %q, which is not declared; add params: {plan: {type: string, enum: [%s], default: ...}}", PlanParam, strings.Join(sortedKeys(out), ", "))
			return
		}
		if p.Type != ParamString || len(p.Enum) == 0 {
			d.errorf(n, "limits: the param %q must be a string with an enum listing the plans (%s)", PlanParam, strings.Join(sortedKeys(out), ", "))
			return
		}
		for _, k := range keys {
			if !contains(p.Enum, k.Value) {
				d.errorf(k, "limits: plan %q is not a value of param %q%s; its values: %s", clip(k.Value), PlanParam, suggest(k.Value, p.Enum), strings.Join(p.Enum, ", "))
			}
		}
		for _, v := range p.Enum {
			if _, ok := out[v]; !ok {
				d.errorf(n, "limits: plan %q (a value of param %q) has no limits; add %s: {rate: ..., concurrency: ...}, or {} to use the server's defaults", v, PlanParam, v)
			}
		}
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// planLimits reads one plan's limits.
func (d *decoder) planLimits(n *yaml.Node, ctx string) silo.Limits {
	var l silo.Limits
	fs := d.object(n, ctx, limitsFields)
	if f, ok := fs["rate"]; ok {
		if v, ok := d.number(f.val, ctx+": rate", false); ok {
			if v <= 0 || v > 1e6 {
				d.errorf(f.val, "%s: rate %s is out of range; use requests per second above 0 and at most 1000000", ctx, clip(f.val.Value))
			} else {
				l.Rate = v
			}
		}
	}
	whole := func(name string, most int) int {
		f, ok := fs[name]
		if !ok {
			return 0
		}
		v, ok := d.integer(f.val, ctx+": "+name)
		if !ok {
			return 0
		}
		if v < 1 || v > most {
			d.errorf(f.val, "%s: %s %d is out of range; use a whole number from 1 to %d", ctx, name, v, most)
			return 0
		}
		return v
	}
	l.Burst = whole("burst", 1e7)
	l.Concurrency = whole("concurrency", 1e5)
	if f, ok := fs["storage"]; ok {
		if v, ok := d.size(f.val, ctx+": storage"); ok {
			if v == 0 {
				d.errorf(f.val, "%s: storage 0 would refuse every write; use a size such as 100MiB, or omit it for no bound", ctx)
			}
			l.Storage = v
		}
	}
	if f, ok := fs["invocations"]; ok {
		if v, ok := d.integer(f.val, ctx+": invocations"); ok {
			if v < 1 {
				d.errorf(f.val, "%s: invocations %d is out of range; use requests per month (at least 1), or omit it for no bound", ctx, v)
			} else {
				l.Invocations = int64(v)
			}
		}
	}
	return l
}

// Plan returns the plan a tenant with the given resolved parameters is on
// and that plan's limits. ok is false when the stack declares no limits or
// the tenant's plan has none (then the server's defaults apply).
func (s *Stack) Plan(params map[string]string) (plan string, l silo.Limits, ok bool) {
	if len(s.Limits) == 0 {
		return "", silo.Limits{}, false
	}
	plan, has := params[PlanParam]
	if !has {
		if p, declared := s.Params[PlanParam]; declared {
			plan = p.Default
		}
	}
	l, ok = s.Limits[plan]
	return plan, l, ok
}
