package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	silo "github.com/silo-run/silo"
)

// LimitSource gives each account's limits: those of its plan in the
// release it runs, with the operator's overrides applied. The gateway calls
// it when an account's first request arrives and then at most once per
// Config.LimitRefresh while the account sends requests, so that a plan
// change reaches the gateway without a restart. Implementations must be
// safe for concurrent use; silo.ErrNotFound means "no limits of its own"
// (the gateway's defaults apply).
type LimitSource interface {
	Limits(ctx context.Context, acct silo.AccountID) (Limits, error)
}

// LimitFunc adapts a function to a LimitSource.
type LimitFunc func(ctx context.Context, acct silo.AccountID) (Limits, error)

// Limits calls f.
func (f LimitFunc) Limits(ctx context.Context, acct silo.AccountID) (Limits, error) {
	return f(ctx, acct)
}

// Limits are one account's limits as the gateway enforces them. A zero Rate,
// Burst or Concurrency takes the gateway's default (Config.RatePerSecond,
// Burst, MaxConcurrent); a zero Invocations sets no monthly bound.
type Limits struct {
	silo.Limits
	// Plan names where the limits come from, for refusal messages: a
	// plan of silo.yaml, "" for the gateway's defaults. Override says an
	// operator's override set at least one of them.
	Plan     string
	Override bool
	// Used is how many requests the account made this calendar month
	// (UTC) before the moment Limits was read; the gateway adds the ones it
	// admits after it.
	Used int64
}

// limits is an account's Limits with the gateway's defaults filled in.
type limits struct {
	rate        float64
	burst       int
	concurrency int
	invocations int64
	used        int64 // this month's count when read
	month       int   // the UTC year*12+month Used counts
	plan        string
	override    bool
}

// resolve fills in the gateway's defaults for what l leaves zero.
func (c *Config) resolve(l Limits, now time.Time) limits {
	r := limits{rate: c.RatePerSecond, burst: c.Burst, concurrency: c.MaxConcurrent,
		invocations: l.Invocations, used: l.Used, month: monthOf(now), plan: l.Plan, override: l.Override}
	if l.Rate > 0 {
		r.rate = l.Rate
		r.burst = max(1, int(2*l.Rate))
	}
	if l.Burst > 0 {
		r.burst = l.Burst
	}
	if l.Concurrency > 0 {
		r.concurrency = l.Concurrency
	}
	return r
}

func monthOf(t time.Time) int {
	t = t.UTC()
	return t.Year()*12 + int(t.Month())
}

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

	lim     limits    // the account's limits, read at limAt
	limAt   time.Time // zero: not read yet (lim holds the defaults)
	reading bool      // a request is reading the limits afresh
	month   int64     // requests admitted since lim was read

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
	overMonth                 // the month's invocations are used up
)

// admit checks the month's invocations, takes one token from the bucket and
// then one of the concurrency slots, under the limits t holds. Without a
// token it reports how long until there will be one. It returns the limits
// it applied, for the refusal message.
func (t *tenant) admit(now time.Time) (admission, time.Duration, limits) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lim
	if l.invocations > 0 && l.month == monthOf(now) && l.used+t.month >= l.invocations {
		return overMonth, 0, l
	}
	t.refill(now, l.rate, l.burst)
	if t.tokens < 1 {
		return overRate, time.Duration((1 - t.tokens) / l.rate * float64(time.Second)), l
	}
	t.tokens--
	if t.inflight >= l.concurrency {
		return overConcurrency, 0, l
	}
	t.inflight++
	t.month++
	return admitted, 0, l
}

// limits makes sure t holds acct's limits read within LimitRefresh: the
// first request of an account reads them; later, one request reads them
// afresh while the others go on under the ones held.
func (g *Gateway) limits(ctx context.Context, acct silo.AccountID, t *tenant) error {
	if g.cfg.Limits == nil {
		return nil
	}
	now := g.cfg.Now()
	t.mu.Lock()
	if !t.limAt.IsZero() && (t.reading || now.Sub(t.limAt) < g.cfg.LimitRefresh) {
		t.mu.Unlock()
		return nil
	}
	t.reading = true
	t.mu.Unlock()
	l, err := g.cfg.Limits.Limits(ctx, acct)
	if errors.Is(err, silo.ErrNotFound) {
		l, err = Limits{}, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reading = false
	if err != nil {
		if t.limAt.IsZero() {
			return fmt.Errorf("limits of %s: %w", acct, err)
		}
		return nil // keep enforcing the limits held; read again next time
	}
	t.lim, t.limAt, t.month = g.cfg.resolve(l, now), now, 0
	return nil
}

// refusal returns the message of a 429 for the limit a names, saying which
// limit it is and how to raise it.
func refusal(a admission, l limits) (limit, msg string) {
	from := "the server's default"
	if l.plan != "" {
		from = fmt.Sprintf("plan %q", l.plan)
	}
	if l.override {
		from += " with an operator's override"
	}
	const raise = "to raise it, move the tenant to a larger plan or ask the operator for an override (silo limits set)"
	switch a {
	case overRate:
		return "rate", fmt.Sprintf("rate limit: this tenant may send %s requests per second (burst %d) under %s; retry after the time in Retry-After; %s",
			strconv.FormatFloat(l.rate, 'g', -1, 64), l.burst, from, raise)
	case overConcurrency:
		return "concurrency", fmt.Sprintf("concurrency limit: this tenant may have %d requests in flight under %s; retry after the time in Retry-After; %s",
			l.concurrency, from, raise)
	default:
		return "invocations", fmt.Sprintf("monthly invocation limit: this tenant may make %d requests per calendar month (UTC) under %s and has made them all; %s",
			l.invocations, from, raise)
	}
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
func (t *tenant) retire(now time.Time) bool {
	if t.dead || t.users > 0 || t.inflight > 0 {
		return false
	}
	t.refill(now, t.lim.rate, t.lim.burst)
	if t.tokens < float64(t.lim.burst) {
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
