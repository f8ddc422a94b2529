package rollout

import (
	"context"
	"errors"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

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
	st, err := rn.stackOf(ctx, id)
	if err != nil {
		return r, err
	}
	err = rn.cfg.Store.Update(ctx, func(tx store.Tx) error {
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
		if r.State != StateRunning {
			if err := where(tx, &r, st); err != nil {
				return err
			}
		}
		return save(tx, &r, rn.cfg.Clock.Now())
	})
	return r, err
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
