package store

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUsageCodec: a day's hours survive encoding, roll up to their sum, and
// every truncation or stray byte of a stored day is refused, not misread.
func TestUsageCodec(t *testing.T) {
	var hours [24]Counters
	hours[0] = Counters{Requests: 1, Errors: 1, DurationMicros: 300, MemoryMiBMicros: 19, BytesIn: 5, BytesOut: 7}
	hours[13] = Counters{Requests: 1 << 40, DurationMicros: 1}
	hours[23] = Counters{BytesOut: 9}
	b := EncodeUsage(&hours, Counters{})
	got, total, err := DecodeUsage(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&hours, got); diff != "" {
		t.Errorf("hours (-want +got):\n%s", diff)
	}
	want := hours[0].Add(hours[13]).Add(hours[23])
	if total != want {
		t.Errorf("total: got %+v, want %+v", total, want)
	}
	rolled, err := RollUp(b)
	if err != nil {
		t.Fatal(err)
	}
	if h, tot, err := DecodeUsage(rolled); err != nil || h != nil || tot != want {
		t.Errorf("rolled up: got %v %+v %v, want no hours and %+v", h, tot, err, want)
	}
	for _, stored := range [][]byte{b, rolled} {
		for i := range len(stored) {
			if _, _, err := DecodeUsage(stored[:i]); err == nil {
				t.Errorf("truncated to %d of %d bytes: decoded without error", i, len(stored))
			}
		}
		if _, _, err := DecodeUsage(append(append([]byte{}, stored...), 0)); err == nil {
			t.Errorf("a stray byte at the end: decoded without error")
		}
	}
	if _, _, err := DecodeUsage([]byte{9, 0}); err == nil {
		t.Errorf("unknown format byte: decoded without error")
	}
}

// TestUsageQueryDays: the day numbers a query reads, each bound open when
// its time is zero.
func TestUsageQueryDays(t *testing.T) {
	d1 := time.Date(2026, 12, 1, 15, 4, 0, 0, time.UTC)
	d5 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	n1, n5 := DayNumber(d1), DayNumber(d5)
	for _, tc := range []struct {
		name            string
		q               UsageQuery
		from, to, after int64
	}{
		{"no bounds", UsageQuery{}, math.MinInt64, math.MaxInt64, math.MinInt64},
		{"from", UsageQuery{From: d1}, n1, math.MaxInt64, math.MinInt64},
		{"to", UsageQuery{To: d5}, math.MinInt64, n5, math.MinInt64},
		{"both and a cursor", UsageQuery{From: d1, To: d5, After: &UsageCursor{Day: d1.Add(24 * time.Hour)}}, n1, n5, n1 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to, after := tc.q.Days()
			if from != tc.from || to != tc.to || after != tc.after {
				t.Errorf("Days() = %d, %d, %d; want %d, %d, %d", from, to, after, tc.from, tc.to, tc.after)
			}
		})
	}
}
