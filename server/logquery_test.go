package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/server"
)

// TestLogQueryReadsTimesAsSiloLogs: GET /v1/accounts/{id}/logs reads since
// and until as silo logs reads --since and --until (days, dates, RFC 3339
// times, durations), and refuses what that refuses, naming the parameter.
func TestLogQueryReadsTimesAsSiloLogs(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		since, until string
		want         time.Time // the since read; zero with an error
		err          string
	}{
		{"30d", "", now.AddDate(0, 0, -30), ""},
		{"2026-03-01", "", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ""},
		{"10m", "", now.Add(-10 * time.Minute), ""},
		{"2026-03-01T09:00:00Z", "1h", time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), ""},
		{"yesterday", "", time.Time{}, `since "yesterday" is not a window`},
		{"-5m", "", time.Time{}, `since "-5m" is negative`},
		{"", "soon", time.Time{}, `until "soon" is not a window`},
	} {
		v := map[string][]string{}
		if tc.since != "" {
			v["since"] = []string{tc.since}
		}
		if tc.until != "" {
			v["until"] = []string{tc.until}
		}
		q, err := server.LogQuery(v, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("since %q until %q: %v, want %q", tc.since, tc.until, err, tc.err)
			}
			continue
		}
		if err != nil || !q.Since.Equal(tc.want) {
			t.Errorf("since %q until %q: since %v, %v; want %v", tc.since, tc.until, q.Since, err, tc.want)
		}
	}
}
