package rollout

import (
	"context"
	"math"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
)

// Metrics reports an account's cumulative request metrics per release: the
// requests the account served under that release, never those of another
// (a broken release's errors count against the broken release only). The
// runtime's per-release metrics fit it through a two-line adapter (see
// StatsFromBuckets); Recorder is an in-process implementation.
type Metrics interface {
	// Snapshot returns the account's metrics under release since some fixed
	// start: counters only grow, so the difference of two snapshots is a
	// window. An error means the metrics are unavailable; a gate never
	// passes on it.
	Snapshot(acct silo.AccountID, release string) (Stats, error)
}

// Smoke runs a release's smoke function once in an account after apply.
type Smoke interface {
	// Smoke invokes function fn in account acct and returns an error if it
	// failed or answered with an error status.
	Smoke(ctx context.Context, acct silo.AccountID, fn string) error
}

// NumBuckets is the number of latency histogram buckets, silo's latency
// layout (silo.LatencyBucket), the same as the runtime's per-account
// histogram.
const NumBuckets = silo.LatencyBuckets

// Stats are cumulative request metrics of one account or the sum over many.
type Stats struct {
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Latency counts requests by bucket index (see BucketOf); sparse.
	Latency map[int]uint64 `json:"latency,omitempty"`
}

// StatsFromBuckets builds Stats from counters and a dense histogram laid out
// as described at NumBuckets (the runtime's MetricsSnapshot.Durations).
func StatsFromBuckets(requests, errors uint64, buckets []uint64) Stats {
	s := Stats{Requests: requests, Errors: errors}
	for i, c := range buckets {
		if c != 0 && i < NumBuckets {
			if s.Latency == nil {
				s.Latency = map[int]uint64{}
			}
			s.Latency[i] = c
		}
	}
	return s
}

// Add returns s plus o.
func (s Stats) Add(o Stats) Stats {
	out := Stats{Requests: s.Requests + o.Requests, Errors: s.Errors + o.Errors}
	for _, m := range []map[int]uint64{s.Latency, o.Latency} {
		for i, c := range m {
			if out.Latency == nil {
				out.Latency = map[int]uint64{}
			}
			out.Latency[i] += c
		}
	}
	return out
}

// Sub returns s minus an earlier snapshot prev: the window between them.
// Counters that went backwards (a restarted metrics source) count as zero.
func (s Stats) Sub(prev Stats) Stats {
	sub := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	out := Stats{Requests: sub(s.Requests, prev.Requests), Errors: sub(s.Errors, prev.Errors)}
	for i, c := range s.Latency {
		if d := sub(c, prev.Latency[i]); d > 0 {
			if out.Latency == nil {
				out.Latency = map[int]uint64{}
			}
			out.Latency[i] = d
		}
	}
	return out
}

// ErrorRate returns Errors/Requests, 0 without requests.
func (s Stats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Quantile returns the latency under which a fraction q of requests
// finished (the upper bound of its bucket), 0 without requests.
func (s Stats) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.Latency {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(total))), 1)
	var seen uint64
	for i := 0; i < NumBuckets; i++ {
		seen += s.Latency[i]
		if seen >= rank {
			return silo.LatencyBucketBound(i)
		}
	}
	return silo.LatencyBucketBound(NumBuckets - 1)
}

// Recorder is an in-process Metrics: the gateway or a load generator calls
// Record for every request, and a Runner reads it through Snapshot. Safe for
// concurrent use. Its zero value is ready.
//
// It exists so that rollouts can be gated where the runtime's metrics are
// not wired in (tests, simulations, a process without the runtime). Failing
// toggles a simulated metrics outage.
type Recorder struct {
	mu      sync.Mutex
	accts   map[recorderKey]*Stats
	failing bool
}

type recorderKey struct {
	acct    silo.AccountID
	release string
}

// Record counts one request an account served under a release.
func (r *Recorder) Record(acct silo.AccountID, release string, latency time.Duration, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.accts == nil {
		r.accts = map[recorderKey]*Stats{}
	}
	k := recorderKey{acct, release}
	s := r.accts[k]
	if s == nil {
		s = &Stats{Latency: map[int]uint64{}}
		r.accts[k] = s
	}
	s.Requests++
	if failed {
		s.Errors++
	}
	s.Latency[silo.LatencyBucket(latency)]++
}

// SetFailing makes Snapshot fail (true) or work again (false).
func (r *Recorder) SetFailing(v bool) {
	r.mu.Lock()
	r.failing = v
	r.mu.Unlock()
}

// Snapshot implements Metrics.
func (r *Recorder) Snapshot(acct silo.AccountID, release string) (Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return Stats{}, silo.Errorf(silo.CodeUnavailable, "metrics are unavailable")
	}
	s := r.accts[recorderKey{acct, release}]
	if s == nil {
		return Stats{}, nil
	}
	return Stats{}.Add(*s), nil
}

// Clock tells time and waits. Runners use it for bake times and leases; tests
// use a ManualClock.
type Clock interface {
	Now() time.Time
	// Until blocks until the clock reads t or later, or ctx is done.
	Until(ctx context.Context, t time.Time) error
}

// WallClock is the real clock.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// Until sleeps until t.
func (WallClock) Until(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ManualClock is a clock that moves only when told to: bakes in tests take no
// wall-clock time. Safe for concurrent use.
type ManualClock struct {
	mu   sync.Mutex
	now  time.Time
	wake chan struct{}
}

// NewManualClock returns a ManualClock reading t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t, wake: make(chan struct{})}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and wakes waiters.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

// Until blocks until Advance has moved the clock to t or later.
func (c *ManualClock) Until(ctx context.Context, t time.Time) error {
	for {
		c.mu.Lock()
		now, wake := c.now, c.wake
		c.mu.Unlock()
		if !now.Before(t) {
			return ctx.Err()
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
