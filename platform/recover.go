package platform

import (
	"context"
	"fmt"

	"github.com/silo-run/silo/engine"
)

// Recover finishes work that a process on this platform's store left
// interrupted (a command killed mid-deletion, a server of several that
// died mid-onboarding): it settles the journal's pending intents whose
// process is gone (engine.Engine.Recover), then finishes the onboardings
// left half done (control.Plane.Resume). Open runs it, and Serve every
// Config.ReapEvery, so a running server finishes such work without a
// restart.
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
// # Errors
//
// The journal's recovery failing (the store or the provider unreachable);
// an onboarding that cannot be finished is logged, not returned.
func (p *Platform) Recover(ctx context.Context) (engine.RecoveryReport, error) {
	if !p.recovers {
		return engine.RecoveryReport{}, nil
	}
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
		p.cfg.Logger.Warn("finish interrupted onboardings", "error", err)
	}
	return rep, nil
}
