// Package providertest is the conformance suite every silo provider passes:
// Run exercises accounts, Apply for each resource type, the manifest, the
// data plane, secrets and cross-account isolation through the
// provider.Provider contract alone, so that local and AWS behave the same.
//
// Every "must not" check has a "must" twin next to it, so a provider (or a
// harness) that fails everything cannot pass.
//
// It imports the root silo package, provider, go-cmp and the standard
// library (including testing); it must not import any provider
// implementation.
package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// TraversalKeys is the corpus of hostile blob keys. A provider must either
// reject each with CodeInvalid or store it strictly inside the bucket, under
// exactly that key.
var TraversalKeys = []string{
	"..",
	".",
	"%2e%2e",
	"%2e%2e/x",
	"..%2f..%2fx",
	"../x",
	"a/../../x",
	"a/..",
	"a/./b",
	"/etc/passwd",
	"//x",
	"a//b",
	"a/",
	`C:\x`,
	`..\x`,
	`a\..\..\x`,
	"a\x00b",
	"\x00",
	"a\nb",
	"./.",
	"x.",
	"x ",
	"a./b",
	"a /b",
	"...",
	"\u2024\u2024/x",        // one dot leader: looks like ".."
	"\uff0e\uff0e\uff0fx",   // fullwidth "../x"
	"a\uff0fb",              // fullwidth solidus
	"\u2215etc\u2215passwd", // division slash
	"\xff\xfe",              // not UTF-8
	"",
	strings.Repeat("k", 2000),
	strings.Repeat("a/", 600) + "x",
}

// Run runs the conformance suite. newProvider returns a fresh, empty
// provider for each subtest; it should register its own cleanup.
func Run(t *testing.T, newProvider func(t *testing.T) provider.Provider) {
	tests := []struct {
		name string
		fn   func(*testing.T, provider.Provider)
	}{
		{"Accounts", testAccounts},
		{"InvalidIDs", testInvalidIDs},
		{"ApplyEachType", testApplyEachType},
		{"ApplyUnknownAccount", testApplyUnknownAccount},
		{"TableData", testTableData},
		{"Scan", testScan},
		{"Blobs", testBlobs},
		{"BlobTraversal", testBlobTraversal},
		{"ConfigAndSecrets", testConfigAndSecrets},
		{"KeyInfo", testKeyInfo},
		{"Isolation", testIsolation},
		{"DeleteAccount", testDeleteAccount},
		{"DeleteTableDropsData", testDeleteTableDropsData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newProvider(t))
		})
	}
}

// Stack returns an example stack of ten resources, the shape the engine
// applies to every tenant account.
func Stack(t testing.TB) []silo.Resource {
	t.Helper()
	mk := func(typ silo.ResourceType, name string, spec any) silo.Resource {
		r, err := silo.NewResource(typ, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return []silo.Resource{
		mk(silo.TypeTable, "findings", map[string]any{}),
		mk(silo.TypeTable, "sessions", map[string]any{}),
		mk(silo.TypeBucket, "uploads", map[string]any{}),
		mk(silo.TypeConfig, "log_level", map[string]any{"value": "info"}),
		mk(silo.TypeConfig, "plan", map[string]any{"value": "pro"}),
		mk(silo.TypeSecret, "api_token", map[string]any{}),
		mk(silo.TypeFunction, "ingest", map[string]any{"artifact": strings.Repeat("a", 64), "memory": "64MiB"}),
		mk(silo.TypeFunction, "list", map[string]any{"artifact": strings.Repeat("b", 64)}),
		mk(silo.TypeRoute, "GET /findings", map[string]any{"function": "list"}),
		mk(silo.TypeExport, "threat-intel", map[string]any{"table": "intel"}),
		mk(silo.TypeSchedule, "nightly", map[string]any{"function": "ingest", "cron": "0 3 * * *"}),
	}
}

// ApplyAll creates every resource of rs in acct, in apply order.
func ApplyAll(t testing.TB, p provider.Provider, acct silo.AccountID, rs []silo.Resource) {
	t.Helper()
	for _, r := range rs {
		r := r
		if err := p.Apply(context.Background(), acct, silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}); err != nil {
			t.Fatalf("apply create %s to %s: %v", r.Key(), acct, err)
		}
	}
}

func create(t testing.TB, p provider.Provider, id silo.AccountID) {
	t.Helper()
	if err := p.CreateAccount(context.Background(), id, silo.KindTenant); err != nil {
		t.Fatalf("CreateAccount(%s): %v", id, err)
	}
}

func dataOf(t testing.TB, p provider.Provider, id silo.AccountID) provider.Data {
	t.Helper()
	d, err := p.Data(context.Background(), id)
	if err != nil {
		t.Fatalf("Data(%s): %v", id, err)
	}
	return d
}

func wantCode(t testing.TB, what string, err error, code silo.Code) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got success, want %s", what, code)
		return
	}
	if got := silo.ErrorCode(err); got != code {
		t.Errorf("%s: got %s (%v), want %s", what, got, err, code)
	}
}

