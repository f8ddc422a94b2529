package isolation_test

import (
	"context"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/spec"
)

func TestVerifyValidFleetIsProved(t *testing.T) {
	f := testFleet(t, 5)
	r := isolation.Verify(context.Background(), f)
	if r.Status != isolation.StatusProved {
		t.Fatalf("got status %s, want proved; counterexamples:\n%v", r.Status, r.Counterexamples)
	}
	if r.Accounts != 6 || r.Edges == 0 || r.Principals == 0 {
		t.Errorf("got %+v, want 6 accounts and a non-empty graph", r)
	}
	// Twin of the I5 completeness rule: without provider facts it is not proved.
	f.DataKeysKnown = false
	if r := isolation.Verify(context.Background(), f); r.Status != isolation.StatusIncomplete {
		t.Errorf("without data keys: got %s, want incomplete", r.Status)
	}
}

// mutation is one over-broad grant injected into a valid fleet.
type mutation struct {
	name string
	inv  string // the invariant the counterexample must name
	do   func(t *testing.T, f *isolation.Fleet)
}

func mutations() []mutation {
	return []mutation{
		{"wildcard principal: key bound to every account", "I4", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: "sk_acme_ffffffffffffffff", Account: "*"})
		}},
		{"wildcard principal: function named *", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeFunction, "*", mustJSON(silo.FunctionSpec{Artifact: "x", Tables: map[string]string{"findings": "read"}}))
		}},
		{"production granted into a tenant table", "I2", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, silo.ProductionID, "refresh", func(fs *silo.FunctionSpec) { fs.Tables["acme/findings"] = "read" })
		}},
		{"production function granted a tenant bucket", "I2", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, silo.ProductionID, "refresh", func(fs *silo.FunctionSpec) { fs.Buckets["acme:uploads"] = "read-write" })
		}},
		{"production function granted a tenant secret", "I2", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, silo.ProductionID, "refresh", func(fs *silo.FunctionSpec) { fs.Secrets = append(fs.Secrets, "acme/api-token") })
		}},
		{"export made writable (mode field)", "I2", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, silo.ProductionID, silo.TypeExport, "catalog", []byte(`{"table":"catalog","mode":"read-write"}`))
		}},
		{"tenant granted write on a production table", "I2", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "ingest", func(fs *silo.FunctionSpec) { fs.Tables["production/catalog"] = "read-write" })
		}},
		{"tenant granted a non-exported production table", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["production/internal"] = "read" })
		}},
		{"key bound to two tenants", "I4", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: keyID("acme"), Account: "globex"})
		}},
		{"key naming one tenant bound to another", "I4", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: "sk_acme_1111111111111111", Account: "globex"})
		}},
		{"key with empty account", "I4", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: "sk__2222222222222222", Account: ""})
		}},
		{"key bound to an account that does not exist", "I4", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: "sk_ghost_3333333333333333", Account: "ghost"})
		}},
		{"key bound to production", "I2", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: "sk_production_4444444444444444", Account: silo.ProductionID})
		}},
		{"function granted another account's table", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["globex/findings"] = "read" })
		}},
		{"grant to a non-existent secret", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Secrets = []string{"nope"} })
		}},
		{"grant to another account's secret", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Secrets = []string{"globex:api-token"} })
		}},
		{"grant to another account's config", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Config = []string{"globex/region"} })
		}},
		{"control plane with secret.read", "I3", func(t *testing.T, f *isolation.Fleet) {
			f.Operators[0].Actions = append(f.Operators[0].Actions, isolation.ActSecretRead)
		}},
		{"control plane with table.read", "I3", func(t *testing.T, f *isolation.Fleet) {
			f.Operators[0].Actions = append(f.Operators[0].Actions, isolation.ActTableRead)
		}},
		{"export pointing at a tenant resource", "I2", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, silo.ProductionID, silo.TypeExport, "catalog", mustJSON(silo.ExportSpec{Table: "acme/findings"}))
		}},
		{"export pointing at two resources", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, silo.ProductionID, silo.TypeExport, "catalog", mustJSON(silo.ExportSpec{Table: "catalog", Bucket: "rules-files"}))
		}},
		{"export pointing at a production secret", "I2", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, silo.ProductionID, silo.TypeExport, "catalog", []byte(`{"secret":"signing-key"}`))
		}},
		{"grant of an export production does not have", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Exports = append(fs.Exports, "internal") })
		}},
		{"tenant account holds an export", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeExport, "leak", mustJSON(silo.ExportSpec{Table: "findings"}))
		}},
		{"route to a function of another account", "I4", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeRoute, "GET /findings", mustJSON(silo.RouteSpec{Method: "GET", Path: "/findings", Function: "globex/list"}))
		}},
		{"route to an undeclared function", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeRoute, "GET /x", mustJSON(silo.RouteSpec{Method: "GET", Path: "/x", Function: "ghost"}))
		}},
		{"route into production", "I2", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, silo.ProductionID, silo.TypeRoute, "GET /admin", mustJSON(silo.RouteSpec{Method: "GET", Path: "/admin", Function: "refresh"}))
		}},
		{"deleted account with a live key", "I5", func(t *testing.T, f *isolation.Fleet) {
			acct(t, f, "globex").Account.State = silo.StateDeleted
			acct(t, f, "globex").HasDataKey = false
		}},
		{"deleted account still holds its data key", "I5", func(t *testing.T, f *isolation.Fleet) {
			acct(t, f, "globex").Account.State = silo.StateDeleted
			for i := range f.Keys {
				if f.Keys[i].Account == "globex" {
					f.Keys[i].Revoked = true
				}
			}
		}},
		{"wildcard table name", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["*"] = "read" })
		}},
		{"wildcard bucket name pattern", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "ingest", func(fs *silo.FunctionSpec) { fs.Buckets["upload?"] = "read" })
		}},
		{"path traversal ../acme/findings", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "globex", "list", func(fs *silo.FunctionSpec) { fs.Tables["../acme/findings"] = "read" })
		}},
		{"percent-encoded traversal", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "globex", "list", func(fs *silo.FunctionSpec) { fs.Tables["%2e%2e%2facme%2ffindings"] = "read" })
		}},
		{"backslash traversal", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "globex", "list", func(fs *silo.FunctionSpec) { fs.Tables[`..\acme\findings`] = "read" })
		}},
		{"traversal into own account", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["./findings/../findings"] = "read" })
		}},
		{"NUL in a grant name", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["findings\x00"] = "read" })
		}},
		{"unknown access level", "I1", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["findings"] = "admin" })
		}},
		{"unknown field in a function spec", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeFunction, "list", []byte(`{"artifact":"x","tables":{"findings":"read"},"accounts":["*"]}`))
		}},
		{"spec edited behind the recorded hash", "I1", func(t *testing.T, f *isolation.Fleet) {
			as := acct(t, f, "globex")
			for i, r := range as.Resources {
				if r.Type == silo.TypeFunction && r.Name == "list" {
					as.Resources[i].Spec = []byte(`{"artifact":"x","tables":{"acme/findings":"read"}}`) // Hash left as it was
				}
			}
		}},
		{"second account of kind production", "I2", func(t *testing.T, f *isolation.Fleet) {
			acct(t, f, "globex").Account.Kind = silo.KindProduction
		}},
		{"resource of unknown type", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.ResourceType("peering"), "globex", []byte(`{}`))
		}},
		{"schedule calling another account's function", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeSchedule, "nightly", mustJSON(silo.ScheduleSpec{Function: "globex/ingest", Cron: "0 3 * * *"}))
		}},
		{"schedule calling a wildcard", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeSchedule, "nightly", mustJSON(silo.ScheduleSpec{Function: "*", Every: "1m0s"}))
		}},
		{"schedule calling a missing function", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeSchedule, "nightly", mustJSON(silo.ScheduleSpec{Function: "purge", Cron: "0 3 * * *"}))
		}},
		{"unknown field in a schedule spec", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeSchedule, "nightly", []byte(`{"function":"ingest","cron":"0 3 * * *","account":"globex"}`))
		}},
		{"table declared with a path name", "I1", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.TypeTable, "../globex/findings", []byte(`{}`))
		}},
		{"duplicate account record", "I4", func(t *testing.T, f *isolation.Fleet) {
			dup := *acct(t, f, "acme")
			f.Accounts = append(f.Accounts, dup)
		}},
	}
}

