package runtime

import (
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
)

// account is the runtime's per-account state: its concurrency slots and
// metrics. It lives in Runtime.accounts while the account is in use; the
// idle sweep drops it (keeping its metrics compactly in Runtime.frozen)
// once the account has no instance, no invocation and no held slot.
type account struct {
	all     chan struct{} // account-wide slots
	cpu     cpuShare      // slots for running guest code (Config.AccountCPU)
	mu      sync.Mutex
	fns     map[string]chan struct{} // per-function slots
	metrics metrics

	// Guarded by Runtime.mu.
	refs int       // Invoke calls holding the account
	last time.Time // end of the last Invoke
}

// account returns the state of id, creating it (with its frozen metrics, if
// it was dropped before) if needed, and holds it until unref.
func (r *Runtime) account(id silo.AccountID) *account {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.accounts[id]
	if a == nil {
		a = &account{all: make(chan struct{}, r.cfg.AccountConcurrency), cpu: cpuShare{cpus: r.cpus}, fns: map[string]chan struct{}{}}
		if f := r.frozen[id]; f != nil {
			f.thaw(&a.metrics)
			delete(r.frozen, id)
		}
		r.accounts[id] = a
	}
	a.refs++
	return a
}

func (r *Runtime) unref(a *account) {
	r.mu.Lock()
	a.refs--
	a.last = time.Now()
	r.mu.Unlock()
}

// idle reports whether a can be dropped: nothing holds it, no slot is taken
// (an abandoned invocation's guest may still hold one) and it was last
// used before cutoff. Called with r.mu held.
func (a *account) idle(cutoff time.Time) bool {
	if a.refs > 0 || len(a.all) > 0 || !a.last.Before(cutoff) {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.fns {
		if len(ch) > 0 {
			return false
		}
	}
	return true
}

// frozenMetrics is the metrics of a dropped account, kept compactly: the
// counters and only the non-empty histogram buckets.
type frozenMetrics struct {
	count, errors, status5xx, bytesIn, bytesOut uint64
	buckets                                     []frozenBucket
	releases                                    []frozenRelease
}

type frozenRelease struct {
	id string
	m  *frozenMetrics
}

type frozenBucket struct {
	i uint16
	n uint64
}

func (m *metrics) freeze() *frozenMetrics {
	f := &frozenMetrics{
		count: m.count.Load(), errors: m.errors.Load(), status5xx: m.status5xx.Load(),
		bytesIn: m.bytesIn.Load(), bytesOut: m.bytesOut.Load(),
	}
	n := 0
	for i := range m.buckets {
		if m.buckets[i].Load() != 0 {
			n++
		}
	}
	f.buckets = make([]frozenBucket, 0, n)
	for i := range m.buckets {
		if c := m.buckets[i].Load(); c != 0 {
			f.buckets = append(f.buckets, frozenBucket{uint16(i), c})
		}
	}
	if rs := m.releases.Load(); rs != nil {
		for _, rm := range *rs {
			f.releases = append(f.releases, frozenRelease{rm.id, rm.m.freeze()})
		}
	}
	return f
}

func (f *frozenMetrics) thaw(m *metrics) {
	m.count.Store(f.count)
	m.errors.Store(f.errors)
	m.status5xx.Store(f.status5xx)
	m.bytesIn.Store(f.bytesIn)
	m.bytesOut.Store(f.bytesOut)
	for _, b := range f.buckets {
		m.buckets[b.i].Store(b.n)
	}
	if len(f.releases) > 0 {
		rs := make([]*releaseMetrics, len(f.releases))
		for i, fr := range f.releases {
			rs[i] = &releaseMetrics{id: fr.id}
			fr.m.thaw(&rs[i].m)
		}
		m.releases.Store(&rs)
	}
}

func (f *frozenMetrics) snapshot() MetricsSnapshot {
	s := MetricsSnapshot{Invocations: f.count, Errors: f.errors, Status5xx: f.status5xx, BytesIn: f.bytesIn, BytesOut: f.bytesOut}
	for _, b := range f.buckets {
		s.Durations[b.i] = b.n
	}
	return s
}

// sem returns the slot channel of function fn, sized n. When n changes (a
// new release) a new channel replaces the old; invocations holding old slots
// release them to the old channel.
func (a *account) sem(fn string, n int) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.fns[fn]
	if ch == nil || cap(ch) != n {
		ch = make(chan struct{}, n)
		a.fns[fn] = ch
	}
	return ch
}

// Durations are kept in silo's latency histogram (silo.LatencyBucket).
const nBuckets = silo.LatencyBuckets

type metrics struct {
	count, errors, status5xx atomic.Uint64
	bytesIn, bytesOut        atomic.Uint64
	buckets                  [nBuckets]atomic.Uint64

	// releases holds the same metrics split by the release that served
	// them (Invocation.Release), at most maxReleases of them, newest
	// first; set on an account's metrics only. Readers load it without a
	// lock; relMu serializes writers, which replace the slice.
	releases atomic.Pointer[[]*releaseMetrics]
	relMu    sync.Mutex
}

// releaseMetrics is an account's metrics under one release.
type releaseMetrics struct {
	id string
	m  metrics // its releases field stays empty
}

// maxReleases bounds the releases whose metrics an account keeps: a rollout
// compares two (the previous release and the target), and a third may be
// rolling back meanwhile. The release seen least recently for the first
// time is dropped first.
const maxReleases = 4

