package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
)

// startFleet serves a real store, provider and control plane over HTTP,
// with the Ops of the fleet endpoints but no environments (cmd/silo's
// TestCommandsAgainstAServer covers those on the platform), deployed once
// with one tenant, acme.
func startFleet(t *testing.T) (*server.Client, *logs.Store, string) {
	t.Helper()
	ctx := context.Background()
	f := start(t)
	lg, err := logs.Open(logs.Config{Dir: filepath.Join(f.dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	key, err := report.LoadOrCreateKey(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.SetOps(server.Ops{Provider: f.prov, LogDir: lg.Dir(), ReportKey: key})
	c := f.client
	v1 := upload(t, c, spec, "wasm v1")
	r, err := c.StartRollout(ctx, v1.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("first deploy: %s (%s)", r.State, r.Reason)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "acme", Params: map[string]string{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	return c, lg, f.url
}

func TestFleetEndpoints(t *testing.T) {
	c, lg, url := startFleet(t)
	ctx := context.Background()

	// plan: current release → nothing to do; a new release → acme changes.
	sum, err := c.Plan(ctx, "", "")
	if err != nil || sum.Changed != 0 || sum.Accounts < 1 {
		t.Fatalf("plan of the current release: %+v, %v", sum, err)
	}
	v2 := upload(t, c, spec, "wasm v2")
	sum, err = c.Plan(ctx, v2.ID, "acme")
	if err != nil || sum.Release != v2.ID || sum.Accounts != 1 || sum.Changed != 1 || sum.Plans[0].Account != "acme" {
		t.Fatalf("plan of v2 for acme: %+v, %v", sum, err)
	}
	if _, err := c.Plan(ctx, "r-none", ""); code(err) != silo.CodeNotFound {
		t.Errorf("plan of an unknown release: %v, want not_found", err)
	}
	if _, err := c.Plan(ctx, "", "nobody"); code(err) != silo.CodeNotFound || !strings.Contains(err.Error(), `no account "nobody"`) {
		t.Errorf("plan of an unknown account: %v, want not_found", err)
	}

	// drift: none, for one account and all.
	d, err := c.Drift(ctx, "acme")
	if err != nil || d.Accounts != 1 || len(d.Drift) != 0 {
		t.Errorf("drift of acme: %+v, %v", d, err)
	}
	if d, err = c.Drift(ctx, ""); err != nil || d.Accounts < 2 || len(d.Drift) != 0 {
		t.Errorf("drift of all: %+v, %v", d, err)
	}
	if _, err := c.Drift(ctx, "nobody"); code(err) != silo.CodeNotFound {
		t.Errorf("drift of an unknown account: %v, want not_found", err)
	}

	// verify: proved.
	res, err := c.Verify(ctx)
	if err != nil || res.Status != isolation.StatusProved || res.Accounts < 2 {
		t.Errorf("verify: %+v, %v", res, err)
	}

	// report: signed JSON that VerifyReport accepts, and HTML; not for production.
	b, err := c.Report(ctx, "acme", "json")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := report.VerifyReport(b); err != nil || r.Tenant != "acme" {
		t.Errorf("report of acme: %v %+v", err, r.Tenant)
	}
	if h, err := c.Report(ctx, "acme", "html"); err != nil || !strings.Contains(string(h), "<html") {
		t.Errorf("html report: %v", err)
	}
	if _, err := c.Report(ctx, "nobody", "json"); code(err) != silo.CodeNotFound {
		t.Errorf("report of an unknown account: %v, want not_found", err)
	}
	if _, err := c.Report(ctx, "acme", "pdf"); code(err) != silo.CodeInvalid {
		t.Errorf("report as pdf: %v, want invalid", err)
	}

	// logs: read with filters, and an unknown account.
	now := time.Now().UTC()
	for i, fn := range []string{"ingest", "ingest", "other"} {
		if err := lg.Append(logs.Entry{Time: now.Add(time.Duration(i-2) * time.Hour), Level: "INFO", Account: "acme", Function: fn, Msg: fn}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := c.Logs(ctx, "acme", logs.Query{Function: "ingest", Since: now.Add(-90 * time.Minute)})
	if err != nil || len(es) != 1 {
		t.Errorf("logs of ingest in the last 90m: %+v, %v", es, err)
	}
	if es, err = c.Logs(ctx, "acme", logs.Query{Last: 2}); err != nil || len(es) != 2 || es[1].Function != "other" {
		t.Errorf("last 2 log lines: %+v, %v", es, err)
	}
	if _, err := c.Logs(ctx, "nobody", logs.Query{}); code(err) != silo.CodeNotFound {
		t.Errorf("logs of an unknown account: %v, want not_found", err)
	}
	if q, err := server.LogQuery(map[string][]string{"since": {"10m"}, "limit": {"5"}}, now); err != nil || !q.Since.Equal(now.Add(-10*time.Minute)) || q.Last != 5 {
		t.Errorf("since=10m limit=5: %+v, %v", q, err)
	}
	if _, err := server.LogQuery(map[string][]string{"since": {"yesterday"}}, now); code(err) != silo.CodeInvalid {
		t.Errorf("since=yesterday: %v, want invalid", err)
	}

	// environments: this server has none wired → 503 saying so.
	if _, err := c.Envs(ctx); code(err) != silo.CodeUnavailable || !strings.Contains(err.Error(), "without environments") {
		t.Errorf("envs on a server without them: %v, want unavailable", err)
	}

	// Without a token: 401.
	resp, err := http.Get(url + "/v1/verify")
	if err != nil {
		t.Fatal(err)
	}
	var eb server.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != silo.CodeUnauthenticated {
		t.Errorf("verify without a token: %d %+v", resp.StatusCode, eb)
	}
}
