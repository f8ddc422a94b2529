package server_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store/sqlite"
)

// TestGateRefusalIsOneSentence: a release the gate refuses is answered
// failed_check with "release X refused by the gate: " and the gate's
// reason once, whether the reason starts "release X refused: " (as the
// isolation gate's does) or not; the twin: a release the gate passes is
// stored.
func TestGateRefusalIsOneSentence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason func(rel engine.Release) error
		want   string // after "release <ID> refused by the gate: "; "" passes
	}{
		{"isolation gate", func(rel engine.Release) error {
			return silo.Errorf(silo.CodeFailedCheck, "release %s refused: it would break isolation in 2 place(s); first: I1: x; fix silo.yaml and build again", rel.ID)
		}, "it would break isolation in 2 place(s); first: I1: x; fix silo.yaml and build again"},
		{"another reason", func(engine.Release) error { return silo.Errorf(silo.CodeUnavailable, "the gate is down") }, "the gate is down"},
		{"passes", func(engine.Release) error { return nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
			if err != nil {
				t.Fatal(err)
			}
			defer prov.Close()
			plane := control.New(control.Config{Store: st, Provider: prov, Actor: "server"})
			tok, err := server.LoadOrCreateToken(dir)
			if err != nil {
				t.Fatal(err)
			}
			run, err := rollout.New(rollout.Config{Store: st, Engine: plane.Engine, Provider: prov, Owner: "test"})
			if err != nil {
				t.Fatal(err)
			}
			srv, err := server.New(server.Config{Plane: plane, Runner: run, Store: st, ArtifactDir: filepath.Join(dir, "artifacts"), Token: tok,
				Gate: func(_ context.Context, rel engine.Release) error { return tc.reason(rel) }})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			c := server.NewClient(hs.URL, tok, nil)
			d, err := c.PutArtifact(ctx, []byte("wasm"))
			if err != nil {
				t.Fatal(err)
			}
			rel, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}})
			if tc.want == "" {
				if err != nil || rel.ID == "" {
					t.Fatalf("a release the gate passes: %+v, %v; want it stored", rel, err)
				}
				return
			}
			msg := silo.UserMessage(err)
			id, _, _ := strings.Cut(strings.TrimPrefix(msg, "release "), " ")
			if want := "release " + id + " refused by the gate: " + tc.want; code(err) != silo.CodeFailedCheck || msg != want {
				t.Errorf("refused release: %s %q; want failed_check %q", code(err), msg, want)
			}
		})
	}
}
