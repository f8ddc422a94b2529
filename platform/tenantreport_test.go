package platform_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// TestOwnIsolationReport: through the real gateway a tenant fetches its own
// signed isolation report with its own key, as JSON or as HTML by Accept;
// it verifies and names the tenant and the release it runs, and after a new
// release reaches the tenant the report is of that release. Another
// tenant's key, and no key, are refused.
func TestOwnIsolationReport(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme")
	globex := p.Tenant(t, "globex")

	fetch := func(tn *silotest.Tenant, opts ...silotest.RequestOption) *silotest.Response {
		t.Helper()
		return tn.GET(t, gateway.ReportPath, opts...)
	}
	check := func(r *silotest.Response, wantRelease string) report.Verified {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("own report: %d %s", r.Status, r.Body)
		}
		v, err := report.VerifyReport(r.Body)
		if err != nil {
			t.Fatalf("own report does not verify: %v", err)
		}
		if v.Tenant != "acme" {
			t.Errorf("report of %s, want acme", v.Tenant)
		}
		var rep struct{ Report struct{ Release string } }
		if err := json.Unmarshal(r.Body, &rep); err == nil && rep.Report.Release != wantRelease {
			t.Errorf("report of release %q, want %q", rep.Report.Release, wantRelease)
		}
		return v
	}

	a, err := p.Platform().Plane.Account(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	r := fetch(acme)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("default Content-Type %q, want JSON", ct)
	}
	check(r, a.Release)
	h := fetch(acme, silotest.Header("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"))
	if ct := h.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(h.Body), "<html") {
		t.Errorf("Accept text/html: %q, want the HTML report", ct)
	}
	check(h, "")

	// The must-not twins: globex's key on acme's host, and no key.
	if r := acme.GET(t, gateway.ReportPath, silotest.WithKey(globex.Key)); r.Status != 403 || strings.Contains(string(r.Body), `"tenant"`) {
		t.Errorf("another tenant's key: %d %s, want 403 and no report", r.Status, r.Body)
	}
	if r := acme.GET(t, gateway.ReportPath, silotest.WithKey("")); r.Status != 401 {
		t.Errorf("no key: %d, want 401", r.Status)
	}
	// globex's own key reads globex's report.
	if r := fetch(globex); r.Status != 200 {
		t.Errorf("globex's own report: %d", r.Status)
	} else if v, err := report.VerifyReport(r.Body); err != nil || v.Tenant != "globex" {
		t.Errorf("globex's own report: of %q, %v", v.Tenant, err)
	}

	// A new release reaches acme: the report is built again, of it.
	app := silotest.CopyExample(t)
	y, err := os.ReadFile(filepath.Join(app, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "silo.yaml"), []byte(strings.Replace(string(y), "timeout: 1s", "timeout: 3s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Platform().Deploy(context.Background(), app); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	b, err := p.Platform().Plane.Account(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if b.Release == a.Release {
		t.Fatalf("the deploy did not move acme to a new release")
	}
	check(fetch(acme), b.Release)
}

// TestOwnReportNamesOwnProblems: a problem the verifier finds about one
// account, with no access path (a recorded resource of a type it does not
// know), is on that account's signed report fetched through the gateway,
// and that account is not told the problems are elsewhere; the other
// tenant's report lists none and says they are elsewhere.
func TestOwnReportNamesOwnProblems(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme")
	globex := p.Tenant(t, "globex")
	odd, err := silo.NewResource(silo.ResourceType("peering"), "x", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Platform().Store.Update(ctx, func(tx store.Tx) error { return tx.PutResource("acme", odd) }); err != nil {
		t.Fatal(err)
	}
	own := func(tn *silotest.Tenant) (problems []string, summary string) {
		t.Helper()
		r := tn.GET(t, gateway.ReportPath)
		if r.Status != 200 {
			t.Fatalf("%s's report: %d %s", tn.ID, r.Status, r.Body)
		}
		if _, err := report.VerifyReport(r.Body); err != nil {
			t.Fatalf("%s's report does not verify: %v", tn.ID, err)
		}
		var rep struct {
			Report struct {
				Summary []string
				Proof   struct{ Counterexamples []string }
			}
		}
		if err := json.Unmarshal(r.Body, &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Report.Proof.Counterexamples, strings.Join(rep.Report.Summary, " ")
	}
	problems, summary := own(acme)
	if len(problems) != 1 || !strings.Contains(problems[0], "account acme holds resource peering/x") || strings.Contains(summary, "elsewhere") {
		t.Errorf("acme's report: problems %q, summary %q; want its own problem and no \"elsewhere\"", problems, summary)
	}
	problems, summary = own(globex)
	if len(problems) != 0 || !strings.Contains(summary, "problems elsewhere") {
		t.Errorf("globex's report: problems %q, summary %q; want none, elsewhere", problems, summary)
	}
}

// TestStorageLimit: a function's writes are held under the tenant's storage
// limit: under it they are stored; past it the write is refused, and the
// tenant's log says which limit and how to raise it. Raising the limit lets
// writes through again without a restart.
func TestStorageLimit(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme")
	pp := p.Platform()
	ctx := context.Background()
	if _, err := pp.SetLimitOverride(ctx, "acme", silo.Limits{Storage: 4 << 10}); err != nil {
		t.Fatal(err)
	}
	body := `{"severity":"high","app":"github","description":"` + strings.Repeat("x", 500) + `"}`
	stored, refused := 0, 0
	for range 20 {
		switch r := acme.POST(t, "/findings", body); r.Status {
		case 201:
			stored++
		case 503:
			refused++
		default:
			t.Fatalf("POST /findings: %d %s", r.Status, r.Body)
		}
	}
	// The must twin: writes under the limit are stored; the must-not: the
	// rest are refused.
	if stored == 0 || refused == 0 || stored+refused != 20 {
		t.Fatalf("stored %d, refused %d of 20 findings of ≈ 800 bytes under 4 KiB; want some of each", stored, refused)
	}
	var msg string
	for _, e := range p.Logs(t, "acme") {
		if b := string(mustJSON(t, e)); strings.Contains(b, "storage limit") {
			msg = b
		}
	}
	if msg == "" {
		for _, e := range p.Logs(t, "acme") {
			t.Logf("log: %s", mustJSON(t, e))
		}
	}
	if !strings.Contains(msg, "may hold 4 KiB per table") || !strings.Contains(msg, "silo limits set --storage") {
		t.Errorf("the tenant's log does not say which limit and how to raise it: %s", msg)
	}
	d, err := pp.Provider.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	used, err := pp.Stored.Stored(ctx, "acme", d, []string{"findings"}, nil)
	if err != nil || len(used) != 1 || used[0].Bytes > 4<<10 || used[0].Bytes == 0 {
		t.Errorf("stored bytes: %+v, %v; want findings under 4 KiB", used, err)
	}
	if _, err := pp.SetLimitOverride(ctx, "acme", silo.Limits{Storage: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(10e9) // past the tracker's limit refresh
	if r := acme.POST(t, "/findings", body); r.Status != 201 {
		t.Errorf("after raising the limit: %d %s", r.Status, r.Body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
