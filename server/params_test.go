package server_test

import (
	"context"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
)

// TestParamsKeepADevelopersRelease: a release rolled out to tenants only
// leaves a developer account on the release it ran; a parameter change
// (PATCH /v1/accounts/{id}) then applies that release with the new
// parameter, never the current one, which would create the new release's
// table there. The twin: a tenant's parameter change applies the current
// release.
func TestParamsKeepADevelopersRelease(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	deploy := func(src string) string {
		t.Helper()
		rel := upload(t, c, src, "wasm")
		r, err := c.StartRollout(ctx, rel.ID, rollout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded {
			t.Fatalf("deploy: %s (%s)", r.State, r.Reason)
		}
		return rel.ID
	}
	r1 := deploy(spec)
	for _, req := range []control.CreateRequest{{ID: "acme"}, {ID: "dev-ann", Kind: silo.KindDeveloper}} {
		if _, err := c.CreateAccount(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	r2 := deploy(spec + `  - {method: GET, path: /scratch, function: ingest}
rollout:
  rings:
    - name: everyone
      select: {kind: tenant}
`)
	release := func(id silo.AccountID) string {
		t.Helper()
		d, err := c.Show(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d.Account.Release
	}
	if release("dev-ann") != r1 || release("acme") != r2 {
		t.Fatalf("after the tenants' rollout: dev-ann on %s, acme on %s; want %s and %s", release("dev-ann"), release("acme"), r1, r2)
	}

	for _, tc := range []struct {
		id   silo.AccountID
		want string
	}{
		{"dev-ann", r1}, // its own release
		{"acme", r2},    // the twin: the current release
	} {
		p, err := c.UpdateParams(ctx, tc.id, map[string]string{"plan": "pro"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if p.Release != tc.want || p.FromRelease != tc.want || len(p.Changes) != 1 || p.Changes[0].Key() != "config/plan_name" {
			t.Errorf("update of %s: plan %s → %s with %v; want %s kept, config/plan_name updated alone", tc.id, p.FromRelease, p.Release, p.Changes, tc.want)
		}
		d, err := c.Show(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Account.Release != tc.want || d.Account.Params["plan"] != "pro" {
			t.Errorf("%s after the update: on %s with %v; want %s with plan=pro", tc.id, d.Account.Release, d.Account.Params, tc.want)
		}
	}
}
