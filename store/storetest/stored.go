package storetest

import (
	"context"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// storedTests are the suite's cases for stored-bytes history.
var storedTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"StoredHours", testStoredHours},
	{"StoredRefused", testStoredRefused},
	{"StoredMerged", testStoredMerged},
	{"StoredPaging", testStoredPaging},
	{"StoredRetention", testStoredRetention},
	{"StoredPurge", testStoredPurge},
}

func setStored(t *testing.T, s store.Store, at time.Time, ss ...store.StoredSample) {
	t.Helper()
	update(t, s, func(tx store.Tx) error { return tx.SetStored(at, ss) })
}

func readStored(t *testing.T, s store.Store, q store.UsageQuery) []store.StoredDay {
	t.Helper()
	var out []store.StoredDay
	view(t, s, func(tx store.Tx) error {
		var err error
		out, err = tx.Stored(q)
		return err
	})
	return out
}

func sample(acct silo.AccountID, kind, name string, n int64) store.StoredSample {
	return store.StoredSample{Account: acct, Kind: kind, Name: name, Bytes: n}
}

func testStoredHours(t *testing.T, s store.Store) {
	// Hours 0-9 sampled at 1,000 bytes, then a second sample of hour 9
	// replaces the first; hour 12 holds an empty table (0 bytes, sampled).
	for h := range 10 {
		setStored(t, s, day0.Add(time.Duration(h)*time.Hour+7*time.Minute), sample("acme", store.StoredTable, "orders", 1000))
	}
	setStored(t, s, day0.Add(9*time.Hour+50*time.Minute), sample("acme", store.StoredTable, "orders", 4000))
	setStored(t, s, day0.Add(12*time.Hour), sample("acme", store.StoredTable, "orders", 0), sample("acme", store.StoredBucket, "files", 1<<40))
	got := readStored(t, s, store.UsageQuery{Account: "acme"})
	if len(got) != 2 {
		t.Fatalf("got %d stored days, want 2 (bucket files, table orders)", len(got))
	}
	b, tb := got[0], got[1]
	if b.Kind != store.StoredBucket || b.Name != "files" || b.ByteHours != 1<<40 || b.SampledHours != 1 {
		t.Errorf("bucket day: got %s %q %d byte-hours over %d hours, want bucket files 2^40 over 1", b.Kind, b.Name, b.ByteHours, b.SampledHours)
	}
	if tb.Kind != store.StoredTable || tb.Name != "orders" || !tb.Day.Equal(day0) {
		t.Fatalf("table day: got %s %q on %s, want table orders on %s", tb.Kind, tb.Name, tb.Day, day0)
	}
	if tb.ByteHours != 9*1000+4000 || tb.SampledHours != 11 {
		t.Errorf("table day: got %d byte-hours over %d hours, want 13000 over 11 (hour 9 replaced, hour 12 empty)", tb.ByteHours, tb.SampledHours)
	}
	if tb.Hours == nil || tb.Hours[9] != 4000 || !tb.Sampled[12] || tb.Sampled[11] {
		t.Errorf("table hours: got %v sampled %v, want hour 9 at 4000, hour 12 sampled, hour 11 not", tb.Hours, tb.Sampled)
	}
}

