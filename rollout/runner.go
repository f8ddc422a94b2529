package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// Config configures a Runner.
type Config struct {
	Store    store.Store
	Engine   *engine.Engine
	Provider provider.Provider // read for live verification
	// Metrics feeds the health gates; nil makes every gated ring
	// inconclusive (a gate never passes without metrics).
	Metrics Metrics
	// Smoke runs a ring's smoke function; nil with a ring that names one
	// fails that ring's accounts.
	Smoke  Smoke
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
// silo.ErrNotFound for an unknown release; CodeConflict when another
// rollout is active (a second deploy is refused, not queued: the message
// names the active rollout and how to stop it).
func (rn *Runner) Start(ctx context.Context, releaseID string) (Rollout, error) {
	rel, err := rn.release(ctx, releaseID)
	if err != nil {
		return Rollout{}, err
	}
	return rn.create(ctx, rel, "", false)
}

func ringsOf(st *spec.Stack, rollback bool) []RingStatus {
	rings := []RingStatus{{Name: "production", Select: spec.Selector{Kind: silo.KindProduction, Percent: 100}, Concurrency: 1}}
	src := st.Rollout.Rings
	if len(src) == 0 {
		src = []spec.Ring{{Name: "everyone", Select: spec.Selector{Percent: 100}, Concurrency: spec.DefaultRingConcurrency}}
	}
	for _, r := range src {
		rs := RingStatus{Name: r.Name, Select: r.Select, Concurrency: max(r.Concurrency, 1), Bake: r.Bake, Gates: r.Gates, Budget: r.FailureBudget, OnRollback: r.OnRollback}
		if rollback {
			// The release rolled back to was proven before: no bake and no
			// gates, but the same claims, budget and live verification.
			rs.Bake, rs.Gates = 0, spec.Gates{}
		}
		rings = append(rings, rs)
	}
	for i := range rings {
		rings[i].Phase = PhaseWaiting
	}
	return rings
}

func (rn *Runner) create(ctx context.Context, rel engine.Release, rollbackOf string, supersede bool) (Rollout, error) {
	now := rn.cfg.Clock.Now().UTC()
	var r Rollout
	err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		active, err := setting(tx, settingActive)
		if err != nil {
			return err
		}
		if active != "" {
			a, err := load(tx, active)
			if err != nil {
				return err
			}
			switch {
			case a.State.Active() && supersede && active == rollbackOf:
				a.State, a.Reason = StateRolledBack, "rolled back by an operator"
				stopRing(&a)
			case a.State.Active():
				return silo.Errorf(silo.CodeConflict, "rollout %s of release %s is %s; wait for it (silo rollout status %s --follow), or stop it with silo rollout abort %s", a.ID, a.Release, a.State, a.ID, a.ID)
			}
		}
		ids, err := index(tx)
		if err != nil {
			return err
		}
		prev, err := setting(tx, settingCurrent)
		if err != nil {
			return err
		}
		r = Rollout{ID: fmt.Sprintf("ro-%06d", len(ids)+1), Release: rel.ID, Previous: prev, RollbackOf: rollbackOf,
			State: StateRunning, Rings: ringsOf(rel.Stack, rollbackOf != ""), Created: now}
		if rollbackOf != "" {
			orig, err := load(tx, rollbackOf)
			if err != nil {
				return err
			}
			if orig.Previous == "" {
				return silo.Errorf(silo.CodeInvalid, "rollout %s has no previous release to return to (it was the first deploy)", rollbackOf)
			}
			r.Release, r.Previous = orig.Previous, orig.Release
			orig.RolledBackBy = r.ID
			if orig.State.Active() {
				orig.State, orig.Reason = StateRolledBack, "rolled back by "+r.ID
				stopRing(&orig)
			} else if orig.State == StateSucceeded || orig.State == StateFailed || orig.State == StateAborted {
				orig.State = StateRolledBack
			}
			if err := save(tx, &orig, now); err != nil {
				return err
			}
		}
		if err := save(tx, &r, now); err != nil {
			return err
		}
		b, _ := json.Marshal(append(ids, r.ID))
		if err := tx.PutSetting(settingIndex, string(b)); err != nil {
			return err
		}
		if err := tx.PutSetting(settingActive, r.ID); err != nil {
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
		id, err := setting(tx, settingActive)
		if err != nil {
			return err
		}
		if id == "" {
			return silo.Errorf(silo.CodeNotFound, "no rollout is active; name one (silo rollout list shows them)")
		}
		r, err = load(tx, id)
		return err
	})
	return r, err
}

