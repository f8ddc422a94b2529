package findings_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/silo-run/silo/examples/findings/internal/finding"
	"github.com/silo-run/silo/silotest"
)

type listBody struct {
	Findings []finding.Finding `json:"findings"`
	Count    int               `json:"count"`
	Plan     string            `json:"plan"`
}

// TestFindingsEndToEnd drives the example app over real HTTP, with one body
// on both platforms: "local" through silo's gateway and runtime, "aws" on
// an emulated AWS organization through each tenant's own API Gateway URL,
// Lambda and the silo Lambda host, with the tenant's data in DynamoDB,
// Secrets Manager and SSM of its own AWS account (skipped under -short).
// It checks ingest with enrichment from the production export, list with
// filters, get one, per-tenant secrets, validation, and isolation between
// two tenants with the "can" control next to every "cannot".
func TestFindingsEndToEnd(t *testing.T) {
	t.Run("local", func(t *testing.T) { findingsEndToEnd(t, silotest.New(t)) })
	t.Run("aws", func(t *testing.T) { findingsEndToEnd(t, silotest.NewAWS(t)) })
}

func findingsEndToEnd(t *testing.T, p *silotest.Platform) {
	p.Deploy(t, ".")
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"), silotest.Secret("github-token", "ghp_example"))
	globex := p.Tenant(t, "globex")

	// Ingest: stored, enriched from production's threat-intel, remediation
	// available because acme set its github-token.
	resp := acme.POST(t, "/findings", `{"severity":"high","app":"github","title":"token in logs","cve":"CVE-2024-3094"}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("POST /findings: got %s, want 201", resp)
	}
	var f finding.Finding
	resp.JSON(t, &f)
	if f.ID == "" || f.Severity != "high" || f.App != "github" || f.Status != "open" {
		t.Errorf("stored finding: got %+v", f)
	}
	if len(f.Intel) != 2 || f.Intel[0].Key != "app:github" || f.Intel[1].Key != "cve:CVE-2024-3094" || !f.Intel[1].KnownExploited {
		t.Errorf("enrichment: got %+v, want app:github and cve:CVE-2024-3094 (known exploited)", f.Intel)
	}
	if f.Remediation != "available" {
		t.Errorf("acme has a github-token: got remediation %q, want available", f.Remediation)
	}
	if f.RequestID != resp.RequestID {
		t.Errorf("the function saw request ID %q, the gateway sent %q", f.RequestID, resp.RequestID)
	}
	acme.POST(t, "/findings", `{"severity":"low","app":"slack"}`)
	acme.POST(t, "/findings", `{"severity":"high","app":"jenkins"}`)

	// globex has no github-token: remediation is manual.
	resp = globex.POST(t, "/findings", `{"severity":"critical","app":"github"}`)
	var g finding.Finding
	resp.JSON(t, &g)
	if resp.Status != http.StatusCreated || g.Remediation != "manual" {
		t.Errorf("globex ingest: got %s, want 201 with remediation manual", resp)
	}

	tests := []struct {
		name  string
		path  string
		count int
	}{
		{"all", "/findings", 3},
		{"severity", "/findings?severity=high", 2},
		{"severity and app", "/findings?severity=high&app=github", 1},
		{"no match", "/findings?app=nothing", 0},
	}
	for _, tc := range tests {
		t.Run("list/"+tc.name, func(t *testing.T) {
			resp := acme.GET(t, tc.path)
			var lb listBody
			resp.JSON(t, &lb)
			if resp.Status != 200 || lb.Count != tc.count || len(lb.Findings) != tc.count {
				t.Errorf("GET %s: got %s, want %d findings", tc.path, resp, tc.count)
			}
			if lb.Plan != "pro" {
				t.Errorf("GET %s: plan %q, want pro (from acme's parameters)", tc.path, lb.Plan)
			}
		})
	}

	// Get one, by Host and, through silo's gateway, by /t/acme/ path (on
	// AWS each tenant has its own API, which has no such path).
	addressing := [][]silotest.RequestOption{nil}
	if !p.OnAWS() {
		addressing = append(addressing, []silotest.RequestOption{silotest.ByPath()})
	}
	for _, opts := range addressing {
		resp = acme.GET(t, "/findings/"+f.ID, opts...)
		var got finding.Finding
		resp.JSON(t, &got)
		if resp.Status != 200 || got.ID != f.ID {
			t.Errorf("GET /findings/%s: got %s, want the finding", f.ID, resp)
		}
	}
	if resp := acme.GET(t, "/findings/f-missing"); resp.Status != 404 {
		t.Errorf("GET a missing finding: got %s, want 404", resp)
	}

	// Validation: every problem at once, 400.
	resp = acme.POST(t, "/findings", `{"severity":"urgent","cve":"nope"}`)
	if resp.Status != 400 || !strings.Contains(string(resp.Body), "severity") || !strings.Contains(string(resp.Body), "cve") {
		t.Errorf("invalid finding: got %s, want 400 naming severity and cve", resp)
	}

	// Isolation: globex sees only its own finding; acme's finding ID is
	// unknown to globex; globex's key is refused on acme while acme's own
	// key works (200). silo's gateway knows every key and answers 403 (the
	// key belongs to another tenant); on AWS acme's API checks keys against
	// the records in acme's own AWS account, which holds none of globex's
	// keys, so it answers 401 as to any unknown key.
	foreignKey := http.StatusForbidden
	if p.OnAWS() {
		foreignKey = http.StatusUnauthorized
	}
	var lb listBody
	globex.GET(t, "/findings").JSON(t, &lb)
	if lb.Count != 1 || lb.Findings[0].App != "github" || lb.Findings[0].Severity != "critical" {
		t.Errorf("globex lists %+v, want only its own finding", lb.Findings)
	}
	if resp := globex.GET(t, "/findings/"+f.ID); resp.Status != 404 {
		t.Errorf("globex GET acme's finding: got %s, want 404", resp)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(globex.Key)); resp.Status != foreignKey {
		t.Errorf("globex's key on acme: got %s, want %d", resp, foreignKey)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey("")); resp.Status != http.StatusUnauthorized {
		t.Errorf("no key on acme: got %s, want 401", resp)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != 200 {
		t.Errorf("acme's own key on acme (control): got %s, want 200", resp)
	}

	// Smoke (the rollout gate) passes.
	if resp := acme.GET(t, "/health"); resp.Status != 200 {
		t.Errorf("GET /health: got %s, want 200", resp)
	}

	// Logs carry the request ID the tenant saw; the platform counts acme's
	// traffic (the gateway's meter, or on AWS the Lambda host's counters).
	var found bool
	for _, e := range p.Logs(t, "acme") {
		if e.RequestID == f.RequestID && e.Function == "ingest" && e.Msg == "finding stored" {
			found = true
		}
		if e.Account != "acme" {
			t.Errorf("acme's log holds a line of %s", e.Account)
		}
	}
	if !found {
		t.Errorf("acme's log has no \"finding stored\" line with request ID %s: %+v", f.RequestID, p.Logs(t, "acme"))
	}
	if n := p.Requests(t, "acme"); n < 10 {
		t.Errorf("acme served %d requests, want at least 10", n)
	}
}