func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("%s: got %v, want silo.ErrNotFound", what, err)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testAccounts(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	ids, err := p.Accounts(ctx)
	must(t, "Accounts on empty provider", err)
	if len(ids) != 0 {
		t.Errorf("new provider lists accounts %v, want none", ids)
	}
	if p.Name() == "" {
		t.Errorf("Name() is empty")
	}
	for _, id := range []silo.AccountID{"globex", "acme", silo.ProductionID, "dev-alice"} {
		must(t, "create "+string(id), p.CreateAccount(ctx, id, silo.KindTenant))
	}
	// Create twice == once: the data key is kept.
	k1, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	must(t, "create acme again", p.CreateAccount(ctx, "acme", silo.KindTenant))
	k2, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	if diff := cmp.Diff(k1, k2); diff != "" {
		t.Errorf("second CreateAccount changed the data key (-before +after):\n%s", diff)
	}
	ids, err = p.Accounts(ctx)
	must(t, "Accounts", err)
	want := []silo.AccountID{"acme", "dev-alice", "globex", silo.ProductionID}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("Accounts (-want +got):\n%s", diff)
	}
	rs, err := p.Resources(ctx, "acme")
	must(t, "Resources of new account", err)
	if len(rs) != 0 {
		t.Errorf("new account holds %v, want nothing", rs)
	}
	wantCode(t, "CreateAccount with bad kind", p.CreateAccount(ctx, "initech", silo.Kind("bogus")), silo.CodeInvalid)
}

func testInvalidIDs(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"", "../acme", "Acme", "a/b", "-x", "a\x00", ".", silo.AccountID(strings.Repeat("a", 64))} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			wantCode(t, "CreateAccount", p.CreateAccount(ctx, id, silo.KindTenant), silo.CodeInvalid)
			wantCode(t, "DeleteAccount", p.DeleteAccount(ctx, id), silo.CodeInvalid)
			_, err := p.Data(ctx, id)
			wantCode(t, "Data", err, silo.CodeInvalid)
			_, err = p.Resources(ctx, id)
			wantCode(t, "Resources", err, silo.CodeInvalid)
			_, err = p.KeyInfo(ctx, id)
			wantCode(t, "KeyInfo", err, silo.CodeInvalid)
			wantCode(t, "PutSecret", p.PutSecret(ctx, id, "s", []byte("v")), silo.CodeInvalid)
			r, _ := silo.NewResource(silo.TypeTable, "t", map[string]any{})
			wantCode(t, "Apply", p.Apply(ctx, id, silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}), silo.CodeInvalid)
		})
	}
	ids, err := p.Accounts(ctx)
	must(t, "Accounts", err)
	if len(ids) != 0 {
		t.Errorf("invalid IDs created accounts %v", ids)
	}
	// Twin: a valid ID works.
	must(t, "create valid", p.CreateAccount(ctx, "acme", silo.KindTenant))
}

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

var cmpSpec = cmpopts.EquateComparable()

func sortResources(rs []silo.Resource) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Key() < rs[j-1].Key(); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
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

