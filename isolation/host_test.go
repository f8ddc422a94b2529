package isolation_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
)

// liveFleet materializes testFleet(2) (production, acme, globex) in a real
// local provider and returns the policy and the providers' Data handles.
func liveFleet(t *testing.T) (*isolation.Policy, map[silo.AccountID]provider.Data) {
	t.Helper()
	ctx := context.Background()
	p, err := local.New(local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f := testFleet(t, 2)
	data := map[silo.AccountID]provider.Data{}
	for _, as := range f.Accounts {
		id := as.Account.ID
		if err := p.CreateAccount(ctx, id, as.Account.Kind); err != nil {
			t.Fatal(err)
		}
		for i := range as.Resources {
			r := as.Resources[i]
			if err := p.Apply(ctx, id, silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r}); err != nil {
				t.Fatalf("apply %s to %s: %v", r.Key(), id, err)
			}
		}
		if d, err := p.Data(ctx, id); err != nil {
			t.Fatal(err)
		} else {
			data[id] = d
		}
	}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.PutSecret(ctx, id, "api-token", []byte("token-of-"+string(id))); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := isolation.PolicyFromFleet(f)
	if err != nil {
		t.Fatal(err)
	}
	return pol, data
}

func forbidden(t *testing.T, what string, err error) {
	t.Helper()
	if silo.ErrorCode(err) != silo.CodeForbidden {
		t.Errorf("%s: got %v, want forbidden", what, err)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: got %v, want success", what, err)
	}
}

func TestFunctionHost(t *testing.T) {
	ctx := context.Background()
	pol, d := liveFleet(t)
	prod := d[silo.ProductionID]
	host := func(a silo.AccountID, fn string) *isolation.Host {
		return isolation.FunctionHost(pol, a, fn, d[a], prod, nil)
	}
	acmeIngest, acmeList, globexIngest := host("acme", "ingest"), host("acme", "list"), host("globex", "ingest")
	refresh := isolation.FunctionHost(pol, silo.ProductionID, "refresh", prod, d["acme"], nil) // the tenant handle must be ignored

	// Tables: read-write grant writes, read grant only reads, accounts are apart.
	ok(t, "acme ingest put", acmeIngest.Put(ctx, "findings", "f1", []byte("acme-secret-finding")))
	ok(t, "globex ingest put", globexIngest.Put(ctx, "findings", "f1", []byte("globex-finding")))
	if v, err := acmeList.Get(ctx, "findings", "f1"); err != nil || string(v) != "acme-secret-finding" {
		t.Errorf("acme list get: got %q %v", v, err)
	}
	if v, err := globexIngest.Get(ctx, "findings", "f1"); err != nil || string(v) != "globex-finding" {
		t.Errorf("globex sees its own findings: got %q %v", v, err)
	}
	forbidden(t, "list put (read grant)", acmeList.Put(ctx, "findings", "f2", []byte("x")))
	forbidden(t, "list delete (read grant)", acmeList.Delete(ctx, "findings", "f1"))
	_, err := acmeList.Scan(ctx, "scans", "", "", 10)
	forbidden(t, "list scan of ungranted table", err)
	if kvs, err := acmeList.Scan(ctx, "findings", "", "", 10); err != nil || len(kvs) != 1 {
		t.Errorf("list scan: got %v %v, want 1 pair", kvs, err)
	}
	// Counters: Add reads and writes, so it needs read-write.
	for _, h := range []*isolation.Host{acmeIngest, globexIngest} {
		if n, err := h.Add(ctx, "findings", "visits", 1); err != nil || n != 1 {
			t.Errorf("ingest add: got %d %v, want 1 (each account counts its own)", n, err)
		}
	}
	_, err = acmeList.Add(ctx, "findings", "visits", 1)
	forbidden(t, "list add (read grant)", err)
	_, err = acmeList.Add(ctx, "scans", "visits", 1)
	forbidden(t, "list add to an ungranted table", err)
	_, err = acmeIngest.Add(ctx, "../globex/findings", "visits", 1)
	forbidden(t, "add by traversal table name", err)
	if v, err := acmeList.Get(ctx, "findings", "visits"); err != nil || string(v) != "1" {
		t.Errorf("acme's counter after the refused adds: got %q %v, want 1", v, err)
	}
	_, err = acmeIngest.Get(ctx, "../globex/findings", "f1")
	forbidden(t, "traversal table name", err)
	_, err = acmeIngest.Get(ctx, "*", "f1")
	forbidden(t, "wildcard table name", err)

	// Blobs.
	ok(t, "ingest put blob", acmeIngest.PutBlob(ctx, "uploads", "a/b.txt", []byte("blob")))
	if ks, err := acmeIngest.ListBlobs(ctx, "uploads", "", 10); err != nil || len(ks) != 1 {
		t.Errorf("list blobs: got %v %v", ks, err)
	}
	_, err = acmeList.GetBlob(ctx, "uploads", "a/b.txt")
	forbidden(t, "list get blob (no bucket grant)", err)
	forbidden(t, "list delete blob", acmeList.DeleteBlob(ctx, "uploads", "a/b.txt"))
	ok(t, "ingest delete blob", acmeIngest.DeleteBlob(ctx, "uploads", "a/b.txt"))

	// Config and secrets.
	if v, err := acmeIngest.Config(ctx, "region"); err != nil || v != "eu" {
		t.Errorf("config: got %q %v", v, err)
	}
	_, err = acmeList.Config(ctx, "region")
	forbidden(t, "list config (no grant)", err)
	if v, err := acmeIngest.Secret(ctx, "api-token"); err != nil || string(v) != "token-of-acme" {
		t.Errorf("secret: got %q %v", v, err)
	}
	_, err = acmeList.Secret(ctx, "api-token")
	forbidden(t, "list secret (no grant)", err)

	// Production writes its tables; tenants read them only through exports.
	ok(t, "refresh put catalog", refresh.Put(ctx, "catalog", "rule-1", []byte("check TLS")))
	ok(t, "refresh put internal", refresh.Put(ctx, "internal", "note", []byte("internal")))
	ok(t, "refresh put rules", refresh.PutBlob(ctx, "rules-files", "r.yaml", []byte("rules")))
	if v, err := acmeList.ExportGet(ctx, "catalog", "rule-1"); err != nil || string(v) != "check TLS" {
		t.Errorf("export get catalog: got %q %v", v, err)
	}
	if kvs, err := acmeList.ExportScan(ctx, "catalog", "", "", 10); err != nil || len(kvs) != 1 {
		t.Errorf("export scan catalog: got %v %v", kvs, err)
	}
	if v, err := acmeList.ExportGet(ctx, "rules", "r.yaml"); err != nil || string(v) != "rules" {
		t.Errorf("export get rules: got %q %v", v, err)
	}
	if v, err := acmeList.ExportGet(ctx, "version", ""); err != nil || string(v) != "7" {
		t.Errorf("export get version: got %q %v", v, err)
	}
	_, err = acmeIngest.ExportGet(ctx, "rules", "r.yaml")
	forbidden(t, "ingest export rules (not listed)", err)
	_, err = acmeList.ExportGet(ctx, "internal", "note")
	forbidden(t, "export that does not exist", err)
	_, err = acmeList.Get(ctx, "catalog", "rule-1")
	forbidden(t, "production table as own table", err)
	_, err = acmeIngest.Add(ctx, "catalog", "rule-1", 1)
	forbidden(t, "add to a production table", err)

	// Production reaches nothing of a tenant even when handed its handle.
	_, err = refresh.Get(ctx, "findings", "f1")
	forbidden(t, "production reads findings", err)
	_, err = refresh.Add(ctx, "findings", "visits", 1)
	forbidden(t, "production adds to findings", err)
	if v, err := refresh.ExportGet(ctx, "catalog", "rule-1"); err == nil && string(v) != "check TLS" {
		t.Errorf("production export read went elsewhere: %q", v)
	}
}

