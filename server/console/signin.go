package console

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Sign-in attempts: each client address may fail signInFailures times in
// signInWindow; past that its attempts, right or wrong, are refused until
// the oldest failure leaves the window. All addresses together may fail
// signInFleetFailures times in the window, so that many addresses cannot
// guess faster. The operator token is 256 random bits, so the limit is not
// what keeps it secret; it keeps a guessing client from costing the server
// work and fills no log.
const (
	signInFailures      = 5
	signInFleetFailures = 100
	signInWindow        = time.Minute
	maxTrackedClients   = 10_000
)

// limiter counts failed sign-ins per client address and in all.
type limiter struct {
	mu    sync.Mutex
	fails map[string][]time.Time // by client address, oldest first
	all   []time.Time
}

func newLimiter() *limiter { return &limiter{fails: map[string][]time.Time{}} }

// clientAddr is the request's remote IP (a proxy in front makes every
// client one address: the fleet-wide bound still holds).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recent drops the times before now-window.
func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= signInWindow {
		i++
	}
	return ts[i:]
}

// wait reports how long the client must wait before trying again, 0 if
// it may try now.
func (l *limiter) wait(addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = recent(l.all, now)
	ts := recent(l.fails[addr], now)
	if len(ts) == 0 {
		delete(l.fails, addr)
	} else {
		l.fails[addr] = ts
	}
	var d time.Duration
	if len(ts) >= signInFailures {
		d = signInWindow - now.Sub(ts[len(ts)-signInFailures])
	}
	if len(l.all) >= signInFleetFailures {
		d = max(d, signInWindow-now.Sub(l.all[len(l.all)-signInFleetFailures]))
	}
	return d
}

// fail records a failed attempt.
func (l *limiter) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) >= maxTrackedClients {
		for k, ts := range l.fails {
			if len(recent(ts, now)) == 0 {
				delete(l.fails, k)
			}
		}
	}
	if _, ok := l.fails[addr]; ok || len(l.fails) < maxTrackedClients {
		l.fails[addr] = append(l.fails[addr], now)
	}
	l.all = append(l.all, now)
}

// tooMany renders the sign-in page refusing an attempt.
func (c *Console) tooMany(w http.ResponseWriter, d time.Duration) {
	secs := int(d.Round(time.Second) / time.Second)
	secs = max(secs, 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	c.render(w, http.StatusTooManyRequests, "signin", nil, map[string]any{
		"Error": "Too many failed sign-ins from here. Wait " + strconv.Itoa(secs) + " seconds, then paste the token from the data dir's operator.token file.",
	})
}
