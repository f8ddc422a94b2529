package spec

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

func (d *decoder) production(n *yaml.Node) (Production, *section) {
	p := Production{}
	sec := &section{}
	fs := d.object(n, "production", productionFields)
	if f, ok := fs["functions"]; ok {
		p.Functions, sec.grants = d.functions(f.val, "production.functions", "production function")
	}
	if f, ok := fs["tables"]; ok {
		p.Tables = decls(d, f.val, "production.tables", "table", func(s string) Table { return Table{s} })
	}
	if f, ok := fs["buckets"]; ok {
		p.Buckets = decls(d, f.val, "production.buckets", "bucket", func(s string) Bucket { return Bucket{s} })
	}
	if f, ok := fs["config"]; ok {
		p.Config, sec.config = d.config(f.val, "production.config")
	}
	if f, ok := fs["secrets"]; ok {
		p.Secrets = decls(d, f.val, "production.secrets", "secret", func(s string) Secret { return Secret{s} })
	}
	if f, ok := fs["exports"]; ok {
		p.Exports = d.exports(f.val)
	}
	return p, sec
}

func (d *decoder) exports(n *yaml.Node) map[string]Export {
	out := map[string]Export{}
	for _, f := range d.entries(n, "production.exports") {
		if !d.name(f.key, "export") {
			continue
		}
		ctx := fmt.Sprintf("export %q", f.key.Value)
		fs := d.object(f.val, ctx, exportFields)
		var e Export
		var target field
		var kind string
		count := 0
		for _, k := range exportFields {
			tf, ok := fs[k]
			if !ok {
				continue
			}
			count++
			if !d.name(tf.val, k) {
				continue
			}
			target, kind = tf, k
			switch k {
			case "table":
				e.Table = tf.val.Value
			case "bucket":
				e.Bucket = tf.val.Value
			case "config":
				e.Config = tf.val.Value
			}
		}
		if count != 1 {
			d.errorf(f.key, "%s must name exactly one of table, bucket or config (e.g. {table: %s})", ctx, f.key.Value)
		} else if kind != "" {
			d.later = append(d.later, func(st *Stack) {
				pr := st.Production
				msg, where := "%s points at production %s %q", "production."+kind
				switch kind {
				case "table":
					missing(d, target.val, pr.Tables, where+"s", msg, ctx, kind, target.val.Value)
				case "bucket":
					missing(d, target.val, pr.Buckets, where+"s", msg, ctx, kind, target.val.Value)
				case "config":
					missing(d, target.val, pr.Config, where, msg, ctx, kind, target.val.Value)
				}
			})
		}
		out[f.key.Value] = e
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkGrants reports functions granted resources their section does not
// declare.
func (d *decoder) checkGrants(st *Stack, sec *section, prod bool) {
	tables, buckets, config, secrets := st.Tables, st.Buckets, st.Config, st.Secrets
	where := ""
	if prod {
		tables, buckets, config, secrets = st.Production.Tables, st.Production.Buckets, st.Production.Config, st.Production.Secrets
		where = "production."
	}
	for _, g := range sec.grants {
		ctx := fmt.Sprintf("function %q", g.fn)
		if prod {
			ctx = "production " + ctx
		}
		msg := "%s is granted %s %q"
		switch g.kind {
		case "table":
			missing(d, g.node, tables, where+"tables", msg, ctx, g.kind, g.node.Value)
		case "bucket":
			missing(d, g.node, buckets, where+"buckets", msg, ctx, g.kind, g.node.Value)
		case "config":
			missing(d, g.node, config, where+"config", msg, ctx, g.kind, g.node.Value)
		case "secret":
			missing(d, g.node, secrets, where+"secrets", msg, ctx, g.kind, g.node.Value)
		case "export":
			if prod {
				d.errorf(g.node, "%s lists export %q; production functions read production resources directly, so remove exports", ctx, g.node.Value)
				continue
			}
			missing(d, g.node, st.Production.Exports, "production.exports", msg, ctx, g.kind, g.node.Value)
		}
	}
}

// checkConfig reports unknown ${...} references in config values.
// Production config is shared by every tenant, so it may hold none.
func (d *decoder) checkConfig(st *Stack, sec *section, prod bool) {
	for _, f := range sec.config {
		ctx := fmt.Sprintf("config %q", f.key.Value)
		if prod {
			ctx = "production " + ctx
		}
		msg := scanRefs(f.val.Value, func(string) {}, func(ref string) string {
			if prod {
				return fmt.Sprintf("uses ${%s}, but production config is shared by every tenant and cannot refer to one", clip(ref))
			}
			switch {
			case ref == "tenant.id":
				return ""
			case strings.HasPrefix(ref, "param."):
				name := ref[len("param."):]
				if _, ok := st.Params[name]; ok {
					return ""
				}
				if len(st.Params) == 0 {
					return fmt.Sprintf("uses ${%s}, but no params are declared", clip(ref))
				}
				return fmt.Sprintf("uses ${%s}, but param %q is not declared%s", clip(ref), clip(name), suggest(name, sortedKeys(st.Params)))
			}
			return fmt.Sprintf("uses unknown reference ${%s}; use ${tenant.id} or ${param.NAME}%s", clip(ref), suggest(ref, append([]string{"tenant.id"}, prefixed("param.", sortedKeys(st.Params))...)))
		})
		if msg != "" {
			d.errorf(f.val, "%s %s", ctx, msg)
		}
	}
}

func prefixed(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}
