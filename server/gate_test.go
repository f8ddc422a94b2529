package server_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	specs "github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// A deploy through a server (what silo deploy sends: the release, a
// preview of its rollout, the rollout's start) runs the isolation gate
// once, as the rollout starts, against the fleet as it is then; the
// upload and the preview run none. The gate is the platform's
// (control.Plane.Gate, as rollout.Config.Gate), counted. Must: a sound
// release is stored and its rollout starts. Must not: a release that
// would open a path across accounts (its grant of every table cannot be
// written in silo.yaml, so it is stored as a silo before the gate could
// have stored it) and a sound release on a fleet that already breaks
// isolation (a key bound to the production account) are refused as their
// rollouts start, failed_check with the gate's reason, and nothing starts;
// once the key record is removed (DELETE /v1/keys/{key}) the same release
// starts.
func TestADeployRunsTheGateOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		crosses bool   // the release grants every table
		plant   bool   // the fleet holds a key bound to the production account
		refusal string // "" starts
	}{
		{"a sound release", false, false, ""},
		{"a release that crosses accounts", true, false, "refused: it would break isolation in 1 place(s)"},
		{"a fleet that breaks isolation already", false, true, "refused: the fleet already breaks isolation in 1 place(s)"},
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
			var gates atomic.Int32
			run, err := rollout.New(rollout.Config{Store: st, Engine: plane.Engine, Provider: prov, Owner: "test",
				Gate: func(ctx context.Context, rel engine.Release, keep func(silo.Account) bool) error {
					gates.Add(1)
					return plane.GateRollout(ctx, rel, keep)
				}})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := server.LoadOrCreateToken(dir)
			if err != nil {
				t.Fatal(err)
			}
			srv, err := server.New(server.Config{Plane: plane, Runner: run, Store: st, ArtifactDir: filepath.Join(dir, "artifacts"), Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			c := server.NewClient(hs.URL, tok, nil)

			d, err := c.PutArtifact(ctx, wasmModule("wasm"))
			if err != nil {
				t.Fatal(err)
			}
			id := ""
			if tc.crosses {
				sk, err := specs.Parse("silo.yaml", []byte(spec))
				if err != nil {
					t.Fatal(err)
				}
				fn := sk.Functions["ingest"]
				fn.Tables = map[string]specs.Access{"*": specs.AccessRead}
				sk.Functions["ingest"] = fn
				rel, stored, err := engine.NewRelease(sk, map[string]string{"ingest": d}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutRelease(stored) }); err != nil {
					t.Fatal(err)
				}
				id = rel.ID
			} else {
				rel, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}})
				if err != nil {
					t.Fatal(err)
				}
				id = rel.ID
			}
			if tc.plant {
				rel, err := plane.Release(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				// Production as an earlier release made it: the release
				// changes what the key reaches, so the gate refuses it
				// (a release that changed nothing it reaches would pass
				// with a warning).
				sk, err := specs.Parse("silo.yaml", []byte(spec))
				if err != nil {
					t.Fatal(err)
				}
				sk.Production.Config = map[string]string{"edition": "1"}
				old, stored, err := engine.NewRelease(sk, rel.Artifacts, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutRelease(stored) }); err != nil {
					t.Fatal(err)
				}
				if _, err := plane.Engine.CreateAccount(ctx, silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction}, old); err != nil {
					t.Fatal(err)
				}
				k := store.APIKey{ID: "sk_production_0123456789abcdef", Account: silo.ProductionID, Hash: make([]byte, 32), Created: time.Now()}
				if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutKey(k) }); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.PreviewRollout(ctx, id); err != nil {
				t.Fatal(err)
			}
			if n := gates.Load(); n != 0 {
				t.Errorf("the upload and the preview ran the gate %d time(s), want none", n)
			}
			r, err := c.StartRollout(ctx, id, rollout.Options{})
			if n := gates.Load(); n != 1 {
				t.Errorf("the deploy ran the gate %d time(s), want once", n)
			}
			if tc.refusal == "" {
				if err != nil || r.Release != id {
					t.Fatalf("start of a sound release: %+v, %v; want its rollout", r, err)
				}
				return
			}
			if msg := silo.UserMessage(err); code(err) != silo.CodeFailedCheck || !strings.Contains(msg, "release "+id+" "+tc.refusal) {
				t.Errorf("start: %s %q; want failed_check saying %q", code(err), msg, tc.refusal)
			}
			var n int
			if err := st.View(ctx, func(tx store.Tx) error {
				var err error
				n, err = tx.CountRollouts()
				return err
			}); err != nil || n != 0 {
				t.Errorf("%d rollout(s) recorded after the refusal (%v), want none", n, err)
			}
			if tc.plant {
				// The way out through the API: the flagged key record is
				// removed, and the same release then starts.
				rm, err := c.RemoveKey(ctx, "sk_production_0123456789abcdef")
				if err != nil || len(rm.Problems) != 1 || !strings.HasPrefix(rm.Problems[0], "I2: API key sk_production_0123456789abcdef is bound to the production account") {
					t.Fatalf("DELETE /v1/keys/sk_production_…: %+v, %v; want the record removed for its I2 problem", rm, err)
				}
				if r, err := c.StartRollout(ctx, id, rollout.Options{}); err != nil || r.Release != id {
					t.Errorf("start after the repair: %+v, %v; want its rollout", r, err)
				}
			}
		})
	}
}