func testTableData(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")

	_, err := d.Get(ctx, "findings", "missing")
	wantNotFound(t, "Get missing key", err)
	must(t, "Put", d.Put(ctx, "findings", "f1", []byte("high")))
	must(t, "Put empty value", d.Put(ctx, "findings", "empty", nil))
	v, err := d.Get(ctx, "findings", "f1")
	must(t, "Get", err)
	if diff := cmp.Diff([]byte("high"), v); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if v, err := d.Get(ctx, "findings", "empty"); err != nil || len(v) != 0 {
		t.Errorf("Get empty = %q, %v; want empty value", v, err)
	}
	must(t, "overwrite", d.Put(ctx, "findings", "f1", []byte("low")))
	if v, _ := d.Get(ctx, "findings", "f1"); string(v) != "low" {
		t.Errorf("after overwrite Get = %q, want low", v)
	}
	// Tables are separate.
	_, err = d.Get(ctx, "sessions", "f1")
	wantNotFound(t, "Get from other table", err)
	must(t, "Delete", d.Delete(ctx, "findings", "f1"))
	_, err = d.Get(ctx, "findings", "f1")
	wantNotFound(t, "Get after Delete", err)
	must(t, "Delete missing key", d.Delete(ctx, "findings", "f1"))

	for _, table := range []string{"nosuch", "../findings", ""} {
		_, err = d.Get(ctx, table, "k")
		wantNotFound(t, fmt.Sprintf("Get from table %q", table), err)
		wantNotFound(t, fmt.Sprintf("Put into table %q", table), d.Put(ctx, table, "k", []byte("v")))
		wantNotFound(t, fmt.Sprintf("Delete from table %q", table), d.Delete(ctx, table, "k"))
		_, err = d.Scan(ctx, table, "", "", 10)
		wantNotFound(t, fmt.Sprintf("Scan table %q", table), err)
	}
	wantCode(t, "Put empty key", d.Put(ctx, "findings", "", []byte("v")), silo.CodeInvalid)
	wantCode(t, "Put 2000-byte key", d.Put(ctx, "findings", strings.Repeat("k", 2000), []byte("v")), silo.CodeInvalid)
	// Keys are opaque bytes: traversal-looking keys are just keys.
	must(t, "Put ../x key", d.Put(ctx, "findings", "../x", []byte("dots")))
	if v, err := d.Get(ctx, "findings", "../x"); err != nil || string(v) != "dots" {
		t.Errorf("Get ../x = %q, %v", v, err)
	}
}

func testScan(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	for _, k := range []string{"b/1", "a/2", "a/1", "a/3", "a", "c", "a/10"} {
		must(t, "Put "+k, d.Put(ctx, "findings", k, []byte("v"+k)))
	}
	keys := func(kvs []provider.KV) []string {
		out := []string{}
		for _, kv := range kvs {
			if string(kv.Value) != "v"+kv.Key {
				t.Errorf("Scan: key %q has value %q", kv.Key, kv.Value)
			}
			out = append(out, kv.Key)
		}
		return out
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 100, []string{"a", "a/1", "a/10", "a/2", "a/3", "b/1", "c"}},
		{"a/", "", 100, []string{"a/1", "a/10", "a/2", "a/3"}},
		{"a/", "", 2, []string{"a/1", "a/10"}},
		{"a/", "a/10", 2, []string{"a/2", "a/3"}},
		{"a/", "a/3", 2, []string{}},
		{"a/", "a/0", 1, []string{"a/1"}},
		{"", "b/1", 10, []string{"c"}},
		{"", "a", 1, []string{"a/1"}},
		{"z", "", 10, []string{}},
		{"a/", "b", 10, []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix=%q,after=%q,limit=%d", tt.prefix, tt.after, tt.limit), func(t *testing.T) {
			kvs, err := d.Scan(ctx, "findings", tt.prefix, tt.after, tt.limit)
			must(t, "Scan", err)
			if diff := cmp.Diff(tt.want, keys(kvs)); diff != "" {
				t.Errorf("Scan (-want +got):\n%s", diff)
			}
		})
	}
	// Paging with after visits every key exactly once.
	var all []string
	after := ""
	for {
		kvs, err := d.Scan(ctx, "findings", "", after, 3)
		must(t, "Scan page", err)
		if len(kvs) == 0 {
			break
		}
		all = append(all, keys(kvs)...)
		after = kvs[len(kvs)-1].Key
	}
	if diff := cmp.Diff([]string{"a", "a/1", "a/10", "a/2", "a/3", "b/1", "c"}, all); diff != "" {
		t.Errorf("paged Scan (-want +got):\n%s", diff)
	}
}

