package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	silo "github.com/silo-run/silo"
)

// openTerminal returns the two ends of a new pseudo-terminal: what is
// written to tty reads as typed at a terminal from term.
func openTerminal(t *testing.T) (tty, term *os.File) {
	t.Helper()
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here (%v): the prompt at a terminal is not checked", err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetPointerInt(int(tty.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	return tty, term
}

// TestConfirmAtATerminal: at a terminal, tenant delete asks in a sentence
// (a capital first, where the refusal after "silo: " is lower case) for
// the tenant's ID to be typed; a wrong word refuses and changes nothing
// (must not), the ID deletes (must).
func TestConfirmAtATerminal(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	for _, tc := range []struct {
		typed, wantErr string
		deleted        bool
	}{
		{typed: "acme", wantErr: "silo: not confirmed; nothing was changed\n"},
		{typed: "globex", deleted: true},
	} {
		t.Run(tc.typed, func(t *testing.T) {
			tty, term := openTerminal(t)
			if _, err := tty.WriteString(tc.typed + "\n"); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"--data-dir", c.dataDir, "--file", c.file, "tenant", "delete", "globex"}, term, &out, &errOut)
			prompt := "Deleting globex destroys its account and all its data, which cannot be undone.\nType \"globex\" to go ahead: "
			if !strings.HasPrefix(out.String(), prompt) {
				t.Errorf("stdout %q, want it to start with the prompt %q", out.String(), prompt)
			}
			if errOut.String() != tc.wantErr || (code == 0) != tc.deleted {
				t.Errorf("exit %d, stderr %q; want stderr %q", code, errOut.String(), tc.wantErr)
			}
			if st := accountState(t, c, "globex"); (st == silo.StateDeleted) != tc.deleted {
				t.Errorf("globex is %s after typing %q", st, tc.typed)
			}
		})
	}
}

// TestDataLossPromptNamesEveryAccount: at a terminal, apply's data-loss
// question names every account that loses data (five here, where the
// one-line form names three and counts the rest), so no account is
// confirmed unnamed; "no" changes nothing. Off a terminal the refusal,
// which names three, says how to see every account; the twin with three
// accounts or fewer does not.
func TestDataLossPromptNamesEveryAccount(t *testing.T) {
	c := scaffold(t) // acme, globex
	for _, id := range []string{"hooli", "initech", "umbrella"} {
		c.ok("tenant", "create", id)
	}
	c.edit(dropVisits...)
	before := stateOf(t, c)

	tty, term := openTerminal(t)
	if _, err := tty.WriteString("no\n"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--data-dir", c.dataDir, "--file", c.file, "apply", "--all"}, term, &out, &errOut)
	want := "This apply destroys data, which cannot be undone:\n  deletes table/visits in acme, globex, hooli, initech, umbrella\nType \"yes\" to go ahead: "
	if !strings.HasPrefix(out.String(), want) || code != 1 {
		t.Errorf("apply --all at a terminal: exit %d, stdout %q; want it to start with %q", code, out.String(), want)
	}
	c.fails("deletes table/visits in acme, globex, hooli, 2 more (silo plan --all lists every account)", "apply", "--all")
	if code, _, errOut := c.run("apply", "acme"); code != 1 || strings.Contains(errOut, "silo plan --all lists") {
		t.Errorf("apply acme: exit %d, %q; want the refusal without how to see more accounts", code, errOut)
	}
	if d := cmp.Diff(before, stateOf(t, c)); d != "" {
		t.Fatalf("refused applies changed the state (-before +after):\n%s", d)
	}
}
