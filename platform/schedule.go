package platform

import (
	"context"
	"crypto/rand"
	"hash/fnv"
	"net/http"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// Schedules (silo.yaml "schedules") run in every active tenant, developer
// and environment account, on the release the account runs; not in the
// production account, nor in suspended or expired accounts. A run is an
// invocation of the schedule's function with method POST, path "/", and the
// header fields gateway.HeaderSchedule and gateway.HeaderScheduledFor. Each
// account's runs of a schedule are spread over a window after the due time
// (up to 30 s, or a tenth of an interval), the same every time, so that
// 10,000 tenants are not started in the same second, and at most
// maxScheduledRuns run at once. A run still going when the next is due is
// not started twice; runs missed while no server ran are not made up for
// (after a pause, each schedule runs once, for its latest due time).
// Failures go to the account's log.
//
// Several servers on one store run each due run once: before it starts,
// a run is claimed in the store (store.Tx.ClaimScheduleRun) for its
// account, schedule and due time, and the server that does not win the
// claim skips it. The claim is held for the function's timeout plus
// scheduleClaimMargin, or until the run ends. Runs are at most once: a
// server that dies holding a claim takes that one run with it (the run
// may have done part of its work, so it is not started again elsewhere),
// and the schedule's next due time after the claim expired is claimed and
// run as usual.

// maxScheduleJitter bounds how long after its due time an account's run
// starts.
const maxScheduleJitter = 30 * time.Second

// scheduleTick is how often Serve looks for due runs.
const scheduleTick = time.Second

// maxScheduledRuns bounds the scheduled runs in flight at once; the others
// wait their turn (a nightly schedule of a large fleet is not a flood).
const maxScheduledRuns = 16

// scheduleClaimMargin is how long a run's claim outlasts its function's
// timeout: time to load the function and to record the end of the run.
const scheduleClaimMargin = time.Minute

// scheduler is the state of the schedules.
type scheduler struct {
	mu       sync.Mutex
	last     time.Time       // end of the window the last RunSchedules covered
	nextScan time.Time       // no run can be due before this
	running  map[runKey]bool // runs in flight
	releases map[string]*spec.Stack
	slots    chan struct{} // maxScheduledRuns
	owner    string        // this server, in the store's claims
	wg       sync.WaitGroup
}

type runKey struct {
	acct silo.AccountID
	name string
}

// jitter is how long after its due time acct's runs of the schedule start.
func jitter(acct silo.AccountID, name string, s spec.Schedule) time.Duration {
	max := maxScheduleJitter
	if s.Every > 0 {
		max = min(max, s.Every/10)
	}
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(acct))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(max))
}

// RunSchedules starts the runs due since the previous call, up to now (the
// first call only sets the start), and returns how many it started; they
// run in the background (WaitSchedules waits for them). Serve calls it
// every second with Config.Now; tests call it with times of their own.
func (p *Platform) RunSchedules(ctx context.Context, now time.Time) (int, error) {
	ctx = store.WithActor(ctx, ActorScheduler)
	s := &p.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		s.last = now
		return 0, nil
	}
	if !now.After(s.last) || now.Before(s.nextScan) {
		return 0, nil // nothing can be due yet: the window grows until something is
	}
	if s.running == nil {
		s.running, s.slots, s.owner = map[runKey]bool{}, make(chan struct{}, maxScheduledRuns), p.runnerOwner()
	}
	if len(s.releases) > 64 || s.releases == nil {
		s.releases = map[string]*spec.Stack{} // releases no account runs any more go
	}
	accts, err := p.Plane.Accounts(ctx, store.Filter{State: silo.StateActive})
	if err != nil {
		return 0, err
	}
	started := 0
	// The next scan is at the earliest due time before jitter (a lower
	// bound for every account, also one created meanwhile), and at least
	// every minute for releases deployed meanwhile.
	next := now.Add(time.Minute)
	for _, a := range accts {
		if a.Kind == silo.KindProduction || a.Release == "" || a.Expires != nil && !now.Before(*a.Expires) {
			continue
		}
		st, err := s.stack(ctx, p, a.Release)
		if err != nil {
			p.cfg.Logger.Warn("schedules: read release", "account", a.ID, "release", a.Release, "error", err)
			continue
		}
		for name, sch := range st.Schedules {
			j := jitter(a.ID, name, sch)
			due := sch.Next(s.last.Add(-j)) // the first due time in the window, for this account
			if due.IsZero() {
				continue
			}
			if due.Add(j).After(now) {
				next = minTime(next, due)
				continue
			}
			due = latestDue(sch, due, now.Add(-j)) // one run for a window that missed several
			next = minTime(next, sch.Next(due))
			k := runKey{a.ID, name}
			if s.running[k] {
				continue // the previous run is still going
			}
			s.running[k] = true
			started++
			s.wg.Add(1)
			hold := spec.MaxTimeout
			if fn, ok := st.Functions[sch.Function]; ok && fn.Timeout > 0 {
				hold = fn.Timeout
			}
			go p.runSchedule(ctx, k, sch, due, hold+scheduleClaimMargin)
		}
	}
	s.last, s.nextScan = now, next
	return started, nil
}

