package spec

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"go.yaml.in/yaml/v3"
)

func (d *decoder) stack(root *yaml.Node) *Stack {
	st := &Stack{}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "silo.yaml must be a mapping with version, name, functions, ...; found %s", describe(root))
		return st
	}
	fs := d.object(root, d.fileName(), stackFields)
	if f, ok := fs["version"]; !ok {
		d.errorf(root, "missing version; add \"version: 1\"")
	} else if v, ok := d.integer(f.val, "version"); ok {
		if v != 1 {
			d.errorf(f.val, "version %d is not supported; this silo reads version 1", v)
		}
		st.Version = v
	}
	if f, ok := fs["name"]; !ok {
		d.errorf(root, "missing name; add \"name: <app>\", a DNS label such as findings")
	} else if v, ok := d.text(f.val, "name"); ok {
		if _, err := silo.ParseID(v); err != nil {
			d.errorf(f.val, "app name: %s", silo.UserMessage(err))
		}
		st.Name = v
	}
	if f, ok := fs["params"]; ok {
		st.Params = d.params(f.val)
	}
	tenant := &section{}
	if f, ok := fs["functions"]; ok {
		st.Functions, tenant.grants = d.functions(f.val, "functions", "function")
	}
	if f, ok := fs["tables"]; ok {
		st.Tables = decls(d, f.val, "tables", "table", func(s string) Table { return Table{s} })
	}
	if f, ok := fs["buckets"]; ok {
		st.Buckets = decls(d, f.val, "buckets", "bucket", func(s string) Bucket { return Bucket{s} })
	}
	if f, ok := fs["config"]; ok {
		st.Config, tenant.config = d.config(f.val, "config")
	}
	if f, ok := fs["secrets"]; ok {
		st.Secrets = decls(d, f.val, "secrets", "secret", func(s string) Secret { return Secret{s} })
	}
	if f, ok := fs["routes"]; ok {
		st.Routes = d.routes(f.val)
	}
	if f, ok := fs["schedules"]; ok {
		st.Schedules = d.schedules(f.val)
	}
	if f, ok := fs["limits"]; ok {
		st.Limits = d.limits(f.val)
	}
	prod := &section{}
	if f, ok := fs["production"]; ok {
		st.Production, prod = d.production(f.val)
	}
	if f, ok := fs["rollout"]; ok {
		st.Rollout = d.rollout(f.val)
	} else {
		st.Rollout = DefaultRollout()
	}
	d.later = append(d.later, func(st *Stack) {
		d.checkGrants(st, tenant, false)
		d.checkGrants(st, prod, true)
		d.checkConfig(st, tenant, false)
		d.checkConfig(st, prod, true)
	})
	return st
}

// DefaultRollout is the rollout of a stack that declares none: developer
// accounts, then environment accounts, then every tenant, each with the
// default concurrency, no bake time and no gates.
func DefaultRollout() Rollout {
	ring := func(name string, k silo.Kind) Ring {
		return Ring{Name: name, Select: Selector{Kind: k, Percent: 100}, Concurrency: DefaultRingConcurrency,
			Gates: Gates{OnInconclusive: OnInconclusivePause}}
	}
	return Rollout{Rings: []Ring{
		ring("developers", silo.KindDeveloper),
		ring("environments", silo.KindEnvironment),
		ring("tenants", silo.KindTenant),
	}}
}

// section keeps the nodes of a tenant or production section that are
// checked against the rest of the file once it is decoded.
type section struct {
	grants []grant
	config []field
}

// grant is one resource a function asks for.
type grant struct {
	fn   string
	kind string // table, bucket, config, secret, export
	node *yaml.Node
}

