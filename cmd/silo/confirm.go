package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
)

// confirm asks before an operation that destroys data. With --yes it goes
// ahead; on a terminal it asks for the word want to be typed; otherwise
// (a script, a pipe) it refuses with what to rerun, so that nothing is
// destroyed by a command that was never meant to. what says what would be
// destroyed, lower case as it follows "silo: " in the refusal; the prompt
// at a terminal starts it as a sentence.
func (g *globals) confirm(yes bool, what, want string) error {
	if yes {
		return nil
	}
	if !g.interactive() {
		return silo.Errorf(silo.CodeFailedCheck, "%s, which cannot be undone; nothing was changed. Rerun with --yes to confirm", what)
	}
	r, n := utf8.DecodeRuneInString(what)
	fmt.Fprintf(g.stdout, "%c%s, which cannot be undone.\nType %q to go ahead: ", unicode.ToUpper(r), what[n:], want)
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if strings.TrimSpace(line) != want {
		return silo.Errorf(silo.CodeFailedCheck, "not confirmed; nothing was changed")
	}
	return nil
}

// interactive reports whether stdin is a terminal (not a pipe, a file or
// /dev/null).
func (g *globals) interactive() bool {
	f, ok := g.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirmDataLoss runs start, a rollout or a rollback, confirmed with yes.
// Refused because it would destroy data (CodeNeedsConfirm), it asks on a
// terminal for "yes" and runs start again confirmed; elsewhere the refusal
// stands, and its message says what it would destroy and to rerun with
// --yes.
func (g *globals) confirmDataLoss(yes bool, start func(rollout.Options) (rollout.Rollout, error)) (rollout.Rollout, error) {
	r, err := start(rollout.Options{AllowDataLoss: yes})
	if yes || silo.ErrorCode(err) != silo.CodeNeedsConfirm || !g.interactive() {
		return r, err
	}
	fmt.Fprintf(g.stdout, "%s\nType \"yes\" to go ahead: ", silo.UserMessage(err))
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return r, silo.Errorf(silo.CodeFailedCheck, "not confirmed; no account was changed")
	}
	return start(rollout.Options{AllowDataLoss: true})
}