func testStoredMerged(t *testing.T, s store.Store) {
	// One account's tables and buckets share a day's record: samples of
	// some of them, in separate writes, leave the others' hours alone.
	setStored(t, s, day0.Add(1*time.Hour), sample("acme", store.StoredTable, "b", 10), sample("acme", store.StoredTable, "a", 20))
	setStored(t, s, day0.Add(2*time.Hour), sample("acme", store.StoredBucket, "z", 5), sample("other", store.StoredTable, "a", 7))
	setStored(t, s, day0.Add(2*time.Hour+time.Minute), sample("acme", store.StoredTable, "b", 30))
	setStored(t, s, day0.Add(2*time.Hour+2*time.Minute), sample("acme", store.StoredTable, "b", 40))
	got := readStored(t, s, store.UsageQuery{Account: "acme"})
	want := []struct {
		kind, name         string
		byteHours, sampled int64
	}{{store.StoredBucket, "z", 5, 1}, {store.StoredTable, "a", 20, 1}, {store.StoredTable, "b", 10 + 40, 2}}
	if len(got) != len(want) {
		t.Fatalf("got %d stored days, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if g := got[i]; g.Account != "acme" || g.Kind != w.kind || g.Name != w.name || g.ByteHours != w.byteHours || g.SampledHours != w.sampled {
			t.Errorf("day %d: got %s %s %q %d byte-hours over %d hours, want %s %q %d over %d", i, g.Account, g.Kind, g.Name, g.ByteHours, g.SampledHours, w.kind, w.name, w.byteHours, w.sampled)
		}
	}
	// A table first sampled on a day already rolled up takes hours of its
	// own, beside the rolled-up totals, until the next prune rolls it up.
	update(t, s, func(tx store.Tx) error {
		_, _, err := tx.PruneUsage(day0.AddDate(0, 0, 1), day0)
		return err
	})
	setStored(t, s, day0.Add(5*time.Hour), sample("acme", store.StoredTable, "new", 3), sample("acme", store.StoredTable, "a", 1000))
	got = readStored(t, s, store.UsageQuery{Account: "acme"})
	if len(got) != 4 || got[1].Name != "a" || got[1].ByteHours != 20 || got[1].Hours != nil || got[3].Name != "new" || got[3].ByteHours != 3 || got[3].Hours == nil {
		t.Fatalf("after a new table on a rolled-up day: got %+v, want a at 20 rolled up, new at 3 hourly", got)
	}
	var rolled int64
	update(t, s, func(tx store.Tx) error {
		var err error
		rolled, _, err = tx.PruneUsage(day0.AddDate(0, 0, 1), day0)
		return err
	})
	got = readStored(t, s, store.UsageQuery{Account: "acme"})
	if rolled != 1 || len(got) != 4 || got[3].Hours != nil || got[3].ByteHours != 3 {
		t.Errorf("second prune: rolled %d, got %+v; want acme's day rolled again with new at 3", rolled, got)
	}
}

func testStoredRefused(t *testing.T, s store.Store) {
	setStored(t, s, day0, sample("acme", store.StoredTable, "orders", 10))
	for _, bad := range []store.StoredSample{
		sample("acme", "queue", "orders", 10),
		sample("acme", store.StoredTable, "", 10),
		sample("acme", store.StoredTable, "orders", -1),
	} {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.SetStored(day0.Add(time.Hour), []store.StoredSample{sample("acme", store.StoredTable, "orders", 99), bad})
		})
		wantCode(t, "bad sample "+bad.Kind+"/"+bad.Name, err, silo.CodeInvalid)
	}
	if got := readStored(t, s, store.UsageQuery{}); len(got) != 1 || got[0].ByteHours != 10 || got[0].SampledHours != 1 {
		t.Errorf("after refused samples: got %+v, want only the first sample (10 byte-hours)", got)
	}
}

func testStoredPaging(t *testing.T, s store.Store) {
	for d := range 3 {
		for _, a := range []silo.AccountID{"beta", "acme"} {
			setStored(t, s, day0.AddDate(0, 0, d), sample(a, store.StoredTable, "t", 1), sample(a, store.StoredBucket, "b", 2))
		}
	}
	// Pages of 1 end on every day's last table or bucket; pages of 5 end
	// inside an account's day.
	for _, limit := range []int{1, 5} {
		var all []store.StoredDay
		q := store.UsageQuery{Limit: limit}
		for {
			page := readStored(t, s, q)
			all = append(all, page...)
			if len(page) < q.Limit {
				break
			}
			l := page[len(page)-1]
			q.After = &store.UsageCursor{Day: l.Day, Account: l.Account, Function: store.StoredResource(l.Kind, l.Name)}
		}
		if len(all) != 12 {
			t.Fatalf("paged %d stored days by %d, want 12", len(all), limit)
		}
		if f := all[0]; f.Account != "acme" || f.Kind != store.StoredBucket || !f.Day.Equal(day0) {
			t.Errorf("first: got %s %s on %s, want acme's bucket on %s", f.Account, f.Kind, f.Day, day0)
		}
		if l := all[11]; l.Account != "beta" || l.Kind != store.StoredTable || !l.Day.Equal(day0.AddDate(0, 0, 2)) {
			t.Errorf("last: got %s %s on %s, want beta's table on the third day", l.Account, l.Kind, l.Day)
		}
	}
	if got := readStored(t, s, store.UsageQuery{Account: "beta", From: day0.AddDate(0, 0, 1), To: day0.AddDate(0, 0, 2)}); len(got) != 2 || got[0].Account != "beta" {
		t.Errorf("beta's second day: got %+v, want its bucket and table", got)
	}
}