// TestVerifyCatchesEveryMutation injects each over-broad grant into a valid
// fleet and checks that the verifier reports it, naming the right invariant
// with a path whose every edge has an origin; the unmutated twin is proved.
func TestVerifyCatchesEveryMutation(t *testing.T) {
	ctx := context.Background()
	base := testFleet(t, 3)
	if r := isolation.Verify(ctx, base); r.Status != isolation.StatusProved {
		t.Fatalf("twin: got %s, want proved:\n%v", r.Status, r.Counterexamples)
	}
	ms := mutations()
	if len(ms) < 20 {
		t.Fatalf("only %d mutation kinds", len(ms))
	}
	caught := 0
	for _, m := range ms {
		t.Run(m.name, func(t *testing.T) {
			f := base.Clone()
			m.do(t, f)
			r := isolation.Verify(ctx, f)
			if r.Status != isolation.StatusViolated {
				t.Fatalf("got status %s, want counterexamples", r.Status)
			}
			found := false
			for _, c := range r.Counterexamples {
				if c.Invariant == m.inv {
					found = true
				}
				for _, e := range c.Path {
					if e.Origin == "" {
						t.Errorf("edge %v has no origin", e)
					}
				}
			}
			if !found {
				t.Errorf("no counterexample names %s; got:\n%v", m.inv, r.Counterexamples)
			}
			caught++
			t.Logf("%d counterexample(s), first: %s", r.Violations, r.Counterexamples[0])
		})
	}
	// The base fleet was not touched by the mutations (Clone is deep enough).
	if r := isolation.Verify(ctx, base); r.Status != isolation.StatusProved {
		t.Fatalf("twin after mutations: got %s, want proved", r.Status)
	}
	t.Logf("%d mutation kinds, %d caught; twin proved", len(ms), caught)
}