// List returns up to limit rollouts, newest first (all when limit <= 0).
func (rn *Runner) List(ctx context.Context, limit int) ([]Rollout, error) {
	out := []Rollout{}
	err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		ids, err := index(tx)
		if err != nil {
			return err
		}
		for i := len(ids) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
			r, err := load(tx, ids[i])
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Pause stops a running rollout after the account steps in flight; Resume
// continues it. Pausing a paused rollout is a no-op.
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
			return nil
		}
		return silo.Errorf(silo.CodeConflict, "rollout %s is %s and cannot be paused", r.ID, r.State)
	})
}

// Resume continues a paused rollout. A ring paused on an inconclusive gate
// bakes again before its gates are read again.
func (rn *Runner) Resume(ctx context.Context, id string) (Rollout, error) {
	return rn.operate(ctx, id, "rollout.resume", func(r *Rollout) error {
		switch r.State {
		case StateRunning:
			return nil
		case StatePaused:
			r.State, r.Reason = StateRunning, ""
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
// rolled_back. It returns the new rollback rollout.
//
// # Errors
//
// CodeInvalid if the rollout had no previous release; CodeConflict if
// another rollout is active.
func (rn *Runner) Rollback(ctx context.Context, id string) (Rollout, error) {
	orig, err := rn.Get(ctx, id)
	if err != nil {
		return orig, err
	}
	if orig.Previous == "" {
		return orig, silo.Errorf(silo.CodeInvalid, "rollout %s has no previous release to return to (it was the first deploy)", id)
	}
	rel, err := rn.release(ctx, orig.Previous)
	if err != nil {
		return orig, err
	}
	return rn.create(ctx, rel, id, true)
}

func (rn *Runner) operate(ctx context.Context, id, action string, fn func(*Rollout) error) (Rollout, error) {
	var r Rollout
	now := rn.cfg.Clock.Now()
	err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
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
		if !r.State.Active() {
			if err := clearActive(tx, r.ID); err != nil {
				return err
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
		if r.State != StateRunning {
			if err := rn.settle(ctx, r.ID); err != nil {
				return r, err
			}
			return rn.Get(ctx, r.ID)
		}
	}
	return r, err
}

// settle records in every ring of a stopped rollout how many of its
// accounts run each release (RingStatus.Releases).
func (rn *Runner) settle(ctx context.Context, id string) error {
	r, err := rn.Get(ctx, id)
	if err != nil {
		return err
	}
	target, err := rn.release(ctx, r.Release)
	if err != nil {
		return err
	}
	counts := make([]map[string]int, len(r.Rings))
	f := store.Filter{Limit: 1000}
	for {
		var page []silo.Account
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.Accounts(f)
			return err
		}); err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page {
			if a.State == silo.StateDeleting || a.State == silo.StateDeleted {
				continue
			}
			if i := ringOf(r.Rings, target.Stack, a); i >= 0 {
				if counts[i] == nil {
					counts[i] = map[string]int{}
				}
				counts[i][a.Release]++
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	return rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		cur, err := load(tx, id)
		if err != nil {
			return err
		}
		for i := range cur.Rings {
			cur.Rings[i].Releases = counts[i]
		}
		return save(tx, &cur, rn.cfg.Clock.Now())
	})
}

func clearActive(tx store.Tx, id string) error {
	cur, err := setting(tx, settingActive)
	if err != nil || cur != id {
		return err
	}
	return tx.PutSetting(settingActive, "")
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

// Serve drives the active rollout whenever one is running and no live
// runner holds it, until ctx is done. Call engine.Recover before Serve after
// a crash.
func (rn *Runner) Serve(ctx context.Context) error {
	for {
		r, err := rn.Active(ctx)
		if err == nil && r.State == StateRunning {
			if err := rn.Run(ctx, r.ID); err != nil && ctx.Err() == nil {
				rn.cfg.Logger.Error("rollout stopped", "rollout", r.ID, "err", err)
			}
		} else if err != nil && !errors.Is(err, silo.ErrNotFound) && ctx.Err() == nil {
			rn.cfg.Logger.Error("read active rollout", "err", err)
		}
		t := time.NewTimer(rn.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-rn.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

var errLost = errors.New("rollout lease lost or rollout stopped")

// Run drives one rollout until it is no longer running (succeeded, failed,
// paused, aborted) or another runner holds it. It returns nil in those
// cases, and an error only when the store or ctx fails; a crash at any
// moment is safe, and the next Run (after engine.Recover) continues where
// the journal says.
func (rn *Runner) Run(ctx context.Context, id string) error {
	ok, err := rn.acquire(ctx, id)
	if err != nil || !ok {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // renew the lease; lose it and the run stops
		defer wg.Done()
		for {
			t := time.NewTimer(rn.cfg.LeaseTTL / 3)
			select {
			case <-runCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if ok, err := rn.renew(runCtx, id); !ok && err == nil {
				cancel() // another runner took the rollout over
				return
			}
		}
	}()
	err = rn.drive(runCtx, id)
	cancel()
	wg.Wait()
	rn.releaseLease(context.WithoutCancel(ctx), id)
	if err == nil || errors.Is(err, errLost) {
		if cur, gerr := rn.Get(ctx, id); gerr == nil && cur.State != StateRunning {
			if serr := rn.settle(ctx, id); serr != nil {
				return serr
			}
		}
	}
	if errors.Is(err, errLost) || (err != nil && ctx.Err() == nil && runCtx.Err() != nil) {
		return nil
	}
	return err
}

// acquire takes or renews the lease on a running rollout.
func (rn *Runner) acquire(ctx context.Context, id string) (bool, error) {
	ok := false
	err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		ok = false
		r, err := load(tx, id)
		if err != nil {
			return err
		}
		now := rn.cfg.Clock.Now()
		if r.State != StateRunning || (r.Owner != "" && r.Owner != rn.cfg.Owner && now.Before(r.Lease)) {
			return nil
		}
		ok = true
		r.Owner, r.Lease = rn.cfg.Owner, now.Add(rn.cfg.LeaseTTL).UTC()
		return save(tx, &r, now)
	})
	return ok, err
}

// renew extends this runner's lease; false if another runner holds it.
func (rn *Runner) renew(ctx context.Context, id string) (bool, error) {
	ok := false
	err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		ok = false
		r, err := load(tx, id)
		if err != nil || r.Owner != rn.cfg.Owner {
			return err
		}
		ok = true
		now := rn.cfg.Clock.Now()
		r.Lease = now.Add(rn.cfg.LeaseTTL).UTC()
		return save(tx, &r, now)
	})
	return ok, err
}

func (rn *Runner) releaseLease(ctx context.Context, id string) {
	_ = rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		r, err := load(tx, id)
		if err != nil || r.Owner != rn.cfg.Owner {
			return err
		}
		r.Owner, r.Lease = "", time.Time{}
		return save(tx, &r, rn.cfg.Clock.Now())
	})
}

// mutate changes the record of a rollout this runner drives; it returns
// errLost if the rollout stopped running or another runner took it.
func (rn *Runner) mutate(ctx context.Context, id string, fn func(tx store.Tx, r *Rollout) error) (Rollout, error) {
	var r Rollout
	err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if r, err = load(tx, id); err != nil {
			return err
		}
		if r.State != StateRunning || r.Owner != rn.cfg.Owner {
			return errLost
		}
		if err := fn(tx, &r); err != nil {
			return err
		}
		if !r.State.Active() {
			if err := clearActive(tx, r.ID); err != nil {
				return err
			}
		}
		return save(tx, &r, rn.cfg.Clock.Now())
	})
	return r, err
}

func (rn *Runner) drive(ctx context.Context, id string) error {
	for {
		r, err := rn.Get(ctx, id)
		if err != nil {
			return err
		}
		if r.State != StateRunning || r.Owner != rn.cfg.Owner {
			return nil
		}
		if r.RollbackOf != "" {
			if err := rn.waitFor(ctx, r.RollbackOf); err != nil {
				return err
			}
		}
		target, err := rn.release(ctx, r.Release)
		if err != nil {
			return err
		}
		if r.Ring >= len(r.Rings) {
			return rn.finish(ctx, r)
		}
		i := r.Ring
		ring := r.Rings[i]
		switch ring.Phase {
		case PhaseWaiting:
			err = rn.begin(ctx, r, target)
		case PhaseApplying:
			err = rn.applying(ctx, r, target)
		case PhaseBaking:
			err = rn.baking(ctx, r, target)
		case PhaseVerifying:
			err = rn.verifying(ctx, r, target)
		case PhaseRollingBack:
			err = rn.rollingBack(ctx, r, target)
		default: // promoted or rolled back: move on
			_, err = rn.mutate(ctx, id, func(_ store.Tx, r *Rollout) error { r.Ring++; return nil })
		}
		if err != nil {
			return err
		}
	}
}

// waitFor waits until the rollout superseded by a rollback has no live
// runner, so that the two never apply to one account at the same time.
func (rn *Runner) waitFor(ctx context.Context, id string) error {
	for {
		o, err := rn.Get(ctx, id)
		if err != nil {
			return err
		}
		if o.Owner == "" || !rn.cfg.Clock.Now().Before(o.Lease) {
			return nil
		}
		t := time.NewTimer(rn.cfg.Poll / 4)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (rn *Runner) setPhase(ctx context.Context, r Rollout, phase Phase, fn func(*RingStatus, *Rollout)) error {
	_, err := rn.mutate(ctx, r.ID, func(_ store.Tx, cur *Rollout) error {
		if cur.Ring != r.Ring {
			return errLost
		}
		ring := &cur.Rings[cur.Ring]
		if fn != nil {
			fn(ring, cur)
		}
		ring.Phase = phase
		return nil
	})
	if err == nil {
		rn.hook(Event{Rollout: r.ID, Ring: r.Rings[r.Ring].Name, Point: "phase", Detail: string(phase)})
	}
	return err
}

// ringOf returns the index of the first ring selecting a, or -1.
func ringOf(rings []RingStatus, st *spec.Stack, a silo.Account) int {
	var params map[string]string
	for i, r := range rings {
		sel := r.Select
		if a.Kind == silo.KindProduction || sel.Kind == silo.KindProduction {
			if a.Kind == sel.Kind {
				return i
			}
			continue
		}
		if sel.Kind != "" && sel.Kind != a.Kind {
			continue
		}
		if len(sel.Params) > 0 {
			if params == nil {
				p, err := st.ResolveParams(a.Params)
				if err != nil {
					p = a.Params
				}
				params = p
			}
			match := true
			for k, v := range sel.Params {
				if params[k] != v {
					match = false
					break
				}
			}
			if !match {
				continue
			}
		}
		if sel.Percent < 100 && Percentile(a.ID) >= sel.Percent {
			continue
		}
		return i
	}
	return -1
}

// Percentile places an account in [0, 100) by a stable hash of its ID, the
// same in every rollout: a selector with percent p selects the accounts
// whose percentile is below p.
func Percentile(id silo.AccountID) float64 {
	sum := sha256.Sum256([]byte("silo/ring/" + id))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / float64(uint64(1)<<53) * 100
}

// members calls fn for every account of ring i, in ID order, in pages.
func (rn *Runner) members(ctx context.Context, r Rollout, i int, st *spec.Stack, fn func([]silo.Account) error) (unselected int, err error) {
	f := store.Filter{Limit: 1000}
	for {
		var page []silo.Account
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.Accounts(f)
			return err
		}); err != nil {
			return unselected, fmt.Errorf("list accounts: %w", err)
		}
		var mine []silo.Account
		for _, a := range page {
			if a.State == silo.StateDeleting || a.State == silo.StateDeleted {
				continue
			}
			switch ringOf(r.Rings, st, a) {
			case i:
				mine = append(mine, a)
			case -1:
				unselected++
			}
		}
		if len(mine) > 0 {
			if err := fn(mine); err != nil {
				return unselected, err
			}
		}
		if len(page) < f.Limit {
			return unselected, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// snapshot sums the metrics the accounts served under release.
func (rn *Runner) snapshot(ids []silo.AccountID, release string) (Stats, error) {
	var sum Stats
	if rn.cfg.Metrics == nil {
		return sum, silo.Errorf(silo.CodeUnavailable, "no metrics source is configured")
	}
	for _, id := range ids {
		s, err := rn.cfg.Metrics.Snapshot(id, release)
		if err != nil {
			return sum, err
		}
		sum = sum.Add(s)
	}
	return sum, nil
}

func gated(g spec.Gates) bool { return g.MaxErrorRate > 0 || g.MaxP99Increase > 0 || g.MinRequests > 0 }

// begin counts the ring and measures the baseline of the accounts it will
// touch: what they served under the previous release, the current one when
// the rollout started (a release that a rollout promoted, or that the fleet
// was rolled back to). Requests served under any other release, such as a
// broken one that was rolled back, are not part of it.
func (rn *Runner) begin(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	var touched []silo.AccountID
	n := 0
	unsel, err := rn.members(ctx, r, r.Ring, target.Stack, func(as []silo.Account) error {
		n += len(as)
		if !gated(ring.Gates) {
			return nil
		}
		for _, a := range as {
			p, err := rn.cfg.Engine.PlanAccount(ctx, a, target)
			if err == nil && p.Touches() {
				touched = append(touched, a.ID)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var base *Stats
	if gated(ring.Gates) && len(touched) > 0 && r.Previous != "" {
		if s, err := rn.snapshot(touched, r.Previous); err == nil {
			base = &s
		}
	}
	return rn.setPhase(ctx, r, PhaseApplying, func(rs *RingStatus, cur *Rollout) {
		rs.Members, rs.Baseline = n, base
		if r.Ring == 0 {
			cur.Unselected = unsel
		}
	})
}

// stepResult is the outcome of one pass over a ring's accounts.
type stepResult struct {
	members, unchanged, done, failed int
	failures                         []string
	applied                          []silo.AccountID
	stopped                          bool // the budget ran out, or the rollout stopped
}

const failPrefix = "step failed: "

// pass runs one step over the accounts of ring i. "apply" moves each to
// rel; "rollback" visits only accounts with an apply claim and moves each
// back to the release it ran before the rollout (see fromKey), rel when none
// is recorded.
func (rn *Runner) pass(ctx context.Context, r Rollout, i int, sel engine.Release, rel engine.Release, step string) (stepResult, error) {
	ring := r.Rings[i]
	var (
		res    stepResult
		mu     sync.Mutex
		wg     sync.WaitGroup
		sem    = make(chan struct{}, max(ring.Concurrency, 1))
		budget = ring.budget()
		stop   bool
		first  error
	)
	fail := func(id silo.AccountID, msg string) {
		res.failed++
		if len(res.failures) < maxFailures {
			res.failures = append(res.failures, fmt.Sprintf("%s: %s", id, msg))
		}
		if step == "apply" && res.failed > budget {
			stop = true
		}
	}
	lastCheck := time.Now()
	_, err := rn.members(ctx, r, i, sel.Stack, func(as []silo.Account) error {
		claims := map[silo.AccountID]store.Intent{}
		applyClaims := map[silo.AccountID]store.Intent{}
		from := map[silo.AccountID]string{}
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			for _, a := range as {
				if in, err := tx.IntentByKey(claimKey(r.ID, ring.Name, a.ID, step)); err == nil {
					claims[a.ID] = in
				} else if !errors.Is(err, silo.ErrNotFound) {
					return err
				}
				if step == "rollback" {
					if in, err := tx.IntentByKey(claimKey(r.ID, ring.Name, a.ID, "apply")); err == nil {
						applyClaims[a.ID] = in
					} else if !errors.Is(err, silo.ErrNotFound) {
						return err
					}
					if v, err := setting(tx, fromKey(r.ID, ring.Name, a.ID)); err != nil {
						return err
					} else if v != "" {
						from[a.ID] = v
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, a := range as {
			mu.Lock()
			res.members++
			halt, ferr := stop, first
			mu.Unlock()
			if ferr != nil {
				return ferr
			}
			if halt {
				return nil
			}
			if time.Since(lastCheck) > rn.cfg.Poll {
				lastCheck = time.Now()
				if cur, err := rn.Get(ctx, r.ID); err != nil || cur.State != StateRunning || cur.Owner != rn.cfg.Owner {
					mu.Lock()
					stop, res.stopped = true, true
					mu.Unlock()
					return nil
				}
			}
			to := rel
			if step == "rollback" {
				if _, ok := applyClaims[a.ID]; !ok {
					continue
				}
				if id := from[a.ID]; id != "" && id != rel.ID {
					fr, err := rn.release(ctx, id)
					if err != nil {
						return fmt.Errorf("release %s of %s before rollout %s: %w", id, a.ID, r.ID, err)
					}
					to = fr
				}
			}
			in, claimed := claims[a.ID]
			if claimed && (in.State == store.IntentDone || (in.State == store.IntentFailed && strings.HasPrefix(in.Error, failPrefix))) {
				mu.Lock()
				if in.State == store.IntentDone {
					res.done++
					res.applied = append(res.applied, a.ID)
				} else {
					fail(a.ID, strings.TrimPrefix(in.Error, failPrefix))
				}
				mu.Unlock()
				continue
			}
			if !claimed {
				p, err := rn.cfg.Engine.PlanAccount(ctx, a, to)
				if err == nil && !p.Touches() {
					mu.Lock()
					res.unchanged++
					mu.Unlock()
					continue
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Add(1)
			go func(a silo.Account, in store.Intent, claimed bool) {
				defer func() { <-sem; wg.Done() }()
				ok, msg, err := rn.step(ctx, r, ring, a, to, step, in, claimed)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					if first == nil {
						first = err
					}
				case ok:
					res.done++
					res.applied = append(res.applied, a.ID)
				default:
					fail(a.ID, msg)
				}
			}(a, in, claimed)
		}
		return nil
	})
	wg.Wait()
	if err == nil {
		err = first
	}
	res.stopped = res.stopped || stop
	return res, err
}

// step claims, applies and finishes one account. It returns ok, or the
// failure message, or an error when the store failed (the step is then left
// to the next runner).
func (rn *Runner) step(ctx context.Context, r Rollout, ring RingStatus, a silo.Account, rel engine.Release, step string, in store.Intent, claimed bool) (bool, string, error) {
	key := claimKey(r.ID, ring.Name, a.ID, step)
	seq := in.Seq
	if !claimed {
		now := rn.cfg.Clock.Now()
		err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
			var err error
			seq, err = tx.AddIntent(store.Intent{Key: key, Account: a.ID, Action: "rollout." + step, State: store.IntentPending, Created: now, Updated: now})
			if errors.Is(err, silo.ErrConflict) {
				// Claimed meanwhile by a runner that has since lost the
				// lease to us: take it over.
				in, err = tx.IntentByKey(key)
				seq = in.Seq
				return err
			}
			if err != nil || step != "apply" || a.Release == "" || a.Release == r.Previous {
				return err
			}
			// The account ran another release than the fleet's: a
			// rollback returns it there, not to Previous.
			return tx.PutSetting(fromKey(r.ID, ring.Name, a.ID), a.Release)
		})
		if err != nil {
			return false, "", fmt.Errorf("claim %s: %w", key, err)
		}
		rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Account: a.ID, Point: "claimed", Detail: step})
	}
	applyErr := rn.applyOne(ctx, a.ID, rel)
	if applyErr == nil && step == "apply" && ring.Gates.Smoke != "" {
		if rn.cfg.Smoke == nil {
			applyErr = silo.Errorf(silo.CodeUnavailable, "ring %s names smoke function %q but no smoke runner is configured", ring.Name, ring.Gates.Smoke)
		} else if err := rn.cfg.Smoke.Smoke(ctx, a.ID, ring.Gates.Smoke); err != nil {
			applyErr = silo.Errorf(silo.CodeFailedCheck, "smoke function %s failed: %s", ring.Gates.Smoke, silo.UserMessage(err))
		}
	}
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Account: a.ID, Point: "applied", Detail: step})
	state, msg := store.IntentDone, ""
	if applyErr != nil {
		state, msg = store.IntentFailed, failPrefix+silo.UserMessage(applyErr)
		if silo.ErrorCode(applyErr) == silo.CodeInternal {
			msg = failPrefix + applyErr.Error()
		}
	}
	if err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.FinishIntent(seq, state, msg) }); err != nil {
		return false, "", fmt.Errorf("finish %s: %w", key, err)
	}
	rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Account: a.ID, Point: "finished", Detail: step})
	return applyErr == nil, strings.TrimPrefix(msg, failPrefix), nil
}

// applyOne moves one account to rel: plan from recorded state, apply. An
// interrupted earlier apply leaves intents keyed by the account's Version;
// a conflict bumps the Version and plans again.
func (rn *Runner) applyOne(ctx context.Context, id silo.AccountID, rel engine.Release) error {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		var a silo.Account
		if err = rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			a, err = tx.Account(id)
			return err
		}); err != nil {
			return err
		}
		var p engine.Plan
		if p, err = rn.cfg.Engine.PlanAccount(ctx, a, rel); err != nil {
			return err
		}
		if err = rn.cfg.Engine.Apply(ctx, p); err == nil || !errors.Is(err, silo.ErrConflict) {
			return err
		}
		if err := rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
			cur, err := tx.Account(id)
			if err != nil {
				return err
			}
			return tx.UpdateAccount(cur)
		}); err != nil {
			return err
		}
	}
	return err
}