func TestFunctionHostLogLabels(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	h := isolation.FunctionHost(isolation.NewPolicy(), "acme", "ingest", nil, nil, log)
	h.Log(context.Background(), slog.LevelInfo, "hello", map[string]string{"account": "globex", "request_id": "r1"})
	out := buf.String()
	if !strings.Contains(out, "account=acme") || !strings.Contains(out, "guest.account=globex") || !strings.Contains(out, "function=ingest") {
		t.Fatalf("got %q, want the host's labels and the guest's relabelled", out)
	}
}

func TestFunctionHostDeniesWithEmptyPolicy(t *testing.T) {
	_, d := liveFleet(t)
	h := isolation.FunctionHost(isolation.NewPolicy(), "acme", "ingest", d["acme"], d[silo.ProductionID], nil)
	forbidden(t, "empty policy put", h.Put(context.Background(), "findings", "k", []byte("v")))
	_, err := h.Add(context.Background(), "findings", "k", 1)
	forbidden(t, "empty policy add", err)
	_, err = h.ExportGet(context.Background(), "catalog", "k")
	forbidden(t, "empty policy export", err)
}

// A function denied a production export is told the actual cause and its
// fix: a grant missing from silo.yaml (list the export under the
// function's exports), or a grant that is there for an export production
// does not have (declare it under production.exports and deploy), or no
// production account at all (deploy). The control: a granted, exported
// export is read.
func TestExportRefusalNamesTheCause(t *testing.T) {
	ctx := context.Background()
	_, d := liveFleet(t)
	f := testFleet(t, 2)
	mutateFn(t, f, "acme", "ingest", func(fs *silo.FunctionSpec) { fs.Exports = append(fs.Exports, "ghost") })
	pol, err := isolation.PolicyFromFleet(f)
	if err != nil {
		t.Fatal(err)
	}
	noProd := &isolation.Fleet{Operators: f.Operators, DataKeysKnown: true, Keys: f.Keys}
	for _, as := range f.Accounts {
		if as.Account.ID != silo.ProductionID {
			noProd.Accounts = append(noProd.Accounts, as)
		}
	}
	polNoProd, err := isolation.PolicyFromFleet(noProd)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		pol       *isolation.Policy
		export    string
		want, not string // want "" is the control: the read succeeds
	}{
		{"granted and exported", pol, "catalog", "", ""},
		{"grant missing", pol, "rules", `grant it in silo.yaml (list "rules" under the function's exports)`, "the grant is there"},
		{"export missing", pol, "ghost", `production has no export "ghost" (the grant is there, the export is not); declare "ghost" under production.exports in silo.yaml and deploy it (silo deploy)`, "grant it in"},
		{"no production account", polNoProd, "catalog", "there is no production account to export \"catalog\"; the grant is in silo.yaml; deploy a release", "grant it in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := isolation.FunctionHost(tc.pol, "acme", "ingest", d["acme"], d[silo.ProductionID], nil)
			_, err := h.ExportGet(ctx, tc.export, "k")
			if tc.want == "" {
				if silo.ErrorCode(err) == silo.CodeForbidden {
					t.Fatalf("read of a granted export: %v, want it allowed", err)
				}
				return
			}
			forbidden(t, "export "+tc.export, err)
			if msg := silo.UserMessage(err); !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.not) {
				t.Errorf("got %q, want it to contain %q and not %q", msg, tc.want, tc.not)
			}
		})
	}
}
