package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// releaseOf reads an account's release (and state) from the data dir.
func releaseOf(t *testing.T, c *cli, id silo.AccountID) (string, silo.State) {
	t.Helper()
	g := &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	a, err := openApp(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	acct, err := a.plane.Account(context.Background(), id)
	if err != nil {
		t.Fatalf("account %s: %v", id, err)
	}
	return acct.Release, acct.State
}

func upIDs(s upSummary) []string {
	var ids []string
	for _, a := range s.Accounts {
		ids = append(ids, string(a.ID))
	}
	return ids
}

// silo up in a user's project: a demo tenant the user deleted stays
// deleted, and once rollouts manage the fleet silo up leaves every
// account's release where the rollouts put it and says why, instead of
// applying silo.yaml (which here builds a release a rollout rolled back).
// The twins: a new data dir gets the demo tenants (TestUp), and before any
// rollout silo up applies silo.yaml to the fleet.
func TestUpInAUserProject(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := filepath.Join(t.TempDir(), "app")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "silo.yaml")
	src := mustRead(t, file) + gatedRing
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.ok("tenant", "delete", "globex", "--yes")
	v1, _ := releaseOf(t, c, "acme")

	up := func() upSummary {
		t.Helper()
		sum, stop := startUp(t, c.dataDir, "--file", file)
		stop()
		return sum
	}
	// Before any rollout, silo up applies the edited app (twin of the
	// rollout cases below).
	edited := strings.Replace(src, "Hello, ", "Hi, ", 1)
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := up()
	if got := strings.Join(upIDs(sum), ","); got != "acme,dev-tester" {
		t.Errorf("silo up showed %s, want acme,dev-tester (globex was deleted)", got)
	}
	if _, st := releaseOf(t, c, "globex"); st != silo.StateDeleted {
		t.Errorf("globex is %s after silo up, want deleted", st)
	}
	v2, _ := releaseOf(t, c, "acme")
	if v2 == v1 || sum.Held != "" || sum.Release != v2 {
		t.Fatalf("before any rollout: acme on %s (was %s), up says release %s, held %q; want the edited release applied", v2, v1, sum.Release, sum.Held)
	}

	// A rollout of a third release pauses in the canary ring (no traffic),
	// is aborted, and rolled back: acme returns to v2.
	third := strings.Replace(src, "Hello, ", "Hey, ", 1)
	if err := os.WriteFile(file, []byte(third), 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails("is paused", "deploy")
	v3, _ := releaseOf(t, c, "acme")
	if v3 == v2 {
		t.Fatal("the paused rollout did not apply to acme")
	}
	sum = up() // a rollout is active: nothing moves
	if got, _ := releaseOf(t, c, "acme"); got != v3 || !strings.Contains(sum.Held, "is paused") {
		t.Errorf("up during a paused rollout: acme on %s (want %s), held %q", got, v3, sum.Held)
	}
	c.ok("rollout", "abort")
	c.ok("rollout", "rollback", "ro-000001")
	if got, _ := releaseOf(t, c, "acme"); got != v2 {
		t.Fatalf("after the rollback acme is on %s, want %s", got, v2)
	}
	sum = up() // silo.yaml still builds the rolled-back release
	if got, _ := releaseOf(t, c, "acme"); got != v2 {
		t.Errorf("silo up applied the rolled-back release: acme on %s, want %s", got, v2)
	}
	if sum.Release != v2 || !strings.Contains(sum.Held, "rollout ro-000001 did not roll out (rolled_back") {
		t.Errorf("silo up says release %s, held %q; want %s and why the app's release is held", sum.Release, sum.Held, v2)
	}
	// An edit no rollout has seen is not applied either: silo deploy takes
	// it. Its new first route (/echo) is not printed: the accounts' release
	// serves /hello only.
	fourth := strings.Replace(src, "Hello, ", "Howdy, ", 1)
	fourth = strings.Replace(fourth, "routes:\n", "routes:\n  - {method: GET, path: /echo, function: hello}\n", 1)
	if err := os.WriteFile(file, []byte(fourth), 0o644); err != nil {
		t.Fatal(err)
	}
	sum = up()
	if got, _ := releaseOf(t, c, "acme"); got != v2 || !strings.Contains(sum.Held, "roll the change out with silo deploy") {
		t.Errorf("silo up with a new edit: acme on %s (want %s), held %q", got, v2, sum.Held)
	}
	for _, a := range sum.Accounts {
		if !strings.HasSuffix(a.URL, "/hello") || !strings.HasSuffix(a.Path, "/hello") {
			t.Errorf("silo up printed %s and %s for %s; want the route of the release it runs (/hello), not silo.yaml's new /echo", a.URL, a.Path, a.ID)
		}
	}
	// Twin: silo.yaml back to what the fleet runs: nothing to say.
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum = up(); sum.Held != "" || sum.Release != v2 {
		t.Errorf("silo up with the fleet's own release: release %s, held %q; want %s and no note", sum.Release, sum.Held, v2)
	}
}

// silo up creates the developer account on a data dir that never had it,
// also one made by silo tenant create (the must twin), but not again once
// the user deleted it: it says so and how to get it back, and silo dev
// does create it again.
func TestUpLeavesADeletedDeveloperAccountDeleted(t *testing.T) {
	t.Setenv("USER", "tester")
	c := newCLI(t)
	c.ok("tenant", "create", "acme")

	sum, stop := startUp(t, c.dataDir, "--file", c.file)
	stop()
	if got := strings.Join(upIDs(sum), ","); got != "acme,dev-tester" || sum.Developer != "" {
		t.Fatalf("silo up on a data dir without a developer account: showed %s (note %q), want acme,dev-tester", got, sum.Developer)
	}

	c.ok("env", "delete", "dev-tester", "--yes")
	sum, stop = startUp(t, c.dataDir, "--file", c.file)
	stop()
	const note = "your developer account dev-tester was deleted, so silo up leaves it out; silo dev creates it again"
	if got := strings.Join(upIDs(sum), ","); got != "acme" || sum.Developer != note {
		t.Errorf("silo up after the developer account was deleted: showed %s, note %q; want acme and %q", got, sum.Developer, note)
	}
	if st := accountState(t, c, "dev-tester"); st != silo.StateDeleted {
		t.Errorf("dev-tester after silo up: %s, want deleted", st)
	}
	var text strings.Builder
	printUp(&text, sum, "localhost", ":8080")
	if !strings.Contains(text.String(), "  note: "+note+"\n") {
		t.Errorf("silo up's text output lacks the note:\n%s", text.String())
	}

	// silo dev creates it again, as the note says.
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runCmd(ctx, []string{"dev", "--listen", "127.0.0.1:0", "--data-dir", c.dataDir, "--file", c.file}, &out, &errOut)
	}()
	for !strings.Contains(out.String(), "dev-tester is live") {
		select {
		case err := <-done:
			t.Fatalf("silo dev exited early: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("silo dev after Ctrl-C: %v", err)
	}
	if st := accountState(t, c, "dev-tester"); st != silo.StateActive {
		t.Errorf("dev-tester after silo dev: %s, want active", st)
	}
}
