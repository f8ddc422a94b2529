package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// CreateAccount registers a new account, creates it in the provider and
// applies rel to it (when rel.Stack is not nil), leaving it active. The
// registry row, the intents and an audit event commit together before any
// provider call; a crash after that is finished by Recover.
//
// If the provider reports the account still being created
// (provider.Pending), CreateAccount returns at once, without an error, the
// account in state provisioning: the next apply of it (control.Plane.Resume,
// which a serving platform runs every few seconds, or silo apply) calls the
// provider again, which resumes the creation, and applies the stack.
//
// A new account never takes over what the provider already holds under
// its ID (see refuseHeld): only the journal's own resume of a creation
// this registry started (an account in state provisioning, finished by
// Apply) completes an account the provider holds.
//
// # Errors
//
// silo.ErrConflict if the ID is taken or a second production account is
// requested (the latter also matches ErrProductionExists, before anything
// was written), or if the provider already holds an account under the ID
// that the registry does not know or records as deleted (nothing written);
// CodeInvalid if the parameters do not fit the stack.
func (e *Engine) CreateAccount(ctx context.Context, a silo.Account, rel Release) (silo.Account, error) {
	return e.CreateAccountThen(ctx, a, rel, nil)
}

// ErrProductionExists is matched (errors.Is) by CreateAccount's error when
// it was asked for a production account and one is registered already:
// another command or server created it first, and nothing was written.
// Its code is silo.CodeConflict.
var ErrProductionExists = errors.New("the production account exists already")