func (rn *Runner) applying(ctx context.Context, r Rollout, target engine.Release) error {
	res, err := rn.pass(ctx, r, r.Ring, target, target, "apply")
	if err != nil {
		return err
	}
	ring := r.Rings[r.Ring]
	if res.stopped && res.failed <= ring.budget() {
		return errLost // paused, aborted or lease lost
	}
	record := func(rs *RingStatus) {
		rs.Unchanged, rs.Applied, rs.Failed, rs.Failures = res.unchanged, res.done, res.failed, res.failures
	}
	if res.failed > ring.budget() {
		return rn.setPhase(ctx, r, PhaseRollingBack, func(rs *RingStatus, cur *Rollout) {
			record(rs)
			cur.Reason = fmt.Sprintf("ring %s: %d account(s) failed, over its failure budget of %d (%s)", ring.Name, res.failed, ring.budget(), strings.Join(res.failures, "; "))
		})
	}
	if len(res.applied) == 0 || (!gated(ring.Gates) && ring.Bake == 0) {
		return rn.setPhase(ctx, r, PhaseVerifying, func(rs *RingStatus, _ *Rollout) { record(rs) })
	}
	return rn.setPhase(ctx, r, PhaseBaking, func(rs *RingStatus, _ *Rollout) {
		record(rs)
		rs.BakeStart, rs.BakeUntil, rs.WindowStart = time.Time{}, time.Time{}, nil
	})
}

