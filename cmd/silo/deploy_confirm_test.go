package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// silo deploy of a release that deletes a table is refused without --yes
// (stdin is not a terminal here), names what it would delete and moves no
// account; with --yes it goes ahead. silo rollout rollback refuses a
// rollout that is not the latest. The twins: a deploy that only adds a
// table, and the rollback of the latest rollout, need no confirmation.
func TestDeployConfirmsDataLoss(t *testing.T) {
	t.Parallel()
	hasNotes := regexp.MustCompile(`(?m)^\s*table\s+notes\s`)
	file, src := initProject(t)
	withNotes := strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  notes: {}\n", 1)
	if withNotes == string(src) {
		t.Fatal("the scaffold's tables section moved; update this test")
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	write(withNotes)
	c.ok("deploy") // ro-000001 adds notes
	if out := c.ok("tenant", "show", "acme"); !hasNotes.MatchString(out) {
		t.Fatalf("tenant show after adding notes: %s", out)
	}

	write(string(src))
	before := c.ok("tenant", "show", "acme")
	c.fails("deletes table/notes in acme", "deploy")
	if after := c.ok("tenant", "show", "acme"); after != before {
		t.Errorf("a refused deploy changed acme:\nbefore: %s\nafter: %s", before, after)
	}
	if out := c.ok("rollout", "list"); strings.Contains(out, "ro-000002") {
		t.Errorf("a refused deploy started a rollout:\n%s", out)
	}
	c.ok("deploy", "--yes") // ro-000002 deletes notes
	if out := c.ok("tenant", "show", "acme"); hasNotes.MatchString(out) {
		t.Fatalf("tenant show after deploy --yes: %s; want notes gone", out)
	}

	c.fails("not the latest: ro-000002", "rollout", "rollback", "ro-000001")
	c.ok("rollout", "rollback") // the latest: notes come back, nothing is lost
	if out := c.ok("tenant", "show", "acme"); !hasNotes.MatchString(out) {
		t.Errorf("tenant show after the rollback: %s; want notes back", out)
	}
}

// initProject makes a silo init project for a test and returns its silo.yaml
// and what the scaffold wrote in it.
func initProject(t *testing.T) (file string, src []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "silo.yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, src
}
