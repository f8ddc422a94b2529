package platform_test

import (
	"context"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/silotest"
)

// A key revoked with a grace period keeps opening its account until the
// grace ends and not after; a key revoked at once (the twin) stops at once;
// an earlier revocation is never pushed later; deleting the account ends
// the grace.
func TestKeyGracePeriod(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme")
	plane := p.Platform().Plane
	ctx := context.Background()
	keys, err := plane.Keys(ctx, "acme")
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys of acme: %v, %v", keys, err)
	}
	if got := acme.GET(t, "/findings").Status; got != 200 {
		t.Fatalf("GET with acme's key: %d, want 200", got)
	}
	if err := p.Platform().RevokeKeyAfter(ctx, "acme", keys[0].ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(59 * time.Minute)
	if got := acme.GET(t, "/findings").Status; got != 200 {
		t.Fatalf("GET 59 minutes into a 1h grace: %d, want 200", got)
	}
	// A later, longer grace does not push the revocation back.
	if err := p.Platform().RevokeKeyAfter(ctx, "acme", keys[0].ID, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(2 * time.Minute)
	if got := acme.GET(t, "/findings").Status; got != 401 {
		t.Fatalf("GET after the grace: %d, want 401", got)
	}

	// Twin: without grace the revocation holds at once.
	plain, k, err := plane.IssueKey(ctx, "acme", "now")
	if err != nil {
		t.Fatal(err)
	}
	now := p.Client("acme", plain)
	if got := now.GET(t, "/findings").Status; got != 200 {
		t.Fatalf("GET with a new key: %d, want 200", got)
	}
	if err := p.Platform().RevokeKey(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	p.Clock().Advance(time.Second)
	if got := now.GET(t, "/findings").Status; got != 401 {
		t.Fatalf("GET with a revoked key: %d, want 401", got)
	}

	// Deleting the account ends every grace period.
	plain, k, err = plane.IssueKey(ctx, "acme", "graced")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Platform().RevokeKeyAfter(ctx, "acme", k.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := p.Platform().DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	keys, err = plane.Keys(ctx, "acme")
	for _, kk := range keys {
		if kk.Revoked == nil || kk.Revoked.After(p.Clock().Now()) {
			t.Errorf("key %s of deleted acme revoked at %v; want now at the latest", kk.ID, kk.Revoked)
		}
	}
	if err := p.Platform().RevokeKeyAfter(ctx, "acme", k.ID, -time.Hour); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("negative grace: %v, want invalid", err)
	}
}
