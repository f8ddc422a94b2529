package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// Planner is what a Runner needs of the engine (*engine.Engine).
type Planner interface {
	PlanAccount(ctx context.Context, a silo.Account, rel engine.Release) (silo.Plan, error)
	Apply(ctx context.Context, p silo.Plan) error
}

// Config configures a Runner.
type Config struct {
	Store    store.Store
	Engine   Planner
	Provider provider.Provider // read for live verification
	// Metrics feeds the health gates; nil makes every gated ring
	// inconclusive (a gate never passes without metrics).
	Metrics Metrics
	// Smoke runs a ring's smoke function; nil with a ring that names one
	// fails that ring's accounts.
	Smoke Smoke
	// Gate, if set, checks a release against the fleet before Start
	// records a rollout of it (control.Plane.Gate: the isolation gate, the
	// one a server runs on every uploaded release and silo apply on every
	// release it makes current). Every rollout start, from a server or
	// from silo deploy on a data dir, passes through it; a rollback does
	// not (it returns accounts to the release they ran). keep reports the
	// accounts the rollout leaves as they are (Unmoved).
	Gate   func(ctx context.Context, rel engine.Release, keep func(silo.Account) bool) error
	Clock  Clock // WallClock if nil
	Logger *slog.Logger
	// Owner names this runner in leases. Give a restarted server the same
	// name so that it takes its own lease back at once; hostname if empty.
	Owner string
	Actor string // in audit events; "server" if empty
	// LeaseTTL is how long a runner's claim on a rollout lasts without
	// renewal; 15s if zero. Poll is how often an idle Serve looks for work
	// and a bake looks for operator requests; 1s if zero.
	LeaseTTL time.Duration
	Poll     time.Duration
	// Hook, if set, is called (synchronously, from the runner's goroutines)
	// at each step boundary: progress displays and crash tests use it.
	Hook func(Event)
}

// Event is a step boundary reported to Config.Hook.
type Event struct {
	Rollout string
	Ring    string
	Account silo.AccountID
	// Point is "claimed", "applied" or "finished" for an account step
	// (Detail is the step: apply or rollback), "phase" after a ring's phase
	// was saved (Detail is the phase), "bake" before a bake wait begins,
	// "gates" after the gates were read during a bake (Detail is "fail"
	// when they failed the ring early, "baking" when it bakes on),
	// "state" after the rollout's state changed (Detail is the state).
	Point  string
	Detail string
}

// Runner drives rollouts. Safe for concurrent use; several Runners (in one
// process or several servers on one store) cooperate through leases and
// journal claims.
type Runner struct {
	cfg  Config
	wake chan struct{}
	mu   sync.Mutex
	rels map[string]engine.Release
}

// New returns a Runner.
//
// # Errors
//
// CodeInvalid when Store, Engine or Provider is missing.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Provider == nil {
		return nil, silo.Errorf(silo.CodeInvalid, "rollout: Store, Engine and Provider are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = WallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		cfg.Owner, _ = os.Hostname()
		if cfg.Owner == "" {
			cfg.Owner = "runner"
		}
	}
	if cfg.Actor == "" {
		cfg.Actor = "server"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	return &Runner{cfg: cfg, wake: make(chan struct{}, 1), rels: map[string]engine.Release{}}, nil
}

func (rn *Runner) hook(e Event) {
	if rn.cfg.Hook != nil {
		rn.cfg.Hook(e)
	}
}

func (rn *Runner) poke() {
	select {
	case rn.wake <- struct{}{}:
	default:
	}
}

// Start creates a rollout of a stored release to the fleet and returns it;
// Serve (or Run) drives it. The rings are those of the release's stack,
// after the production account, which always comes first.
//
// # Errors
//
// silo.ErrNotFound for an unknown release; CodeInvalid for a release
// silo verify --probe built (store.CheckShip); CodeConflict when another
// rollout is active (a second deploy is refused, not queued: the message
// names the active rollout and how to stop it); CodeNeedsConfirm when the
// rollout would delete or replace a table, bucket or secret of an account
// it moves and opt does not allow it; CodeConflict, too, when
// opt.LossesDigest is set and what the rollout would destroy is no longer
// what was previewed; CodeInvalid for a LossesDigest no preview gives;
// CodeFailedCheck for a release whose latest rollout failed (Failures)
// unless opt.RetryFailed confirms it; Config.Gate's error (CodeFailedCheck
// for a release that would break isolation) before anything is planned or
// recorded. A *UpToDate, not a failure, when
// releaseID is current and every account its rings select runs it: no
// rollout is recorded. A current release that some of those accounts do
// not run is rolled out to them (the rollout's Previous is its Release).
//
// # Notes
//
// What it would destroy is planned before the rollout is recorded, not
// in the same transaction: a change in that instant is not seen.
func (rn *Runner) Start(ctx context.Context, releaseID string, opt Options) (Rollout, error) {
	rel, err := rn.shippable(ctx, releaseID)
	if err != nil {
		return Rollout{}, err
	}
	return rn.start(ctx, rel, opt, nil)
}

