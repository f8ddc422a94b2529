package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// prompt ends what a command asks at a terminal before destroying data.
const prompt = "Type \"yes\" to go ahead: "

// atTerminal runs silo args with stdin a terminal. Once the command asks
// (stdout ends with prompt), meanwhile (if not nil) runs, then typed is
// typed. A command that ends without asking ends the wait.
func atTerminal(t *testing.T, args []string, meanwhile func(), typed string) (code int, stdout, stderr string) {
	t.Helper()
	tty, term := openTerminal(t)
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), args, term, &out, &errOut) }()
	for !strings.HasSuffix(out.String(), prompt) {
		select {
		case code := <-done:
			return code, out.String(), errOut.String()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if meanwhile != nil {
		meanwhile()
	}
	if _, err := tty.WriteString(typed + "\n"); err != nil {
		t.Fatal(err)
	}
	code = <-done
	return code, out.String(), errOut.String()
}

// notesApp is a silo init project whose tenant acme got table notes by a
// first deploy (ro-000001), and whose silo.yaml no longer has it: deploying
// it deletes notes. It returns the CLI and the silo.yaml that has notes.
func notesApp(t *testing.T) (c *cli, withNotes string) {
	t.Helper()
	file, src := initProject(t)
	withNotes = strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  notes: {}\n", 1)
	if withNotes == string(src) {
		t.Fatal("the scaffold's tables section moved; update this test")
	}
	c = &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	writeFile(t, file, withNotes)
	c.ok("deploy") // ro-000001 adds notes
	writeFile(t, file, string(src))
	return c, withNotes
}

var hasNotes = regexp.MustCompile(`(?m)^\s*table\s+notes\s`)

// TestDeployAtATerminalStartsForTheListShown: at a terminal, a deploy that
// deletes a table lists where (from the preview) and asks; a tenant
// created while it asks would lose the table too, so the deploy typed
// "yes" for the list shown does not start, says what it would delete now
// and changes nothing (must not). Asked again, the list names the new
// tenant and "yes" starts the deploy (must).
func TestDeployAtATerminalStartsForTheListShown(t *testing.T) {
	t.Parallel()
	c, _ := notesApp(t)
	args := []string{"--data-dir", c.dataDir, "--file", c.file, "deploy"}
	code, out, errOut := atTerminal(t, args, func() { c.ok("tenant", "create", "initech") }, "yes")
	if want := "deletes table/notes in acme\n" + prompt; !strings.HasSuffix(out, want) || !strings.Contains(out, "Rolling out release r-") {
		t.Errorf("stdout %q, want the preview's list ending %q", out, want)
	}
	want := "silo: what would be lost changed since you confirmed: it now deletes table/notes in acme, initech; nothing was started. Run silo deploy again to see the new list and confirm it\n"
	if code != 1 || errOut != want {
		t.Fatalf("deploy confirmed while a tenant was created: exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
	if out := c.ok("rollout", "list"); strings.Contains(out, "ro-000002") {
		t.Errorf("a refused deploy started a rollout:\n%s", out)
	}
	for _, id := range []string{"acme", "initech"} {
		if out := c.ok("tenant", "show", id); !hasNotes.MatchString(out) {
			t.Errorf("tenant show %s after the refused deploy: %s; want notes kept", id, out)
		}
	}

	code, out, errOut = atTerminal(t, args, nil, "yes")
	if code != 0 || !strings.Contains(out, "deletes table/notes in acme, initech\n"+prompt) {
		t.Fatalf("deploy confirmed for the list shown: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, id := range []string{"acme", "initech"} {
		if out := c.ok("tenant", "show", id); hasNotes.MatchString(out) {
			t.Errorf("tenant show %s after the confirmed deploy: %s; want notes gone", id, out)
		}
	}
}

// TestRollbackAtATerminalStartsForTheListShown: rolling back the deploy
// that added notes deletes it; a tenant created on that release while the
// rollback asks would lose it too, so the rollback does not start (must
// not); asked again, it does (must).
func TestRollbackAtATerminalStartsForTheListShown(t *testing.T) {
	t.Parallel()
	c, withNotes := notesApp(t)
	writeFile(t, c.file, withNotes)
	args := []string{"--data-dir", c.dataDir, "--file", c.file, "rollout", "rollback"}
	code, out, errOut := atTerminal(t, args, func() { c.ok("tenant", "create", "initech") }, "yes")
	if want := "deletes table/notes in acme\n" + prompt; !strings.HasSuffix(out, want) || !strings.Contains(out, "Rolling back rollout ro-000001 returns accounts to release r-") {
		t.Errorf("stdout %q, want the preview's list ending %q", out, want)
	}
	want := "silo: what would be lost changed since you confirmed: it now deletes table/notes in acme, initech; nothing was started. Run silo rollout rollback ro-000001 again to see the new list and confirm it\n"
	if code != 1 || errOut != want {
		t.Fatalf("rollback confirmed while a tenant was created: exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
	if out := c.ok("tenant", "show", "initech"); !hasNotes.MatchString(out) {
		t.Errorf("tenant show initech after the refused rollback: %s; want notes kept", out)
	}
	code, out, errOut = atTerminal(t, args, nil, "yes")
	if code != 0 || !strings.Contains(out, "deletes table/notes in acme, initech\n"+prompt) {
		t.Fatalf("rollback confirmed for the list shown: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if out := c.ok("tenant", "show", "initech"); hasNotes.MatchString(out) {
		t.Errorf("tenant show initech after the confirmed rollback: %s; want notes gone", out)
	}
}

// TestDeployAtATerminalThroughAServer: the same through a running server:
// the list comes from the server's preview and the start carries its
// digest, so a tenant created on the server while the deploy asks stops it
// (must not), and the deploy asked again starts (must).
func TestDeployAtATerminalThroughAServer(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	withNotes := strings.Replace(string(src), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  notes: {}\n", 1)
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme")
		writeFile(t, file, withNotes)
		f.local("deploy") // ro-000001 adds notes
		writeFile(t, file, string(src))
	})
	args := []string{"--data-dir", f.client, "--file", f.file, "--server", f.url, "--token", f.token, "deploy", "--detach"}
	code, out, errOut := atTerminal(t, args, func() { f.remote("tenant", "create", "initech") }, "yes")
	if want := "deletes table/notes in acme\n" + prompt; !strings.HasSuffix(out, want) {
		t.Errorf("stdout %q, want the preview's list ending %q", out, want)
	}
	want := "silo: what would be lost changed since you confirmed: it now deletes table/notes in acme, initech; nothing was started. Run silo deploy again to see the new list and confirm it\n"
	if code != 1 || errOut != want {
		t.Fatalf("remote deploy confirmed while a tenant was created: exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
	if out := f.remote("rollout", "list"); strings.Contains(out, "ro-000002") {
		t.Errorf("a refused deploy started a rollout:\n%s", out)
	}
	code, out, errOut = atTerminal(t, args, nil, "yes")
	if code != 0 || !strings.Contains(out, "deletes table/notes in acme, initech\n"+prompt) || !strings.Contains(out, "ro-000002") {
		t.Fatalf("remote deploy confirmed for the list shown: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// TestApplyAtATerminalAppliesTheListShown: silo apply --all asks before
// deleting a table; a tenant created while it asks would lose it too, so
// the apply does not go ahead and changes nothing (must not); asked
// again, it applies (must).
func TestApplyAtATerminalAppliesTheListShown(t *testing.T) {
	t.Parallel()
	c := scaffold(t) // acme and globex
	c.edit(dropVisits...)
	args := []string{"--data-dir", c.dataDir, "--file", c.file, "apply", "--all"}
	code, out, errOut := atTerminal(t, args, func() { c.ok("tenant", "create", "initech") }, "yes")
	if !strings.HasSuffix(out, "This apply destroys data, which cannot be undone:\n  deletes table/visits in acme, globex\n"+prompt) {
		t.Errorf("stdout %q, want the list and the prompt", out)
	}
	want := "silo: what would be lost changed since you confirmed: it now deletes table/visits in acme, globex, initech; nothing was changed. Run silo apply again to see the new list and confirm it\n"
	if code != 1 || errOut != want {
		t.Fatalf("apply confirmed while a tenant was created: exit %d, stderr %q; want exit 1, %q", code, errOut, want)
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		if out := c.ok("tenant", "show", id); !hasVisits.MatchString(out) {
			t.Errorf("tenant show %s after the refused apply: %s; want visits kept", id, out)
		}
	}
	code, out, errOut = atTerminal(t, args, nil, "yes")
	if code != 0 || !strings.Contains(out, "  deletes table/visits in acme, globex, initech\n"+prompt) {
		t.Fatalf("apply confirmed for the list shown: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		if out := c.ok("tenant", "show", id); hasVisits.MatchString(out) {
			t.Errorf("tenant show %s after the confirmed apply: %s; want visits gone", id, out)
		}
	}
}

var hasVisits = regexp.MustCompile(`(?m)^\s*table\s+visits\s`)

// TestSavedPlanAtATerminalAppliesTheFleetItWasMadeFor: a saved plan that
// deletes a table, confirmed at a terminal while an account it names
// changes, is refused before it applies to any account (must not); made
// again and confirmed while nothing moves, it applies (must).
func TestSavedPlanAtATerminalAppliesTheFleetItWasMadeFor(t *testing.T) {
	t.Parallel()
	c := scaffold(t) // acme and globex
	c.edit(dropVisits...)
	plan := filepath.Join(t.TempDir(), "plan.json")
	c.ok("plan", "--all", "--out", plan)
	args := []string{"--data-dir", c.dataDir, "--file", c.file, "apply", "--plan", plan}
	code, _, errOut := atTerminal(t, args, func() { c.ok("tenant", "update", "globex", "--name", "Globex") }, "yes")
	if code != 1 || !strings.Contains(errOut, "the fleet changed since the plan was made (globex changed); nothing was changed") {
		t.Fatalf("saved plan confirmed while globex changed: exit %d, stderr %q", code, errOut)
	}
	for _, id := range []string{"acme", "globex"} {
		if out := c.ok("tenant", "show", id); !hasVisits.MatchString(out) {
			t.Errorf("tenant show %s after the refused saved plan: %s; want visits kept", id, out)
		}
	}
	c.ok("plan", "--all", "--out", plan)
	if code, out, errOut := atTerminal(t, args, nil, "yes"); code != 0 || !strings.Contains(out, prompt) {
		t.Fatalf("saved plan confirmed: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, id := range []string{"acme", "globex"} {
		if out := c.ok("tenant", "show", id); hasVisits.MatchString(out) {
			t.Errorf("tenant show %s after the confirmed saved plan: %s; want visits gone", id, out)
		}
	}
}
