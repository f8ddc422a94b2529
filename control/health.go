package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// Checker is implemented by providers that can check the files of an
// account (the local provider: provider/local.Provider.CheckAccount).
// Accounts of other providers are not checked.
type Checker interface {
	CheckAccount(ctx context.Context, id silo.AccountID) error
}

// Problem is one thing wrong with an account that needs the operator or
// the platform's recovery: what is wrong and what to do.
type Problem struct {
	Account silo.AccountID `json:"account"`
	Problem string         `json:"problem"`
	Fix     string         `json:"fix"`
	// Missing marks the problem of a live account the provider holds
	// nothing of; a fleet check weighs these together (a data dir that is
	// an older copy misses every account created since).
	Missing bool `json:"missing,omitempty"`
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s; %s", p.Account, p.Problem, p.Fix) }

// AccountProblems returns what is wrong with account a: an onboarding or
// deletion left half done, files the provider finds damaged (Checker), and
// an account the provider should hold but does not. Drift is not a
// problem here (engine.Drift reports it).
func (p *Plane) AccountProblems(ctx context.Context, a silo.Account) []Problem {
	_, err := p.cfg.Provider.Resources(ctx, a.ID)
	return p.accountProblems(ctx, a, err)
}

// accountProblems is AccountProblems with the error of the provider's
// read of the account's resources (readErr) already known.
func (p *Plane) accountProblems(ctx context.Context, a silo.Account, readErr error) []Problem {
	var out []Problem
	add := func(problem, fix string) { out = append(out, Problem{Account: a.ID, Problem: problem, Fix: fix}) }
	switch a.State {
	case silo.StateDeleted:
		return nil
	case silo.StateProvisioning:
		fix := fmt.Sprintf("a running silo server or silo up finishes it by itself; else run silo apply %s to finish it", a.ID)
		if del := silo.DeleteCommand(a.Kind, a.ID); del != "" { // production is never deleted: finishing it is the only way
			fix += ", or " + del + " to roll it back"
		} else {
			fix += " once what stopped it is fixed"
		}
		add("its onboarding did not finish (it has no release yet)"+p.lastFailure(a.ID), fix)
	case silo.StateDeleting:
		add("its deletion did not finish"+p.lastFailure(a.ID),
			fmt.Sprintf("a running silo server or silo up finishes it by itself; else run %s again", silo.DeleteCommand(a.Kind, a.ID)))
	}
	err := readErr
	switch {
	case errors.Is(err, silo.ErrNotFound):
		if a.State != silo.StateProvisioning && a.State != silo.StateDeleting {
			// Deleting is the last way out, never the first: the cause is
			// as often a data dir that is not the installation's (an older
			// copy, another server's) as lost files, and a delete on a
			// shared registry cuts the live tenant off.
			fix := "first check that this is the data dir the installation's servers use (not an older copy or another machine's); if it is, restore the account from a backup of the data dir (docs/operations.md)"
			if del := silo.DeleteCommand(a.Kind, a.ID); del != "" {
				fix += "; only if no backup has it, run " + del + " to record it deleted"
			}
			out = append(out, Problem{Account: a.ID, Problem: "the provider holds no account for it (its data and data key are not here)", Fix: fix, Missing: true})
		}
		return out
	case silo.ErrorCode(err) == silo.CodeConflict:
		add(silo.UserMessage(err), "") // says what to do itself (another installation's account)
	case err != nil:
		_, doc, _ := p.readFailure(err)
		add(silo.UserMessage(err), "see "+doc)
	}
	if c, ok := p.cfg.Provider.(Checker); ok {
		if err := c.CheckAccount(ctx, a.ID); err != nil && !errors.Is(err, silo.ErrNotFound) {
			for _, e := range unjoin(err) {
				if len(out) > 0 && out[len(out)-1].Problem == silo.UserMessage(e) {
					continue // the same damage, found by Resources above
				}
				add(silo.UserMessage(e), "")
			}
		}
	}
	return out
}

// lastFailure says why this process's last retry of account id's
// onboarding or deletion failed and when it tries again
// (engine.Engine.Retries), or "" if none failed.
func (p *Plane) lastFailure(id silo.AccountID) string {
	cause, next, ok := p.Engine.Retries().Failing(id)
	if !ok {
		return ""
	}
	return fmt.Sprintf(": the last attempt failed (%s); the next is at %s", strings.TrimSuffix(cause, "."), next.Format(time.RFC3339))
}

// failureExplainer is implemented by providers that explain their own
// failures (the AWS provider: provider/aws.Provider.ReadFailure): why, in
// a few words, err kept them from reading an account, where their
// documentation says what to do, and whether the provider could not be
// reached at all (down: every further read would fail the same way).
// A why of "" explains nothing.
type failureExplainer interface {
	ReadFailure(err error) (why, doc string, down bool)
}

// readFailure explains err, an error of the provider reading an account
// (failureExplainer), for any provider: the local provider's failures
// are its files', which docs/operations.md covers.
func (p *Plane) readFailure(err error) (why, doc string, down bool) {
	if f, ok := p.cfg.Provider.(failureExplainer); ok {
		if why, doc, down = f.ReadFailure(err); why != "" {
			return why, doc, down
		}
	}
	return "the provider failed, see Problems", "docs/operations.md", false
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Orphans returns the accounts the provider holds that the registry does
// not know: data and keys no command reaches (silo orphan destroy
// destroys one; restoring the control-plane state that has it brings it
// back). An account the provider holds that the registry records as
// deleted is not an orphan: it is returned as a Problem whose fix deletes
// it again, which destroys it.
func (p *Plane) Orphans(ctx context.Context) ([]silo.AccountID, []Problem, error) {
	held, err := p.cfg.Provider.Accounts(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list provider accounts: %w", err)
	}
	known := map[silo.AccountID]silo.Account{}
	err = p.cfg.Store.View(ctx, func(tx store.Tx) error {
		accts, err := tx.Accounts(store.Filter{IncludeDeleted: true})
		for _, a := range accts {
			known[a.ID] = a
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var orphans []silo.AccountID
	var remains []Problem
	for _, id := range held {
		a, ok := known[id]
		switch {
		case !ok:
			orphans = append(orphans, id)
		case a.State == silo.StateDeleted:
			remains = append(remains, HeldAfterDeletion(a))
		}
	}
	return orphans, remains, nil
}

// HeldAfterDeletion is the problem of deleted account a while the provider
// still holds its data and data key (a deletion recorded from an older copy
// of the data dir on a shared store), as silo doctor and the console say it.
func HeldAfterDeletion(a silo.Account) Problem {
	return Problem{Account: a.ID,
		Problem: "it was deleted, but the provider still holds its data and data key (its deletion did not destroy them)",
		Fix:     "run " + silo.DeleteCommand(a.Kind, a.ID) + " to destroy them"}
}

// DeletedNotice is what is true of deleted account a, in the words the API
// and the CLI use (engine.DeletedAnswer): while the provider still holds it
// (held, as Detail.Ref says), that a creation under its ID is refused until
// deleting it again destroys what is left; otherwise the command that
// starts over under its ID. Neither claims its data key is destroyed.
func DeletedNotice(a silo.Account, held bool) string {
	return silo.UserMessage(engine.DeletedAnswer(a, held, nil))
}

// OrphanFix is what to do about the orphan id, as silo doctor and silo
// drift say it.
func OrphanFix(id silo.AccountID) string {
	return "restore the control-plane state that has it (docs/operations.md), or, if its data is not wanted, destroy it with " + engine.DestroyOrphanCommand(id)
}

// CheckRegistry refuses a registry that holds no account at all while the
// provider holds some: the control-plane state (state.db) was lost or
// replaced, and starting on it would show an empty fleet, prove
// isolation over nothing and let IDs be reused over live data.
//
// # Errors
//
// CodeFailedCheck naming the accounts and how to restore; stateFile names
// the state for the user ("the data dir's control-plane state (state.db)").
func (p *Plane) CheckRegistry(ctx context.Context, stateFile string) error {
	var n int
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		// Is there one? Not how many: the check runs at every start
		// and must not read the whole registry.
		var err error
		n, err = tx.CountAccounts(store.Filter{IncludeDeleted: true, Limit: 1})
		return err
	})
	if err != nil || n > 0 {
		return err
	}
	held, err := p.cfg.Provider.Accounts(ctx)
	if err != nil || len(held) == 0 {
		return err
	}
	names := silo.ShortList(held, 5)
	if p.cfg.Provider.Name() != "local" {
		// A remote provider's accounts may be another installation's: an
		// organization serves one installation (docs/aws.md).
		return silo.Errorf(silo.CodeFailedCheck,
			"%s holds no accounts, but the %s provider holds %d (%s): either this installation's state was lost (stop every silo process on this data dir and restore %s from a backup, see docs/operations.md), or another installation uses the same organization (one organization serves one installation: use that installation's data dir, or another organization); silo will not start on an empty registry while accounts exist",
			stateFile, p.cfg.Provider.Name(), len(held), names, stateFile)
	}
	return silo.Errorf(silo.CodeFailedCheck,
		"%s holds no accounts, but the provider holds %d (%s): the state was lost or replaced; stop every silo process on this data dir and restore %s from a backup (see docs/operations.md); silo will not start on an empty registry while accounts exist",
		stateFile, len(held), names, stateFile)
}

// ResumeReport says what Resume did.
type ResumeReport struct {
	Resumed []silo.AccountID  `json:"resumed,omitempty"` // onboardings finished
	Pending []silo.AccountID  `json:"pending,omitempty"` // the provider is still creating the account: tried again next time
	Failed  map[string]string `json:"failed,omitempty"`  // account → why it could not be finished
}

// Resume finishes onboardings left half done: every account in state
// provisioning that no process is working on (no pending intent; run
// engine.Recover first so that the intents of dead processes are settled)
// is planned against the current release and applied, which creates it in
// the provider if needed and makes it active. Deletions left half done are
// finished by engine.Recover. An account that fails is reported and the
// others go on.
func (p *Plane) Resume(ctx context.Context) (ResumeReport, error) {
	rep := ResumeReport{Failed: map[string]string{}}
	var accts []silo.Account
	busy := map[silo.AccountID]bool{}
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if accts, err = tx.Accounts(store.Filter{State: silo.StateProvisioning}); err != nil {
			return err
		}
		pending, err := tx.PendingIntents()
		for _, in := range pending {
			busy[in.Account] = true
		}
		return err
	})
	if err != nil || len(accts) == 0 {
		return rep, err
	}
	rel, err := p.CurrentRelease(ctx)
	if err != nil {
		return rep, err
	}
	retries := p.Engine.Retries()
	for _, a := range accts {
		if busy[a.ID] || a.State != silo.StateProvisioning || !retries.Due(a) {
			continue
		}
		err := p.resumeOne(ctx, a, rel)
		if provider.IsPending(err) {
			rep.Pending = append(rep.Pending, a.ID)
			p.cfg.Logger.Info("the provider is still creating an account; trying again later", "account", a.ID)
			continue
		}
		if err != nil {
			rep.Failed[string(a.ID)] = silo.UserMessage(err)
			next := p.Engine.FailedRetry(ctx, a, err)
			p.cfg.Logger.Warn("could not finish an interrupted onboarding; trying again later", "account", a.ID, "next", next.Format(time.RFC3339), "error", silo.ForLog(err))
			continue
		}
		retries.Succeeded(a.ID)
		rep.Resumed = append(rep.Resumed, a.ID)
		p.cfg.Logger.Info("finished an interrupted onboarding", "account", a.ID, "release", rel.ID)
	}
	return rep, nil
}

func (p *Plane) resumeOne(ctx context.Context, a silo.Account, rel engine.Release) error {
	plan, err := p.Engine.PlanAccount(ctx, a, rel)
	if err != nil {
		return err
	}
	if err := p.Engine.Apply(ctx, plan); err != nil {
		return err
	}
	return p.pushKeys(ctx, a.ID) // keys issued while it was being created
}
