package platform

import (
	"context"
	"crypto/rand"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/runtime"
)

// runtimeMetrics feeds the rollout runner's health gates from the runtime's
// per-account invocation metrics: errors are failed invocations plus 5xx
// answers.
type runtimeMetrics struct{ rt *runtime.Runtime }

func (m runtimeMetrics) Snapshot(acct silo.AccountID) (rollout.Stats, error) {
	s := m.rt.Metrics(acct)
	return rollout.StatsFromBuckets(s.Invocations, s.Errors+s.Status5xx, s.Durations[:]), nil
}

// smoker runs a ring's smoke function in an account: one GET / through the
// same invoker the gateway uses, with a fresh request ID.
type smoker struct{ p *Platform }

func (s smoker) Smoke(ctx context.Context, acct silo.AccountID, fn string) error {
	s.p.Invalidate(acct) // the account was just applied
	rid := "smoke-" + rand.Text()
	resp, err := s.p.invoke(ctx, acct, fn, gateway.Request{Method: "GET", Path: "/", RequestID: rid})
	if err != nil {
		return err
	}
	if resp.Status >= 400 {
		return silo.Errorf(silo.CodeFailedCheck, "smoke function %q of %s answered %d (request %s); see silo logs %s", fn, acct, resp.Status, rid, acct)
	}
	return nil
}

// nowClock is a rollout.Clock reading a Now function; Until polls it.
type nowClock struct{ now func() time.Time }

func (c nowClock) Now() time.Time { return c.now() }

func (c nowClock) Until(ctx context.Context, t time.Time) error {
	for {
		d := t.Sub(c.now())
		if d <= 0 {
			return ctx.Err()
		}
		tm := time.NewTimer(min(d, time.Second))
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
}