// applied lists the accounts of the ring whose apply claim is done.
func (rn *Runner) applied(ctx context.Context, r Rollout, target engine.Release) ([]silo.AccountID, error) {
	var out []silo.AccountID
	ring := r.Rings[r.Ring]
	_, err := rn.members(ctx, r, r.Ring, target.Stack, func(as []silo.Account) error {
		return rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			for _, a := range as {
				in, err := tx.IntentByKey(claimKey(r.ID, ring.Name, a.ID, "apply"))
				if err == nil && in.State == store.IntentDone {
					out = append(out, a.ID)
				} else if err != nil && !errors.Is(err, silo.ErrNotFound) {
					return err
				}
			}
			return nil
		})
	})
	return out, err
}

func (rn *Runner) baking(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	if ring.BakeStart.IsZero() {
		ids, err := rn.applied(ctx, r, target)
		if err != nil {
			return err
		}
		var ws *Stats
		if gated(ring.Gates) {
			if s, err := rn.snapshot(ids, target.ID); err == nil {
				ws = &s
			}
		}
		now := rn.cfg.Clock.Now().UTC()
		return rn.setPhase(ctx, r, PhaseBaking, func(rs *RingStatus, _ *Rollout) {
			rs.BakeStart, rs.BakeUntil, rs.WindowStart, rs.Verdict = now, now.Add(ring.Bake), ws, nil
		})
	}
	rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "bake"})
	for {
		now := rn.cfg.Clock.Now()
		if !now.Before(ring.BakeUntil) {
			break
		}
		next := now.Add(rn.cfg.Poll)
		if next.After(ring.BakeUntil) {
			next = ring.BakeUntil
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-rn.wake:
				cancel()
			case <-wctx.Done():
			}
		}()
		err := rn.cfg.Clock.Until(wctx, next)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err
		cur, err := rn.Get(ctx, r.ID)
		if err != nil {
			return err
		}
		if cur.State != StateRunning || cur.Owner != rn.cfg.Owner {
			return errLost
		}
	}
	return rn.setPhase(ctx, r, PhaseVerifying, nil)
}

