package engine_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/spec"
)

// TestShape: a release's shape holds every resource an account would hold,
// with the values of config that interpolates the account left empty; it
// needs no parameters, even required ones (For does).
func TestShape(t *testing.T) {
	st := &spec.Stack{
		Version: 1, Name: "shape",
		Params:    map[string]spec.Param{"region": {Type: "string", Required: true}},
		Tables:    map[string]spec.Table{"t": {}},
		Config:    map[string]string{"fixed": "x", "where": "${param.region}"},
		Functions: map[string]spec.Function{"f": {Tables: map[string]spec.Access{"t": spec.AccessRead}, Config: []string{"where"}}},
		Schedules: map[string]spec.Schedule{"s": {Function: "f", Cron: "0 3 * * *"}},
	}
	tmpl, err := engine.Compile(st, map[string]string{"f": "sha256:aa"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.For(silo.Account{ID: "acme", Kind: silo.KindTenant}); err == nil {
		t.Fatal("For without the required parameter: got no error")
	}
	shape, err := tmpl.Shape()
	if err != nil {
		t.Fatal(err)
	}
	full, err := tmpl.For(silo.Account{ID: "acme", Kind: silo.KindTenant, Params: map[string]string{"region": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(rs []silo.Resource) map[string]string {
		out := map[string]string{}
		for _, r := range rs {
			out[r.Key()] = string(r.Spec)
		}
		return out
	}
	want := keys(full)
	want["config/where"] = `{"value":""}`
	if diff := cmp.Diff(want, keys(shape)); diff != "" {
		t.Fatalf("shape (-want +got):\n%s", diff)
	}
}
