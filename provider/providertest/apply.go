package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

func testApplyEachType(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	stack := Stack(t)
	apply := func(c silo.Change) {
		t.Helper()
		// Apply twice == once.
		for i := 0; i < 2; i++ {
			if err := p.Apply(ctx, "acme", c); err != nil {
				t.Fatalf("apply %s %s (#%d): %v", c.Op, c.Key(), i+1, err)
			}
		}
	}
	resources := func() []silo.Resource {
		t.Helper()
		rs, err := p.Resources(ctx, "acme")
		must(t, "Resources", err)
		return rs
	}
	for _, r := range stack {
		r := r
		apply(silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r})
	}
	want := append([]silo.Resource(nil), stack...)
	sortResources(want)
	if diff := cmp.Diff(want, resources(), cmpSpec); diff != "" {
		t.Errorf("Resources after create (-want +got):\n%s", diff)
	}

	// The effects are visible on the data plane.
	d := dataOf(t, p, "acme")
	must(t, "put into created table", d.Put(ctx, "findings", "k", []byte("v")))
	must(t, "put into created bucket", d.PutBlob(ctx, "uploads", "k", []byte("v")))
	if v, err := d.Config(ctx, "plan"); err != nil || v != "pro" {
		t.Errorf("Config(plan) = %q, %v; want pro", v, err)
	}

	// Update every resource; the data survives an update.
	updated := make([]silo.Resource, len(stack))
	for i, r := range stack {
		var spec map[string]any
		must(t, "decode spec", json.Unmarshal(r.Spec, &spec))
		switch r.Type {
		case silo.TypeConfig:
			spec["value"] = "updated-" + r.Name
		default:
			spec["note"] = "updated"
		}
		nr, err := silo.NewResource(r.Type, r.Name, spec)
		must(t, "NewResource", err)
		cur := r
		apply(silo.Change{Op: silo.OpUpdate, Type: r.Type, Name: r.Name, Desired: &nr, Current: &cur})
		updated[i] = nr
	}
	want = append([]silo.Resource(nil), updated...)
	sortResources(want)
	if diff := cmp.Diff(want, resources(), cmpSpec); diff != "" {
		t.Errorf("Resources after update (-want +got):\n%s", diff)
	}
	if v, err := d.Config(ctx, "plan"); err != nil || v != "updated-plan" {
		t.Errorf("Config(plan) after update = %q, %v; want updated-plan", v, err)
	}
	if v, err := d.Get(ctx, "findings", "k"); err != nil || string(v) != "v" {
		t.Errorf("table data after update = %q, %v; want v", v, err)
	}
	if v, err := d.GetBlob(ctx, "uploads", "k"); err != nil || string(v) != "v" {
		t.Errorf("bucket data after update = %q, %v; want v", v, err)
	}

	// Delete every resource (reverse order), twice each.
	for i := len(updated) - 1; i >= 0; i-- {
		r := updated[i]
		apply(silo.Change{Op: silo.OpDelete, Type: r.Type, Name: r.Name, Current: &r})
	}
	if rs := resources(); len(rs) != 0 {
		t.Errorf("Resources after delete = %v, want none", rs)
	}
	_, err := d.Get(ctx, "findings", "k")
	wantNotFound(t, "Get from deleted table", err)
	_, err = d.GetBlob(ctx, "uploads", "k")
	wantNotFound(t, "GetBlob from deleted bucket", err)
	_, err = d.Config(ctx, "plan")
	wantNotFound(t, "deleted config", err)

	// Deleting what never existed is a no-op.
	for _, typ := range silo.ResourceTypes {
		must(t, "delete missing "+string(typ), p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: typ, Name: "never"}))
	}

	// Bad changes.
	bad := []silo.Change{
		{Op: silo.OpCreate, Type: silo.TypeTable, Name: "t"},                          // no desired
		{Op: silo.Op("explode"), Type: silo.TypeTable, Name: "t", Desired: &stack[0]}, // unknown op
		{Op: silo.OpCreate, Type: silo.TypeTable, Name: "other", Desired: &stack[0]},  // name mismatch
		{Op: silo.OpCreate, Type: silo.TypeTable, Name: "../x", Desired: &silo.Resource{Type: silo.TypeTable, Name: "../x"}},
		{Op: silo.OpCreate, Type: silo.TypeBucket, Name: "../x", Desired: &silo.Resource{Type: silo.TypeBucket, Name: "../x"}},
		{Op: silo.OpCreate, Type: silo.TypeConfig, Name: "c", Desired: &silo.Resource{Type: silo.TypeConfig, Name: "c", Spec: json.RawMessage(`{"value": 3}`)}},
		{Op: silo.OpCreate, Type: silo.ResourceType("queue"), Name: "q", Desired: &silo.Resource{Type: "queue", Name: "q"}},
	}
	for _, c := range bad {
		wantCode(t, fmt.Sprintf("apply %s %s", c.Op, c.Key()), p.Apply(ctx, "acme", c), silo.CodeInvalid)
	}
	if rs := resources(); len(rs) != 0 {
		t.Errorf("bad changes left resources %v", rs)
	}
}

func testApplyUnknownAccount(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	r := Stack(t)[0]
	wantNotFound(t, "Apply to missing account", p.Apply(ctx, "ghost", silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}))
	_, err := p.Resources(ctx, "ghost")
	wantNotFound(t, "Resources of missing account", err)
	_, err = p.Data(ctx, "ghost")
	wantNotFound(t, "Data of missing account", err)
	_, err = p.KeyInfo(ctx, "ghost")
	wantNotFound(t, "KeyInfo of missing account", err)
	wantNotFound(t, "PutSecret to missing account", p.PutSecret(ctx, "ghost", "s", []byte("v")))
	ids, _ := p.Accounts(ctx)
	if len(ids) != 0 {
		t.Errorf("operations on a missing account created %v", ids)
	}
	// Twin.
	create(t, p, "ghost")
	must(t, "Apply after create", p.Apply(ctx, "ghost", silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}))
}

