package store

import (
	"testing"

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
