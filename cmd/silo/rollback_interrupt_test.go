package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// Interrupting silo rollout rollback through a server while it follows
// the rollback (as soon as the rollback's ID is printed) says that the
// rollback goes on in the server, and how to reattach or stop it, and not
// to roll it back (a rollback is not rolled back); interrupting silo
// rollout resume says the resumed rollout goes on, as silo deploy does.
// The twins: each followed to its end says none of it.
func TestRollbackAndResumeInterruptedSayTheyGoOn(t *testing.T) {
	t.Parallel()
	c, file, src := gatedServer(t)
	follow := func(cancelOn string, args ...string) (int, string, string) {
		t.Helper()
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		re, stop := regexp.MustCompile(`^\b$`), func(error) {} // never
		if cancelOn != "" {
			re, stop = regexp.MustCompile(cancelOn), cancel
		}
		out := &cancelOnOutput{re: re, cancel: stop}
		var errOut lockedBuffer
		code := run(ctx, append([]string{"--data-dir", c.dataDir, "--file", c.file}, args...), strings.NewReader(""), out, &errOut)
		return code, out.b.String(), errOut.String()
	}

	// ro-000001 pauses: the canary gate sees no traffic.
	writeFile(t, file, strings.Replace(string(src)+gatedRing, "Hello, ", "Hi, ", 1))
	c.fails("is paused", "deploy")
	code, out, errOut := follow(`ro-000001`, "rollout", "resume")
	want := "silo: interrupted; rollout ro-000001 goes on in the server; run silo rollout status ro-000001 --follow to reattach, silo rollout abort ro-000001 to stop it, or silo rollout rollback ro-000001 to undo it\n"
	if code != 1 || errOut != want {
		t.Errorf("resume interrupted: exit %d, stderr %q; want exit 1 and %q\nstdout: %s", code, errOut, want, out)
	}
	// Twin: followed to its end, it pauses again and says so, not that it goes on.
	c.fails("is paused", "rollout", "status", "ro-000001", "--follow")
	if code, out, errOut := follow("", "rollout", "resume"); code == 0 || strings.Contains(errOut, "goes on") || !strings.Contains(errOut, "is paused") {
		t.Errorf("resume followed to its end: exit %d, stderr %q; want it to fail saying the rollout paused again\nstdout: %s", code, errOut, out)
	}

	code, out, errOut = follow(`ro-000002`, "rollout", "rollback", "ro-000001")
	want = "silo: interrupted; rollout ro-000002, the rollback of ro-000001, goes on in the server; run silo rollout status ro-000002 --follow to reattach, or silo rollout abort ro-000002 to stop it (accounts stay where they are then)\n"
	if code != 1 || errOut != want {
		t.Errorf("rollback interrupted: exit %d, stderr %q; want exit 1 and %q\nstdout: %s", code, errOut, want, out)
	}
	if got := c.ok("rollout", "status", "ro-000002", "--follow"); !strings.Contains(got, "succeeded") {
		t.Errorf("the interrupted rollback, reattached: %s; want it succeeded in the server", got)
	}

	// Twin: a rollback followed to its end says nothing of going on.
	writeFile(t, file, strings.Replace(string(src), "Hello, ", "Hey, ", 1))
	c.ok("deploy")
	if code, out, errOut := follow("", "rollout", "rollback"); code != 0 || errOut != "" || !strings.Contains(out, "succeeded") {
		t.Errorf("rollback followed to its end: exit %d, stderr %q, stdout %s; want it succeeded", code, errOut, out)
	}
}
