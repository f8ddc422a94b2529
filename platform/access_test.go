package platform_test

import (
	"context"
	"strings"
	"testing"

	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/silotest"
)

// TestAccessLogInAccountLog: a tenant's requests, failed ones included,
// are in its own log (what silo logs shows) with the request ID the client
// got and the release that served them; another tenant's log has none of
// them.
func TestAccessLogInAccountLog(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme")
	p.Tenant(t, "globex")
	ok := acme.GET(t, "/findings")
	missing := acme.GET(t, "/no-such-route")
	if ok.Status != 200 || missing.Status != 404 {
		t.Fatalf("got %d and %d, want 200 and 404", ok.Status, missing.Status)
	}
	find := func(rid string) (logs.Entry, bool) {
		for _, e := range p.Logs(t, "acme") {
			if e.RequestID == rid && e.Attrs["source"] == "gateway" {
				return e, true
			}
		}
		return logs.Entry{}, false
	}
	// The gateway writes its access log in batches; reading the log writes
	// the pending ones first, so there is no waiting here.
	for _, tc := range []struct {
		resp   *silotest.Response
		msg    string
		level  string
		status string
	}{
		{ok, "GET /findings 200", "INFO", "200"},
		{missing, "GET /no-such-route 404", "WARN", "404"},
	} {
		e, found := find(tc.resp.RequestID)
		if !found {
			t.Fatalf("no access line for request %s in acme's log: %+v", tc.resp.RequestID, p.Logs(t, "acme"))
		}
		if e.Msg != tc.msg || e.Level != tc.level || e.Attrs["status"] != tc.status || e.Attrs["release"] == "" {
			t.Errorf("got %+v, want %q at %s with status %s and a release", e, tc.msg, tc.level, tc.status)
		}
	}
	// The API's read (what silo logs shows) has the access line of a
	// request that has just finished, too.
	again := acme.GET(t, "/no-such-route")
	es, err := p.Platform().ReadLogs(context.Background(), "acme", logs.Query{RequestID: again.RequestID})
	if err != nil || len(es) != 1 || es[0].Attrs["source"] != "gateway" {
		t.Errorf("ReadLogs right after the request: %+v, %v; want its access line", es, err)
	}
	for _, e := range p.Logs(t, "globex") {
		if strings.Contains(e.RequestID, ok.RequestID) || strings.Contains(e.RequestID, missing.RequestID) {
			t.Errorf("globex's log holds acme's request: %+v", e)
		}
	}
}
