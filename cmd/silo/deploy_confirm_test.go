package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// silo deploy of a release that deletes a table is refused without --yes
// (stdin is not a terminal here), names what it would delete, moves no
// account and stores no release; with --yes it stores the release and
// goes ahead. silo rollout rollback refuses a
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

	// A release not stored yet (the greeting changed too), which deletes
	// notes.
	write(strings.Replace(string(src), "Hello, ", "Hi, ", 1))
	before, rels := c.ok("tenant", "show", "acme"), c.ok("release", "list")
	c.fails("deletes table/notes in acme", "deploy")
	if after := c.ok("tenant", "show", "acme"); after != before {
		t.Errorf("a refused deploy changed acme:\nbefore: %s\nafter: %s", before, after)
	}
	if out := c.ok("rollout", "list"); strings.Contains(out, "ro-000002") {
		t.Errorf("a refused deploy started a rollout:\n%s", out)
	}
	if after := c.ok("release", "list"); after != rels {
		t.Errorf("a refused deploy stored its release:\nbefore: %s\nafter: %s", rels, after)
	}
	c.ok("deploy", "--yes") // ro-000002 deletes notes
	if after := c.ok("release", "list"); strings.Count(after, "\n") != strings.Count(rels, "\n")+1 {
		t.Errorf("release list after deploy --yes:\n%s\nwant one release more than\n%s", after, rels)
	}
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

// Through a server, silo deploy sends the release with the rollout's
// start (POST /v1/rollouts with upload), so a deploy refused for the data
// it would destroy (not confirmed: stdin is not a terminal) stores no
// release and starts no rollout (must not); with --yes the server stores
// the release and starts its rollout (must).
func TestRefusedDeployThroughAServerStoresNothing(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	withNotes := strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  notes: {}\n", 1)
	if err := os.WriteFile(file, []byte(withNotes), 0o644); err != nil {
		t.Fatal(err)
	}
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme") // on the release with notes
	})
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "Hello, ", "Hi, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rels := f.remote("release", "list")
	code, out, errOut := f.remoteRun("deploy", "--detach")
	if code != 1 || !strings.Contains(errOut, "deletes table/notes in acme") {
		t.Fatalf("deploy that deletes notes: exit %d, %s%s; want refused, naming it", code, out, errOut)
	}
	if after := f.remote("release", "list"); after != rels {
		t.Errorf("a refused deploy stored its release:\nbefore: %s\nafter: %s", rels, after)
	}
	if out := f.remote("rollout", "list"); !strings.Contains(out, "no rollout yet") {
		t.Errorf("a refused deploy started a rollout:\n%s", out)
	}
	if out := f.remote("deploy", "--detach", "--yes"); !strings.Contains(out, "ro-000001") {
		t.Fatalf("deploy --yes: %s; want rollout ro-000001", out)
	}
	if after := f.remote("release", "list"); strings.Count(after, "\n") != strings.Count(rels, "\n")+1 {
		t.Errorf("release list after deploy --yes:\n%s\nwant one release more than\n%s", after, rels)
	}
}

// Through a server, silo plan builds and uploads the release's artifacts
// and has the server plan the release without storing it: the plan shows
// the change (it planned the new release) and the server's release list is
// unchanged (must not). Its twin: silo deploy of the same app stores the
// release (must).
func TestPlanThroughAServerStoresNoRelease(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme")
	})
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  notes: {}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rels := f.remote("release", "list")
	if out := f.remote("plan", "--all"); !strings.Contains(out, "table/notes") {
		t.Fatalf("plan of the app with a new table: %s; want the table in the plan", out)
	}
	if out := f.remote("plan", "acme"); !strings.Contains(out, "table/notes") {
		t.Fatalf("plan of acme with a new table: %s; want the table in the plan", out)
	}
	if after := f.remote("release", "list"); after != rels {
		t.Errorf("silo plan --server stored a release:\nbefore: %s\nafter: %s", rels, after)
	}
	if out := f.remote("deploy", "--detach"); !strings.Contains(out, "ro-000001") {
		t.Fatalf("deploy --detach: %s; want rollout ro-000001", out)
	}
	if after := f.remote("release", "list"); strings.Count(after, "\n") != strings.Count(rels, "\n")+1 {
		t.Errorf("release list after deploy:\n%s\nwant one release more than\n%s", after, rels)
	}
}
