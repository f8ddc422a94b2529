package engine

import (
	"sort"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/spec"
)

type empty struct{}

// Desired returns the resources the account must hold under a release: the
// production section for the production account, the per-account stack for
// every other kind, with the account's parameters resolved and interpolated.
// artifacts maps function name to artifact digest.
//
// # Errors
//
// CodeInvalid when the account's parameters do not fit the stack, or a
// function has no artifact.
func Desired(st *spec.Stack, artifacts map[string]string, acct silo.Account) ([]silo.Resource, error) {
	t, err := Compile(st, artifacts)
	if err != nil {
		return nil, err
	}
	return t.For(acct)
}

// Template is a release's desired resources prepared once: everything that
// does not depend on the account is encoded and hashed ahead, so that For
// only interpolates the account's config. Safe for concurrent use.
type Template struct {
	stack      *spec.Stack
	production []silo.Resource
	static     []silo.Resource // per-account resources that do not vary by account
	dynamic    []string        // config keys whose values interpolate ${...}
	err        error           // a function without an artifact
}

// Compile prepares a release's desired resources.
func Compile(st *spec.Stack, artifacts map[string]string) (*Template, error) {
	t := &Template{stack: st}
	var b builder
	p := st.Production
	b.named(silo.TypeTable, keys(p.Tables), func(string) any { return empty{} })
	b.named(silo.TypeBucket, keys(p.Buckets), func(string) any { return empty{} })
	b.named(silo.TypeConfig, keys(p.Config), func(k string) any { return silo.ConfigSpec{Value: p.Config[k]} })
	b.functions(p.Functions, artifacts, "production.")
	b.named(silo.TypeExport, keys(p.Exports), func(k string) any {
		e := p.Exports[k]
		return silo.ExportSpec{Table: e.Table, Bucket: e.Bucket, Config: e.Config}
	})
	if b.err != nil {
		return nil, b.err
	}
	t.production, b.out = b.out, nil
	b.named(silo.TypeTable, keys(st.Tables), func(string) any { return empty{} })
	b.named(silo.TypeBucket, keys(st.Buckets), func(string) any { return empty{} })
	b.named(silo.TypeSecret, keys(st.Secrets), func(string) any { return empty{} })
	for _, k := range keys(st.Config) {
		if strings.Contains(st.Config[k], "${") {
			t.dynamic = append(t.dynamic, k)
			continue
		}
		b.add(silo.TypeConfig, k, silo.ConfigSpec{Value: st.Config[k]})
	}
	b.functions(st.Functions, artifacts, "")
	for _, r := range st.Routes {
		b.add(silo.TypeRoute, r.Method+" "+r.Path, silo.RouteSpec{Method: r.Method, Path: r.Path, Function: r.Function})
	}
	b.named(silo.TypeSchedule, keys(st.Schedules), func(k string) any {
		s := st.Schedules[k]
		sp := silo.ScheduleSpec{Function: s.Function, Cron: s.Cron}
		if s.Every > 0 {
			sp.Every = s.Every.String()
		}
		return sp
	})
	t.static, t.err = b.out, b.err
	return t, nil
}

// For returns the resources account acct must hold.
func (t *Template) For(acct silo.Account) ([]silo.Resource, error) {
	if acct.Kind == silo.KindProduction {
		return t.production, nil
	}
	if t.err != nil {
		return nil, t.err
	}
	params, err := t.stack.ResolveParams(acct.Params)
	if err != nil {
		return nil, err
	}
	out := make([]silo.Resource, len(t.static), len(t.static)+len(t.dynamic))
	copy(out, t.static)
	for _, k := range t.dynamic {
		v, err := spec.Interpolate(t.stack.Config[k], string(acct.ID), params)
		if err != nil {
			return nil, silo.Errorf(silo.CodeInvalid, "config %q for account %s: %v", k, acct.ID, err)
		}
		r, err := silo.NewResource(silo.TypeConfig, k, silo.ConfigSpec{Value: v})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Shape returns the resources every tenant, developer and environment
// account holds under the release, with the values of config entries that
// interpolate the account (${tenant.id}, ${param.NAME}) left empty. Nothing
// else depends on the account: names, functions and their grants, routes
// and schedules are the same for every account of every kind but
// production, so Shape is what an account not created yet will hold, as
// far as access goes.
//
// # Errors
//
// CodeInvalid if a function has no artifact.
func (t *Template) Shape() ([]silo.Resource, error) {
	if t.err != nil {
		return nil, t.err
	}
	out := make([]silo.Resource, len(t.static), len(t.static)+len(t.dynamic))
	copy(out, t.static)
	for _, k := range t.dynamic {
		r, err := silo.NewResource(silo.TypeConfig, k, silo.ConfigSpec{})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ArtifactKey is the key of a function's artifact in a release: production
// functions are prefixed with "production." so they cannot collide with
// per-account functions of the same name.
func ArtifactKey(production bool, fn string) string {
	if production {
		return "production." + fn
	}
	return fn
}

type builder struct {
	out []silo.Resource
	err error
}

func (b *builder) add(t silo.ResourceType, name string, v any) {
	if b.err != nil {
		return
	}
	r, err := silo.NewResource(t, name, v)
	if err != nil {
		b.err = err
		return
	}
	b.out = append(b.out, r)
}

func (b *builder) named(t silo.ResourceType, names []string, spec func(string) any) {
	for _, n := range names {
		b.add(t, n, spec(n))
	}
}

func (b *builder) functions(fns map[string]spec.Function, artifacts map[string]string, prefix string) {
	for _, name := range keys(fns) {
		f := fns[name]
		digest, ok := artifacts[prefix+name]
		if !ok {
			if b.err == nil {
				b.err = silo.Errorf(silo.CodeInvalid, "function %q has no built artifact; run silo build", name)
			}
			return
		}
		b.add(silo.TypeFunction, name, silo.FunctionSpec{
			Artifact: digest, Handler: f.Handler, Memory: f.Memory, Timeout: f.Timeout,
			Concurrency: f.Concurrency, Tables: accessMap(f.Tables), Buckets: accessMap(f.Buckets),
			Config: sorted(f.Config), Secrets: sorted(f.Secrets), Exports: sorted(f.Exports),
		})
	}
}

func accessMap(m map[string]spec.Access) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