func TestCounterexampleShowsPathAndOrigins(t *testing.T) {
	f := testFleet(t, 2)
	mutateFn(t, f, "acme", "list", func(fs *silo.FunctionSpec) { fs.Tables["globex/findings"] = "read" })
	r := isolation.Verify(context.Background(), f)
	if len(r.Counterexamples) != 1 {
		t.Fatalf("got %d counterexamples, want 1: %v", len(r.Counterexamples), r.Counterexamples)
	}
	s := r.Counterexamples[0].String()
	for _, want := range []string{"api key sk_acme_0123456789abcdef bound to acme", "silo.yaml routes[GET /findings]", "silo.yaml functions.list.tables.globex/findings", `table "findings" of globex`} {
		if !strings.Contains(s, want) {
			t.Errorf("counterexample lacks %q:\n%s", want, s)
		}
	}
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	f := testFleet(t, 3)
	rel := testRelease(t)
	if r, err := isolation.Gate(ctx, rel, f); err != nil || !r.Proved() {
		t.Fatalf("clean release: got %v %v, want proved", r.Status, err)
	}
	bad := testStack()
	fn := bad.Functions["list"]
	fn.Tables = map[string]spec.Access{"findings": spec.AccessRead, "globex/findings": spec.AccessRead}
	bad.Functions["list"] = fn
	r, err := isolation.Gate(ctx, engine.Release{ID: "r-bad", Stack: bad, Artifacts: testArtifacts}, f)
	if silo.ErrorCode(err) != silo.CodeFailedCheck || r.Proved() {
		t.Fatalf("cross-account release: got %v %v, want failed_check", r.Status, err)
	}
	t.Log(silo.UserMessage(err))
	// The fleet itself was not changed by the gate.
	if r := isolation.Verify(ctx, f); !r.Proved() {
		t.Fatalf("fleet after gate: %s", r.Status)
	}
}

func TestBuildGraph(t *testing.T) {
	f := testFleet(t, 2)
	edges := isolation.BuildGraph(context.Background(), f)
	r := isolation.Verify(context.Background(), f)
	if len(edges) != r.Edges {
		t.Fatalf("got %d edges, Verify counted %d", len(edges), r.Edges)
	}
	for _, e := range edges {
		if e.From.Kind == isolation.NodeFunction && e.From.Account != e.To.Account && !(e.To.Account == silo.ProductionID && e.Action == isolation.ActExportRead) {
			t.Errorf("cross-account edge in a proved fleet: %v", e)
		}
	}
}