func testBlobs(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")

	_, err := d.GetBlob(ctx, "uploads", "missing")
	wantNotFound(t, "GetBlob missing", err)
	for _, k := range []string{"reports/2024/q1.pdf", "reports/2024/q2.pdf", "reports/2025/q1.pdf", "logo.png", "reports.txt"} {
		must(t, "PutBlob "+k, d.PutBlob(ctx, "uploads", k, []byte("blob:"+k)))
	}
	must(t, "PutBlob empty", d.PutBlob(ctx, "uploads", "empty", nil))
	v, err := d.GetBlob(ctx, "uploads", "reports/2024/q1.pdf")
	must(t, "GetBlob", err)
	if diff := cmp.Diff([]byte("blob:reports/2024/q1.pdf"), v); diff != "" {
		t.Errorf("GetBlob (-want +got):\n%s", diff)
	}
	if v, err := d.GetBlob(ctx, "uploads", "empty"); err != nil || len(v) != 0 {
		t.Errorf("GetBlob empty = %q, %v", v, err)
	}
	must(t, "overwrite", d.PutBlob(ctx, "uploads", "logo.png", []byte("new")))
	if v, _ := d.GetBlob(ctx, "uploads", "logo.png"); string(v) != "new" {
		t.Errorf("after overwrite GetBlob = %q, want new", v)
	}
	list := func(prefix string, limit int) []string {
		t.Helper()
		ks, err := d.ListBlobs(ctx, "uploads", prefix, limit)
		must(t, "ListBlobs", err)
		return ks
	}
	tests := []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"", 100, []string{"empty", "logo.png", "reports.txt", "reports/2024/q1.pdf", "reports/2024/q2.pdf", "reports/2025/q1.pdf"}},
		{"reports/", 100, []string{"reports/2024/q1.pdf", "reports/2024/q2.pdf", "reports/2025/q1.pdf"}},
		{"reports", 2, []string{"reports.txt", "reports/2024/q1.pdf"}},
		{"reports/2024/q", 100, []string{"reports/2024/q1.pdf", "reports/2024/q2.pdf"}},
		{"nothing", 100, []string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(tt.prefix, tt.limit)); diff != "" {
			t.Errorf("ListBlobs(%q, %d) (-want +got):\n%s", tt.prefix, tt.limit, diff)
		}
	}
	must(t, "DeleteBlob", d.DeleteBlob(ctx, "uploads", "reports/2025/q1.pdf"))
	_, err = d.GetBlob(ctx, "uploads", "reports/2025/q1.pdf")
	wantNotFound(t, "GetBlob after delete", err)
	must(t, "DeleteBlob missing", d.DeleteBlob(ctx, "uploads", "reports/2025/q1.pdf"))
	if diff := cmp.Diff([]string{"reports/2024/q1.pdf", "reports/2024/q2.pdf"}, list("reports/", 100)); diff != "" {
		t.Errorf("ListBlobs after delete (-want +got):\n%s", diff)
	}
	// A prefix is not a blob.
	_, err = d.GetBlob(ctx, "uploads", "reports/2024")
	wantNotFound(t, "GetBlob of a prefix", err)

	for _, bucket := range []string{"nosuch", "../uploads", ""} {
		_, err = d.GetBlob(ctx, bucket, "k")
		wantNotFound(t, fmt.Sprintf("GetBlob from bucket %q", bucket), err)
		wantNotFound(t, fmt.Sprintf("PutBlob to bucket %q", bucket), d.PutBlob(ctx, bucket, "k", []byte("v")))
		wantNotFound(t, fmt.Sprintf("DeleteBlob from bucket %q", bucket), d.DeleteBlob(ctx, bucket, "k"))
		_, err = d.ListBlobs(ctx, bucket, "", 10)
		wantNotFound(t, fmt.Sprintf("ListBlobs of bucket %q", bucket), err)
	}
}

