package isolation_test

import (
	"slices"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
)

func fnP(a silo.AccountID, fn string) isolation.Principal {
	return isolation.Principal{Kind: isolation.PrincipalFunction, Account: a, Name: fn}
}

func res(a silo.AccountID, t silo.ResourceType, name string) isolation.Resource {
	return isolation.Resource{Account: a, Type: t, Name: name}
}

func TestDecide(t *testing.T) {
	f := testFleet(t, 2)
	pol, err := isolation.PolicyFromFleet(f)
	if err != nil {
		t.Fatal(err)
	}
	op := isolation.Principal{Kind: isolation.PrincipalOperator, Name: "control-plane"}
	key := func(a, bound silo.AccountID) isolation.Principal {
		return isolation.Principal{Kind: isolation.PrincipalKey, Account: bound, Name: keyID(a)}
	}
	tests := []struct {
		name  string
		req   isolation.Request
		allow bool
		rule  string
	}{
		// Each "must not" next to its "must" twin.
		{"own table write with read-write grant", isolation.Request{fnP("acme", "ingest"), isolation.ActTableWrite, res("acme", silo.TypeTable, "findings")}, true, isolation.RuleGrant},
		{"own table write with read grant", isolation.Request{fnP("acme", "list"), isolation.ActTableWrite, res("acme", silo.TypeTable, "findings")}, false, isolation.RuleDefaultDeny},
		{"own table read with read grant", isolation.Request{fnP("acme", "list"), isolation.ActTableRead, res("acme", silo.TypeTable, "findings")}, true, isolation.RuleGrant},
		{"own table without grant", isolation.Request{fnP("acme", "list"), isolation.ActTableRead, res("acme", silo.TypeTable, "scans")}, false, isolation.RuleDefaultDeny},
		{"other tenant's table", isolation.Request{fnP("acme", "ingest"), isolation.ActTableRead, res("globex", silo.TypeTable, "findings")}, false, isolation.RuleI1},
		{"own blob write", isolation.Request{fnP("acme", "ingest"), isolation.ActBlobWrite, res("acme", silo.TypeBucket, "uploads")}, true, isolation.RuleGrant},
		{"other tenant's blob", isolation.Request{fnP("acme", "ingest"), isolation.ActBlobRead, res("globex", silo.TypeBucket, "uploads")}, false, isolation.RuleI1},
		{"own secret with grant", isolation.Request{fnP("acme", "ingest"), isolation.ActSecretRead, res("acme", silo.TypeSecret, "api-token")}, true, isolation.RuleGrant},
		{"own secret without grant", isolation.Request{fnP("acme", "list"), isolation.ActSecretRead, res("acme", silo.TypeSecret, "api-token")}, false, isolation.RuleDefaultDeny},
		{"other tenant's secret", isolation.Request{fnP("acme", "ingest"), isolation.ActSecretRead, res("globex", silo.TypeSecret, "api-token")}, false, isolation.RuleI1},
		{"own config", isolation.Request{fnP("acme", "ingest"), isolation.ActConfigRead, res("acme", silo.TypeConfig, "region")}, true, isolation.RuleGrant},
		{"listed export", isolation.Request{fnP("acme", "list"), isolation.ActExportRead, res(silo.ProductionID, silo.TypeExport, "rules")}, true, isolation.RuleExport},
		{"unlisted export", isolation.Request{fnP("acme", "ingest"), isolation.ActExportRead, res(silo.ProductionID, silo.TypeExport, "rules")}, false, isolation.RuleDefaultDeny},
		{"production table directly", isolation.Request{fnP("acme", "list"), isolation.ActTableRead, res(silo.ProductionID, silo.TypeTable, "catalog")}, false, isolation.RuleI1},
		{"tenant writes production", isolation.Request{fnP("acme", "ingest"), isolation.ActTableWrite, res(silo.ProductionID, silo.TypeTable, "catalog")}, false, isolation.RuleI1},
		{"production reads own table", isolation.Request{fnP(silo.ProductionID, "refresh"), isolation.ActTableRead, res(silo.ProductionID, silo.TypeTable, "catalog")}, true, isolation.RuleGrant},
		{"production reads tenant table", isolation.Request{fnP(silo.ProductionID, "refresh"), isolation.ActTableRead, res("acme", silo.TypeTable, "findings")}, false, isolation.RuleI2},
		{"production writes tenant bucket", isolation.Request{fnP(silo.ProductionID, "refresh"), isolation.ActBlobWrite, res("acme", silo.TypeBucket, "uploads")}, false, isolation.RuleI2},
		{"operator deploys", isolation.Request{op, isolation.ActControlDeploy, res("acme", "", "")}, true, isolation.RuleControl},
		{"operator reads a secret", isolation.Request{op, isolation.ActSecretRead, res("acme", silo.TypeSecret, "api-token")}, false, isolation.RuleI3},
		{"operator reads a table", isolation.Request{op, isolation.ActTableRead, res("acme", silo.TypeTable, "findings")}, false, isolation.RuleI3},
		{"operator control.secret.read", isolation.Request{op, "control.secret.read", res("acme", silo.TypeSecret, "api-token")}, false, isolation.RuleI3},
		{"own key invokes own route", isolation.Request{key("acme", "acme"), isolation.ActGatewayInvoke, res("acme", silo.TypeRoute, "GET /findings")}, true, isolation.RuleGrant},
		{"own key on another tenant", isolation.Request{key("acme", "acme"), isolation.ActGatewayInvoke, res("globex", silo.TypeRoute, "GET /findings")}, false, isolation.RuleI4},
		{"key reads a table", isolation.Request{key("acme", "acme"), isolation.ActTableRead, res("acme", silo.TypeTable, "findings")}, false, isolation.RuleI4},
		{"key with no account", isolation.Request{key("acme", ""), isolation.ActGatewayInvoke, res("", silo.TypeRoute, "GET /findings")}, false, isolation.RuleI4},
		{"unknown route", isolation.Request{key("acme", "acme"), isolation.ActGatewayInvoke, res("acme", silo.TypeRoute, "GET /admin")}, false, isolation.RuleDefaultDeny},
		{"wildcard table", isolation.Request{fnP("acme", "ingest"), isolation.ActTableRead, res("acme", silo.TypeTable, "*")}, false, isolation.RuleDefaultDeny},
		{"traversal table", isolation.Request{fnP("acme", "ingest"), isolation.ActTableRead, res("acme", silo.TypeTable, "../globex/findings")}, false, isolation.RuleDefaultDeny},
		{"unknown function", isolation.Request{fnP("acme", "ghost"), isolation.ActTableRead, res("acme", silo.TypeTable, "findings")}, false, isolation.RuleDefaultDeny},
		{"action/resource type mismatch", isolation.Request{fnP("acme", "ingest"), isolation.ActTableRead, res("acme", silo.TypeSecret, "api-token")}, false, isolation.RuleDefaultDeny},
		{"function invokes gateway", isolation.Request{fnP("acme", "ingest"), isolation.ActGatewayInvoke, res("acme", silo.TypeRoute, "GET /findings")}, false, isolation.RuleDefaultDeny},
		// Actions the policy does not know are denied, whoever asks; the twin
		// is "own table write with read-write grant" above.
		{"function, unknown action on a granted table", isolation.Request{fnP("acme", "ingest"), isolation.Action("table.drop"), res("acme", silo.TypeTable, "findings")}, false, isolation.RuleDefaultDeny},
		{"function, empty action", isolation.Request{fnP("acme", "ingest"), isolation.Action(""), res("acme", silo.TypeTable, "findings")}, false, isolation.RuleDefaultDeny},
		{"function, action in another case", isolation.Request{fnP("acme", "ingest"), isolation.Action("TABLE.WRITE"), res("acme", silo.TypeTable, "findings")}, false, isolation.RuleDefaultDeny},
		{"key, unknown action", isolation.Request{key("acme", "acme"), isolation.Action("gateway.admin"), res("acme", silo.TypeRoute, "GET /findings")}, false, isolation.RuleI4},
		{"operator, unknown data action", isolation.Request{op, isolation.Action("table.export"), res("acme", silo.TypeTable, "findings")}, false, isolation.RuleI3},
		{"unknown principal kind", isolation.Request{isolation.Principal{Kind: "robot", Account: "acme", Name: "ingest"}, isolation.ActTableRead, res("acme", silo.TypeTable, "findings")}, false, isolation.RuleDefaultDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pol.Decide(tt.req)
			if d.Allow != tt.allow || d.Rule != tt.rule {
				t.Fatalf("got allow=%v rule=%s (%v), want allow=%v rule=%s", d.Allow, d.Rule, d.Reasons, tt.allow, tt.rule)
			}
			if len(d.Reasons) == 0 || d.Reasons[0] == "" {
				t.Errorf("decision has no reason")
			}
		})
	}

	// A suspended account's keys get nothing; resumed, they work again.
	acct(t, f, "acme").Account.State = silo.StateSuspended
	pol2, _ := isolation.PolicyFromFleet(f)
	if d := pol2.Decide(isolation.Request{key("acme", "acme"), isolation.ActGatewayInvoke, res("acme", silo.TypeRoute, "GET /findings")}); d.Allow {
		t.Errorf("suspended account: got allow")
	}
	// A removed account's functions get nothing.
	pol.Remove("acme")
	if d := pol.Decide(isolation.Request{fnP("acme", "ingest"), isolation.ActTableWrite, res("acme", silo.TypeTable, "findings")}); d.Allow {
		t.Errorf("removed account: got allow")
	}
}