func BenchmarkVerify10k(b *testing.B) {
	f := testFleet(b, 10000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var r isolation.Result
	for b.Loop() {
		if r = isolation.Verify(ctx, f); !r.Proved() {
			b.Fatal(r.Status)
		}
	}
	b.ReportMetric(float64(r.Edges), "edges")
}

func BenchmarkGate10k(b *testing.B) {
	f := testFleet(b, 10000)
	rel := testRelease(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := isolation.Gate(ctx, rel, f); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGateStandsInForNewAccounts: a fleet with no tenant yet cannot let a
// release become current whose per-account part crosses accounts, since
// accounts are then created on it without passing the gate again. Must
// not: the cross-account release is refused with only production in the
// fleet (and with no account at all), naming the stand-in; must: the
// clean release passes, and the stand-in is not added to the fleet.
func TestGateStandsInForNewAccounts(t *testing.T) {
	ctx := context.Background()
	onlyProd := testFleet(t, 0)
	if len(onlyProd.Accounts) != 1 {
		t.Fatalf("fixture: got %d accounts, want production only", len(onlyProd.Accounts))
	}
	bad := testStack()
	sch := bad.Schedules["nightly"]
	sch.Function = "acme/ingest"
	bad.Schedules["nightly"] = sch
	badRel := engine.Release{ID: "r-bad", Stack: bad, Artifacts: testArtifacts}
	for _, tc := range []struct {
		name  string
		fleet *isolation.Fleet
	}{
		{"production only", onlyProd},
		{"no account", &isolation.Fleet{Operators: []isolation.Operator{isolation.ControlPlane()}, DataKeysKnown: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := isolation.Gate(ctx, badRel, tc.fleet)
			if silo.ErrorCode(err) != silo.CodeFailedCheck || r.Proved() {
				t.Fatalf("cross-account schedule: got %v %v, want failed_check", r.Status, err)
			}
			if msg := silo.UserMessage(err); !strings.Contains(msg, string(isolation.StandIn)) || !strings.Contains(msg, "every account created on this release") {
				t.Errorf("refusal does not name the stand-in: %s", msg)
			}
			if r, err := isolation.Gate(ctx, testRelease(t), tc.fleet); err != nil || !r.Proved() {
				t.Fatalf("clean release: got %v %v, want proved", r.Status, err)
			}
		})
	}
	if len(onlyProd.Accounts) != 1 {
		t.Fatalf("the gate changed the fleet: %d accounts", len(onlyProd.Accounts))
	}
	// An account once recorded as new-account does not clash with the stand-in.
	taken := testFleet(t, 0)
	taken.Accounts = append(taken.Accounts, isolation.AccountState{Account: silo.Account{ID: isolation.StandIn, Kind: silo.KindTenant, State: silo.StateDeleted}})
	if r, err := isolation.Gate(ctx, testRelease(t), taken); err != nil || !r.Proved() {
		t.Fatalf("clean release beside a deleted %s: got %v %v (%v), want proved", isolation.StandIn, r.Status, err, r.Counterexamples)
	}
}

// TestScheduleEdge: a schedule is an edge of the access graph, from the
// schedule to the function it calls in its own account.
func TestScheduleEdge(t *testing.T) {
	f := testFleet(t, 1)
	want := isolation.Edge{From: isolation.Node{Account: "acme", Kind: isolation.NodeSchedule, Name: "nightly"}, To: isolation.Node{Account: "acme", Kind: isolation.NodeFunction, Name: "ingest"}, Action: "call", Origin: "silo.yaml schedules.nightly.function"}
	for _, e := range isolation.BuildGraph(context.Background(), f) {
		if e == want {
			return
		}
	}
	t.Fatalf("no edge %v", want)
}

// TestInvolvingNamesEveryAccount: a counterexample involves every account
// it names, with a path or without one, and no other. Must: the account a
// pathless problem is about, and both accounts of a key that names one and
// is bound to another; must not: a third account.
func TestInvolvingNamesEveryAccount(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		mutate  func(*testing.T, *isolation.Fleet)
		in, out []silo.AccountID
	}{
		{"resource of unknown type (no path)", func(t *testing.T, f *isolation.Fleet) {
			setResource(t, f, "acme", silo.ResourceType("peering"), "x", []byte(`{}`))
		}, []silo.AccountID{"acme"}, []silo.AccountID{"globex", "t00002"}},
		{"deleted account with a data key (no path)", func(t *testing.T, f *isolation.Fleet) {
			acct(t, f, "globex").Account.State = silo.StateDeleted
			f.Keys = f.Keys[:1] // acme's only: globex's key is gone
		}, []silo.AccountID{"globex"}, []silo.AccountID{"acme", "t00002"}},
		{"key naming one account, bound to another", func(t *testing.T, f *isolation.Fleet) {
			f.Keys = append(f.Keys, isolation.Key{ID: "sk_acme_ffffffffffffffff", Account: "globex"})
		}, []silo.AccountID{"acme", "globex"}, []silo.AccountID{"t00002"}},
		{"cross-account grant (path)", func(t *testing.T, f *isolation.Fleet) {
			mutateFn(t, f, "globex", "list", func(fs *silo.FunctionSpec) { fs.Tables["acme/findings"] = "read" })
		}, []silo.AccountID{"acme", "globex"}, []silo.AccountID{"t00002"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFleet(t, 3)
			tc.mutate(t, f)
			r := isolation.Verify(ctx, f)
			if r.Violations != 1 {
				t.Fatalf("got %d violations, want 1: %v", r.Violations, r.Counterexamples)
			}
			for _, id := range tc.in {
				if got := r.Involving(id); len(got) != 1 {
					t.Errorf("Involving(%s): got %d, want the counterexample %q", id, len(got), r.Counterexamples[0].Problem)
				}
			}
			for _, id := range tc.out {
				if got := r.Involving(id); len(got) != 0 {
					t.Errorf("Involving(%s): got %v, want none", id, got)
				}
			}
		})
	}
}
