package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// silo deploy of an unchanged silo.yaml (a CI re-run) succeeds, says there
// is nothing to roll out and records no rollout, so silo rollout rollback
// still undoes the deploy before it. The twin: the changed silo.yaml
// deploys.
func TestRedeployOfUnchangedStackStartsNothing(t *testing.T) {
	hasNotes := regexp.MustCompile(`(?m)^\s*table\s+notes\s`)
	file, src := initProject(t)
	withNotes := strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  notes: {}\n", 1)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme") // makes the scaffold's release current
	if out := c.ok("deploy"); !strings.Contains(out, "nothing to roll out") {
		t.Errorf("deploy of the release tenant create made current:\n%s", out)
	}
	if err := os.WriteFile(file, []byte(withNotes), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("deploy"); !strings.Contains(out, "ro-000001") { // adds notes
		t.Fatalf("deploy of the changed silo.yaml:\n%s", out)
	}
	out := c.ok("deploy")
	if !strings.Contains(out, "is already current on every account; nothing to roll out") || strings.Contains(out, "ro-000002") {
		t.Errorf("deploy of the unchanged silo.yaml:\n%s\nwant nothing to roll out, no rollout", out)
	}
	if out := c.ok("rollout", "list"); strings.Contains(out, "ro-000002") {
		t.Errorf("the re-deploy recorded a rollout:\n%s", out)
	}
	c.ok("rollout", "rollback", "--yes") // ro-000001, the real latest: notes go
	if out := c.ok("tenant", "show", "acme"); hasNotes.MatchString(out) {
		t.Errorf("tenant show after the rollback: %s; want notes gone", out)
	}
}