// release returns the metrics of release id, adding them if needed.
func (m *metrics) release(id string) *metrics {
	if rs := m.releases.Load(); rs != nil {
		for _, rm := range *rs {
			if rm.id == id {
				return &rm.m
			}
		}
	}
	m.relMu.Lock()
	defer m.relMu.Unlock()
	var old []*releaseMetrics
	if rs := m.releases.Load(); rs != nil {
		old = *rs
		for _, rm := range old {
			if rm.id == id {
				return &rm.m
			}
		}
	}
	rm := &releaseMetrics{id: strings.Clone(id)}
	rs := append([]*releaseMetrics{rm}, old[:min(len(old), maxReleases-1)]...)
	m.releases.Store(&rs)
	return &rm.m
}

// record counts one invocation in the account's metrics and, when release
// is set, in those of the release that served it.
func (m *metrics) record(release string, d time.Duration, in, out, status int, err error) {
	m.add(d, in, out, status, err)
	if release != "" {
		m.release(release).add(d, in, out, status, err)
	}
}

func (m *metrics) add(d time.Duration, in, out, status int, err error) {
	m.count.Add(1)
	if err != nil {
		m.errors.Add(1)
	} else if status >= 500 {
		m.status5xx.Add(1)
	}
	m.bytesIn.Add(uint64(in))
	m.bytesOut.Add(uint64(out))
	m.buckets[silo.LatencyBucket(d)].Add(1)
}

// errNotRun is the error CountFailure records.
var errNotRun = errors.New("the invocation failed before the runtime ran it")

// CountFailure counts one invocation of the account, served under release
// (as Invocation.Release; "" for none), that failed before it reached
// Invoke, because its module could not be loaded (compiled) say: in
// Metrics and ReleaseMetrics it is an invocation and an error, as a failed
// Invoke is, so that a rollout's gates see a release whose module does not
// load as failing. in is the request body's size, d how long the attempt
// took. Safe for concurrent use.
func (r *Runtime) CountFailure(acct silo.AccountID, release string, in int, d time.Duration) {
	a := r.account(acct)
	a.metrics.record(release, d, in, 0, 0, errNotRun)
	r.unref(a)
}

// MetricsSnapshot is an account's invocation metrics since the Runtime
// started. Counters only grow: subtract two snapshots for a window.
type MetricsSnapshot struct {
	Invocations uint64 // every Invoke call for the account
	Errors      uint64 // Invoke returned an error (trap, timeout, too many, ...)
	Status5xx   uint64 // the guest answered with a 5xx status
	BytesIn     uint64 // request bodies
	BytesOut    uint64 // response bodies
	// Durations counts invocations by duration: Durations[i] took at most
	// Bound(i) (and more than Bound(i-1)).
	Durations [nBuckets]uint64
}

// Bound returns the upper duration bound of histogram bucket i.
func (MetricsSnapshot) Bound(i int) time.Duration { return silo.LatencyBucketBound(i) }

// Quantile returns the duration under which a fraction q (0..1) of the
// invocations finished, as the upper bound of its bucket (within 19%); 0 if
// there were none.
func (s MetricsSnapshot) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.Durations {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s.Durations {
		seen += c
		if seen >= rank {
			return silo.LatencyBucketBound(i)
		}
	}
	return silo.LatencyBucketBound(nBuckets - 1)
}

// Sub returns s minus an earlier snapshot: the metrics of the window between
// them.
func (s MetricsSnapshot) Sub(prev MetricsSnapshot) MetricsSnapshot {
	d := MetricsSnapshot{
		Invocations: s.Invocations - prev.Invocations, Errors: s.Errors - prev.Errors,
		Status5xx: s.Status5xx - prev.Status5xx, BytesIn: s.BytesIn - prev.BytesIn, BytesOut: s.BytesOut - prev.BytesOut,
	}
	for i := range s.Durations {
		d.Durations[i] = s.Durations[i] - prev.Durations[i]
	}
	return d
}

// ReleaseMetrics returns the account's invocation metrics served by one
// release (Invocation.Release): a rollout's health gates compare the
// release it rolls out with the release the accounts ran before, and
// neither is polluted by the other's requests. An account keeps the metrics
// of its last few releases (four); an older release, or one that never
// served the account, has zero metrics. Safe for concurrent use.
func (r *Runtime) ReleaseMetrics(acct silo.AccountID, release string) MetricsSnapshot {
	r.mu.Lock()
	var m *metrics
	var f *frozenMetrics
	if a := r.accounts[acct]; a != nil {
		m = &a.metrics
	} else {
		f = r.frozen[acct]
	}
	r.mu.Unlock()
	if f != nil {
		for _, fr := range f.releases {
			if fr.id == release {
				return fr.m.snapshot()
			}
		}
		return MetricsSnapshot{}
	}
	if m == nil {
		return MetricsSnapshot{}
	}
	if rs := m.releases.Load(); rs != nil {
		for _, rm := range *rs {
			if rm.id == release {
				return rm.m.snapshot()
			}
		}
	}
	return MetricsSnapshot{}
}

// Metrics returns the account's invocation metrics. It is safe for
// concurrent use; an account never invoked has zero metrics. The metrics of
// an account whose idle state was dropped are kept (compactly), so the
// counters only grow for as long as the Runtime lives.
func (r *Runtime) Metrics(acct silo.AccountID) MetricsSnapshot {
	r.mu.Lock()
	a := r.accounts[acct]
	var s MetricsSnapshot
	if a == nil {
		if f := r.frozen[acct]; f != nil {
			s = f.snapshot()
		}
	}
	r.mu.Unlock()
	if a == nil {
		return s
	}
	return a.metrics.snapshot()
}

func (m *metrics) snapshot() MetricsSnapshot {
	var s MetricsSnapshot
	s.Invocations, s.Errors, s.Status5xx = m.count.Load(), m.errors.Load(), m.status5xx.Load()
	s.BytesIn, s.BytesOut = m.bytesIn.Load(), m.bytesOut.Load()
	for i := range m.buckets {
		s.Durations[i] = m.buckets[i].Load()
	}
	return s
}