// CreateAccountThen is CreateAccount with then, if not nil, run inside the
// transaction that records the provider's results and makes the account
// active (only when the account does become active), with the account as
// it will be stored. The control plane issues an account's first API key
// there, so onboarding commits twice instead of three times. An error from
// then rolls that transaction back: the account stays provisioning with its
// intents pending, as after any failed commit, and Recover confirms them.
//
// The first transaction asks the store to hold the audit witness back until
// the second one (see witnessDeferrer), so the witness is written once per
// onboarding.
func (e *Engine) CreateAccountThen(ctx context.Context, a silo.Account, rel Release, then func(store.Tx, silo.Account) error) (silo.Account, error) {
	now := e.cfg.Now()
	a.State, a.Created, a.Updated, a.Version = silo.StateProvisioning, now, now, 1
	p := silo.Plan{Account: a.ID, Kind: a.Kind, Version: 1}
	if rel.Stack != nil {
		desired, err := e.desired(rel, a)
		if err != nil {
			return a, err
		}
		p.Release, p.DesiredHash = rel.ID, silo.SetHash(desired)
		p.Changes, p.Unchanged = Diff(desired, nil)
	}
	if err := e.Refusing(); err != nil {
		return a, err
	}
	if err := e.refuseHeld(ctx, a); err != nil {
		return a, err
	}
	var seqs []int64
	var createSeq int64
	attempt := e.newAttempt()
	err := e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		seqs = seqs[:0]
		a.Created, a.Updated = now, now
		if old, err := tx.Account(a.ID); err == nil && old.State == silo.StateDeleted {
			// A deleted account's ID may be reused; its data key is gone.
			// Its usage is kept under its creation time, which the new
			// account's must follow (on a clock that did not move, too)
			// for the two to stay apart.
			if err := tx.PurgeAccount(a.ID); err != nil {
				return err
			}
			if !a.Created.After(old.Created) {
				a.Created = old.Created.Add(time.Microsecond)
				a.Updated = a.Created
			}
		}
		if rel.Stack != nil {
			if err := checkShip(tx, rel.ID, a); err != nil {
				return err
			}
		}
		if err := tx.CreateAccount(a); err != nil {
			if errors.Is(err, silo.ErrConflict) {
				if a.Kind == silo.KindProduction {
					return &silo.Error{Code: silo.CodeConflict, Message: "the production account exists already; there is exactly one", Err: ErrProductionExists}
				}
				if old, oerr := tx.Account(a.ID); oerr == nil && old.State == silo.StateProvisioning {
					return silo.Errorf(silo.CodeConflict, "account %s exists already, in state provisioning: its onboarding did not finish; a running silo server finishes it by itself, else run silo apply %s (or %s to roll it back)", a.ID, a.ID, silo.DeleteCommand(old.Kind, a.ID))
				}
				return silo.Errorf(silo.CodeConflict, "account %s exists already; choose another ID or use silo tenant show %s", a.ID, a.ID)
			}
			return err
		}
		var err error
		createSeq, err = tx.AddIntent(store.Intent{Key: "create-account/" + string(a.ID) + "/" + attempt, Account: a.ID, Action: "create-account", State: store.IntentPending, Created: now, Updated: now})
		if err != nil {
			return err
		}
		for i := range p.Changes {
			c := p.Changes[i]
			seq, err := tx.AddIntent(store.Intent{Key: intentKey(a.ID, 1, attempt, c), Account: a.ID, Action: "apply", Change: &c, State: store.IntentPending, Created: now, Updated: now})
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		detail, _ := json.Marshal(map[string]any{"kind": a.Kind, "params": a.Params, "release": rel.ID})
		_, err = tx.AppendAudit(store.AuditEvent{Time: now, Actor: e.cfg.Actor, Action: "account.create", Account: a.ID, Detail: detail})
		if d, ok := tx.(witnessDeferrer); ok && err == nil {
			d.DeferWitness()
		}
		return err
	})
	if err != nil {
		return a, fmt.Errorf("create account %s: %w", a.ID, err)
	}
	release := e.hold(ctx, append([]int64{createSeq}, seqs...)...)
	e.hook("journaled", a.ID, nil)
	for i := range p.Changes {
		p.Changes[i].Release = p.Release
	}
	done, provErr := e.createInProvider(ctx, a, p.Changes)
	release()
	err = e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Account(a.ID)
		if err != nil {
			return err
		}
		st := store.IntentDone
		if provErr != nil && done == 0 {
			st = store.IntentFailed // also when pending: the next apply creates it again
		}
		if err := tx.FinishIntent(createSeq, st, errText(provErr)); err != nil {
			return err
		}
		for i, c := range p.Changes {
			if i >= done {
				if err := tx.FinishIntent(seqs[i], store.IntentFailed, "not completed: "+errText(provErr)); err != nil {
					return err
				}
				continue
			}
			if err := record(tx, a.ID, c); err != nil {
				return err
			}
			if err := tx.FinishIntent(seqs[i], store.IntentDone, ""); err != nil {
				return err
			}
		}
		if provErr != nil {
			return nil
		}
		cur.State, cur.StackHash, cur.Release, cur.Updated = silo.StateActive, p.DesiredHash, p.Release, e.cfg.Now()
		if err := tx.UpdateAccount(cur); err != nil {
			return err
		}
		cur.Version++
		if then != nil {
			if err := then(tx, cur); err != nil {
				return err
			}
		}
		a = cur
		return nil
	})
	if err != nil {
		return a, fmt.Errorf("record account %s: %w", a.ID, err)
	}
	e.hook("recorded", a.ID, nil)
	if provider.IsPending(provErr) && done == 0 {
		return a, nil // provisioning; the caller shows the state
	}
	if provErr != nil {
		back := "" // production is never deleted: finishing it is the only way
		if del := silo.DeleteCommand(a.Kind, a.ID); del != "" {
			back = " (" + del + " rolls it back)"
		}
		return a, silo.Errorf(silo.ErrorCode(provErr), "account %s was registered but provisioning failed (%w); it stays in state provisioning: a running silo server or silo up finishes it by itself, else silo apply %s does once the cause is fixed%s", a.ID, provErr, a.ID, back)
	}
	return a, nil
}