// latestDue returns the last due time of sch from first (a due time) up
// to to.
func latestDue(sch spec.Schedule, first, to time.Time) time.Time {
	if sch.Every > 0 {
		epoch := time.Unix(0, 0)
		if last := epoch.Add(to.Sub(epoch).Truncate(sch.Every)).UTC(); last.After(first) {
			return last
		}
		return first
	}
	due := first
	for range 100_000 { // a minutely cron over more than two months stops here
		n := sch.Next(due)
		if n.After(to) {
			break
		}
		due = n
	}
	return due
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stack returns the stack of release id, cached. The caller holds s.mu.
func (s *scheduler) stack(ctx context.Context, p *Platform, id string) (*spec.Stack, error) {
	if st := s.releases[id]; st != nil {
		return st, nil
	}
	rel, err := p.Plane.Release(ctx, id)
	if err != nil {
		return nil, err
	}
	if rel.Stack == nil {
		rel.Stack = &spec.Stack{}
	}
	s.releases[id] = rel.Stack
	return rel.Stack, nil
}

// runSchedule claims the run in the store and, if this server won the
// claim, invokes the schedule's function in the account; the claim is
// held for hold at most.
func (p *Platform) runSchedule(ctx context.Context, k runKey, sch spec.Schedule, due time.Time, hold time.Duration) {
	defer p.sched.wg.Done()
	defer func() {
		p.sched.mu.Lock()
		delete(p.sched.running, k)
		p.sched.mu.Unlock()
	}()
	select {
	case p.sched.slots <- struct{}{}:
		defer func() { <-p.sched.slots }()
	case <-ctx.Done():
		return
	}
	now := p.cfg.Now()
	c := store.ScheduleClaim{Account: k.acct, Schedule: k.name, Due: due, Owner: p.sched.owner, Until: now.Add(hold)}
	err := p.Store.Update(ctx, func(tx store.Tx) error { return tx.ClaimScheduleRun(c, now) })
	switch {
	case silo.ErrorCode(err) == silo.CodeConflict:
		return // another server runs it, or ran it
	case err != nil:
		// Without a claim the run cannot be known to happen once: it is
		// skipped, like a run missed while no server ran.
		if ctx.Err() == nil {
			p.cfg.Logger.Warn("schedules: claim run", "account", k.acct, "schedule", k.name, "error", err)
		}
		return
	}
	defer func() {
		if err := p.Store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error { return tx.FinishScheduleRun(c) }); err != nil {
			p.cfg.Logger.Warn("schedules: finish run", "account", k.acct, "schedule", k.name, "error", err)
		}
	}()
	rid := rand.Text()
	resp, err := p.invoke(ctx, k.acct, sch.Function, gateway.Request{
		Method: http.MethodPost, Path: "/", RequestID: rid,
		Header: http.Header{gateway.HeaderSchedule: {k.name}, gateway.HeaderScheduledFor: {due.UTC().Format(time.RFC3339)}},
	})
	switch {
	case err != nil:
		// invoke logged it in the account's log.
	case resp.Status >= 500:
		p.logError(k.acct, sch.Function, rid, "scheduled run failed", silo.Errorf(silo.CodeInternal, "schedule %q: the function answered %d", k.name, resp.Status))
	}
}

// WaitSchedules waits for the runs RunSchedules started.
func (p *Platform) WaitSchedules() { p.sched.wg.Wait() }

// scheduleLoop runs the schedules until ctx is done.
func (p *Platform) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(scheduleTick)
	defer t.Stop()
	for {
		if _, err := p.RunSchedules(ctx, p.cfg.Now()); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("schedules", "error", err)
		}
		select {
		case <-ctx.Done():
			p.WaitSchedules()
			return
		case <-t.C:
		}
	}
}
