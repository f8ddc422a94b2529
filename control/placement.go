package control

import (
	"context"
	"errors"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
)

// ReleaseFor returns the release CreateAccount would give the new account
// a now: the one Config.Placement names, else the current release. A
// caller checks what it will load into a against it before the account
// exists (platform.CreateEnv checks a seed directory so).
//
// # Errors
//
// CodeNotFound when there is no current release yet; Config.Placement's.
func (p *Plane) ReleaseFor(ctx context.Context, a silo.Account) (engine.Release, error) {
	cur, err := p.CurrentRelease(ctx)
	if err != nil {
		return engine.Release{}, err
	}
	return p.placement(ctx, a, cur)
}

// placement returns the release new account a gets: the one
// Config.Placement names, cur (the current release) when it names none.
func (p *Plane) placement(ctx context.Context, a silo.Account, cur engine.Release) (engine.Release, error) {
	if p.cfg.Placement == nil {
		return cur, nil
	}
	id, err := p.cfg.Placement(ctx, a)
	if err != nil {
		return cur, fmt.Errorf("release for %s: %w", a.ID, err)
	}
	if id == "" || id == cur.ID {
		return cur, nil
	}
	return p.Release(ctx, id)
}

// productionFor is what an onboarding needs of the production account:
// it creates it on rel when there is none (ensureProduction), reporting
// whether it did, and leaves an active one alone. Which release an
// existing production account runs is for silo apply and the rollouts to
// change: during a rollout it is not the current release, and applying
// the current one would move it back.
func (p *Plane) productionFor(ctx context.Context, rel engine.Release) (bool, error) {
	a, err := p.Account(ctx, silo.ProductionID)
	if err == nil && a.State == silo.StateActive {
		return false, nil
	}
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return false, err
	}
	_, made, err := p.ensureProduction(ctx, rel, nil)
	return made, err
}