// refuseHeld refuses the creation of account a when the provider already
// holds an account under its ID that the registry does not know (an
// orphan: e.g. one created after the backup of the control-plane state
// that was restored) or records as deleted (a deletion recorded without
// the provider destroying it), or is still creating one under it (a
// provider whose creations outlast CreateAccount, such as AWS: Ref does
// not see the account until the creation finishes). Creating it would
// hand the new account the old one's data and data key, which may be
// another customer's, or wait for the creation in progress and take its
// account over. Nothing is written. An ID the registry holds live is left to the registration,
// which refuses it as taken; so is one a concurrent creation registers
// while the provider is asked.
//
// # Errors
//
// CodeConflict saying what the provider holds and the two ways out; the
// provider's error, saying that nothing was created, when it cannot say
// whether it holds the ID (damaged files, AWS unreachable).
func (e *Engine) refuseHeld(ctx context.Context, a silo.Account) error {
	registered := func() (silo.Account, bool, error) {
		var old silo.Account
		err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			old, err = tx.Account(a.ID)
			return err
		})
		if errors.Is(err, silo.ErrNotFound) {
			return old, false, nil
		}
		return old, err == nil, err
	}
	old, known, err := registered()
	if err != nil || known && old.State != silo.StateDeleted {
		return err
	}
	held, err := e.holds(ctx, a.ID)
	if err != nil {
		// Unknown is not "not held": go on only once the provider can say.
		return &silo.Error{Code: silo.ErrorCode(err), Err: err,
			Message: fmt.Sprintf("the provider cannot say whether it already holds an account named %s, so nothing was created: %s", a.ID, silo.UserMessage(err))}
	}
	var creating bool
	var since time.Time
	if c, ok := e.cfg.Provider.(creations); ok && !held {
		// Not held yet is not free: a creation under the ID may still be
		// under way, and a CreateAccount would wait for it and take its
		// account over.
		if since, creating, err = c.CreationInProgress(ctx, a.ID); err != nil {
			return &silo.Error{Code: silo.ErrorCode(err), Err: err,
				Message: fmt.Sprintf("the provider cannot say whether it is already creating an account named %s, so nothing was created: %s", a.ID, silo.UserMessage(err))}
		}
	}
	if !held && !creating {
		return nil
	}
	if old, known, err = registered(); err != nil || known && old.State != silo.StateDeleted {
		return err // registered since: the registration says it is taken
	}
	if creating {
		when := ""
		if !since.IsZero() {
			when = " (requested " + since.UTC().Format(time.RFC3339) + ")"
		}
		return silo.Errorf(silo.CodeConflict, "a creation of account %s is still in progress at the %s provider%s, and this registry did not start it (another installation's, or one started by state this installation lost); wait until it finishes and try again, and the answer then says what to do with the account it made; nothing was created", a.ID, e.cfg.Provider.Name(), when)
	}
	if known {
		return silo.Errorf(silo.CodeConflict, "account %s was deleted, but the provider still holds its data and data key: its deletion did not destroy them; run %s to destroy them, then create it again; nothing was created", a.ID, silo.DeleteCommand(old.Kind, a.ID))
	}
	return silo.Errorf(silo.CodeConflict, "the provider already holds an account named %s that the registry does not know: restore the control-plane state that has it (docs/operations.md), or destroy the orphan with %s; nothing was created", a.ID, DestroyOrphanCommand(a.ID))
}

// creations is a provider whose account creations go on after
// CreateAccount returns (provider.Pending): it says whether one under an
// ID is in progress, which Ref does not see (the AWS provider).
type creations interface {
	CreationInProgress(ctx context.Context, id silo.AccountID) (since time.Time, ok bool, err error)
}

// DestroyOrphanCommand is the command that destroys the orphan id (see
// DestroyOrphan), as errors and silo doctor name it.
func DestroyOrphanCommand(id silo.AccountID) string {
	return "silo orphan destroy " + string(id) + " --yes"
}