// decls reads a mapping of declared resources whose values are objects with
// an optional description (tables, buckets, secrets).
func decls[T any](d *decoder, n *yaml.Node, what, kind string, mk func(description string) T) map[string]T {
	out := map[string]T{}
	for _, f := range d.entries(n, what) {
		if !d.name(f.key, kind) {
			continue
		}
		var desc string
		ctx := fmt.Sprintf("%s %q", kind, f.key.Value)
		fs := d.object(f.val, ctx, tableFields)
		if df, ok := fs["description"]; ok {
			desc, _ = d.str(df.val, ctx+": description")
		}
		out[f.key.Value] = mk(desc)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) params(n *yaml.Node) map[string]Param {
	out := map[string]Param{}
	for _, f := range d.entries(n, "params") {
		if !d.name(f.key, "param") {
			continue
		}
		ctx := fmt.Sprintf("param %q", f.key.Value)
		fs := d.object(f.val, ctx, paramFields)
		p := Param{}
		tf, ok := fs["type"]
		if !ok {
			d.errorf(f.key, "%s: missing type; add type: string, int or bool", ctx)
			continue
		}
		t, ok := d.text(tf.val, ctx+": type")
		if !ok {
			continue
		}
		p.Type = ParamType(t)
		types := []string{string(ParamString), string(ParamInt), string(ParamBool)}
		if !contains(types, t) {
			d.errorf(tf.val, "%s: type %q is not string, int or bool%s", ctx, clip(t), suggest(t, types))
			continue
		}
		// value type-checks one value of the param written in YAML.
		value := func(n *yaml.Node, what string) (string, bool) {
			if n.Kind != yaml.ScalarNode || isNull(n) {
				d.errorf(n, "%s: %s must be a %s, not %s", ctx, what, t, describe(n))
				return "", false
			}
			want := map[ParamType]string{ParamString: "!!str", ParamInt: "!!int", ParamBool: "!!bool"}[p.Type]
			if n.Tag != want {
				article := map[ParamType]string{ParamString: "a string", ParamInt: "an int", ParamBool: "a bool (true or false)"}[p.Type]
				if p.Type == ParamString {
					d.errorf(n, "%s: %s %s is not a string; quote it: %q", ctx, what, clip(n.Value), n.Value)
				} else {
					d.errorf(n, "%s: %s %s is not %s", ctx, what, describe(n), article)
				}
				return "", false
			}
			c, msg := Param{Type: p.Type}.check(n.Value)
			if msg != "" {
				d.errorf(n, "%s: %s %s", ctx, what, msg)
				return "", false
			}
			return c, true
		}
		if ef, ok := fs["enum"]; ok {
			if p.Type == ParamBool {
				d.errorf(ef.key, "%s: enum is for string and int params", ctx)
			} else if ef.val.Kind != yaml.SequenceNode || len(ef.val.Content) == 0 {
				d.errorf(ef.val, "%s: enum must be a non-empty list of values, not %s", ctx, describe(ef.val))
			} else {
				seen := map[string]bool{}
				for _, c := range ef.val.Content {
					if v, ok := value(c, "enum value"); ok {
						if seen[v] {
							d.errorf(c, "%s: enum value %q is listed twice", ctx, v)
							continue
						}
						seen[v] = true
						p.Enum = append(p.Enum, v)
					}
				}
			}
		}
		if rf, ok := fs["required"]; ok {
			p.Required, _ = d.boolean(rf.val, ctx+": required")
		}
		if df, ok := fs["default"]; ok {
			if p.Required {
				d.errorf(df.key, "%s: a required param has no default; remove default or required", ctx)
			} else if v, ok := value(df.val, "default"); ok {
				p.Default = v
				if len(p.Enum) > 0 && !contains(p.Enum, v) {
					d.errorf(df.val, "%s: default %q is not one of the enum values %s%s", ctx, v, strings.Join(p.Enum, ", "), suggest(v, p.Enum))
				}
			}
		} else if !p.Required {
			p.Default = map[ParamType]string{ParamString: "", ParamInt: "0", ParamBool: "false"}[p.Type]
			if len(p.Enum) > 0 && !contains(p.Enum, p.Default) {
				d.errorf(f.key, "%s: has an enum but no default; add default: %s, or required: true", ctx, p.Enum[0])
			}
		}
		if df, ok := fs["description"]; ok {
			p.Description, _ = d.str(df.val, ctx+": description")
		}
		out[f.key.Value] = p
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var handlerRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// functions reads a functions section; kind is "function" or "production
// function" in messages.
func (d *decoder) functions(n *yaml.Node, what, kind string) (map[string]Function, []grant) {
	out := map[string]Function{}
	var grants []grant
	for _, f := range d.entries(n, what) {
		if !d.name(f.key, "function") {
			continue
		}
		name := f.key.Value
		ctx := fmt.Sprintf("%s %q", kind, name)
		fs := d.object(f.val, ctx, functionFields)
		fn := Function{Handler: DefaultHandler, Memory: DefaultMemory, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency}
		if sf, ok := fs["source"]; !ok {
			d.errorf(f.key, "%s: missing source; add source: ./functions/%s (a Go package directory or a .wasm file)", ctx, name)
		} else if s, ok := d.text(sf.val, ctx+": source"); ok {
			fn.Source = d.source(sf.val, s, ctx)
		}
		if hf, ok := fs["handler"]; ok {
			if h, ok := d.text(hf.val, ctx+": handler"); ok {
				if !handlerRE.MatchString(h) {
					d.errorf(hf.val, "%s: handler %q is not a wasm export name; use letters, digits and '_' (e.g. handle)", ctx, clip(h))
				}
				fn.Handler = h
			}
		}
		if mf, ok := fs["memory"]; ok {
			if v, ok := d.size(mf.val, ctx+": memory"); ok {
				switch {
				case v > MaxMemory:
					d.errorf(mf.val, "%s: memory %s is over the maximum of 1GiB", ctx, mf.val.Value)
				case v < MinMemory:
					d.errorf(mf.val, "%s: memory %s is under the minimum of 1MiB", ctx, mf.val.Value)
				}
				fn.Memory = v
			}
		}
		if tf, ok := fs["timeout"]; ok {
			if v, ok := d.duration(tf.val, ctx+": timeout"); ok {
				switch {
				case v > MaxTimeout:
					d.errorf(tf.val, "%s: timeout %s is over the maximum of 5m", ctx, tf.val.Value)
				case v < time.Millisecond:
					d.errorf(tf.val, "%s: timeout %s is too short; use at least 1ms", ctx, tf.val.Value)
				}
				fn.Timeout = v
			}
		}
		if cf, ok := fs["concurrency"]; ok {
			if v, ok := d.integer(cf.val, ctx+": concurrency"); ok {
				if v < 1 || v > MaxConcurrency {
					d.errorf(cf.val, "%s: concurrency %d is out of range; use 1 to %d", ctx, v, MaxConcurrency)
				}
				fn.Concurrency = v
			}
		}
		for _, k := range []string{"tables", "buckets"} {
			gf, ok := fs[k]
			if !ok {
				continue
			}
			kind := strings.TrimSuffix(k, "s")
			m := map[string]Access{}
			for _, e := range d.entries(gf.val, ctx+": "+k) {
				if !d.name(e.key, kind) {
					continue
				}
				a, ok := d.text(e.val, fmt.Sprintf("%s: %s %q", ctx, kind, e.key.Value))
				if !ok {
					continue
				}
				if Access(a) != AccessRead && Access(a) != AccessReadWrite {
					d.errorf(e.val, "%s: access %q to %s %q is not read or read-write%s", ctx, clip(a), kind, e.key.Value, suggest(a, []string{"read", "read-write"}))
					continue
				}
				m[e.key.Value] = Access(a)
				grants = append(grants, grant{fn: name, kind: kind, node: e.key})
			}
			if len(m) > 0 {
				if k == "tables" {
					fn.Tables = m
				} else {
					fn.Buckets = m
				}
			}
		}
		for _, k := range []string{"config", "secrets", "exports"} {
			gf, ok := fs[k]
			if !ok {
				continue
			}
			kind := strings.TrimSuffix(k, "s")
			list, nodes := d.names(gf.val, ctx+": "+k, kind)
			for _, n := range nodes {
				grants = append(grants, grant{fn: name, kind: kind, node: n})
			}
			switch k {
			case "config":
				fn.Config = list
			case "secrets":
				fn.Secrets = list
			default:
				fn.Exports = list
			}
		}
		out[name] = fn
	}
	if len(out) == 0 {
		return nil, grants
	}
	return out, grants
}

// source checks a function source path and returns it cleaned.
func (d *decoder) source(n *yaml.Node, s, ctx string) string {
	switch {
	case strings.TrimSpace(s) == "":
		d.errorf(n, "%s: source is empty; write a Go package directory such as ./functions/ingest or a .wasm file", ctx)
		return ""
	case strings.Contains(s, `\`):
		d.errorf(n, "%s: source %q uses '\\'; write paths with '/'", ctx, clip(s))
		return s
	case path.IsAbs(s) || len(s) > 1 && s[1] == ':':
		d.errorf(n, "%s: source %q is absolute; write it relative to the directory of silo.yaml", ctx, clip(s))
		return s
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		d.errorf(n, "%s: source %q is outside the directory of silo.yaml; move the function under it", ctx, clip(s))
	}
	return c
}

// config reads a config mapping of names to scalar values.
func (d *decoder) config(n *yaml.Node, what string) (map[string]string, []field) {
	out := map[string]string{}
	var kept []field
	for _, f := range d.entries(n, what) {
		if !d.name(f.key, "config") {
			continue
		}
		v, ok := d.str(f.val, fmt.Sprintf("%s %q", what, f.key.Value))
		if !ok {
			continue
		}
		out[f.key.Value] = v
		kept = append(kept, f)
	}
	if len(out) == 0 {
		return nil, kept
	}
	return out, kept
}

var (
	methods    = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	segmentRE  = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@%-]*$`)
	wildcardRE = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}$`)
)
