package spec

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		s     Schedule
		after string
		want  string
	}{
		{"every 15m mid-slot", Schedule{Every: 15 * time.Minute}, "2026-11-26T10:07:30Z", "2026-11-26T10:15:00Z"},
		{"every 15m on a slot is the next one", Schedule{Every: 15 * time.Minute}, "2026-11-26T10:15:00Z", "2026-11-26T10:30:00Z"},
		{"every 1h from another zone", Schedule{Every: time.Hour}, "2026-11-26T10:07:00+05:30", "2026-11-26T05:00:00Z"},
		{"daily cron before its time", Schedule{Cron: "0 3 * * *"}, "2026-11-26T02:59:59Z", "2026-11-26T03:00:00Z"},
		{"daily cron at its time is tomorrow", Schedule{Cron: "0 3 * * *"}, "2026-11-26T03:00:00Z", "2026-11-27T03:00:00Z"},
		{"cron in UTC whatever the zone", Schedule{Cron: "0 3 * * *"}, "2026-11-26T04:00:00+02:00", "2026-11-26T03:00:00Z"},
		{"@hourly", Schedule{Cron: "@hourly"}, "2026-11-26T10:00:01Z", "2026-11-26T11:00:00Z"},
		{"weekdays only", Schedule{Cron: "30 9 * * 1-5"}, "2026-11-27T10:00:00Z", "2026-11-30T09:30:00Z"}, // Friday → Monday
		{"invalid cron never", Schedule{Cron: "nope"}, "2026-11-26T10:00:00Z", "0001-01-01T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Next(at(tc.after)); !got.Equal(at(tc.want)) {
				t.Errorf("Next(%s) = %s, want %s", tc.after, got.Format(time.RFC3339), tc.want)
			}
		})
	}
}
