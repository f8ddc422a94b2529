package platform_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
)

const app = "../examples/findings"

// TestEnvironmentExpiresAndIsTornDown creates a test environment with a TTL,
// uses it, advances the fake clock to just before its expiry (it must still
// work: the "can" twin) and past it, and checks that the reaper tore it down
// and that the provider holds nothing of it, while a tenant is untouched.
func TestEnvironmentExpiresAndIsTornDown(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	env := p.Env(t, "e2e-417", platform.EnvTest, 2*time.Hour, silotest.Seed(filepath.Join(app, "fixtures", "demo")))

	resp := env.GET(t, "/findings?severity=critical")
	if resp.Status != 200 || !strings.Contains(string(resp.Body), "f-demo-0001") {
		t.Fatalf("seeded environment: got %s, want the critical demo finding", resp)
	}
	if resp := env.POST(t, "/findings", `{"severity":"low"}`); resp.Status != 201 {
		t.Fatalf("environment ingest: got %s, want 201", resp)
	}
	pp := p.Platform()
	ctx := context.Background()
	accountDir := localtest.AccountDir(pp.Config().DataDir, "e2e-417")
	if _, err := os.Stat(accountDir); err != nil {
		t.Fatalf("the environment's provider directory: %v", err)
	}

	if gone := p.Clock().Advance(2*time.Hour - time.Minute); len(gone) != 0 {
		t.Fatalf("before expiry the reaper tore down %v, want nothing", gone)
	}
	if resp := env.GET(t, "/findings"); resp.Status != 200 {
		t.Fatalf("a minute before expiry: got %s, want 200", resp)
	}

	gone := p.Clock().Advance(time.Minute)
	if len(gone) != 1 || gone[0] != "e2e-417" {
		t.Fatalf("at expiry the reaper tore down %v, want [e2e-417]", gone)
	}
	if err := pp.VerifyGone(ctx, "e2e-417"); err != nil {
		t.Fatal(err)
	}
	// A log file left on disk fails the check even though its lines,
	// sealed under the destroyed key, read as nothing.
	leftover := logs.Path(pp.Logs.Dir(), "e2e-417")
	if err := os.WriteFile(leftover, []byte("~1 old sealed-line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pp.VerifyGone(ctx, "e2e-417"); err == nil || !strings.Contains(err.Error(), "log file e2e-417.log is still on disk") {
		t.Fatalf("VerifyGone with a log file left: %v, want it named", err)
	}
	os.Remove(leftover)
	ids, err := pp.Provider.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == "e2e-417" {
			t.Errorf("the provider still lists e2e-417: %v", ids)
		}
	}
	if _, err := os.Stat(accountDir); !os.IsNotExist(err) {
		t.Errorf("the environment's directory survived teardown: %v", err)
	}
	if _, err := pp.Provider.KeyInfo(ctx, "e2e-417"); !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("the environment's data key survived teardown: %v", err)
	}
	if resp := env.GET(t, "/findings"); resp.Status != http.StatusUnauthorized && resp.Status != http.StatusNotFound {
		t.Errorf("after teardown: got %s, want 401 or 404", resp)
	}
	a, err := pp.Plane.Account(ctx, "e2e-417")
	if err != nil || a.State != silo.StateDeleted {
		t.Errorf("registry after teardown: got %+v, %v, want state deleted", a, err)
	}
	// The tenant is untouched.
	if resp := acme.GET(t, "/findings"); resp.Status != 200 {
		t.Errorf("acme after the environment's teardown: got %s, want 200", resp)
	}
}

