package gateway

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tenant is the gateway's per-account state: its token bucket, its in-flight
// count and its meters. One exists per account that has authenticated at
// least once, so unauthenticated traffic cannot grow the table.
type tenant struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time

	inflight atomic.Int64

	requests, errors, limited atomic.Int64
	bytesIn, bytesOut         atomic.Int64
	nanos                     atomic.Int64
}

// take removes one token from the bucket if it has one. Otherwise it returns
// how long until it will.
func (t *tenant) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last.IsZero() {
		t.tokens, t.last = float64(burst), now
	}
	if el := now.Sub(t.last); el > 0 {
		t.tokens = math.Min(float64(burst), t.tokens+el.Seconds()*rate)
		t.last = now
	}
	if t.tokens >= 1 {
		t.tokens--
		return true, 0
	}
	return false, time.Duration((1 - t.tokens) / rate * float64(time.Second))
}

// acquire takes one of max concurrency slots, or reports that all are taken.
func (t *tenant) acquire(max int) bool {
	if t.inflight.Add(1) > int64(max) {
		t.inflight.Add(-1)
		return false
	}
	return true
}

func (t *tenant) release() { t.inflight.Add(-1) }

// retryAfter formats d as whole seconds for a Retry-After header, at least 1.
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
