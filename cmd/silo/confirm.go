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

// lossShown is how many accounts of one loss the terminal prompt names;
// the rest are counted (the console names as many).
const lossShown = 50

// printLosses prints each loss on a line of its own, naming up to
// lossShown accounts; past that it counts the rest and says where to see
// them (seeAll).
func (g *globals) printLosses(losses []silo.Loss, seeAll string) {
	for _, l := range losses {
		more := ""
		if len(l.Accounts) > lossShown {
			more = " (" + seeAll + ")"
		}
		fmt.Fprintf(g.stdout, "  %ss %s in %s%s\n", l.Op, l.Key(), silo.ShortList(l.Accounts, lossShown), more)
	}
}

// confirmLosses asks for "yes" before an apply that destroys data, as
// confirm does, listing at a terminal every loss with the accounts it
// happens in (printLosses), so that no account is confirmed unnamed.
// Elsewhere the refusal names the losses in one line and how to see
// every account.
func (g *globals) confirmLosses(yes bool, what string, losses []silo.Loss) error {
	if yes || len(losses) == 0 {
		return nil
	}
	const seeAll = "silo plan --all lists every account"
	if !g.interactive() {
		see := ""
		for _, l := range losses {
			if len(l.Accounts) > 3 { // DescribeLosses names 3
				see = " (" + seeAll + ")"
			}
		}
		return silo.Errorf(silo.CodeFailedCheck, "%s (%s%s), which cannot be undone; nothing was changed. Rerun with --yes to confirm", what, silo.DescribeLosses(losses), see)
	}
	r, n := utf8.DecodeRuneInString(what)
	fmt.Fprintf(g.stdout, "%c%s, which cannot be undone:\n", unicode.ToUpper(r), what[n:])
	g.printLosses(losses, seeAll)
	fmt.Fprint(g.stdout, "Type \"yes\" to go ahead: ")
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return silo.Errorf(silo.CodeFailedCheck, "not confirmed; nothing was changed")
	}
	return nil
}

// lossConfirm is how confirmDataLoss asks at a terminal: preview returns
// what the start would destroy (and fixes which rollout a default ID
// names, so that the start acts on the one previewed); heading says what
// is being started, as a sentence, for the preview; again names the
// command to run again.
type lossConfirm struct {
	preview func() (rollout.Preview, error)
	heading func(rollout.Preview) string
	again   string
}

// confirmDataLoss runs start, a rollout or a rollback, confirmed with yes.
// Refused because it would destroy data (CodeNeedsConfirm), at a terminal
// it previews what it would destroy, shows that list, asks for "yes", and
// starts again confirmed for that list only (its digest,
// rollout.Options.LossesDigest): if the fleet changed in between (a tenant
// created, another release), nothing starts and the error names what it
// would destroy now. Elsewhere the refusal stands, and its message says
// what it would destroy and to rerun with --yes; --yes confirms whatever
// the planning as it starts finds. lc is nil for operations that never
// destroy data.
func (g *globals) confirmDataLoss(yes bool, lc *lossConfirm, start func(rollout.Options) (rollout.Rollout, error)) (rollout.Rollout, error) {
	r, err := start(rollout.Options{AllowDataLoss: yes})
	if yes || silo.ErrorCode(err) != silo.CodeNeedsConfirm || lc == nil || !g.interactive() {
		return r, err
	}
	pv, err := lc.preview()
	if err != nil {
		return r, err
	}
	if len(pv.Losses) == 0 {
		// What it would destroy went away since the refusal: start it
		// unconfirmed, refused again if that changes once more.
		return start(rollout.Options{})
	}
	fmt.Fprintf(g.stdout, "%s, which cannot be undone:\n", lc.heading(pv))
	g.printLosses(pv.Losses, "GET /v1/rollouts/preview?release=… lists every account")
	fmt.Fprint(g.stdout, "Type \"yes\" to go ahead: ")
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return r, silo.Errorf(silo.CodeFailedCheck, "not confirmed; no account was changed")
	}
	r, err = start(rollout.Options{AllowDataLoss: true, LossesDigest: pv.Digest})
	if silo.ErrorCode(err) != silo.CodeConflict {
		return r, err
	}
	// Refused as a conflict: another rollout started, or what it would
	// destroy is no longer what was shown. Said the second way, in the
	// CLI's words.
	now, perr := lc.preview()
	if perr != nil || now.Digest == pv.Digest {
		return r, err
	}
	what := "it would destroy nothing"
	if len(now.Losses) > 0 {
		what = "it now " + silo.DescribeLosses(now.Losses)
	}
	return r, silo.Errorf(silo.CodeConflict, "what would be lost changed since you confirmed: %s; nothing was started. Run %s again to see the new list and confirm it", what, lc.again)
}
