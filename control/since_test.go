package control_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/usage"
)

// TestSince: a usage window start in days, hours or as a date is that long
// before now; one that reaches back before the year 1 (which no RFC 3339
// time, and so no API call, can carry) is refused with a message that
// quotes what was written, not the date it would have been; a number of
// hours too large for a time.Duration still counts back exactly.
func TestSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		in       string
		want     time.Time
		tooEarly bool
	}{
		{"30d", now.AddDate(0, 0, -30), false},
		{"12h", now.Add(-12 * time.Hour), false},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"100000d", now.AddDate(0, 0, -100_000), false},
		{"9999999h", now.AddDate(0, 0, -416_666).Add(-15 * time.Hour), false}, // 416,666 days and 15 h
		{"739000d", now.AddDate(0, 0, -739_000), false},                       // year 2
		{"740000d", time.Time{}, true},                                        // year 0
		{"1000000d", time.Time{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := control.Since(tc.in, now)
			if tc.tooEarly {
				if !errors.Is(err, usage.ErrTooEarly) || silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), `--since "`+tc.in+`" reaches back before the year 1`) {
					t.Errorf("got %v, %v; want invalid, too early, quoting %q", got, err, tc.in)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
