package control

import (
	"context"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// Announce tells whoever caches the control-plane state that c happened:
// this process through Config.OnChange, the other processes sharing the
// store through Config.Feed. It returns once the announcement is committed
// to the feed. The Plane's own methods call it for every change they make;
// call it for a change made around them (the rollout runner applying a
// release to an account).
//
// # Errors
//
// CodeUnavailable when the feed cannot be reached: the change itself is
// made, and the other servers see it only when their cached view expires
// (platform.Config.Refresh).
func (p *Plane) Announce(ctx context.Context, c store.Change) error {
	if p.cfg.OnChange != nil {
		p.cfg.OnChange(c)
	}
	if p.cfg.Feed == nil {
		return nil
	}
	if err := p.cfg.Feed.Announce(context.WithoutCancel(ctx), c); err != nil {
		return &silo.Error{Code: silo.CodeUnavailable, Err: err,
			Message: "the change is saved, but the other servers could not be told; they see it when their cached view expires (at most the refresh interval, 1s by default)"}
	}
	return nil
}

// announceAfter announces c after a change was attempted (made, or made in
// part: a failed step may still have changed the account) and returns the
// change's error, or else the announcement's.
func (p *Plane) announceAfter(ctx context.Context, err error, c store.Change) error {
	aerr := p.Announce(ctx, c)
	if err != nil {
		return err
	}
	return aerr
}

// SetState moves an account to another lifecycle state (suspend, resume)
// through the engine, with the audit action given, and announces it: what
// silo tenant suspend and resume run, on the data dir and through the API.
//
// # Errors
//
// CodeNotFound for an unknown or a deleted account, CodeForbidden for the
// production account, CodeConflict for a transition the lifecycle does not
// allow.
func (p *Plane) SetState(ctx context.Context, id silo.AccountID, next silo.State, action string) (silo.Account, error) {
	a, err := p.LiveAccount(ctx, id)
	if err != nil {
		return a, err
	}
	if a.Kind == silo.KindProduction {
		return a, silo.Errorf(silo.CodeForbidden, "the production account cannot be suspended or resumed: the gateway never serves it; suspend a tenant, developer account or environment")
	}
	a, err = p.Engine.SetState(ctx, id, next, action)
	return a, p.announceAfter(ctx, err, store.Change{Account: id, What: "state"})
}

// DeleteAccount deletes an account and its data (engine.DeleteAccount:
// crypto-shredding, I5) and announces it, also when the deletion stopped
// part way (the account is then deleting, which is not served). It returns
// what the provider reported it did.
func (p *Plane) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	del, err := p.Engine.DeleteAccount(ctx, id)
	return del, p.announceAfter(ctx, err, store.Change{Account: id, What: "delete"})
}

// DeleteTenant deletes a tenant's account as DeleteAccount does: it is what
// silo tenant delete and DELETE /v1/accounts/{id} run. Developer and
// environment accounts are refused, naming the command that deletes them
// (silo env delete, which verifies the teardown); the engine refuses the
// production account. A deleted tenant whose data the provider still holds
// is destroyed (engine.DeleteAccount); any other deleted tenant is refused.
//
// # Errors
//
// CodeNotFound for an unknown account or a deleted one the provider does
// not hold, CodeInvalid for a developer or an environment account,
// CodeForbidden for the production account.
func (p *Plane) DeleteTenant(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	a, err := p.Account(ctx, id)
	if err != nil {
		return provider.Deletion{}, err
	}
	if a.State != silo.StateDeleted {
		switch a.Kind {
		case silo.KindDeveloper:
			return provider.Deletion{}, silo.Errorf(silo.CodeInvalid, "%s is a developer account, not a tenant; delete it with silo env delete %s", id, id)
		case silo.KindEnvironment:
			return provider.Deletion{}, silo.Errorf(silo.CodeInvalid, "%s is an environment, not a tenant; delete it with silo env delete %s", id, id)
		}
	} else if a.Kind != silo.KindTenant {
		// What is left of a deleted developer account or environment is
		// destroyed by the command that deletes it (silo.DeleteCommand).
		return provider.Deletion{}, p.Engine.Answer(ctx, engine.Live(a))
	}
	return p.DeleteAccount(ctx, id)
}

// DestroyOrphan destroys an account the provider holds that the registry
// does not know (engine.DestroyOrphan, audited) and announces it.
func (p *Plane) DestroyOrphan(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	del, err := p.Engine.DestroyOrphan(ctx, id)
	return del, p.announceAfter(ctx, err, store.Change{Account: id, What: "delete"})
}