func TestDecideAllowReasonsNameTheGrant(t *testing.T) {
	pol, err := isolation.PolicyFromFleet(testFleet(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	d := pol.Decide(isolation.Request{fnP("acme", "list"), isolation.ActExportRead, res(silo.ProductionID, silo.TypeExport, "catalog")})
	if !d.Allow || len(d.Reasons) != 2 || d.Reasons[0] != "silo.yaml functions.list.exports.catalog" {
		t.Fatalf("got %+v, want the exports grant and the global rule", d)
	}
}

func TestCompileRefusesUnknownFields(t *testing.T) {
	a := silo.Account{ID: "acme", Kind: silo.KindTenant, State: silo.StateActive}
	bad := silo.Resource{Type: silo.TypeFunction, Name: "f", Spec: []byte(`{"artifact":"x","accounts":["*"]}`)}
	if _, err := isolation.Compile(a, []silo.Resource{bad}); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Fatalf("got %v, want invalid", err)
	}
	good := silo.Resource{Type: silo.TypeFunction, Name: "f", Spec: []byte(`{"artifact":"x"}`)}
	if _, err := isolation.Compile(a, []silo.Resource{good}); err != nil {
		t.Fatalf("twin: %v", err)
	}
}

// BenchmarkDecide decides with 10,000 compiled tenant policies (plus
// production) loaded, cycling through tenants and a mix of allowed and
// denied requests.
func BenchmarkDecide(b *testing.B) {
	f := testFleet(b, 10000)
	pol, err := isolation.PolicyFromFleet(f)
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]isolation.Request, 0, 4096)
	for i := 0; len(reqs) < cap(reqs); i++ {
		a := tenantName((i * 7919) % 10000)
		reqs = append(reqs,
			isolation.Request{fnP(a, "ingest"), isolation.ActTableWrite, res(a, silo.TypeTable, "findings")},
			isolation.Request{fnP(a, "list"), isolation.ActExportRead, res(silo.ProductionID, silo.TypeExport, "catalog")},
			isolation.Request{fnP(a, "list"), isolation.ActSecretRead, res(a, silo.TypeSecret, "api-token")},
			isolation.Request{fnP(a, "ingest"), isolation.ActTableRead, res(tenantName(i%10000+1), silo.TypeTable, "findings")},
		)
	}
	// baseline: one lookup in a map of 10,001 accounts, the floor any
	// per-account policy store pays; compare allow against it.
	b.Run("baseline-map-lookup", func(b *testing.B) {
		m := make(map[silo.AccountID]*isolation.AccountPolicy, len(f.Accounts))
		for _, as := range f.Accounts {
			m[as.Account.ID] = pol.Account(as.Account.ID)
		}
		i, hit := 0, 0
		for b.Loop() {
			if m[reqs[(i*4)%len(reqs)].Principal.Account] != nil {
				hit++
			}
			i++
		}
		if hit == 0 {
			b.Fatal("no hits")
		}
	})
	b.Run("allow", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := reqs[(i*4)%len(reqs)]
			if !pol.Decide(r).Allow {
				b.Fatal("denied")
			}
			i++
		}
	})
	b.Run("mix", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			pol.Decide(reqs[i%len(reqs)])
			i++
		}
	})
	// latency times each decision to report percentiles (p50 is the goal's
	// measure); the clock reads add ~40 ns to each sample.
	b.Run("latency", func(b *testing.B) {
		var samples []time.Duration
		i := 0
		for b.Loop() {
			r := reqs[i%len(reqs)]
			t0 := time.Now()
			pol.Decide(r)
			samples = append(samples, time.Since(t0))
			i++
		}
		slices.Sort(samples)
		b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				pol.Decide(reqs[(i*4+1)%len(reqs)])
				i++
			}
		})
	})
}