func testBlobTraversal(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	create(t, p, "globex")
	for _, id := range []silo.AccountID{"acme", "globex"} {
		ApplyAll(t, p, id, Stack(t))
	}
	second, err := silo.NewResource(silo.TypeBucket, "other", map[string]any{})
	must(t, "NewResource", err)
	ApplyAll(t, p, "acme", []silo.Resource{second})
	a, b := dataOf(t, p, "acme"), dataOf(t, p, "globex")

	stored := 0
	for _, key := range TraversalKeys {
		t.Run(fmt.Sprintf("%.40q", key), func(t *testing.T) {
			value := []byte("traversal:" + key)
			err := a.PutBlob(ctx, "uploads", key, value)
			if err != nil {
				wantCode(t, "PutBlob", err, silo.CodeInvalid)
				_, err := a.GetBlob(ctx, "uploads", key)
				if silo.ErrorCode(err) != silo.CodeInvalid && !errors.Is(err, silo.ErrNotFound) {
					t.Errorf("GetBlob of rejected key: got %v, want CodeInvalid or not found", err)
				}
				return
			}
			stored++
			// Stored: exactly under that key, in that bucket, in that account.
			got, err := a.GetBlob(ctx, "uploads", key)
			if err != nil || string(got) != string(value) {
				t.Errorf("GetBlob after PutBlob = %q, %v; want %q", got, err, value)
			}
			ks, err := a.ListBlobs(ctx, "uploads", "", MaxList)
			must(t, "ListBlobs", err)
			if !contains(ks, key) {
				t.Errorf("ListBlobs does not list stored key %q: %q", key, ks)
			}
			if ks, _ := a.ListBlobs(ctx, "other", "", MaxList); len(ks) != 0 {
				t.Errorf("key %q reached bucket other: %q", key, ks)
			}
			if ks, _ := b.ListBlobs(ctx, "uploads", "", MaxList); len(ks) != 0 {
				t.Errorf("key %q reached account globex: %q", key, ks)
			}
			must(t, "DeleteBlob", a.DeleteBlob(ctx, "uploads", key))
		})
	}
	// Twin: the look-alikes are ordinary names and must be storable.
	for _, key := range []string{"%2e%2e", "\u2024\u2024/x", "a\uff0fb"} {
		must(t, "PutBlob look-alike "+key, a.PutBlob(ctx, "uploads", key, []byte("ok")))
	}
	if stored == 0 {
		t.Errorf("no traversal key was stored; the look-alikes should be")
	}
}

// MaxList is the limit the suite passes to ListBlobs when it wants all keys.
const MaxList = 1000

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func testConfigAndSecrets(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	if v, err := d.Config(ctx, "log_level"); err != nil || v != "info" {
		t.Errorf("Config(log_level) = %q, %v; want info", v, err)
	}
	_, err := d.Config(ctx, "nosuch")
	wantNotFound(t, "Config missing", err)

	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "Secret declared but never put", err)
	wantNotFound(t, "PutSecret to undeclared slot", p.PutSecret(ctx, "acme", "undeclared", []byte("x")))
	_, err = d.Secret(ctx, "undeclared")
	wantNotFound(t, "Secret undeclared", err)

	must(t, "PutSecret declared", p.PutSecret(ctx, "acme", "api_token", []byte("tok-123")))
	must(t, "PutSecret again", p.PutSecret(ctx, "acme", "api_token", []byte("tok-456")))
	v, err := d.Secret(ctx, "api_token")
	must(t, "Secret", err)
	if diff := cmp.Diff([]byte("tok-456"), v); diff != "" {
		t.Errorf("Secret (-want +got):\n%s", diff)
	}
	wantCode(t, "PutSecret over 64 KiB", p.PutSecret(ctx, "acme", "api_token", make([]byte, 64<<10+1)), silo.CodeInvalid)
	must(t, "PutSecret exactly 64 KiB", p.PutSecret(ctx, "acme", "api_token", make([]byte, 64<<10)))
	must(t, "PutSecret empty", p.PutSecret(ctx, "acme", "api_token", nil))
	if v, err := d.Secret(ctx, "api_token"); err != nil || len(v) != 0 {
		t.Errorf("empty Secret = %q, %v", v, err)
	}

	// Deleting the slot removes the value; redeclaring does not bring it back.
	must(t, "PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("tok-789")))
	must(t, "delete secret", p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeSecret, Name: "api_token"}))
	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "Secret after slot deleted", err)
	wantNotFound(t, "PutSecret after slot deleted", p.PutSecret(ctx, "acme", "api_token", []byte("x")))
	ApplyAll(t, p, "acme", Stack(t)[5:6])
	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "Secret after slot redeclared", err)
}

