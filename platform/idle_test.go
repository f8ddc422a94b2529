package platform_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/silotest"
)

// decisions asks the decision point what acme's functions and key may do:
// own table, another tenant's table, a production export, its own and
// another tenant's routes.
func decisions(pol *isolation.Policy) []isolation.Decision {
	fn := func(name string) isolation.Principal {
		return isolation.Principal{Kind: isolation.PrincipalFunction, Account: "acme", Name: name}
	}
	key := isolation.Principal{Kind: isolation.PrincipalKey, Account: "acme", Name: "k1"}
	reqs := []isolation.Request{
		{Principal: fn("list"), Action: isolation.ActTableRead, Resource: isolation.Resource{Account: "acme", Type: silo.TypeTable, Name: "findings"}},
		{Principal: fn("list"), Action: isolation.ActTableWrite, Resource: isolation.Resource{Account: "acme", Type: silo.TypeTable, Name: "findings"}},
		{Principal: fn("ingest"), Action: isolation.ActTableWrite, Resource: isolation.Resource{Account: "acme", Type: silo.TypeTable, Name: "findings"}},
		{Principal: fn("ingest"), Action: isolation.ActSecretRead, Resource: isolation.Resource{Account: "acme", Type: silo.TypeSecret, Name: "github-token"}},
		{Principal: fn("list"), Action: isolation.ActTableRead, Resource: isolation.Resource{Account: "globex", Type: silo.TypeTable, Name: "findings"}},
		{Principal: fn("ingest"), Action: isolation.ActExportRead, Resource: isolation.Resource{Account: silo.ProductionID, Type: silo.TypeExport, Name: "threat-intel"}},
		{Principal: fn("list"), Action: isolation.ActExportRead, Resource: isolation.Resource{Account: silo.ProductionID, Type: silo.TypeExport, Name: "threat-intel"}},
		{Principal: key, Action: isolation.ActGatewayInvoke, Resource: isolation.Resource{Account: "acme", Type: silo.TypeRoute, Name: "GET /findings"}},
		{Principal: key, Action: isolation.ActGatewayInvoke, Resource: isolation.Resource{Account: "globex", Type: silo.TypeRoute, Name: "GET /findings"}},
	}
	out := make([]isolation.Decision, len(reqs))
	for i, r := range reqs {
		out[i] = pol.Decide(r)
	}
	return out
}

// TestIdleTenantIsDroppedAndServedAgain serves two tenants, lets them go
// idle, and checks that the platform drops what it held for them (instances,
// the runtime's account state, cached views, compiled policies) but not
// before they are idle, nor while an invocation runs; and that a dropped
// tenant is then served as before, with the same authorization decisions.
func TestIdleTenantIsDroppedAndServedAgain(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	globex := p.Tenant(t, "globex")
	if resp := acme.POST(t, "/findings", `{"severity":"high","app":"github"}`); resp.Status != 201 {
		t.Fatalf("ingest: %s", resp)
	}
	first := acme.GET(t, "/findings")
	if first.Status != 200 {
		t.Fatalf("list: %s", first)
	}
	// globex runs no function: an authenticated request with no route.
	if resp := globex.GET(t, "/nothing-here"); resp.Status != http.StatusNotFound {
		t.Fatalf("globex with no route: %s, want 404", resp)
	}
	pp := p.Platform()
	before := decisions(pp.Policy)
	if !before[0].Allow || before[4].Allow || !before[5].Allow || !before[7].Allow || before[8].Allow {
		t.Fatalf("decisions before idle do not look right: %+v", before)
	}
	idle := pp.Config().Runtime.IdleTimeout
	if idle == 0 {
		idle = time.Minute
	}

	// Must not: nothing is dropped before the idle period.
	pp.SweepIdle(time.Now())
	if pp.Policy.Account("acme") == nil || pp.Policy.Account("globex") == nil || pp.Runtime.Stats().Accounts == 0 {
		t.Fatalf("dropped before the idle period: acme %v, globex %v, runtime %+v",
			pp.Policy.Account("acme") != nil, pp.Policy.Account("globex") != nil, pp.Runtime.Stats())
	}
	// Must not: an account with a running invocation keeps its policy.
	release, err := pp.Pin(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	pp.SweepIdle(time.Now().Add(2 * idle))
	if pp.Policy.Account("acme") == nil {
		t.Fatal("the policy of an account with a running invocation was dropped")
	}
	release()

	// Must: once idle, everything per account goes; production stays.
	pp.SweepIdle(time.Now().Add(2 * idle))
	if s := pp.Runtime.Stats(); s.Instances != 0 || s.Accounts != 0 {
		t.Errorf("runtime after idle: %+v, want no instance and no account state", s)
	}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if pp.Policy.Account(id) != nil {
			t.Errorf("the policy of %s survived the idle sweep", id)
		}
	}
	if pp.Policy.Account(silo.ProductionID) == nil {
		t.Error("the idle sweep dropped production's policy")
	}
	if views, policies := pp.Held(); views != 1 || policies != 1 {
		t.Errorf("after idle the directory holds %d views and %d policies, want production's only", views, policies)
	}

	// The twin: served again, same answer, same decisions.
	again := acme.GET(t, "/findings")
	if again.Status != 200 || string(again.Body) != string(first.Body) {
		t.Fatalf("after the drop: %s, want %s", again, first)
	}
	if diff := cmp.Diff(before, decisions(pp.Policy)); diff != "" {
		t.Errorf("decisions after reload (-before +after):\n%s", diff)
	}
	if resp := acme.POST(t, "/findings", `{"severity":"low","app":"slack"}`); resp.Status != 201 {
		t.Errorf("ingest after the drop (table write, secret, export): %s", resp)
	}
	// acme's key is still worthless against globex.
	if resp := p.Client("globex", acme.Key).GET(t, "/findings"); resp.Status != http.StatusForbidden {
		t.Errorf("acme's key against globex after the drop: %s, want 403", resp)
	}
	if m := p.Metrics("acme"); m.Requests != 4 {
		t.Errorf("gateway meters across the drop: %d requests, want 4", m.Requests)
	}
}