// DestroyOrphan destroys an account the provider holds that the registry
// does not know (an orphan), with its data and its data key, after an
// audit event (account.destroy-orphan) records who asked. It is the
// deliberate way out of refuseHeld's refusal when the orphan's data is not
// wanted; restoring the control-plane state that has the account is the
// other.
//
// # Errors
//
// CodeConflict for an account the registry knows (it names the command
// that deletes it), CodeNotFound when the provider holds nothing under id;
// nothing is written for either. The provider's error, with the audit
// event kept, when it could not destroy the orphan: run it again.
func (e *Engine) DestroyOrphan(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	if _, err := silo.ParseID(string(id)); err != nil {
		return provider.Deletion{}, err
	}
	if err := e.Refusing(); err != nil {
		return provider.Deletion{}, err
	}
	known := func(tx store.Tx) error {
		a, err := tx.Account(id)
		switch {
		case errors.Is(err, silo.ErrNotFound):
			return nil
		case err != nil:
			return err
		case a.Kind == silo.KindProduction:
			return silo.Errorf(silo.CodeConflict, "account %s is the registry's production account, not an orphan; it cannot be deleted", id)
		case a.State == silo.StateDeleted:
			return silo.Errorf(silo.CodeConflict, "account %s is in the registry, as deleted, so it is not an orphan; %s destroys what the provider still holds of it", id, silo.DeleteCommand(a.Kind, id))
		}
		return silo.Errorf(silo.CodeConflict, "account %s is in the registry (%s), so it is not an orphan; delete it with %s", id, a.State, silo.DeleteCommand(a.Kind, id))
	}
	if err := e.cfg.Store.View(ctx, known); err != nil {
		return provider.Deletion{}, err
	}
	held, err := e.holds(ctx, id)
	if err != nil {
		return provider.Deletion{}, err
	}
	if !held {
		return provider.Deletion{}, silo.Errorf(silo.CodeNotFound, "the provider holds no account named %s, so there is nothing to destroy; silo doctor lists the orphans", id)
	}
	err = e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		if err := known(tx); err != nil {
			return err
		}
		_, err := tx.AppendAudit(store.AuditEvent{Time: e.cfg.Now(), Actor: e.cfg.Actor, Action: "account.destroy-orphan", Account: id})
		return err
	})
	if err != nil {
		return provider.Deletion{}, fmt.Errorf("destroy orphan %s: %w", id, err)
	}
	del, err := e.cfg.Provider.DeleteAccount(ctx, id)
	if err != nil {
		return del, silo.Errorf(silo.ErrorCode(err), "the provider could not destroy the orphan %s (%w); run the command again", id, err)
	}
	return del, nil
}

// witnessDeferrer is a store transaction whose audit witness (see
// isolation.WitnessedStore) may be written after the next commit of the
// store instead of after this one. CreateAccount's first transaction asks
// for it: its second transaction follows at once (whatever the provider
// did), and the witness written after it covers both. A crash in between
// leaves the witness behind the log, which the audit check accepts, as it
// accepts a crash between any commit and its witness write.
type witnessDeferrer interface{ DeferWitness() }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Live returns nil for an account that is not deleted. For a deleted one it
// returns the one answer every action on it gets (plan, apply, a state
// change, new parameters, limits, API keys, secrets, a data key rotation,
// drift, a report): CodeNotFound, saying that the account was deleted and
// which command makes a new, empty account under its ID, with the account
// as its cause (*Deleted). That is true only while the provider holds
// nothing of the account: callers pass the answer through Engine.Answer,
// which asks the provider. What is kept of a deleted account (its registry
// row, its revoked keys, its usage, the audit log) is still read by the
// commands that show it.
func Live(a silo.Account) error {
	if a.State != silo.StateDeleted {
		return nil
	}
	return DeletedAnswer(a, false, nil)
}

// Deleted is the cause (errors.As) of Live's answer: the deleted account
// an action was refused for.
type Deleted struct{ Account silo.Account }

func (d *Deleted) Error() string { return "account " + string(d.Account.ID) + " was deleted" }