func (rn *Runner) verifying(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	v := Verdict{Result: Pass, Reason: "no account changed"}
	if ring.Applied > 0 {
		ids, err := rn.applied(ctx, r, target)
		if err != nil {
			return err
		}
		var win Stats
		var merr error
		if gated(ring.Gates) {
			if ring.WindowStart == nil {
				merr = silo.Errorf(silo.CodeUnavailable, "no snapshot at the start of the bake")
			} else if end, err := rn.snapshot(ids, target.ID); err != nil {
				merr = err
			} else {
				win = end.Sub(*ring.WindowStart)
			}
		}
		v = evaluate(ring.Gates, ring.Baseline, win, merr)
		if ring.Baseline != nil && len(v.Judged) > 0 {
			v.PrevRelease = r.Previous
		}
	}
	if v.Result == Pass {
		if bad, err := rn.verifyLive(ctx, r, target); err != nil {
			return err
		} else if len(bad) > 0 {
			v = Verdict{Result: Fail, Reason: fmt.Sprintf("%d account(s) do not run release %s live: %s", len(bad), target.ID, strings.Join(bad[:min(len(bad), maxFailures)], "; "))}
		}
	}
	rn.cfg.Logger.Info("ring verdict", "rollout", r.ID, "ring", ring.Name, "result", v.Result, "reason", v.Reason)
	switch {
	case v.Result == Pass:
		return rn.setPhase(ctx, r, PhasePromoted, func(rs *RingStatus, cur *Rollout) { rs.Verdict = &v; cur.Ring++ })
	case v.Result == Inconclusive && ring.Gates.OnInconclusive != spec.OnInconclusiveRollback:
		// Pause: never pass on too little data. Resume bakes again.
		_, err := rn.mutate(ctx, r.ID, func(_ store.Tx, cur *Rollout) error {
			rs := &cur.Rings[cur.Ring]
			rs.Verdict, rs.Phase = &v, PhaseBaking
			rs.BakeStart, rs.BakeUntil, rs.WindowStart = time.Time{}, time.Time{}, nil
			cur.State, cur.Reason = StatePaused, fmt.Sprintf("ring %s is inconclusive: %s; resume to bake again, or roll back", ring.Name, v.Reason)
			return nil
		})
		if err == nil {
			rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "state", Detail: string(StatePaused)})
		}
		return err
	default:
		return rn.setPhase(ctx, r, PhaseRollingBack, func(rs *RingStatus, cur *Rollout) {
			rs.Verdict = &v
			cur.Reason = fmt.Sprintf("ring %s failed its gates: %s", ring.Name, v.Reason)
		})
	}
}

