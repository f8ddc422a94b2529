// Package providertest is the conformance suite every silo provider passes:
// Run exercises accounts (with their provider references and asynchronous
// creation), Apply for each resource type, the specs a provider receives
// and returns, the manifest, the data plane, secrets and cross-account
// isolation through the provider.Provider contract alone, so that local
// and AWS behave the same.
//
// The cases live by subject: accounts.go (lifecycle, references, pending
// creation), apply.go (resources and their specs), data.go (the data
// plane and isolation), secrets.go (deleting and listing secrets).
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
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// Option changes what Run expects of a provider.
type Option func(*options)

type options struct {
	pending bool
}

// CreatesPending tells Run that the provider's first CreateAccount of an
// account returns provider.Pending (as the AWS provider does on an
// emulated organization whose creations outlast its wait), and that a
// later call finishes it. The suite then requires exactly that.
func CreatesPending() Option { return func(o *options) { o.pending = true } }

// Run runs the conformance suite. newProvider returns a fresh, empty
// provider for each subtest; it should register its own cleanup.
func Run(t *testing.T, newProvider func(t *testing.T) provider.Provider, opts ...Option) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	tests := []struct {
		name string
		fn   func(*testing.T, provider.Provider)
	}{
		{"Accounts", testAccounts},
		{"InvalidIDs", testInvalidIDs},
		{"Ref", testRef},
		{"PendingCreation", func(t *testing.T, p provider.Provider) { testPendingCreation(t, p, o.pending) }},
		{"ApplyEachType", testApplyEachType},
		{"SpecsRoundTrip", testSpecsRoundTrip},
		{"ApplyUnknownAccount", testApplyUnknownAccount},
		{"TableData", testTableData},
		{"Scan", testScan},
		{"Counters", testCounters},
		{"Blobs", testBlobs},
		{"BlobTraversal", testBlobTraversal},
		{"ConfigAndSecrets", func(t *testing.T, p provider.Provider) { testConfigAndSecrets(t, p) }},
		{"DeleteSecret", testDeleteSecret},
		{"SecretNames", testSecretNames},
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

// maxPending bounds how often the suite calls CreateAccount for one
// account that stays pending.
const maxPending = 20

// create creates a tenant account, calling CreateAccount again while the
// provider reports it pending, as the engine does.
func create(t testing.TB, p provider.Provider, id silo.AccountID) {
	t.Helper()
	createKind(t, p, id, silo.KindTenant)
}

// createKind is create for an account of any kind.
func createKind(t testing.TB, p provider.Provider, id silo.AccountID, kind silo.Kind) {
	t.Helper()
	for i := 1; ; i++ {
		err := p.CreateAccount(context.Background(), id, kind)
		if !provider.IsPending(err) {
			must(t, "CreateAccount("+string(id)+")", err)
			return
		}
		if i == maxPending {
			t.Fatalf("CreateAccount(%s) still pending after %d calls", id, i)
		}
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

var cmpSpec = cmpopts.EquateComparable()

func sortResources(rs []silo.Resource) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Key() < rs[j-1].Key(); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
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
