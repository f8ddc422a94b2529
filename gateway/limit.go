package gateway

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tenant is the gateway's per-account meters. One exists per account that
// has authenticated at least once, so unauthenticated traffic cannot grow
// the table; it is a few words, and it is kept for the gateway's lifetime
// because Metrics counts since the start.
type tenant struct {
	requests, errors, limited atomic.Int64
	bytesIn, bytesOut         atomic.Int64
	nanos                     atomic.Int64
}

// limiter is an account's token bucket and in-flight count. It exists while
// the account sends requests; Forget and Sweep drop it once its bucket is
// full again and nothing is in flight. A full bucket is exactly what a new
// limiter starts with, so dropping one never lets an account exceed its
// rate.
type limiter struct {
	mu       sync.Mutex
	tokens   float64
	last     time.Time // zero: full
	inflight int
	dead     bool // dropped from Gateway.limits; look up a new one
}

// admission is the outcome of limiter.admit.
type admission int

const (
	admitted        admission = iota
	overRate                  // no token: wait the returned duration
	overConcurrency           // a token was taken, but every concurrency slot is busy
	admitDead                 // the limiter was dropped; use the current one
)

// admit takes one token from the bucket and then one of max concurrency
// slots. Without a token it reports how long until there will be one.
func (l *limiter) admit(now time.Time, rate float64, burst, max int) (admission, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return admitDead, 0
	}
	l.refill(now, rate, burst)
	if l.tokens < 1 {
		return overRate, time.Duration((1 - l.tokens) / rate * float64(time.Second))
	}
	l.tokens--
	if l.inflight >= max {
		return overConcurrency, 0
	}
	l.inflight++
	return admitted, 0
}

func (l *limiter) refill(now time.Time, rate float64, burst int) {
	if l.last.IsZero() {
		l.tokens, l.last = float64(burst), now
	}
	if el := now.Sub(l.last); el > 0 {
		l.tokens = math.Min(float64(burst), l.tokens+el.Seconds()*rate)
		l.last = now
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.inflight--
	l.mu.Unlock()
}

// retire marks l dead and reports true if its bucket is full at now and
// nothing is in flight: then a new limiter is indistinguishable from it.
func (l *limiter) retire(now time.Time, rate float64, burst int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || l.inflight > 0 {
		return false
	}
	l.refill(now, rate, burst)
	if l.tokens < float64(burst) {
		return false
	}
	l.dead = true
	return true
}

// retryAfter formats d as whole seconds for a Retry-After header, at least 1.
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
