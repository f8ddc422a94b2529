package rollout

import (
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/spec"
)

func stats(requests, errors uint64, latency time.Duration) *Stats {
	return &Stats{Requests: requests, Errors: errors, Latency: map[int]uint64{silo.LatencyBucket(latency): requests}}
}

func TestEvaluate(t *testing.T) {
	gates := spec.Gates{MaxErrorRate: 0.05, MaxP99Increase: 0.5, MinRequests: 100}
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		gates  spec.Gates
		prev   *Stats
		win    *Stats
		want   string
		judged int
		says   string
	}{
		{"healthy baseline, healthy target", gates, stats(1000, 1, 4*ms), stats(500, 2, 4*ms), Pass, 3, ""},
		{"healthy baseline, 20% errors", gates, stats(1000, 1, 4*ms), stats(500, 100, 4*ms), Fail, 2, ""},
		{"unhealthy baseline, 20% errors", gates, stats(1000, 500, 4*ms), stats(500, 100, 4*ms), Fail, 2, ""},
		{"unhealthy baseline, healthy target", gates, stats(1000, 500, 4*ms), stats(500, 10, 4*ms), Pass, 3, ""},
		{"+300ms", gates, stats(1000, 1, 4*ms), stats(500, 1, 304*ms), Fail, 3, ""},
		{"too little traffic", gates, stats(1000, 1, 4*ms), stats(50, 0, 4*ms), Inconclusive, 1, "50 request(s) in the bake window, fewer than min_requests 100"},
		// Without min_requests, a metric gate still needs 1 request; the
		// reason names the gate the ring set, not a min_requests it did not.
		{"no traffic, min_requests unset", spec.Gates{MaxErrorRate: 0.05, Smoke: "smoke"}, nil, &Stats{}, Inconclusive, 1, "no request in the bake window: max_error_rate needs at least 1 request to judge"},
		{"one request, min_requests unset", spec.Gates{MaxErrorRate: 0.05}, nil, stats(1, 0, 4*ms), Pass, 2, ""},
		{"no gates", spec.Gates{}, nil, &Stats{}, Pass, 0, "no gates"},
		{"a smoke function only", spec.Gates{Smoke: "smoke"}, nil, &Stats{}, Pass, 0, "smoke function smoke ran"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := evaluate(tc.gates, tc.prev, *tc.win, nil)
			if v.Result != tc.want || len(v.Judged) != tc.judged {
				t.Errorf("got %s judged %v (%s), want %s judging %d gate(s)", v.Result, v.Judged, v.Reason, tc.want, tc.judged)
			}
			if tc.gates.MinRequests == 0 && strings.Contains(v.Reason, "min_requests") {
				t.Errorf("reason %q names min_requests, which the ring did not set", v.Reason)
			}
			if !strings.Contains(v.Reason, tc.says) {
				t.Errorf("reason %q, want it to say %q", v.Reason, tc.says)
			}
		})
	}
}

func TestRound(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{50331648 * time.Nanosecond, "50.3ms"},
		{1342177 * time.Nanosecond, "1.3ms"},
		{5242 * time.Nanosecond, "5µs"},
		{2684354560 * time.Nanosecond, "2.684s"},
	} {
		if got := Round(tc.in).String(); got != tc.want {
			t.Errorf("Round(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestFailsEarly: during a bake a ring fails only when the traffic so far
// fails its gates even if the rest of the bake brought as many requests
// again per second, all successful and fast; everything else waits for
// the end of the bake (the twins of each failing case).
func TestFailsEarly(t *testing.T) {
	gates := spec.Gates{MaxErrorRate: 0.02, MaxP99Increase: 0.5, MinRequests: 10}
	ms, s := time.Millisecond, time.Second
	for _, tc := range []struct {
		name          string
		prev, win     *Stats
		elapsed, left time.Duration
		fails         bool
	}{
		{"2 in 3 failed, 5s into a minute", stats(100, 0, 4*ms), stats(30, 20, 4*ms), 5 * s, 55 * s, true},
		{"1 in 30 failed, 5s into a minute: later traffic may dilute it", stats(100, 0, 4*ms), stats(30, 1, 4*ms), 5 * s, 55 * s, false},
		{"1 in 30 failed, 55s into a minute", stats(100, 0, 4*ms), stats(30, 1, 4*ms), 55 * s, 5 * s, true},
		{"every request failed, fewer than min_requests", stats(100, 0, 4*ms), stats(9, 9, 4*ms), 5 * s, 55 * s, false},
		{"10 requests, all failed", stats(100, 0, 4*ms), stats(10, 10, 4*ms), 5 * s, 55 * s, true},
		{"healthy", stats(100, 0, 4*ms), stats(1000, 0, 4*ms), 30 * s, 30 * s, false},
		{"p99 10× the baseline, 1s into a 10m bake: fast requests may still bring it down", stats(100, 0, 4*ms), stats(100, 0, 40*ms), 1 * s, 599 * s, false},
		{"p99 10× the baseline, half the bake to go", stats(100, 0, 4*ms), stats(100, 0, 40*ms), 30 * s, 30 * s, true},
		{"p99 10× the baseline, 1% of the bake to go", stats(100, 0, 4*ms), stats(1000, 0, 40*ms), 99 * s, 1 * s, true},
		{"p99 without a baseline", nil, stats(1000, 0, 40*ms), 99 * s, 1 * s, false},
		{"at the start of the bake", stats(100, 0, 4*ms), stats(30, 30, 4*ms), 0, time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, fails := failsEarly(gates, tc.prev, *tc.win, tc.elapsed, tc.left)
			if fails != tc.fails {
				t.Fatalf("failsEarly = %v (%s), want %v", fails, v.Reason, tc.fails)
			}
			if fails && (v.Result != Fail || v.Requests != tc.win.Requests || !strings.Contains(v.Reason, "judged early")) {
				t.Errorf("verdict %+v, want a failure on the %d requests served so far, said to be judged early", v, tc.win.Requests)
			}
		})
	}
}
