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