// verifyLive checks, for every account of the ring that did not fail, that
// the provider holds exactly the resources of the target release, and that
// the registry says it runs it.
func (rn *Runner) verifyLive(ctx context.Context, r Rollout, target engine.Release) ([]string, error) {
	ring := r.Rings[r.Ring]
	var (
		mu  sync.Mutex
		bad []string
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(ring.Concurrency, 4))
	)
	failed := map[silo.AccountID]bool{}
	_, err := rn.members(ctx, r, r.Ring, target.Stack, func(as []silo.Account) error {
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			for _, a := range as {
				in, err := tx.IntentByKey(claimKey(r.ID, ring.Name, a.ID, "apply"))
				if err == nil && in.State == store.IntentFailed {
					failed[a.ID] = true
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, a := range as {
			if failed[a.ID] {
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func(a silo.Account) {
				defer func() { <-sem; wg.Done() }()
				msg := rn.live(ctx, a, target)
				if msg != "" {
					mu.Lock()
					bad = append(bad, string(a.ID)+": "+msg)
					mu.Unlock()
				}
			}(a)
		}
		return nil
	})
	wg.Wait()
	return bad, err
}

func (rn *Runner) live(ctx context.Context, a silo.Account, rel engine.Release) string {
	if a.Release != rel.ID {
		return fmt.Sprintf("registry says release %q", a.Release)
	}
	desired, err := engine.Desired(rel.Stack, rel.Artifacts, a)
	if err != nil {
		return silo.UserMessage(err)
	}
	held, err := rn.cfg.Provider.Resources(ctx, a.ID)
	if err != nil {
		return "cannot read live resources: " + silo.UserMessage(err)
	}
	if silo.SetHash(held) != silo.SetHash(desired) {
		return "live resources differ from the release"
	}
	return ""
}

// rollingBack returns every account the rollout applied to, in the failing
// ring and in every ring before it (production included) whose policy is
// not on_rollback: keep, to the release it ran before, newest ring first;
// then the rollout fails. A rollback rollout
// that fails is not itself rolled back: its accounts stay on the release it
// returns them to, or where they were.
func (rn *Runner) rollingBack(ctx context.Context, r Rollout, target engine.Release) error {
	ring := r.Rings[r.Ring]
	res := make([]stepResult, r.Ring+1)
	undo := r.Previous != "" && r.RollbackOf == ""
	if undo {
		prev, err := rn.release(ctx, r.Previous)
		if err != nil {
			return err
		}
		for i := r.Ring; i >= 0; i-- {
			if i < r.Ring && r.Rings[i].OnRollback == spec.OnRollbackKeep {
				continue
			}
			if res[i], err = rn.pass(ctx, r, i, target, prev, "rollback"); err != nil {
				return err
			}
			if res[i].stopped {
				return errLost
			}
		}
	}
	_, err := rn.mutate(ctx, r.ID, func(tx store.Tx, cur *Rollout) error {
		failed := 0
		for i := 0; i <= cur.Ring; i++ {
			rs := &cur.Rings[i]
			rs.RolledBack = res[i].done
			kept := i < cur.Ring && rs.OnRollback == spec.OnRollbackKeep
			if i == cur.Ring || (undo && !kept && rs.Phase == PhasePromoted) {
				rs.Phase = PhaseRolledBack
			}
			if undo && kept && rs.Applied > 0 {
				cur.Reason += fmt.Sprintf("; ring %s keeps the new release (on_rollback: keep)", rs.Name)
			}
			if res[i].failed > 0 {
				failed += res[i].failed
				rs.Failures = append(rs.Failures, res[i].failures...)
			}
		}
		if failed > 0 {
			cur.Reason += fmt.Sprintf("; %d account(s) failed to roll back", failed)
		}
		switch {
		case r.RollbackOf != "":
			cur.Reason += "; a rollback is not rolled back: accounts stay where they are"
		case r.Previous == "":
			cur.Reason += "; nothing to roll back to (first deploy)"
		}
		cur.State = StateFailed
		detail, _ := json.Marshal(map[string]string{"rollout": r.ID, "ring": ring.Name, "reason": cur.Reason})
		_, err := tx.AppendAudit(store.AuditEvent{Time: rn.cfg.Clock.Now(), Actor: rn.cfg.Actor, Action: "rollout.fail", Detail: detail})
		return err
	})
	if err == nil {
		rn.hook(Event{Rollout: r.ID, Ring: ring.Name, Point: "state", Detail: string(StateFailed)})
	}
	return err
}

func (rn *Runner) finish(ctx context.Context, r Rollout) error {
	_, err := rn.mutate(ctx, r.ID, func(tx store.Tx, cur *Rollout) error {
		cur.State, cur.Reason = StateSucceeded, ""
		if err := tx.PutSetting(settingCurrent, cur.Release); err != nil {
			return err
		}
		if cur.RollbackOf != "" {
			if o, err := load(tx, cur.RollbackOf); err == nil {
				o.State = StateRolledBack
				if err := save(tx, &o, rn.cfg.Clock.Now()); err != nil {
					return err
				}
			}
		}
		detail, _ := json.Marshal(map[string]string{"rollout": r.ID, "release": r.Release, "previous": r.Previous})
		_, err := tx.AppendAudit(store.AuditEvent{Time: rn.cfg.Clock.Now(), Actor: rn.cfg.Actor, Action: "rollout.succeed", Detail: detail})
		return err
	})
	if err == nil {
		rn.hook(Event{Rollout: r.ID, Point: "state", Detail: string(StateSucceeded)})
	}
	return err
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
