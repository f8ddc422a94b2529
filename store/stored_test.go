package store_test

import (
	"testing"
	"time"

	"github.com/silo-run/silo/store"
)

func TestStoredRoundTrip(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var b []byte
	var err error
	// Sizes that grow, shrink to 0 and jump to 2^40 across the hours, in
	// three tables and buckets sampled out of order.
	sizes := map[int][]store.StoredSample{
		0:  {{Account: "acme", Kind: store.StoredTable, Name: "t", Bytes: 100}, {Account: "acme", Kind: store.StoredBucket, Name: "b", Bytes: 1 << 40}},
		3:  {{Account: "acme", Kind: store.StoredTable, Name: "t", Bytes: 0}, {Account: "acme", Kind: store.StoredTable, Name: "a", Bytes: 7}},
		23: {{Account: "acme", Kind: store.StoredTable, Name: "t", Bytes: 5000}, {Account: "acme", Kind: store.StoredBucket, Name: "b", Bytes: 1}},
	}
	for _, h := range []int{23, 0, 3} {
		var rolled bool
		if b, rolled, err = store.SetStoredHour(b, h, sizes[h]); err != nil || rolled {
			t.Fatalf("set hour %d: rolled %v, %v", h, rolled, err)
		}
	}
	got, err := store.DecodeStored(b, "acme", day)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind, name         string
		byteHours, sampled int64
	}{{store.StoredBucket, "b", 1<<40 + 1, 2}, {store.StoredTable, "a", 7, 1}, {store.StoredTable, "t", 5100, 3}}
	if len(got) != len(want) {
		t.Fatalf("decoded %d days, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Account != "acme" || !g.Day.Equal(day) || g.Kind != w.kind || g.Name != w.name || g.ByteHours != w.byteHours || g.SampledHours != w.sampled || g.Hours == nil {
			t.Errorf("day %d: got %+v, want %s %q %d byte-hours over %d hours", i, g, w.kind, w.name, w.byteHours, w.sampled)
		}
	}
	rolled, err := store.RollUpStored(b)
	if err != nil {
		t.Fatal(err)
	}
	days, err := store.DecodeStored(rolled, "acme", day)
	if err != nil || len(days) != 3 || days[2].ByteHours != 5100 || days[2].SampledHours != 3 || days[2].Hours != nil {
		t.Errorf("rolled up: got %+v, %v; want t at 5100 byte-hours over 3 hours, no hours kept", days, err)
	}
}

func TestStoredDamaged(t *testing.T) {
	good, _, err := store.SetStoredHour(nil, 1, []store.StoredSample{{Account: "acme", Kind: store.StoredTable, Name: "t", Bytes: 300}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.DecodeStored(good, "acme", time.Time{}); err != nil {
		t.Fatalf("the good form: %v", err)
	}
	// The same entry twice, and two entries out of order, are damage: a
	// day holds each table or bucket once, in order.
	b, _, _ := store.SetStoredHour(nil, 1, []store.StoredSample{{Account: "acme", Kind: store.StoredBucket, Name: "b", Bytes: 1}})
	for name, bad := range map[string][]byte{
		"empty":        {},
		"truncated":    good[:len(good)-1],
		"trailing":     append(append([]byte{}, good...), 0),
		"unknown head": append([]byte{9}, good[1:]...),
		"empty name":   {1, 0, 0, 0, 0},
		"twice":        append(append([]byte{}, good...), good...),
		"out of order": append(append([]byte{}, good...), b...),
	} {
		if _, err := store.DecodeStored(bad, "acme", time.Time{}); err == nil {
			t.Errorf("%s: decoded, want an error", name)
		}
		if _, _, err := store.SetStoredHour(bad, 2, nil); err == nil && len(bad) > 0 {
			t.Errorf("%s: set an hour, want an error", name)
		}
	}
}
