package control

import (
	"context"
	"errors"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/store"
)

// Gate refuses a release that would open a path across accounts: it
// verifies the fleet as it would be under rel (isolation.Gate) before
// anything is applied.
func (p *Plane) Gate(ctx context.Context, rel engine.Release) error {
	f, err := isolation.LoadFleet(ctx, p.cfg.Store)
	if err != nil {
		return fmt.Errorf("load fleet for the isolation gate: %w", err)
	}
	_, err = isolation.Gate(ctx, rel, f)
	return err
}

// GateAccount refuses to create account a on rel, or to apply rel to it
// again, when what a would hold under rel opens a path across accounts
// (isolation.GateAccount, against the production account as recorded).
// Every onboarding and parameter change runs it before it writes anything,
// so a current release that never passed Gate reaches no account.
func (p *Plane) GateAccount(ctx context.Context, rel engine.Release, a silo.Account) error {
	return p.cfg.Store.View(ctx, func(tx store.Tx) error { return gateAccount(ctx, tx, rel, a) })
}

// GateBuild is GateAccount for a developer's own build, applied to
// account a alone (silo dev): the same gate, against the production
// account as recorded (a build applied to one account does not change
// it), with a refusal that says to fix the build rather than to deploy
// a release.
func (p *Plane) GateBuild(ctx context.Context, rel engine.Release, a silo.Account) error {
	return p.cfg.Store.View(ctx, func(tx store.Tx) error {
		return gateWith(ctx, tx, rel, a, func(why string) error {
			return silo.Errorf(silo.CodeFailedCheck, "%s. Fix silo.yaml and save it again: %s keeps running what it ran until a build passes (silo dev changes your account alone: a production export the build reads must be deployed first, with silo deploy)", why, a.ID)
		})
	})
}

// gateAccount is GateAccount in transaction tx.
func gateAccount(ctx context.Context, tx store.Tx, rel engine.Release, a silo.Account) error {
	return gateWith(ctx, tx, rel, a, func(why string) error {
		return silo.Errorf(silo.CodeFailedCheck, "%s. Deploy a release that passes the isolation gate: fix silo.yaml, deploy it (silo deploy, or silo apply --all), then check the fleet with silo verify", why)
	})
}

// gateWith runs isolation.GateAccount in transaction tx; a refusal is
// the error refused makes of the gate's reason, saying what to do.
func gateWith(ctx context.Context, tx store.Tx, rel engine.Release, a silo.Account, refused func(why string) error) error {
	prod, err := productionState(tx)
	if err != nil {
		return err
	}
	_, err = isolation.GateAccount(ctx, rel, a, prod)
	if silo.ErrorCode(err) != silo.CodeFailedCheck {
		return err
	}
	return refused(silo.UserMessage(err))
}

// productionState returns the production account with its recorded
// resources, or nil while there is none (or only a deleted or unfinished
// one: the onboarding creates it on its release then).
func productionState(tx store.Tx) (*isolation.AccountState, error) {
	a, err := tx.Account(silo.ProductionID)
	if errors.Is(err, silo.ErrNotFound) || err == nil && a.State != silo.StateActive {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the production account for the isolation gate: %w", err)
	}
	rs, err := tx.Resources(a.ID)
	if err != nil {
		return nil, fmt.Errorf("read the production account's resources for the isolation gate: %w", err)
	}
	return &isolation.AccountState{Account: a, Resources: rs, HasDataKey: true}, nil
}