// DeletedAnswer is what is true of deleted account a, as the error an
// action on it gets (CodeNotFound, caused by *Deleted): while the provider
// still holds it (held: a deletion that did not destroy its data and data
// key, after which a creation under its ID is refused), the command that
// destroys what is left and then the one that starts over; when the
// provider could not say (look, its error), that starting over waits for
// its answer; otherwise the command that makes a new, empty account under
// its ID. None claims the data key is destroyed.
func DeletedAnswer(a silo.Account, held bool, look error) error {
	again, what := "silo tenant create "+string(a.ID), "tenant"
	switch a.Kind {
	case silo.KindEnvironment:
		again, what = "silo env create "+string(a.ID), "environment"
	case silo.KindDeveloper:
		again, what = "silo dev --user "+strings.TrimPrefix(string(a.ID), "dev-"), "developer account"
	}
	msg := fmt.Sprintf("account %s was deleted; %s makes a new, empty %s under that ID", a.ID, again, what)
	switch {
	case held:
		msg = fmt.Sprintf("account %s was deleted, but the provider still holds its data and data key (its deletion did not destroy them), so %s is refused; %s destroys them, and then %s makes a new, empty %s under that ID", a.ID, again, silo.DeleteCommand(a.Kind, a.ID), again, what)
	case look != nil:
		msg = fmt.Sprintf("account %s was deleted; whether the provider still holds its data and data key could not be read (%s), and %s makes a new, empty %s under that ID only once the provider says it holds nothing of it (silo doctor shows what it holds)", a.ID, silo.UserMessage(look), again, what)
	}
	return &silo.Error{Code: silo.CodeNotFound, Message: msg, Err: &Deleted{Account: a}}
}

// Answer returns err as its caller should read it: Live's answer for a
// deleted account is told, with one question to the provider, whether the
// provider still holds that account (DeletedAnswer); any other error is
// returned as it is. Only an err whose message is Live's (its first
// *silo.Error is caused by *Deleted) is changed.
func (e *Engine) Answer(ctx context.Context, err error) error {
	var se *silo.Error
	if !errors.As(err, &se) {
		return err
	}
	d, ok := se.Err.(*Deleted)
	if !ok {
		return err
	}
	held, look := e.holds(ctx, d.Account.ID)
	return DeletedAnswer(d.Account, held, look)
}

// SetState moves an account to another lifecycle state (suspend, resume),
// with an audit event in the same transaction.
func (e *Engine) SetState(ctx context.Context, id silo.AccountID, next silo.State, action string) (silo.Account, error) {
	var a silo.Account
	err := e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Account(id)
		if err != nil {
			return err
		}
		if err := Live(a); err != nil {
			return err
		}
		if a.State == next {
			return nil
		}
		if !a.State.CanTransition(next) {
			return silo.Errorf(silo.CodeConflict, "account %s is %s and cannot become %s", id, a.State, next)
		}
		a.State, a.Updated = next, e.cfg.Now()
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		a.Version++
		_, err = tx.AppendAudit(store.AuditEvent{Time: a.Updated, Actor: e.cfg.Actor, Action: action, Account: id})
		return err
	})
	return a, err
}

// DeleteAccount destroys an account: it is marked deleting (with an intent
// and an audit event), the provider destroys it and its data key, then its
// recorded resources and keys are purged and it is marked deleted. It
// returns what the provider reported it did (provider.Deletion), so that
// the caller says exactly that. The production account cannot be deleted.
//
// An account already deleted whose data the provider still holds (its
// deletion was recorded without destroying them, e.g. from an older copy
// of the data dir on a shared store) is destroyed the same way, with an
// audit event saying so; a deleted account the provider does not hold gets
// Live's error, and nothing is written.
func (e *Engine) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	del, _, err := e.deleteAccount(ctx, id, nil, false)
	return del, err
}

// errSettled is deleteAccount's error when the interrupted deletion it was
// to resume was taken over by another process first: nothing was written.
var errSettled = errors.New("another process settled the intent first")

