package platform_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
)

// TestKeyOfADeletedAccountSaysTheAccountIsGone: the holder of a key of a
// deleted tenant, or of an environment the reaper tore down at the end of
// its time to live, is told through the gateway that the account was
// deleted and a new key will not help, not to ask for a new key. The
// twins: a revoked key of a live tenant still says revoked; a wrong secret
// for the deleted account's key says only that the key is invalid.
func TestKeyOfADeletedAccountSaysTheAccountIsGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := silotest.New(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	gone := p.Tenant(t, "gone1")
	env := p.Env(t, "e2e-deleted-key", platform.EnvTest, time.Hour)
	pp := p.Platform()

	second, _, err := pp.Plane.IssueKey(ctx, "acme", "second")
	if err != nil {
		t.Fatal(err)
	}
	id, err := apikey.Parse(acme.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pp.Plane.RevokeKey(ctx, "acme", id); err != nil {
		t.Fatal(err)
	}
	if _, err := pp.Plane.DeleteTenant(ctx, "gone1"); err != nil {
		t.Fatal(err)
	}
	if reaped := p.Clock().Advance(time.Hour); len(reaped) != 1 {
		t.Fatalf("past its time to live the reaper tore down %v, want the environment", reaped)
	}

	const (
		deleted = "this API key's account was deleted; a new key will not help"
		revoked = "this API key was revoked; ask the account owner for a new key"
		invalid = "invalid API key"
	)
	forged := gone.Key[:len(gone.Key)-4] + "aaaa"
	for _, tc := range []struct {
		name   string
		client *silotest.Tenant
		want   string
	}{
		{"deleted tenant", gone, deleted},
		{"environment past its time to live", env, deleted},
		{"revoked key of a live tenant", acme, revoked},
		{"wrong secret of a deleted tenant's key", p.Client(gone.ID, forged), invalid},
	} {
		resp := tc.client.GET(t, "/findings")
		if resp.Status != http.StatusUnauthorized || !strings.Contains(string(resp.Body), tc.want) {
			t.Errorf("%s: got %s, want 401 saying %q", tc.name, resp, tc.want)
		}
		if tc.want != deleted && strings.Contains(string(resp.Body), "deleted") {
			t.Errorf("%s: got %s, which says deleted", tc.name, resp)
		}
	}
	if resp := p.Client(acme.ID, second).GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Errorf("acme's other key: got %s, want 200", resp)
	}
}