// StartNew is Start for a release not stored yet: every check Start makes
// (the isolation gate and the confirmation of what it destroys included)
// runs on rel first, then put stores it, then the rollout is recorded. A
// release Start would refuse is not stored.
//
// # Errors
//
// Start's, and put's.
func (rn *Runner) StartNew(ctx context.Context, rel engine.Release, opt Options, put func(context.Context) error) (Rollout, error) {
	if err := store.CheckShip(store.Release{ID: rel.ID, Probe: rel.Probe}, nil); err != nil { // a new build: no origin to check yet
		return Rollout{}, err
	}
	return rn.start(ctx, rel, opt, put)
}

// start is Start of rel, which put (if not nil) stores once every check
// passed.
func (rn *Runner) start(ctx context.Context, rel engine.Release, opt Options, put func(context.Context) error) (Rollout, error) {
	if err := rn.Reship(ctx, rel.ID, opt.RetryFailed, "to roll this one out again through the rings and their gates, confirm it: silo deploy --retry-failed (API: \"retry_failed\": true)"); err != nil {
		return Rollout{}, err
	}
	if rn.cfg.Gate != nil {
		if err := rn.cfg.Gate(ctx, rel, Unmoved(rel.Stack)); err != nil {
			return Rollout{}, err
		}
	}
	if err := confirm(opt, func() (Preview, error) { return rn.startPreview(ctx, rel) }, "GET /v1/rollouts/preview?release="+rel.ID, func(pv Preview) error {
		return silo.Errorf(silo.CodeNeedsConfirm, "the rollout of release %s destroys data (%s), which cannot be undone; no account was changed. Confirm it to go ahead: silo deploy --yes (API: \"allow_data_loss\": true)", rel.ID, silo.DescribeLosses(pv.Losses))
	}); err != nil {
		return Rollout{}, err
	}
	if put != nil {
		if err := put(ctx); err != nil {
			return Rollout{}, err
		}
	}
	return rn.create(ctx, rel, "", nil)
}

// create starts a rollout of rel; for a rollback (rollbackOf set) origStack
// is the stack of the rollout it supersedes, to record where its accounts
// are as it stops.
func (rn *Runner) create(ctx context.Context, rel engine.Release, rollbackOf string, origStack *spec.Stack) (Rollout, error) {
	now := rn.cfg.Clock.Now().UTC()
	var r Rollout
	err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		a, err := tx.ActiveRollout()
		switch {
		case errors.Is(err, silo.ErrNotFound):
		case err != nil:
			return err
		case rollbackOf != "" && a.ID == rollbackOf:
			// Superseded below.
		default:
			return silo.Errorf(silo.CodeConflict, "rollout %s of release %s is %s; wait for it (silo rollout status %s --follow), or stop it with silo rollout abort %s", a.ID, a.Release, a.State, a.ID, a.ID)
		}
		n, err := tx.CountRollouts()
		if err != nil {
			return err
		}
		if rollbackOf == "" {
			// Checked with the recording, so that a release made
			// current meanwhile records nothing either.
			if u, err := upToDate(tx, rel); err != nil || u != nil {
				if err == nil {
					err = u
				}
				return err
			}
		}
		prev, err := tx.CurrentRelease()
		if err != nil && !errors.Is(err, silo.ErrNotFound) {
			return err
		}
		r = Rollout{ID: fmt.Sprintf("ro-%06d", n+1), Release: rel.ID, Previous: prev, RollbackOf: rollbackOf,
			State: StateRunning, Rings: ringsOf(rel.Stack, rollbackOf != ""), Created: now}
		if rollbackOf != "" {
			orig, err := load(tx, rollbackOf)
			if err != nil {
				return err
			}
			if err := rollbackable(tx, orig); err != nil {
				return err
			}
			r.Release, r.Previous = orig.Previous, orig.Release
			if r.Rings, err = rollbackRings(tx, rel.Stack, r, orig); err != nil {
				return err
			}
			orig.RolledBackBy = r.ID
			if orig.State.Active() {
				orig.State, orig.Reason = StateRolledBack, "rolled back by "+r.ID
				stopRing(&orig)
				if err := where(tx, &orig, origStack); err != nil {
					return err
				}
			} else if orig.State == StateSucceeded || orig.State == StateAborted {
				orig.State = StateRolledBack
			}
			if err := save(tx, &orig, now); err != nil {
				return err
			}
		}
		r.Updated = now
		if err := insert(tx, &r); err != nil {
			return err
		}
		action := "rollout.start"
		if rollbackOf != "" {
			action = "rollout.rollback"
		}
		detail, _ := json.Marshal(map[string]string{"rollout": r.ID, "release": r.Release, "previous": r.Previous, "rollback_of": rollbackOf})
		_, err = tx.AppendAudit(store.AuditEvent{Time: now, Actor: rn.cfg.Actor, Action: action, Detail: detail})
		return err
	})
	if err != nil {
		return r, err
	}
	rn.poke()
	return r, nil
}