// deleteAccount is DeleteAccount; with resumes, the pending intent of an
// interrupted deletion of id (see Recover), it first claims that intent:
// the transaction that journals this deletion finishes it, if it is still
// pending and its owner still not alive, and otherwise writes nothing and
// deleteAccount returns errSettled. So of several servers recovering at
// once one resumes the deletion, and a crash leaves either the old intent
// pending or the new one, never neither. It reports whether it finished
// resumes (as failed: the new deletion replaces it).
//
// With retry (RetryDeletions), it deletes again an account whose deletion
// failed: the transaction that journals it finds no deletion of the
// account pending, else it writes nothing and deleteAccount returns
// errSettled; so of several servers retrying at once one deletes it. A
// retry appends no audit event: the deletion it finishes was audited when
// it was asked for.
func (e *Engine) deleteAccount(ctx context.Context, id silo.AccountID, resumes *store.Intent, retry bool) (del provider.Deletion, claimed bool, err error) {
	if err := e.Refusing(); err != nil {
		return provider.Deletion{}, false, err
	}
	remains, err := e.deletedButHeld(ctx, id)
	if err != nil {
		return provider.Deletion{}, false, fmt.Errorf("delete account %s: %w", id, err)
	}
	now := e.cfg.Now()
	var seq int64
	attempt := e.newAttempt()
	err = e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		if resumes != nil {
			if ok, err := e.claim(tx, *resumes); err != nil {
				return err
			} else if !ok {
				return errSettled
			}
			if err := tx.FinishIntent(resumes.Seq, store.IntentFailed, "interrupted; the deletion was resumed by "+attempt); err != nil {
				return err
			}
		}
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		if a.Kind == silo.KindProduction {
			return silo.Errorf(silo.CodeForbidden, "the production account cannot be deleted; it holds the resources every tenant reads")
		}
		if retry {
			if busy, err := deletionPending(tx, id); err != nil {
				return err
			} else if busy {
				return errSettled
			}
		}
		if a.State == silo.StateDeleted && !remains {
			return Live(a)
		}
		if a.State != silo.StateDeleting && a.State != silo.StateDeleted {
			a.State, a.Updated = silo.StateDeleting, now
			if err := tx.UpdateAccount(a); err != nil {
				return err
			}
		}
		seq, err = tx.AddIntent(store.Intent{Key: "delete-account/" + string(id) + "/" + attempt, Account: id, Action: "delete-account", State: store.IntentPending, Created: now, Updated: now})
		if err != nil || retry {
			return err
		}
		ev := store.AuditEvent{Time: now, Actor: e.cfg.Actor, Action: "account.delete", Account: id}
		if a.State == silo.StateDeleted {
			ev.Detail, _ = json.Marshal(map[string]string{"finishes": "the account was deleted, but the provider still held it"})
		}
		_, err = tx.AppendAudit(ev)
		return err
	})
	if errors.Is(err, errSettled) {
		return provider.Deletion{}, false, err
	}
	if err != nil {
		return provider.Deletion{}, false, fmt.Errorf("delete account %s: %w", id, err)
	}
	claimed = resumes != nil
	release := e.hold(ctx, seq)
	e.hook("journaled", id, nil)
	del, provErr := e.cfg.Provider.DeleteAccount(ctx, id)
	if provErr == nil {
		e.hook("provider", id, nil)
	}
	release()
	err = e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		if provErr != nil {
			return tx.FinishIntent(seq, store.IntentFailed, provErr.Error())
		}
		if err := tx.FinishIntent(seq, store.IntentDone, ""); err != nil {
			return err
		}
		return e.markDeleted(tx, id)
	})
	if err != nil {
		return del, claimed, fmt.Errorf("record deletion of %s: %w", id, err)
	}
	if provErr != nil {
		if remains {
			return del, claimed, silo.Errorf(silo.ErrorCode(provErr), "account %s was deleted, but the provider could not destroy what it still holds of it (%w); run the delete again", id, provErr)
		}
		return del, claimed, silo.Errorf(silo.ErrorCode(provErr), "account %s is marked deleting but the provider could not destroy it (%w); run the delete again (a running silo server or silo up also tries again by itself)", id, provErr)
	}
	return del, claimed, nil
}

// deletedButHeld reports whether account id is recorded as deleted while
// the provider still holds it. It returns the registry's error for an
// unknown account (the deletion's transaction would return it too).
func (e *Engine) deletedButHeld(ctx context.Context, id silo.AccountID) (bool, error) {
	var a silo.Account
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Account(id)
		return err
	})
	if err != nil || a.State != silo.StateDeleted {
		return false, err
	}
	return e.holds(ctx, id)
}

// holds reports whether the provider holds an account under id.
func (e *Engine) holds(ctx context.Context, id silo.AccountID) (bool, error) {
	_, err := e.cfg.Provider.Ref(ctx, id)
	if errors.Is(err, silo.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for account %s in the provider: %w", id, err)
	}
	return true, nil
}