func TestCreateEnvRefusesBadInput(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	ctx := context.Background()
	deeper := t.TempDir() // the layout one level deeper: nothing silo loads
	if err := os.MkdirAll(filepath.Join(deeper, "demo", "tables"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deeper, "demo", "tables", "findings.json"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  platform.EnvRequest
		code silo.Code
	}{
		{"no ttl", platform.EnvRequest{Name: "e1", Purpose: "test"}, silo.CodeInvalid},
		{"bad purpose", platform.EnvRequest{Name: "e1", Purpose: "prod", TTL: time.Hour}, silo.CodeInvalid},
		{"missing seed", platform.EnvRequest{Name: "e1", Purpose: "demo", TTL: time.Hour, Seed: "/nonexistent"}, silo.CodeNotFound},
		{"seed that loads nothing", platform.EnvRequest{Name: "e1", Purpose: "demo", TTL: time.Hour, Params: map[string]string{"plan": "enterprise"}, Seed: deeper}, silo.CodeInvalid},
		{"bad param", platform.EnvRequest{Name: "e1", Purpose: "demo", TTL: time.Hour, Params: map[string]string{"plan": "platinum"}}, silo.CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Platform().CreateEnv(ctx, tc.req); silo.ErrorCode(err) != tc.code {
				t.Errorf("got %v, want code %s", err, tc.code)
			}
		})
	}
	// The "must" twin: a valid request works, under the name every refused
	// one asked for (none of them created e1).
	e, err := p.Platform().CreateEnv(ctx, platform.EnvRequest{Name: "e1", Purpose: "demo", TTL: time.Hour, Params: map[string]string{"plan": "enterprise"}})
	if err != nil || e.Key == "" || e.Account.Kind != silo.KindEnvironment || e.Account.Expires == nil {
		t.Fatalf("valid environment: got %+v, %v", e, err)
	}
}

// TestDeployIsIdempotentAndKeysRotate deploys twice (the second changes
// nothing) and checks IssueKey's rotation of a named key.
func TestDeployIsIdempotentAndKeysRotate(t *testing.T) {
	p := silotest.New(t)
	first := p.Deploy(t, app)
	if !first.Seeded {
		t.Errorf("first deploy did not seed production")
	}
	acme := p.Tenant(t, "acme")
	second := p.Deploy(t, app)
	if second.Release.ID != first.Release.ID || len(second.Changed) != 0 || second.Seeded {
		t.Errorf("second deploy: got release %s (want %s), changed %v, seeded %v; want no change", second.Release.ID, first.Release.ID, second.Changed, second.Seeded)
	}
	ctx := context.Background()
	k1, err := p.Platform().IssueKey(ctx, "acme", "silo-up")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := p.Platform().IssueKey(ctx, "acme", "silo-up")
	if err != nil {
		t.Fatal(err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(k1)); resp.Status != http.StatusUnauthorized {
		t.Errorf("the replaced silo-up key: got %s, want 401", resp)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(k2)); resp.Status != 200 {
		t.Errorf("the new silo-up key: got %s, want 200", resp)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != 200 {
		t.Errorf("acme's first key (another name) is untouched: got %s, want 200", resp)
	}

	// A rotation of k2 (as silo keys rotate does it: a new key of the
	// same name, k2 revoked after a grace): the next IssueKey revokes k2
	// at once and leaves the rotated-in key alone.
	plane := p.Platform().Plane
	keys, err := plane.Keys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var k2ID string
	for _, k := range keys {
		if k.Name == "silo-up" && k.Revoked == nil {
			k2ID = k.ID
		}
	}
	rotated, _, err := plane.IssueKey(ctx, "acme", "silo-up")
	if err != nil {
		t.Fatal(err)
	}
	if err := plane.RevokeKeyAfter(ctx, "acme", k2ID, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(k2)); resp.Status != 200 {
		t.Fatalf("k2 in its grace: got %s, want 200", resp)
	}
	k3, err := p.Platform().IssueKey(ctx, "acme", "silo-up")
	if err != nil {
		t.Fatal(err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(k2)); resp.Status != http.StatusUnauthorized {
		t.Errorf("the replaced silo-up key, in a rotation's grace: got %s, want 401", resp)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(rotated)); resp.Status != 200 {
		t.Errorf("the key a rotation issued under the same name: got %s, want 200", resp)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(k3)); resp.Status != 200 {
		t.Errorf("the new silo-up key: got %s, want 200", resp)
	}
}

func TestDevAccount(t *testing.T) {
	for in, want := range map[string]silo.AccountID{
		"alice": "dev-alice", "Bob.Smith": "dev-bob-smith", "": "dev-user", "__": "dev-user",
		strings.Repeat("x", 80): silo.AccountID("dev-" + strings.Repeat("x", 59)),
	} {
		got := platform.DevAccount(in)
		if got != want {
			t.Errorf("DevAccount(%q) = %q, want %q", in, got, want)
		}
		if _, err := silo.ParseTenantID(string(got)); err != nil {
			t.Errorf("DevAccount(%q) = %q is not a valid ID: %v", in, got, err)
		}
	}
}
