package platform

import (
	"context"
	"errors"
	"sort"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// aheadEvery is how often CompileAhead looks for modules to compile when
// nothing woke it: it is woken by this process's changes and those other
// servers announce (a release made current, by silo apply or at the end of
// a rollout or a rollback, among them), so the periodic look catches only
// what an announcement lost (the feed down).
const aheadEvery = 30 * time.Second

// CompileAhead compiles, in the background, the function modules of the
// current release and of the release an active rollout rolls out that this
// process has not compiled yet, so that the first request to a function
// finds its module compiled (from the compile cache when another process
// compiled it before). It looks when it starts, when a rollout this
// process runs begins or changes phase, whenever a change is announced (an
// account created or moved to a release, here or on another server sharing
// the store) and every 30 s, until ctx ends. Modules compile one at a time, through the same queue as
// a request's (so a request waits behind at most one), and a module that
// fails to compile is not tried again by CompileAhead (a request still
// tries it, and gets the failure). Serve runs it; a provider that runs
// functions itself (on Lambda) compiles nothing here.
func (p *Platform) CompileAhead(ctx context.Context) {
	if hosted(p.Provider) != nil {
		return
	}
	failed := map[string]bool{}
	t := time.NewTicker(aheadEvery)
	defer t.Stop()
	for {
		p.compileAhead(ctx, failed)
		select {
		case <-ctx.Done():
			return
		case <-p.ahead:
		case <-t.C:
		}
	}
}

// wakeAhead makes CompileAhead look for modules to compile; it never blocks.
func (p *Platform) wakeAhead() {
	select {
	case p.ahead <- struct{}{}:
	default:
	}
}

// compileAhead is one look of CompileAhead: it compiles, one after the
// other, the modules of the releases it should that are not compiled and
// did not fail before (failed).
func (p *Platform) compileAhead(ctx context.Context, failed map[string]bool) {
	digests, err := p.aheadDigests(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.cfg.Logger.Warn("platform: find the function modules to compile ahead of requests; trying again later", "error", err)
		}
		return
	}
	for _, d := range digests {
		if _, ok := p.loaded.Load(d); ok || failed[d] {
			continue
		}
		c := p.compile(d)
		select {
		case <-ctx.Done():
			return
		case <-c.done:
		}
		if c.err != nil && silo.ErrorCode(c.err) != silo.CodeUnavailable {
			failed[d] = true
			p.cfg.Logger.Warn("platform: a function module of a release does not compile; its requests will fail", "artifact", d, "error", silo.ForLog(c.err))
		}
	}
}

// aheadDigests returns the artifact digests of the current release and of
// an active rollout's release, in a stable order.
func (p *Platform) aheadDigests(ctx context.Context) ([]string, error) {
	ids := []string{}
	if r, err := p.Runner.Active(ctx); err == nil {
		ids = append(ids, r.Release)
	} else if !errors.Is(err, silo.ErrNotFound) {
		return nil, err
	}
	seen := map[string]bool{}
	var digests []string
	err := p.Store.View(ctx, func(tx store.Tx) error {
		cur, err := tx.CurrentRelease()
		if err == nil {
			ids = append([]string{cur}, ids...)
		} else if !errors.Is(err, silo.ErrNotFound) {
			return err
		}
		for _, id := range ids {
			rel, err := tx.Release(id)
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(rel.Artifacts))
			for k := range rel.Artifacts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if d := rel.Artifacts[k]; !seen[d] {
					seen[d] = true
					digests = append(digests, d)
				}
			}
		}
		return nil
	})
	return digests, err
}