func (e *Engine) markDeleted(tx store.Tx, id silo.AccountID) error {
	a, err := tx.Account(id)
	if err != nil {
		return err
	}
	rs, err := tx.Resources(id)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := tx.DeleteResource(id, r.Type, r.Name); err != nil {
			return err
		}
	}
	keys, err := tx.Keys(id)
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	for _, k := range keys {
		// A key still in its grace period ends now too.
		if k.Revoked == nil || k.Revoked.After(now) {
			t := now
			k.Revoked = &t
			if err := tx.PutKey(k); err != nil {
				return err
			}
		}
	}
	a.State, a.StackHash, a.Release, a.Updated = silo.StateDeleted, "", "", e.cfg.Now()
	return tx.UpdateAccount(a)
}

// accountBuilder is a provider that creates an account with its first
// changes applied in one step, with fewer durable writes than
// CreateAccount followed by ApplyBatch (the local provider puts the account
// together in a staging directory and renames it into place). It returns
// how many changes, from the first, it applied; with an error that count is
// below len(cs). For an account that exists it applies cs as a batch.
type accountBuilder interface {
	CreateAccountWith(ctx context.Context, id silo.AccountID, kind silo.Kind, cs []silo.Change) (int, error)
}

// createInProvider creates a new account in the provider and applies its
// changes: in one step if the provider builds accounts, else CreateAccount
// and then applyAll. It returns how many changes were applied and the
// error of the first step that failed, naming the change.
func (e *Engine) createInProvider(ctx context.Context, a silo.Account, cs []silo.Change) (int, error) {
	b, ok := e.cfg.Provider.(accountBuilder)
	if !ok || len(cs) == 0 {
		if err := e.cfg.Provider.CreateAccount(ctx, a.ID, a.Kind); err != nil {
			return 0, err
		}
		e.hook("provider", a.ID, nil)
		return e.applyAll(ctx, a.ID, cs)
	}
	done, err := b.CreateAccountWith(ctx, a.ID, a.Kind, cs)
	done = min(max(done, 0), len(cs))
	if err == nil && done < len(cs) {
		err = fmt.Errorf("the provider applied %d of %d changes without an error", done, len(cs))
	}
	if err == nil || done > 0 {
		e.hook("provider", a.ID, nil) // the account exists
	}
	for i := range done {
		e.hook("provider", a.ID, &cs[i])
	}
	if err != nil && done < len(cs) && done > 0 {
		c := cs[done]
		return done, fmt.Errorf("%s %s: %w", c.Op, c.Key(), err)
	}
	return done, err
}

// batchApplier is a provider that applies several changes to one account
// at once, with fewer durable writes than one Apply per change (the local
// provider writes its manifest once). It returns how many changes, from the
// first, it applied; with an error that count is below len(cs).
type batchApplier interface {
	ApplyBatch(ctx context.Context, id silo.AccountID, cs []silo.Change) (int, error)
}

// applyAll applies a new account's changes in order: in one batch if the
// provider takes batches, else one by one. It returns how many were applied
// and the error of the first that was not, naming the change.
func (e *Engine) applyAll(ctx context.Context, id silo.AccountID, cs []silo.Change) (done int, err error) {
	if b, ok := e.cfg.Provider.(batchApplier); ok && len(cs) > 0 {
		done, err = b.ApplyBatch(ctx, id, cs)
		done = min(max(done, 0), len(cs))
		if err == nil && done < len(cs) {
			err = fmt.Errorf("the provider applied %d of %d changes without an error", done, len(cs))
		}
		for i := range done {
			e.hook("provider", id, &cs[i])
		}
		if err != nil {
			if done < len(cs) {
				c := cs[done]
				return done, fmt.Errorf("%s %s: %w", c.Op, c.Key(), err)
			}
			return done, err
		}
		return done, nil
	}
	for i, c := range cs {
		if err := e.cfg.Provider.Apply(ctx, id, c); err != nil {
			return done, fmt.Errorf("%s %s: %w", c.Op, c.Key(), err)
		}
		e.hook("provider", id, &cs[i])
		done++
	}
	return done, nil
}
