package platform

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strconv"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/runtime"
)

// runtimeMetrics feeds the rollout runner's health gates from the runtime's
// per-account, per-release invocation metrics (the gateway's invocations
// carry the release the account serves): errors are failed invocations
// plus 5xx answers. They are this server's own, which rollout.Published
// adds to the other servers' (gatemetrics.go).
type runtimeMetrics struct{ rt *runtime.Runtime }

func (m runtimeMetrics) Snapshot(acct silo.AccountID, release string) (rollout.Stats, error) {
	s := m.rt.ReleaseMetrics(acct, release)
	return rollout.StatsFromBuckets(s.Invocations, s.Errors+s.Status5xx, s.Durations[:]), nil
}

// smoker runs a ring's smoke function in an account: one GET / through the
// same invoker the gateway uses, with a fresh request ID.
type smoker struct{ p *Platform }

func (s smoker) Smoke(ctx context.Context, acct silo.AccountID, fn string) error {
	s.p.Invalidate(acct) // the account was just applied
	// The release may have been built in another process, so that its
	// module is compiled here for the first time: the check waits for the
	// compilation for as long as its step may take, where a request waits
	// no longer than the function's timeout, so that a busy machine's
	// compilation is not judged as the release failing.
	if v, err := s.p.dir.View(ctx, acct); err == nil {
		if f, ok := v.Functions[fn]; ok {
			if err := s.p.load(ctx, f.Artifact); err != nil {
				return err
			}
		}
	}
	rid := "smoke-" + rand.Text()
	start := time.Now()
	resp, err := s.p.invoke(ctx, acct, fn, gateway.Request{Method: "GET", Path: "/", RequestID: rid})
	status := resp.Status
	if err != nil {
		status = 0 // no answer; the invocation's failure is logged by invoke
	}
	s.logRun(acct, fn, rid, status, time.Since(start))
	if err != nil {
		return err
	}
	if resp.Status >= 400 {
		return silo.Errorf(silo.CodeFailedCheck, "smoke function %q of %s answered %d; its lines and the smoke check's own are in silo logs %s --request %s", fn, acct, resp.Status, acct, rid)
	}
	return nil
}

// logRun writes the smoke check's own line into the account's log, as the
// gateway's access line for a request (source "smoke"), so that silo logs
// ID --request RID or --function FN finds the run whatever the function
// logged. status 0 is an invocation that gave no answer.
func (s smoker) logRun(acct silo.AccountID, fn, rid string, status int, d time.Duration) {
	level, result := slog.LevelInfo, "passed"
	switch {
	case status == 0:
		level, result = slog.LevelError, "failed: no answer"
	case status >= 400:
		level, result = slog.LevelError, "failed: answered "+strconv.Itoa(status)
	}
	e := logs.Entry{
		Time: s.p.cfg.Now(), Level: logs.LevelString(level), Account: acct, Function: fn, RequestID: rid,
		Msg: "smoke check GET / " + result,
		Attrs: map[string]string{
			"source": "smoke", "status": strconv.Itoa(status),
			"duration_ms": strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64),
		},
	}
	if err := s.p.Logs.Append(e); err != nil {
		s.p.cfg.Logger.Error("platform: write the smoke check's log line", "account", acct, "error", err)
	}
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

// stdioTee passes the runtime's log records to the platform logger and,
// for a guest's standard output and error (records with stream=stdio, which
// carry the account), to the account's own log too. Other runtime records
// (internal errors) stay out of the tenant's log.
type stdioTee struct {
	main, acct slog.Handler
}

func (h stdioTee) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (h stdioTee) Handle(ctx context.Context, r slog.Record) error {
	stdio := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stream" && a.Value.String() == "stdio" {
			stdio = true
			return false
		}
		return true
	})
	if stdio {
		h.acct.Handle(ctx, r.Clone())
	}
	if h.main.Enabled(ctx, r.Level) {
		return h.main.Handle(ctx, r)
	}
	return nil
}

func (h stdioTee) WithAttrs(as []slog.Attr) slog.Handler {
	return stdioTee{main: h.main.WithAttrs(as), acct: h.acct.WithAttrs(as)}
}

func (h stdioTee) WithGroup(name string) slog.Handler {
	return stdioTee{main: h.main.WithGroup(name), acct: h.acct.WithGroup(name)}
}