func testStoredRetention(t *testing.T, s store.Store) {
	for d := range 10 {
		setStored(t, s, day0.AddDate(0, 0, d).Add(3*time.Hour), sample("acme", store.StoredTable, "t", int64(d+1)))
		setStored(t, s, day0.AddDate(0, 0, d).Add(4*time.Hour), sample("acme", store.StoredTable, "t", 100))
	}
	var rolled, deleted int64
	update(t, s, func(tx store.Tx) error {
		var err error
		rolled, deleted, err = tx.PruneUsage(day0.AddDate(0, 0, 7), day0.AddDate(0, 0, 2))
		return err
	})
	if rolled != 5 || deleted != 2 {
		t.Errorf("prune: rolled %d, deleted %d; want 5 rolled (days 2-6), 2 deleted (days 0-1)", rolled, deleted)
	}
	got := readStored(t, s, store.UsageQuery{Account: "acme"})
	if len(got) != 8 {
		t.Fatalf("got %d stored days after pruning, want 8", len(got))
	}
	for i, u := range got {
		d := i + 2
		if !u.Day.Equal(day0.AddDate(0, 0, d)) || u.ByteHours != int64(d+1+100) || u.SampledHours != 2 {
			t.Errorf("day %d: got %s with %d byte-hours over %d hours, want %s with %d over 2", d, u.Day, u.ByteHours, u.SampledHours, day0.AddDate(0, 0, d), d+101)
		}
		if hourly := u.Hours != nil; hourly != (d >= 7) {
			t.Errorf("day %d: hourly %v, want hours kept only from day 7", d, hourly)
		}
	}
	// A rolled-up day takes no more samples: its total stands.
	setStored(t, s, day0.AddDate(0, 0, 3).Add(5*time.Hour), sample("acme", store.StoredTable, "t", 1000))
	if got := readStored(t, s, store.UsageQuery{Account: "acme", From: day0.AddDate(0, 0, 3), To: day0.AddDate(0, 0, 4)}); len(got) != 1 || got[0].ByteHours != 104 {
		t.Errorf("late sample on a rolled-up day: got %+v, want 104 byte-hours kept", got)
	}
}

// testStoredPurge: a purged account's stored bytes are kept, apart from
// those of the new account that takes its ID.
func testStoredPurge(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("other", 0))
	setStored(t, s, day0, sample("acme", store.StoredTable, "t", 1), sample("other", store.StoredTable, "t", 1))
	deleteAndPurge(t, s, "acme", at(3))
	if got := readStored(t, s, store.UsageQuery{Account: "acme"}); len(got) != 1 || !got[0].Created.Equal(at(0)) {
		t.Errorf("stored bytes of a purged account: got %+v, want its day, under its creation %s", got, at(0))
	}
	create(t, s, tenant("acme", 5))
	if got := readStored(t, s, store.UsageQuery{Account: "acme", Created: at(5)}); len(got) != 0 {
		t.Errorf("stored bytes of the new acme before its first sample: got %+v, want none", got)
	}
	setStored(t, s, day0.Add(time.Hour), sample("acme", store.StoredTable, "t", 7))
	if got := readStored(t, s, store.UsageQuery{Account: "acme", Created: at(5)}); len(got) != 1 || got[0].ByteHours != 7 {
		t.Errorf("stored bytes of the new acme: got %+v, want its own 7 byte-hours", got)
	}
	if got := readStored(t, s, store.UsageQuery{Account: "acme", Created: at(0)}); len(got) != 1 || got[0].ByteHours != 1 {
		t.Errorf("stored bytes of the purged acme: got %+v, want its 1 byte-hour", got)
	}
	if got := readStored(t, s, store.UsageQuery{Account: "other"}); len(got) != 1 {
		t.Errorf("stored bytes of the other account: got %d days, want 1", len(got))
	}
}
