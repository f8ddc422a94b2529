package rollout

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// The timing of published metrics (see Published).
const (
	// PublishEvery is how often a server publishes the metrics of the
	// accounts that served requests since it last did: a gate counts
	// another server's requests up to this late.
	PublishEvery = time.Second
	// HeartbeatEvery is how often a server that published once and has
	// served nothing since writes its heartbeat alone, so that an idle
	// server makes a few writes an hour, not one a second. It is far
	// below DropAfter.
	HeartbeatEvery = 10 * time.Minute
	// DropAfter is how long a server process may go unheard from before
	// what it published is dropped (store.Tx.DropMetrics): a process that
	// publishes has its heartbeat renewed at least every HeartbeatEvery.
	DropAfter = 24 * time.Hour
	// readTimeout bounds one read of the published metrics.
	readTimeout = 10 * time.Second
)

// Published is the Metrics of one server process among the servers that
// share a control-plane store: what this process counted itself (Live),
// read as it is now, plus what every other process published to the store
// (store.ReleaseMetrics), so that a gate judges the requests of every
// server whichever one runs the rollout. The process publishes its own
// counters (Publish) under an incarnation, a random ID of its own, every
// PublishEvery.
//
// Each process's counters grow from zero from its start, and what it last
// published stays in the store when it stops or dies, so the sum never goes
// backwards: a restarted server is a new incarnation starting from zero
// next to its old one's last row, and a dead server's row stops growing.
// Rows go when their process has not been heard from for DropAfter, or
// their account is deleted, or no account runs their release, unless they
// are of an active rollout's release (store.Tx.DropMetrics).
//
// # Notes
//
// Another process's requests count up to PublishEvery late (plus the time
// of one write), and the requests it served in its last PublishEvery before
// it died do not count at all. Safe for concurrent use.
type Published struct {
	live        Metrics
	st          store.Store
	now         func() time.Time
	incarnation string

	mu      sync.Mutex
	touched map[recorderKey]struct{} // served since the last Publish
	wrote   time.Time                // when a Publish last wrote; zero: never, no heartbeat is due
}

// NewPublished returns the Published metrics of a process whose own
// counters are live, sharing st, under a new incarnation. now tells the
// time of publications (time.Now if nil).
func NewPublished(live Metrics, st store.Store, now func() time.Time) *Published {
	if now == nil {
		now = time.Now
	}
	return &Published{live: live, st: st, now: now, incarnation: "inc-" + rand.Text(), touched: map[recorderKey]struct{}{}}
}

// Incarnation returns the ID under which this process publishes.
func (p *Published) Incarnation() string { return p.incarnation }

// Touch notes that acct served a request under release: the next Publish
// publishes what Live counts for them. Call it after the request was
// counted.
func (p *Published) Touch(acct silo.AccountID, release string) {
	if acct == "" || release == "" {
		return
	}
	k := recorderKey{acct, release}
	p.mu.Lock()
	p.touched[k] = struct{}{}
	p.mu.Unlock()
}

// Snapshot implements Metrics: Live's figures for acct under release plus
// the latest that every other incarnation published for them.
//
// # Errors
//
// Live's error, or CodeUnavailable when the published metrics cannot be
// read: a gate never passes on metrics it could not read.
func (p *Published) Snapshot(acct silo.AccountID, release string) (Stats, error) {
	own, err := p.live.Snapshot(acct, release)
	if err != nil {
		return Stats{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	var rows []store.ReleaseMetrics
	err = p.st.View(ctx, func(tx store.Tx) (err error) {
		rows, err = tx.ReleaseMetrics(acct, release)
		return err
	})
	if err != nil {
		return Stats{}, &silo.Error{Code: silo.CodeUnavailable, Err: err,
			Message: "the request metrics the other servers published for " + string(acct) + " cannot be read: " + silo.UserMessage(err)}
	}
	sum := own
	for _, r := range rows {
		if r.Incarnation != p.incarnation { // this process's own are live
			sum = sum.Add(Stats{Requests: r.Requests, Errors: r.Errors, Latency: r.Latency})
		}
	}
	return sum, nil
}

// Publish writes to the store what Live counts now for the accounts and
// releases touched since the last Publish, with the heartbeat of this
// incarnation. Untouched, it writes nothing, unless it wrote before and
// HeartbeatEvery has passed since: then the heartbeat alone (a process
// that served nothing leaves the store as it is). What it could not
// publish is published by the next call.
func (p *Published) Publish(ctx context.Context) error {
	p.mu.Lock()
	keys, wrote := p.touched, p.wrote
	p.touched = map[recorderKey]struct{}{}
	p.mu.Unlock()
	if len(keys) == 0 && (wrote.IsZero() || p.now().Sub(wrote) < HeartbeatEvery) {
		return nil
	}
	ms := make([]store.ReleaseMetrics, 0, len(keys))
	var err error
	for k := range keys {
		var s Stats
		if s, err = p.live.Snapshot(k.acct, k.release); err != nil {
			break
		}
		ms = append(ms, store.ReleaseMetrics{Account: k.acct, Release: k.release, Requests: s.Requests, Errors: s.Errors, Latency: s.Latency})
	}
	at := p.now()
	if err == nil {
		err = p.st.Update(ctx, func(tx store.Tx) error { return tx.PublishMetrics(p.incarnation, at, ms) })
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		for k := range keys { // again next time
			p.touched[k] = struct{}{}
		}
		return err
	}
	p.wrote = at
	return nil
}

// Drop deletes what the processes not heard from for DropAfter published
// (store.Tx.DropMetrics), once this process has published itself (before,
// it writes nothing), and reports how many rows it deleted.
func (p *Published) Drop(ctx context.Context) (int64, error) {
	p.mu.Lock()
	wrote := p.wrote
	p.mu.Unlock()
	if wrote.IsZero() {
		return 0, nil
	}
	var n int64
	before := p.now().Add(-DropAfter)
	err := p.st.Update(ctx, func(tx store.Tx) (err error) {
		n, err = tx.DropMetrics(before)
		return err
	})
	return n, err
}