// Get returns a rollout. silo.ErrNotFound if there is none with that ID.
func (rn *Runner) Get(ctx context.Context, id string) (Rollout, error) {
	var r Rollout
	err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		r, err = load(tx, id)
		return err
	})
	return r, err
}

// Active returns the active (running or paused) rollout, or
// silo.ErrNotFound.
func (rn *Runner) Active(ctx context.Context) (Rollout, error) {
	var r Rollout
	err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		rec, err := tx.ActiveRollout()
		if err != nil {
			return err
		}
		r, err = fromRecord(rec)
		return err
	})
	return r, err
}

// List returns up to limit rollouts, newest first (all when limit <= 0),
// the one a rollback may undo now marked CanRollBack.
func (rn *Runner) List(ctx context.Context, limit int) ([]Rollout, error) {
	out := []Rollout{}
	err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		recs, err := tx.Rollouts(limit)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			r, err := fromRecord(rec)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return markUndoable(tx, out)
	})
	return out, err
}

// Pause stops a running rollout after the account steps in flight; Resume
// continues it. Pausing a paused rollout is a no-op. A ring baking when
// paused keeps the bake time it had left (RingStatus.BakeLeft) until
// Resume.
//
// # Errors
//
// CodeConflict when the rollout is not running or paused.
func (rn *Runner) Pause(ctx context.Context, id string) (Rollout, error) {
	return rn.operate(ctx, id, "rollout.pause", func(r *Rollout) error {
		switch r.State {
		case StatePaused:
			return nil
		case StateRunning:
			r.State, r.Reason = StatePaused, "paused by an operator"
			holdBake(r, rn.cfg.Clock.Now())
			return nil
		}
		return silo.Errorf(silo.CodeConflict, "rollout %s is %s and cannot be paused", r.ID, r.State)
	})
}

// Resume continues a paused rollout. A ring paused on an inconclusive gate
// bakes again before its gates are read again; a ring an operator paused
// while it baked bakes for the time it had left (a pause stops the bake
// clock).
func (rn *Runner) Resume(ctx context.Context, id string) (Rollout, error) {
	return rn.operate(ctx, id, "rollout.resume", func(r *Rollout) error {
		switch r.State {
		case StateRunning:
			return nil
		case StatePaused:
			r.State, r.Reason = StateRunning, ""
			resumeBake(r, rn.cfg.Clock.Now())
			return nil
		}
		return silo.Errorf(silo.CodeConflict, "rollout %s is %s and cannot be resumed; start a new deploy instead", r.ID, r.State)
	})
}

// Abort stops a rollout for good, leaving every account where it is (on the
// target or the previous release). Rollback returns the fleet instead.
func (rn *Runner) Abort(ctx context.Context, id string) (Rollout, error) {
	return rn.operate(ctx, id, "rollout.abort", func(r *Rollout) error {
		if !r.State.Active() {
			return silo.Errorf(silo.CodeConflict, "rollout %s is %s already", r.ID, r.State)
		}
		r.State, r.Reason = StateAborted, "aborted by an operator"
		stopRing(r)
		return nil
	})
}

// Rollback starts a rollback rollout that returns every account the
// rollout moved to its previous release, ring by ring with the same claims,
// budget and live verification. The rollout, if active, stops and is marked
// rolled_back. It returns the new rollback rollout. Only the latest rollout
// can be rolled back, once.
//
// # Errors
//
// CodeInvalid if the rollout had no previous release; CodeConflict if
// another rollout is active, if the rollout was rolled back already (by
// an operator, or by its own gates: it failed) or a later one ran, or if
// it is itself a rollback (see rollbackable); CodeNeedsConfirm when returning the accounts would delete
// or replace a table, bucket or secret and opt does not allow it; as
// Start's, CodeConflict and CodeInvalid for opt.LossesDigest.
func (rn *Runner) Rollback(ctx context.Context, id string, opt Options) (Rollout, error) {
	orig, rel, err := rn.rollbackTarget(ctx, id)
	if err != nil {
		return orig, err
	}
	if err := confirm(opt, func() (Preview, error) { return rn.rollbackPreview(ctx, orig, rel) }, "GET /v1/rollouts/"+id+"/rollback/preview", func(pv Preview) error {
		return silo.Errorf(silo.CodeNeedsConfirm, "rolling back rollout %s returns accounts to release %s, which destroys data (%s) and cannot be undone; no account was changed. Confirm it to go ahead: silo rollout rollback %s --yes (API: \"allow_data_loss\": true)", id, rel.ID, silo.DescribeLosses(pv.Losses), id)
	}); err != nil {
		return orig, err
	}
	st, err := rn.stackOf(ctx, id)
	if err != nil {
		return orig, err
	}
	return rn.create(ctx, rel, id, st)
}

