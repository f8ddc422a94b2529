package platform

import (
	"context"
	"fmt"
	"slices"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// Recover finishes work that a process on this platform's store left
// interrupted (a command killed mid-deletion, a server of several that
// died mid-onboarding): it settles the journal's pending intents whose
// process is gone (engine.Engine.Recover), then finishes the onboardings
// left half done (control.Plane.Resume), and deletes again the accounts
// whose deletion failed (engine.Engine.RetryDeletions: the provider was
// unreachable, say). Serve runs it every Config.ReapEvery, so a running
// server finishes such work without a restart; Open runs all of it but
// the retry of failed deletions, which a command leaves to its user (the
// failed delete said to run it again) rather than wait on a provider that
// may still be down.
//
// Work still under way in a live process is left alone: on this host its
// process is alive, on another its heartbeat keeps its intents recent
// (see engine.Config.RecoverGrace). Several servers on one store may run
// Recover at once: each intent is settled by one of them (the claim is
// made in the transaction that settles it), and each half-done onboarding
// is applied once (an apply claims its account's version).
//
// Recover does nothing on a platform opened with OpenLostRegistry whose
// registry check failed: it would act on accounts the registry does not
// describe.
//
// First it looks whether the provider (an AWS organization, the local
// provider's accounts directory) still holds the installation's accounts
// (checkProvider): while it holds none of them, every change in it is
// refused (engine.Engine.Refuse), the interrupted work included, until a
// later Recover finds one held again.
//
// # Errors
//
// The provider holding none of the installation's live accounts
// (CodeFailedCheck, the refusal every change gets); the journal's
// recovery failing (the store or the provider unreachable); an onboarding
// that cannot be finished is logged, not returned.
func (p *Platform) Recover(ctx context.Context) (engine.RecoveryReport, error) {
	if !p.recovers {
		return engine.RecoveryReport{}, nil
	}
	if err := p.checkProvider(ctx); err != nil {
		return engine.RecoveryReport{}, err
	}
	rep, err := p.recover(ctx)
	if err != nil {
		return rep, err
	}
	retried, err := p.Plane.Engine.RetryDeletions(ctx)
	if err != nil {
		return rep, fmt.Errorf("retry failed deletions: %w", err)
	}
	if retried.Resumed > 0 {
		p.cfg.Logger.Info("finished deletions that had failed", "accounts", retried.Changed)
	}
	for _, id := range retried.Changed {
		p.changed(ctx, id)
	}
	rep.Resumed += retried.Resumed
	rep.Skipped += retried.Skipped
	rep.Changed = append(rep.Changed, retried.Changed...)
	return rep, nil
}

// recover is Recover without checkProvider, as Open runs it right after
// CheckRegistry.
func (p *Platform) recover(ctx context.Context) (engine.RecoveryReport, error) {
	rep, err := p.Plane.Engine.Recover(ctx)
	if err != nil {
		return rep, fmt.Errorf("recover journal: %w", err)
	}
	if rep.Confirmed+rep.Abandoned+rep.Resumed > 0 {
		p.cfg.Logger.Info("recovered interrupted work", "confirmed", rep.Confirmed, "abandoned", rep.Abandoned, "resumed", rep.Resumed)
	}
	// What was recorded above changed accounts behind this platform's
	// caches (and the other servers'): each is announced.
	for _, id := range rep.Changed {
		p.changed(ctx, id)
	}
	if _, err := p.Plane.Resume(ctx); err != nil {
		p.cfg.Logger.Warn("finish interrupted onboardings", "error", silo.ForLog(err))
	}
	return rep, nil
}

// providerSample is how many live accounts each Recover asks the provider
// about, in turn through the registry, before it concludes anything.
const providerSample = 3

// holder is a provider that can say with a fresh look whether it still
// holds one account (the AWS provider: DescribeAccount; the local
// provider: the account's data key in the data dir); other providers are
// asked with Ref.
type holder interface {
	Holds(ctx context.Context, id silo.AccountID) (bool, error)
}

// checkProvider is Open's check that the provider holds the installation's
// accounts (checkAccountsHere), made again while the platform runs: an
// AWS organization can be emptied, or the credentials made to reach
// another, and the local provider's accounts directory removed or
// replaced (a wrong mount), under a running server. It costs a few questions: it asks about up to providerSample
// live accounts, the next ones in the registry each time, and is done at
// the first held. Only when none is held does it make Open's whole check
// (a sample of the registry and one listing of the provider); when that
// fails too, every change in the provider is refused (engine.Engine.Refuse)
// and the refusal is logged and returned. A later call that finds a live
// account held lifts it. An error of the store or the provider is
// returned and changes nothing: unknown is neither held nor lost.
func (p *Platform) checkProvider(ctx context.Context) error {
	ids, err := p.nextLive(ctx)
	if err != nil {
		return err
	}
	held := len(ids) == 0 // nothing live: nothing to lose
	for _, id := range ids {
		if held, err = p.holds(ctx, id); err != nil {
			return fmt.Errorf("ask the %s provider for account %s: %w", p.Provider.Name(), id, err)
		}
		if held {
			break
		}
	}
	refused := p.Plane.Engine.Refusing()
	if !held && refused != nil {
		return refused // still refused; the sample found nothing new
	}
	if !held {
		// None of the sample: is it any of the registry's?
		n, live, ok, err := p.liveHeld(ctx)
		if err != nil {
			return err
		}
		if !ok {
			cause := "its organization was emptied, or its credentials now reach another organization; point the provider back at the installation's own organization, or restore its accounts (docs/aws.md)"
			if _, local := p.Provider.(accountDirs); local {
				cause = "its accounts directory (accounts) in the data dir " + p.cfg.dataDirName + " was removed, moved or replaced (a wrong mount?); put it back, or restore it from the backup of the data dir that matches " + p.stateName + " (docs/operations.md); no account needs deleting or applying"
			}
			refused = silo.Errorf(silo.CodeFailedCheck, "the %s provider no longer holds any of the %d live account(s) of %s (%s): %s; until it holds them again this server refuses to create, change or delete accounts (it looks again every %s)", p.Provider.Name(), n, p.stateName, silo.ShortList(live, 5), cause, p.cfg.ReapEvery)
			p.Plane.Engine.Refuse(refused)
			p.cfg.Logger.Error("the provider holds none of the installation's accounts: changes refused", "provider", p.Provider.Name(), "error", silo.UserMessage(refused))
			return refused
		}
	}
	if refused != nil {
		p.Plane.Engine.Refuse(nil)
		// What was read of the accounts while the provider held none
		// (a view without a data plane) is read afresh.
		p.Invalidate("")
		p.cfg.Logger.Info("the provider holds the installation's accounts again: changes allowed", "provider", p.Provider.Name())
	}
	return nil
}

// nextLive returns up to providerSample live accounts, the ones after
// those the previous call returned (from the first again at the end).
func (p *Platform) nextLive(ctx context.Context) ([]silo.AccountID, error) {
	p.mu.Lock()
	from := p.sampled
	p.mu.Unlock()
	var ids []silo.AccountID
	err := p.db.View(ctx, func(tx store.Tx) error {
		ids = ids[:0]
		for _, after := range []silo.AccountID{from, ""} {
			accts, err := tx.Accounts(store.Filter{After: after, Limit: providerSample})
			if err != nil {
				return err
			}
			for _, a := range accts {
				if (a.State == silo.StateActive || a.State == silo.StateSuspended) && !slices.Contains(ids, a.ID) {
					ids = append(ids, a.ID)
				}
			}
			if len(accts) == providerSample || after == "" {
				break
			}
		}
		return nil
	})
	if len(ids) > 0 {
		p.mu.Lock()
		p.sampled = ids[len(ids)-1]
		p.mu.Unlock()
	}
	return ids, err
}

// holds asks the provider whether it still holds account id.
func (p *Platform) holds(ctx context.Context, id silo.AccountID) (bool, error) {
	if h, ok := p.Provider.(holder); ok {
		return h.Holds(ctx, id)
	}
	_, err := p.Provider.Ref(ctx, id)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return false, nil
	}
	return err == nil, err
}
