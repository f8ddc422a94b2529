package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	silospec "github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// TestUploadOfADevBuildShipsIt: a release that silo dev stored (built from
// the same sources, so the same content-addressed release) is refused a
// rollout while only silo dev stored it; uploaded to the server, by POST
// /v1/releases or as the upload of POST /v1/rollouts, it is recorded as a
// deploy and rolls out to the tenants.
func TestUploadOfADevBuildShipsIt(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client
	v1 := upload(t, c, spec, "wasm v1")
	r, err := c.StartRollout(ctx, v1.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("first rollout: %s (%s)", r.State, r.Reason)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}

	// devBuild stores the release of wasm as silo dev does for dev-ann,
	// and returns what a deploy of the same sources uploads.
	devBuild := func(wasm string) (server.ReleaseRequest, string) {
		t.Helper()
		d, err := c.PutArtifact(ctx, wasmModule(wasm))
		if err != nil {
			t.Fatal(err)
		}
		req := server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}}
		sp, err := silospec.Parse("silo.yaml", []byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		_, stored, err := engine.NewRelease(sp, req.Artifacts, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		stored.Origin = store.DevOrigin("dev-ann")
		if err := f.plane.PutRelease(ctx, stored); err != nil {
			t.Fatal(err)
		}
		return req, stored.ID
	}

	for _, tc := range []struct {
		name string
		ship func(t *testing.T, req server.ReleaseRequest, id string) (rollout.Rollout, error)
	}{
		{"POST /v1/releases", func(t *testing.T, req server.ReleaseRequest, id string) (rollout.Rollout, error) {
			ri, err := c.UploadRelease(ctx, req)
			if err != nil || ri.ID != id || ri.Origin.Kind != store.OriginDeploy {
				t.Errorf("upload of the dev build %s: %+v, %v; want it answered with origin deploy", id, ri, err)
			}
			return c.StartRollout(ctx, id, rollout.Options{})
		}},
		{"POST /v1/rollouts with an upload", func(_ *testing.T, req server.ReleaseRequest, _ string) (rollout.Rollout, error) {
			return c.StartUpload(ctx, req, rollout.Options{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, id := devBuild("wasm " + tc.name)
			if ri, err := c.Release(ctx, id); err != nil || ri.Origin != store.DevOrigin("dev-ann") {
				t.Fatalf("release %s as silo dev stored it: %+v, %v; want origin dev for dev-ann", id, ri, err)
			}
			if _, err := c.StartRollout(ctx, id, rollout.Options{}); code(err) != silo.CodeInvalid || !strings.Contains(err.Error(), "developer's build") {
				t.Fatalf("rollout of the dev build %s before its upload: %v; want invalid, a developer's build", id, err)
			}
			r, err := tc.ship(t, req, id)
			if err != nil {
				t.Fatalf("rollout of the dev build %s once uploaded: %v", id, err)
			}
			if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded || r.Release != id {
				t.Fatalf("rollout %s of %s: %s (%s), release %s; want it to succeed", r.ID, id, r.State, r.Reason, r.Release)
			}
			if ri, err := c.Release(ctx, id); err != nil || ri.Origin.Kind != store.OriginDeploy || !ri.Current {
				t.Errorf("release %s after its upload and rollout: %+v, %v; want origin deploy, current", id, ri, err)
			}
			if d, err := c.Show(ctx, "acme"); err != nil || d.Account.Release != id {
				t.Errorf("acme after the rollout of %s: on %q, %v", id, d.Account.Release, err)
			}
		})
	}
}
