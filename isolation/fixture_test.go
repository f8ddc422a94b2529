package isolation_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/spec"
)

// testStack is the findings app: every account gets tables findings and
// scans, bucket uploads, config region, secret api-token, functions ingest
// and list, two routes, a nightly schedule of ingest; production shares catalog (table), rules (bucket)
// and version (config), and keeps internal to itself.
func testStack() *spec.Stack {
	return &spec.Stack{
		Version: 1, Name: "findings",
		Tables:  map[string]spec.Table{"findings": {}, "scans": {}},
		Buckets: map[string]spec.Bucket{"uploads": {}},
		Config:  map[string]string{"region": "eu"},
		Secrets: map[string]spec.Secret{"api-token": {}},
		Functions: map[string]spec.Function{
			"ingest": {Handler: "handle", Memory: 64 << 20, Timeout: time.Second, Concurrency: 4,
				Tables:  map[string]spec.Access{"findings": spec.AccessReadWrite, "scans": spec.AccessReadWrite},
				Buckets: map[string]spec.Access{"uploads": spec.AccessReadWrite},
				Config:  []string{"region"}, Secrets: []string{"api-token"}, Exports: []string{"catalog"}},
			"list": {Handler: "handle", Memory: 64 << 20, Timeout: time.Second, Concurrency: 4,
				Tables:  map[string]spec.Access{"findings": spec.AccessRead},
				Exports: []string{"catalog", "rules", "version"}},
		},
		Routes:    []spec.Route{{Method: "POST", Path: "/findings", Function: "ingest"}, {Method: "GET", Path: "/findings", Function: "list"}},
		Schedules: map[string]spec.Schedule{"nightly": {Function: "ingest", Cron: "0 3 * * *"}},
		Production: spec.Production{
			Tables:  map[string]spec.Table{"catalog": {}, "internal": {}},
			Buckets: map[string]spec.Bucket{"rules-files": {}},
			Config:  map[string]string{"version": "7"},
			Functions: map[string]spec.Function{
				"refresh": {Handler: "handle", Memory: 64 << 20, Timeout: time.Second, Concurrency: 1,
					Tables:  map[string]spec.Access{"catalog": spec.AccessReadWrite, "internal": spec.AccessReadWrite},
					Buckets: map[string]spec.Access{"rules-files": spec.AccessReadWrite}, Config: []string{"version"}},
			},
			Exports: map[string]spec.Export{"catalog": {Table: "catalog"}, "rules": {Bucket: "rules-files"}, "version": {Config: "version"}},
		},
	}
}

var testArtifacts = map[string]string{"ingest": "sha256:aa", "list": "sha256:bb", "production.refresh": "sha256:cc"}

func testRelease(t testing.TB) engine.Release {
	return engine.Release{ID: "r-test", Stack: testStack(), Artifacts: testArtifacts}
}

func tenantName(i int) silo.AccountID {
	switch i {
	case 0:
		return "acme"
	case 1:
		return "globex"
	}
	return silo.AccountID(fmt.Sprintf("t%05d", i))
}

func keyID(a silo.AccountID) string { return "sk_" + string(a) + "_0123456789abcdef" }

// testFleet returns a valid fleet: production plus n tenants (acme, globex,
// t00002, ...), each with one live key, every account held by the provider.
func testFleet(t testing.TB, n int) *isolation.Fleet {
	t.Helper()
	rel := testRelease(t)
	f := &isolation.Fleet{Operators: []isolation.Operator{isolation.ControlPlane()}, DataKeysKnown: true}
	add := func(a silo.Account) {
		rs, err := engine.Desired(rel.Stack, rel.Artifacts, a)
		if err != nil {
			t.Fatalf("desired %s: %v", a.ID, err)
		}
		a.Release = rel.ID
		f.Accounts = append(f.Accounts, isolation.AccountState{Account: a, Resources: rs, HasDataKey: true})
	}
	add(silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive, Name: "Production"})
	var tenantRes []silo.Resource
	for i := 0; i < n; i++ {
		id := tenantName(i)
		a := silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive, Name: string(id)}
		if tenantRes == nil {
			add(a)
			tenantRes = f.Accounts[len(f.Accounts)-1].Resources
		} else {
			// Same stack, no interpolation: every tenant holds the same resources.
			a.Release = rel.ID
			f.Accounts = append(f.Accounts, isolation.AccountState{Account: a, Resources: append([]silo.Resource(nil), tenantRes...), HasDataKey: true})
		}
		f.Keys = append(f.Keys, isolation.Key{ID: keyID(id), Account: id})
	}
	return f
}

// acct returns the state of account id in f.
func acct(t testing.TB, f *isolation.Fleet, id silo.AccountID) *isolation.AccountState {
	for i := range f.Accounts {
		if f.Accounts[i].Account.ID == id {
			return &f.Accounts[i]
		}
	}
	t.Fatalf("no account %s", id)
	return nil
}

// setResource replaces (or adds) a resource of an account, recomputing its hash.
func setResource(t testing.TB, f *isolation.Fleet, id silo.AccountID, typ silo.ResourceType, name string, specJSON []byte) {
	as := acct(t, f, id)
	r := silo.Resource{Type: typ, Name: name, Spec: specJSON}
	r.Hash = r.ComputeHash()
	for i := range as.Resources {
		if as.Resources[i].Type == typ && as.Resources[i].Name == name {
			as.Resources[i] = r
			return
		}
	}
	as.Resources = append(as.Resources, r)
}

// mutateFn edits a function's spec of an account.
func mutateFn(t testing.TB, f *isolation.Fleet, id silo.AccountID, fn string, edit func(*silo.FunctionSpec)) {
	as := acct(t, f, id)
	for _, r := range as.Resources {
		if r.Type == silo.TypeFunction && r.Name == fn {
			var fs silo.FunctionSpec
			if err := json.Unmarshal(r.Spec, &fs); err != nil {
				t.Fatal(err)
			}
			edit(&fs)
			b, _ := json.Marshal(fs)
			setResource(t, f, id, silo.TypeFunction, fn, b)
			return
		}
	}
	t.Fatalf("no function %s in %s", fn, id)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
