package gateway

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tenant is the gateway's per-account state: its token bucket, its
// in-flight count and its meters. One exists per account that has
// authenticated at least once and sent a request recently, so
// unauthenticated traffic cannot grow the table. Forget and Sweep drop it
// once its bucket is full again and no request of the account is being
// served; its meters then move to Gateway.retired (a few words, allocated
// by the sweep) so that Metrics keeps counting since the start. A full
// bucket is exactly what a new tenant starts with, so dropping one never
// lets an account exceed its rate.
type tenant struct {
	mu       sync.Mutex
	tokens   float64
	last     time.Time // zero: full
	inflight int       // admitted requests not finished (concurrency limit)
	users    int       // requests being served, admitted or not
	dead     bool      // dropped from Gateway.tenants; look up a new one

	requests, errors, limited atomic.Int64
	bytesIn, bytesOut         atomic.Int64
	nanos                     atomic.Int64
}

// admission is the outcome of tenant.admit.
type admission int

const (
	admitted        admission = iota
	overRate                  // no token: wait the returned duration
	overConcurrency           // a token was taken, but every concurrency slot is busy
)

// admit takes one token from the bucket and then one of max concurrency
// slots. Without a token it reports how long until there will be one.
func (t *tenant) admit(now time.Time, rate float64, burst, max int) (admission, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now, rate, burst)
	if t.tokens < 1 {
		return overRate, time.Duration((1 - t.tokens) / rate * float64(time.Second))
	}
	t.tokens--
	if t.inflight >= max {
		return overConcurrency, 0
	}
	t.inflight++
	return admitted, 0
}

func (t *tenant) refill(now time.Time, rate float64, burst int) {
	if t.last.IsZero() {
		t.tokens, t.last = float64(burst), now
	}
	if el := now.Sub(t.last); el > 0 {
		t.tokens = math.Min(float64(burst), t.tokens+el.Seconds()*rate)
		t.last = now
	}
}

// release frees the concurrency slot admit took.
func (t *tenant) release() {
	t.mu.Lock()
	t.inflight--
	t.mu.Unlock()
}

// leave ends a request that enter started, after its meters were added.
func (t *tenant) leave() {
	t.mu.Lock()
	t.users--
	t.mu.Unlock()
}

// retire marks t dead and reports true if its bucket is full at now and no
// request is being served: then a new tenant is indistinguishable from it.
// Called with t.mu held.
func (t *tenant) retire(now time.Time, rate float64, burst int) bool {
	if t.dead || t.users > 0 || t.inflight > 0 {
		return false
	}
	t.refill(now, rate, burst)
	if t.tokens < float64(burst) {
		return false
	}
	t.dead = true
	return true
}

// meters returns t's meters.
func (t *tenant) meters() Metrics {
	return Metrics{
		Requests: t.requests.Load(),
		Errors:   t.errors.Load(),
		Limited:  t.limited.Load(),
		BytesIn:  t.bytesIn.Load(),
		BytesOut: t.bytesOut.Load(),
		Duration: time.Duration(t.nanos.Load()),
	}
}

func (m Metrics) add(o Metrics) Metrics {
	return Metrics{
		Requests: m.Requests + o.Requests, Errors: m.Errors + o.Errors, Limited: m.Limited + o.Limited,
		BytesIn: m.BytesIn + o.BytesIn, BytesOut: m.BytesOut + o.BytesOut, Duration: m.Duration + o.Duration,
	}
}

// retryAfter formats d as whole seconds for a Retry-After header, at least 1.
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