func testKeyInfo(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	create(t, p, "acme")
	create(t, p, "globex")
	a, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo acme", err)
	b, err := p.KeyInfo(ctx, "globex")
	must(t, "KeyInfo globex", err)
	if a.Algorithm == "" || a.Fingerprint == "" || a.WrappedBy == "" {
		t.Errorf("KeyInfo has empty fields: %+v", a)
	}
	if a.Fingerprint == b.Fingerprint {
		t.Errorf("two accounts share data key fingerprint %s", a.Fingerprint)
	}
}

func testIsolation(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		create(t, p, id)
		ApplyAll(t, p, id, Stack(t))
	}
	a, b := dataOf(t, p, "acme"), dataOf(t, p, "globex")
	must(t, "A Put", a.Put(ctx, "findings", "only-a", []byte("A")))
	must(t, "A PutBlob", a.PutBlob(ctx, "uploads", "only-a", []byte("A")))
	must(t, "A PutSecret", p.PutSecret(ctx, "acme", "api_token", []byte("A-secret")))
	must(t, "B PutSecret", p.PutSecret(ctx, "globex", "api_token", []byte("B-secret")))
	must(t, "A config", p.Apply(ctx, "acme", configChange(t, "plan", "a-only")))

	// Controls: A sees its own data.
	if v, err := a.Get(ctx, "findings", "only-a"); err != nil || string(v) != "A" {
		t.Errorf("control: A Get = %q, %v", v, err)
	}
	if v, err := a.GetBlob(ctx, "uploads", "only-a"); err != nil || string(v) != "A" {
		t.Errorf("control: A GetBlob = %q, %v", v, err)
	}
	if v, err := a.Secret(ctx, "api_token"); err != nil || string(v) != "A-secret" {
		t.Errorf("control: A Secret = %q, %v", v, err)
	}
	if v, err := a.Config(ctx, "plan"); err != nil || v != "a-only" {
		t.Errorf("control: A Config = %q, %v", v, err)
	}
	// B sees none of it.
	_, err := b.Get(ctx, "findings", "only-a")
	wantNotFound(t, "B Get of A's key", err)
	_, err = b.GetBlob(ctx, "uploads", "only-a")
	wantNotFound(t, "B GetBlob of A's blob", err)
	if kvs, err := b.Scan(ctx, "findings", "", "", 100); err != nil || len(kvs) != 0 {
		t.Errorf("B Scan = %v, %v; want nothing", kvs, err)
	}
	if ks, err := b.ListBlobs(ctx, "uploads", "", 100); err != nil || len(ks) != 0 {
		t.Errorf("B ListBlobs = %v, %v; want nothing", ks, err)
	}
	if v, err := b.Secret(ctx, "api_token"); err != nil || string(v) != "B-secret" {
		t.Errorf("B Secret = %q, %v; want B-secret", v, err)
	}
	if v, err := b.Config(ctx, "plan"); err != nil || v != "pro" {
		t.Errorf("B Config = %q, %v; want pro", v, err)
	}
	// A's resources are not B's.
	must(t, "A-only table", p.Apply(ctx, "acme", tableChange(t, "a-only")))
	must(t, "A Put a-only", a.Put(ctx, "a-only", "k", []byte("v")))
	_, err = b.Get(ctx, "a-only", "k")
	wantNotFound(t, "B Get from A's table", err)
}

