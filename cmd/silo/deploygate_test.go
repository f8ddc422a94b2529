package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// silo deploy on a data dir (no server) runs the isolation gate a server
// runs on an uploaded release (control.Plane.Gate): on a fleet that
// already breaks isolation where the release changes what the violation
// involves (here globex's key bound to acme, whose function the release
// changes) it is refused with the gate's reason, which says the fleet,
// not the release, breaks isolation, and nothing changes: no release
// stored, no rollout, no account moved. The twin: the same
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
				plantKey(t, c, store.APIKey{ID: "sk_globex_0123456789abcdef", Account: "acme"})
			}
			if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, c)
			if open {
				c.fails("the fleet already breaks isolation in 1 place(s), and the release changes what 1 of them involve", "deploy")
				c.fails(`names account "globex" but is bound to acme`, "deploy")
				c.fails("The release adds no violation of its own, and it would pass with a warning if it changed nothing those involve. Repair the fleet, then deploy again", "deploy")
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
