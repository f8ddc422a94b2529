package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// silo deploy on a data dir (no server) runs the isolation gate a server
// runs on an uploaded release (control.Plane.Gate): on a fleet the release
// already breaks (here a key bound to the production account, which no
// key may reach) it is refused with the gate's reason, which says the
// fleet, not the release, breaks isolation, and nothing changes: no
// release stored, no rollout, no account moved. The twin: the same
// deploy on a sound fleet rolls the release out.
func TestLocalDeployRunsTheIsolationGate(t *testing.T) {
	file, src := initProject(t)
	changed := strings.Replace(string(src), "Hello, ", "Hi, ", 1)
	if changed == string(src) {
		t.Fatal("the scaffold's greeting moved; update this test")
	}
	for _, open := range []bool{true, false} {
		name := map[bool]string{true: "fleet the release leaves open", false: "sound fleet"}[open]
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, src, 0o644); err != nil {
				t.Fatal(err)
			}
			c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
			c.ok("tenant", "create", "acme")
			if open {
				plantProductionKey(t, c)
			}
			if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, c)
			if open {
				c.fails("the fleet already breaks isolation in 1 place(s), whatever release it runs", "deploy")
				c.fails("is bound to the production account", "deploy")
				c.fails("The release adds no violation of its own. Repair the fleet, then deploy again", "deploy")
				if after := stateOf(t, c); after != before {
					t.Errorf("a refused deploy changed the state:\n%s", cmp.Diff(before, after))
				}
				return
			}
			if out := c.ok("deploy"); !strings.Contains(out, "succeeded") {
				t.Errorf("deploy on a sound fleet: %s; want the rollout succeeded", out)
			}
			if after := stateOf(t, c); after == before {
				t.Error("deploy on a sound fleet changed nothing")
			}
		})
	}
}

// plantProductionKey stores an API key bound to the production account in
// c's data dir, past every command (none issues one).
func plantProductionKey(t *testing.T, c *cli) {
	t.Helper()
	a, err := openApp(context.Background(), &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	k := store.APIKey{ID: "sk_production_0123456789abcdef", Account: silo.ProductionID, Hash: make([]byte, 32), Created: time.Now()}
	if err := a.store.Update(context.Background(), func(tx store.Tx) error { return tx.PutKey(k) }); err != nil {
		t.Fatal(err)
	}
}

// A local silo deploy runs the isolation gate once (control.Plane.Gate,
// counted through the engine's step hook), as its rollout starts, on the
// release it ships, before storing it; the release is stored and rolled
// out. The twin, a deploy the gate refuses, is in
// TestLocalDeployRunsTheIsolationGate.
func TestLocalDeployRunsTheGateOnce(t *testing.T) {
	file, src := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "Hello, ", "Hi, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var gates atomic.Int32
	engineStep = func(s engine.Step) {
		if s.Point == "gate" {
			gates.Add(1)
		}
	}
	defer func() { engineStep = func(engine.Step) {} }()
	if out := c.ok("deploy"); !strings.Contains(out, "succeeded") {
		t.Fatalf("deploy: %s; want the rollout succeeded", out)
	}
	if n := gates.Load(); n != 1 {
		t.Errorf("a local deploy ran the isolation gate %d times, want once", n)
	}
}