func configChange(t testing.TB, name, value string) silo.Change {
	r, err := silo.NewResource(silo.TypeConfig, name, map[string]any{"value": value})
	must(t, "NewResource", err)
	return silo.Change{Op: silo.OpUpdate, Type: r.Type, Name: r.Name, Desired: &r}
}

func tableChange(t testing.TB, name string) silo.Change {
	r, err := silo.NewResource(silo.TypeTable, name, map[string]any{})
	must(t, "NewResource", err)
	return silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}
}

func testDeleteAccount(t *testing.T, p provider.Provider) {
	ctx := context.Background()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		create(t, p, id)
		ApplyAll(t, p, id, Stack(t))
		d := dataOf(t, p, id)
		must(t, "Put", d.Put(ctx, "findings", "k", []byte("v")))
		must(t, "PutBlob", d.PutBlob(ctx, "uploads", "k", []byte("v")))
		must(t, "PutSecret", p.PutSecret(ctx, id, "api_token", []byte("s-"+string(id))))
	}
	old := dataOf(t, p, "acme")
	before, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)

	must(t, "DeleteAccount", p.DeleteAccount(ctx, "acme"))
	must(t, "DeleteAccount again", p.DeleteAccount(ctx, "acme"))
	must(t, "DeleteAccount never existed", p.DeleteAccount(ctx, "never"))

	ids, err := p.Accounts(ctx)
	must(t, "Accounts", err)
	if diff := cmp.Diff([]silo.AccountID{"globex"}, ids); diff != "" {
		t.Errorf("Accounts after delete (-want +got):\n%s", diff)
	}
	_, err = p.Resources(ctx, "acme")
	wantNotFound(t, "Resources of deleted", err)
	_, err = p.Data(ctx, "acme")
	wantNotFound(t, "Data of deleted", err)
	// A handle taken before the delete reaches nothing.
	_, err = old.Get(ctx, "findings", "k")
	wantNotFound(t, "old handle Get", err)
	_, err = old.GetBlob(ctx, "uploads", "k")
	wantNotFound(t, "old handle GetBlob", err)
	_, err = old.Secret(ctx, "api_token")
	wantNotFound(t, "old handle Secret", err)
	_, err = old.Config(ctx, "plan")
	wantNotFound(t, "old handle Config", err)

	// Twin: the other account is intact.
	g := dataOf(t, p, "globex")
	if v, err := g.Get(ctx, "findings", "k"); err != nil || string(v) != "v" {
		t.Errorf("globex Get after acme deleted = %q, %v", v, err)
	}
	if v, err := g.Secret(ctx, "api_token"); err != nil || string(v) != "s-globex" {
		t.Errorf("globex Secret after acme deleted = %q, %v", v, err)
	}

	// Recreating gives an empty account with a new key.
	create(t, p, "acme")
	after, err := p.KeyInfo(ctx, "acme")
	must(t, "KeyInfo", err)
	if after.Fingerprint == before.Fingerprint {
		t.Errorf("recreated account reuses data key %s", after.Fingerprint)
	}
	if rs, _ := p.Resources(ctx, "acme"); len(rs) != 0 {
		t.Errorf("recreated account holds %v", rs)
	}
	ApplyAll(t, p, "acme", Stack(t))
	d := dataOf(t, p, "acme")
	_, err = d.Get(ctx, "findings", "k")
	wantNotFound(t, "old table data in recreated account", err)
	_, err = d.GetBlob(ctx, "uploads", "k")
	wantNotFound(t, "old blob in recreated account", err)
	_, err = d.Secret(ctx, "api_token")
	wantNotFound(t, "old secret in recreated account", err)
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