func testDeleteTableDropsData(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	must(t, "Put", d.Put(ctx, "findings", "k", []byte("v")))
	must(t, "PutBlob", d.PutBlob(ctx, "uploads", "k", []byte("v")))
	must(t, "delete table", p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeTable, Name: "findings"}))
	must(t, "delete bucket", p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeBucket, Name: "uploads"}))
	ApplyAll(t, p, "acme", Stack(t)[:3])
	_, err := d.Get(ctx, "findings", "k")
	wantNotFound(t, "Get from recreated table", err)
	_, err = d.GetBlob(ctx, "uploads", "k")
	wantNotFound(t, "GetBlob from recreated bucket", err)
	// Twin: the untouched table keeps its data.
	must(t, "Put sessions", d.Put(ctx, "sessions", "k", []byte("v")))
	must(t, "update sessions", p.Apply(ctx, "acme", silo.Change{Op: silo.OpUpdate, Type: silo.TypeTable, Name: "sessions", Desired: &Stack(t)[1]}))
	if v, err := d.Get(ctx, "sessions", "k"); err != nil || string(v) != "v" {
		t.Errorf("Get after update = %q, %v", v, err)
	}
}

// testSpecsRoundTrip applies resources whose specs are the root package's
// spec types, as the engine encodes them, and checks that the provider
// returns exactly what it was given: the same bytes, the same hash, and a
// function's artifact digest and grants intact when decoded.
func testSpecsRoundTrip(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	// The function below reads the production export threat-intel, so
	// production deploys it first, as the engine orders a fleet: a provider
	// may refuse a grant on an export it cannot find (AWS writes the
	// export's ARN into the function's execution role).
	createKind(t, p, "production", silo.KindProduction)
	intel, err := silo.NewResource(silo.TypeTable, "intel", nil)
	must(t, "NewResource", err)
	export, err := silo.NewResource(silo.TypeExport, "threat-intel", silo.ExportSpec{Table: "intel"})
	must(t, "NewResource", err)
	ApplyAll(t, p, "production", []silo.Resource{intel, export})
	create(t, p, "acme")
	fn := silo.FunctionSpec{
		Artifact: strings.Repeat("0123456789abcdef", 4), Handler: "main", Memory: 64 << 20, Timeout: 5e9, Concurrency: 4,
		Tables:  map[string]string{"findings": "read-write", "sessions": "read"},
		Buckets: map[string]string{"uploads": "read"},
		Config:  []string{"plan"}, Secrets: []string{"api_token"}, Exports: []string{"threat-intel"},
	}
	specs := []struct {
		typ  silo.ResourceType
		name string
		spec any
	}{
		{silo.TypeFunction, "ingest", fn},
		{silo.TypeConfig, "plan", silo.ConfigSpec{Value: "pro"}},
		{silo.TypeRoute, "GET /findings", silo.RouteSpec{Method: "GET", Path: "/findings", Function: "ingest"}},
		{silo.TypeSchedule, "nightly", silo.ScheduleSpec{Function: "ingest", Cron: "0 3 * * *"}},
		{silo.TypeExport, "threat-intel", silo.ExportSpec{Table: "intel"}},
	}
	var given []silo.Resource
	for _, s := range specs {
		r, err := silo.NewResource(s.typ, s.name, s.spec)
		must(t, "NewResource", err)
		given = append(given, r)
	}
	ApplyAll(t, p, "acme", given)
	check := func(when string, want []silo.Resource) {
		t.Helper()
		got, err := p.Resources(ctx, "acme")
		must(t, "Resources", err)
		if len(got) != len(want) {
			t.Fatalf("%s: Resources holds %d resources, want %d: %v", when, len(got), len(want), got)
		}
		byKey := map[string]silo.Resource{}
		for _, r := range got {
			byKey[r.Key()] = r
		}
		for _, w := range want {
			g, ok := byKey[w.Key()]
			switch {
			case !ok:
				t.Errorf("%s: Resources lacks %s", when, w.Key())
			case !bytes.Equal(g.Spec, w.Spec) || g.Hash != w.Hash:
				t.Errorf("%s: %s came back as spec %s hash %s; want spec %s hash %s", when, w.Key(), g.Spec, g.Hash, w.Spec, w.Hash)
			}
		}
		var back silo.FunctionSpec
		must(t, "decode the function spec", json.Unmarshal(byKey["function/ingest"].Spec, &back))
		var sent silo.FunctionSpec
		must(t, "decode the sent spec", json.Unmarshal(want[0].Spec, &sent))
		if diff := cmp.Diff(sent, back); diff != "" {
			t.Errorf("%s: the function's spec decoded as silo.FunctionSpec differs (-sent +returned):\n%s", when, diff)
		}
	}
	check("after create", given)
	// A grant changed: the provider returns the new spec, not the old.
	fn.Tables = map[string]string{"findings": "read"}
	fn.Artifact = strings.Repeat("fedcba9876543210", 4)
	nr, err := silo.NewResource(silo.TypeFunction, "ingest", fn)
	must(t, "NewResource", err)
	cur := given[0]
	must(t, "update the function", p.Apply(ctx, "acme", silo.Change{Op: silo.OpUpdate, Type: nr.Type, Name: nr.Name, Desired: &nr, Current: &cur}))
	check("after update", append([]silo.Resource{nr}, given[1:]...))
}