// holdBake stops the bake clock of r's ring in progress, if it bakes:
// what is left of the bake is kept for resumeBake.
func holdBake(r *Rollout, now time.Time) {
	if r.Ring >= len(r.Rings) {
		return
	}
	rs := &r.Rings[r.Ring]
	if rs.Phase == PhaseBaking && !rs.BakeUntil.IsZero() && now.Before(rs.BakeUntil) {
		rs.BakeLeft = rs.BakeUntil.Sub(now)
	}
}

// resumeBake restarts the bake clock holdBake stopped: the ring bakes for
// the time it had left, from now.
func resumeBake(r *Rollout, now time.Time) {
	if r.Ring >= len(r.Rings) {
		return
	}
	if rs := &r.Rings[r.Ring]; rs.BakeLeft > 0 {
		rs.BakeUntil, rs.BakeLeft = now.UTC().Add(rs.BakeLeft), 0
	}
}

func (rn *Runner) operate(ctx context.Context, id, action string, fn func(*Rollout) error) (Rollout, error) {
	var r Rollout
	now := rn.cfg.Clock.Now()
	st, err := rn.stackOf(ctx, id)
	if err != nil {
		return r, err
	}
	err = rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if r, err = load(tx, id); err != nil {
			return err
		}
		before := r.State
		if err := fn(&r); err != nil {
			return err
		}
		if r.State == before {
			return nil
		}
		if r.State != StateRunning {
			if err := where(tx, &r, st); err != nil {
				return err
			}
		} else {
			for i := range r.Rings { // resumed: the counts would go stale
				r.Rings[i].Releases = nil
			}
		}
		if err := save(tx, &r, now); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]string{"rollout": r.ID, "state": string(r.State)})
		_, err = tx.AppendAudit(store.AuditEvent{Time: now, Actor: rn.cfg.Actor, Action: action, Detail: detail})
		return err
	})
	if err == nil {
		rn.poke()
	}
	return r, err
}

// stackOf returns the stack of rollout id's target release, read before a
// transaction that records where the rollout's accounts are (see where).
func (rn *Runner) stackOf(ctx context.Context, id string) (*spec.Stack, error) {
	r, err := rn.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rel, err := rn.release(ctx, r.Release)
	if err != nil {
		return nil, err
	}
	return rel.Stack, nil
}

func (rn *Runner) release(ctx context.Context, id string) (engine.Release, error) {
	rn.mu.Lock()
	rel, ok := rn.rels[id]
	rn.mu.Unlock()
	if ok {
		return rel, nil
	}
	var sr store.Release
	err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		sr, err = tx.Release(id)
		return err
	})
	if errors.Is(err, silo.ErrNotFound) {
		return rel, silo.Errorf(silo.CodeNotFound, "no release %q; silo release list shows the releases", id)
	}
	if err != nil {
		return rel, err
	}
	rel, err = engine.LoadRelease(sr)
	if err != nil {
		return rel, err
	}
	rn.mu.Lock()
	rn.rels[id] = rel
	rn.mu.Unlock()
	return rel, nil
}

// shippable returns stored release id to start a rollout of, refusing a
// probe release or a dev build (store.CheckShip) before anything is
// planned, so that refusal is the one error a rollout of it gets. The
// check reads the release as stored now: its origin changes when it is
// stored again (store.Origin.Replaces).
func (rn *Runner) shippable(ctx context.Context, id string) (engine.Release, error) {
	rel, err := rn.release(ctx, id)
	if err != nil {
		return rel, err
	}
	return rel, rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		return store.CheckRolloutRelease(store.Rollout{Release: id}, tx.Release)
	})
}

// Watch calls fn with the rollout now and after every change until it is no
// longer running (the last call shows why) or ctx is done. It polls the
// store, so it follows rollouts driven by any server.
func (rn *Runner) Watch(ctx context.Context, id string, fn func(Rollout) error) error {
	var last int64 = -1
	for {
		r, err := rn.Get(ctx, id)
		if err != nil {
			return err
		}
		if r.Version != last {
			last = r.Version
			if err := fn(r); err != nil {
				return err
			}
		}
		if r.State != StateRunning {
			return nil
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
