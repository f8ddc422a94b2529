package platform

import (
	"context"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/rollout"
)

// hostedFunctions is a provider that runs the accounts' functions itself,
// inside each account, behind the account's own entry point (the AWS
// provider with functions on Lambda). The platform then takes from it what
// its own runtime and gateway would otherwise give: the account's URL and
// its API key records (control.Ingress), a ring's smoke test, the
// functions' request metrics for the rings' gates, and the functions' logs.
type hostedFunctions interface {
	// RunsFunctions is false when the provider records functions but
	// leaves running them to silo's runtime.
	RunsFunctions() bool
	control.Ingress
	rollout.Smoke
	// Invocations returns the counters of the requests an account's
	// functions served under release.
	Invocations(id silo.AccountID, release string) (provider.Invocations, error)
	// Logs returns the account's function log lines at or after since,
	// oldest first, at most limit.
	Logs(ctx context.Context, id silo.AccountID, since time.Time, limit int) ([]logs.Entry, error)
}

// hostedMetrics gives the rollout gates the requests counted by a provider
// that runs the functions itself.
type hostedMetrics struct{ h hostedFunctions }

func (m hostedMetrics) Snapshot(id silo.AccountID, release string) (rollout.Stats, error) {
	s, err := m.h.Invocations(id, release)
	if err != nil {
		return rollout.Stats{}, err
	}
	return rollout.Stats{Requests: s.Requests, Errors: s.Errors, Latency: s.Latency}, nil
}

// hosted returns prov as hostedFunctions when it runs the functions
// itself, else nil.
func hosted(prov provider.Provider) hostedFunctions {
	h, ok := prov.(hostedFunctions)
	if !ok || !h.RunsFunctions() {
		return nil
	}
	return h
}

// maxHostedLogLines is what one read of a hosted provider's logs asks for.
const maxHostedLogLines = 10000

// followEvery is how often FollowLogs asks a hosted provider for new lines.
const followEvery = 2 * time.Second

// ReadLogs returns an account's function log lines matching q, oldest
// first: from the provider when it runs the functions (see
// hostedFunctions), else from the platform's own log store, with every
// line logged and every request finished before the call (the gateway's
// access lines and the functions' queued lines are written first).
//
// # Errors
//
// CodeNotFound for an unknown account; the provider's errors.
func (p *Platform) ReadLogs(ctx context.Context, id silo.AccountID, q logs.Query) ([]logs.Entry, error) {
	if _, err := p.Plane.LiveAccount(ctx, id); err != nil { // a deleted account's logs went with it
		return nil, err
	}
	h := hosted(p.Provider)
	if h == nil {
		p.Gateway.FlushAccessLog() // the requests that finished before
		return p.Logs.Read(id, q)
	}
	es, err := h.Logs(ctx, id, q.Since, maxHostedLogLines)
	if err != nil {
		return nil, err
	}
	return filterLogs(es, q), nil
}

// FollowLogs calls fn for every log line of an account matching q, then
// for each new one, until ctx is done or fn fails. With a provider that
// runs the functions it asks the provider for new lines every 2 seconds.
func (p *Platform) FollowLogs(ctx context.Context, id silo.AccountID, q logs.Query, fn func(logs.Entry) error) error {
	if _, err := p.Plane.LiveAccount(ctx, id); err != nil { // a deleted account's logs went with it
		return err
	}
	h := hosted(p.Provider)
	if h == nil {
		p.Gateway.FlushAccessLog()
		return p.Logs.Follow(ctx, id, q, 0, fn)
	}
	var last time.Time
	seen := map[string]bool{} // lines at exactly the last time, already shown
	for first := true; ; first = false {
		es, err := h.Logs(ctx, id, q.Since, maxHostedLogLines)
		if err != nil {
			return err
		}
		if first {
			es = filterLogs(es, q)
		} else {
			es = filterLogs(es, logs.Query{Function: q.Function, RequestID: q.RequestID})
		}
		for _, e := range es {
			k := e.Time.String() + "\x00" + e.RequestID + "\x00" + e.Msg
			if e.Time.Before(last) || seen[k] {
				continue
			}
			if e.Time.After(last) {
				last, seen = e.Time, map[string]bool{}
			}
			seen[k] = true
			if err := fn(e); err != nil {
				return err
			}
		}
		if !last.IsZero() {
			q.Since = last
		}
		t := time.NewTimer(followEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// filterLogs keeps the entries matching q, and only the last q.Last of
// them when it is set.
func filterLogs(es []logs.Entry, q logs.Query) []logs.Entry {
	out := es[:0]
	for _, e := range es {
		if q.Match(e) {
			out = append(out, e)
		}
	}
	if q.Last > 0 && len(out) > q.Last {
		out = out[len(out)-q.Last:]
	}
	return out
}
