package usage

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// sizes is a stored-bytes source whose answer a test sets.
type sizes struct {
	mu    sync.Mutex
	ss    []store.StoredSample
	err   error
	calls int
}

func (s *sizes) set(ss ...store.StoredSample) { s.mu.Lock(); s.ss = ss; s.mu.Unlock() }

func (s *sizes) stored(context.Context) ([]store.StoredSample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return append([]store.StoredSample(nil), s.ss...), s.err
}

// TestStoredByteHours: a known stored size held over known hours gives the
// exact byte-hours and cost, per account and per day; flushing many times
// in an hour samples it once, and a sample the source failed is taken at
// the next flush.
func TestStoredByteHours(t *testing.T) {
	st := openStore(t)
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	clk := &clock{day.Add(5 * time.Minute)}
	src := &sizes{}
	src.set(
		store.StoredSample{Account: "acme", Kind: store.StoredTable, Name: "orders", Bytes: 1 << 30},
		store.StoredSample{Account: "acme", Kind: store.StoredBucket, Name: "files", Bytes: 3 << 30},
		store.StoredSample{Account: "beta", Kind: store.StoredTable, Name: "orders", Bytes: 1000},
	)
	m, err := New(Config{Store: st, Now: clk.now, Stored: src.stored})
	if err != nil {
		t.Fatal(err)
	}
	// Two days of flushes every 10 minutes: 288 flushes, 48 hourly samples.
	for range 48 * 6 {
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(10 * time.Minute)
	}
	if src.calls != 48 {
		t.Errorf("the source was sampled %d times over 48 hours, want 48 (once an hour)", src.calls)
	}
	p := DefaultPrices()
	q := Query{Since: day, Until: day.Add(24 * time.Hour)}
	r, err := Build(context.Background(), st, q, p, always("acme", "beta", "idle"))
	if err != nil {
		t.Fatal(err)
	}
	byAcct := map[silo.AccountID]Line{}
	for _, l := range r.Lines {
		byAcct[l.Account] = l
	}
	acme := byAcct["acme"]
	if acme.TableByteHours != 48<<30 || acme.BucketByteHours != 3*48<<30 {
		t.Errorf("acme: got %d table and %d bucket byte-hours, want %d and %d", acme.TableByteHours, acme.BucketByteHours, int64(48<<30), int64(3*48<<30))
	}
	// 1 GiB of table for 48 h is 48/720 GB-month at $0.25; 3 GiB of bucket
	// 3 × 48/720 at $0.023.
	wantStorage := 48.0/720*0.25 + 3*48.0/720*0.023
	if math.Abs(acme.StorageCost-wantStorage) > 1e-12 || math.Abs(acme.Cost-wantStorage) > 1e-12 {
		t.Errorf("acme: storage cost %v, cost %v; want both %v (no requests)", acme.StorageCost, acme.Cost, wantStorage)
	}
	if b := byAcct["beta"]; b.TableByteHours != 48*1000 || b.BucketByteHours != 0 {
		t.Errorf("beta: got %d table and %d bucket byte-hours, want 48000 and 0", b.TableByteHours, b.BucketByteHours)
	}
	if i := byAcct["idle"]; i.TableByteHours != 0 || i.StorageCost != 0 || i.Floor == 0 {
		t.Errorf("idle account: got %+v, want no storage and its floor", i)
	}
	q.By, q.Account = ByDay, "acme"
	if r, err = Build(context.Background(), st, q, p, always("acme")); err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 {
		t.Fatalf("acme by day: got %d lines, want 2", len(r.Lines))
	}
	for _, l := range r.Lines {
		if want := 24.0/720*0.25 + 3*24.0/720*0.023; l.TableByteHours != 24<<30 || math.Abs(l.StorageCost-want) > 1e-12 {
			t.Errorf("acme on %s: got %d table byte-hours costing %v, want %d costing %v", l.Day, l.TableByteHours, l.StorageCost, int64(24<<30), want)
		}
	}
	q.By = ByFunction // stored bytes belong to no function
	if r, err = Build(context.Background(), st, q, p, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 0 {
		t.Errorf("acme by function with no requests: got %+v, want no lines", r.Lines)
	}

	// A failed sample is taken again at the next flush of the same hour.
	src.mu.Lock()
	src.err = errors.New("provider unreachable")
	src.mu.Unlock()
	src.set(store.StoredSample{Account: "gamma", Kind: store.StoredTable, Name: "t", Bytes: 7})
	if err := m.Flush(context.Background()); err == nil {
		t.Fatal("flush with a failing stored-bytes source: got no error")
	}
	gamma := func() []store.StoredDay {
		var got []store.StoredDay
		if err := st.View(context.Background(), func(tx store.Tx) error {
			got, err = tx.Stored(store.UsageQuery{Account: "gamma"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := gamma(); len(got) != 1 || got[0].ByteHours != 7 {
		t.Errorf("gamma after a partly failed sample: got %+v, want what the source returned kept (7 byte-hours)", got)
	}
	src.mu.Lock()
	src.err = nil
	src.mu.Unlock()
	src.set(store.StoredSample{Account: "gamma", Kind: store.StoredTable, Name: "t", Bytes: 9})
	calls := src.calls
	clk.t = clk.t.Add(time.Minute) // too soon: no sample
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.calls != calls {
		t.Errorf("a flush a minute after a failed sample sampled again; want it to wait 5 minutes")
	}
	clk.t = clk.t.Add(5 * time.Minute)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gamma(); len(got) != 1 || got[0].ByteHours != 9 || got[0].SampledHours != 1 {
		t.Errorf("gamma after a failed and a good sample of one hour: got %+v, want 9 byte-hours over 1 hour (replaced, not added)", got)
	}

	// Close flushes without sampling: no provider reads while the server stops.
	clk.t = clk.t.Add(time.Hour)
	calls = src.calls
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.calls != calls {
		t.Errorf("Close sampled the stored bytes; want no sample on Close")
	}
}

// TestStoredRetention: the meter's prune drops stored-bytes days past the
// daily retention and rolls up those past the hourly one; a report over
// the window still sees the rolled-up byte-hours.
func TestStoredRetention(t *testing.T) {
	st := openStore(t)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{day}
	src := &sizes{}
	src.set(store.StoredSample{Account: "acme", Kind: store.StoredTable, Name: "t", Bytes: 100})
	m, err := New(Config{Store: st, Now: clk.now, Stored: src.stored, HourlyRetention: 3 * 24 * time.Hour, DailyRetention: 5 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for d := range 10 {
		clk.t = day.AddDate(0, 0, d).Add(time.Hour)
		if err := m.SampleStored(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []store.StoredDay
	if err := st.View(context.Background(), func(tx store.Tx) error {
		got, err = tx.Stored(store.UsageQuery{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// now is day 9, 01:00: days before day 4 are gone, days 4-5 rolled up.
	if len(got) != 6 || !got[0].Day.Equal(day.AddDate(0, 0, 4)) {
		t.Fatalf("after pruning: got %d days from %v, want 6 from day 4", len(got), got[0].Day)
	}
	for _, d := range got {
		if d.ByteHours != 100 {
			t.Errorf("%s: %d byte-hours, want 100", d.Day.Format(time.DateOnly), d.ByteHours)
		}
		if rolled := d.Hours == nil; rolled != d.Day.Before(day.AddDate(0, 0, 6)) {
			t.Errorf("%s: rolled up %v, want rolled up only before day 6", d.Day.Format(time.DateOnly), rolled)
		}
	}
	r, err := Build(context.Background(), st, Query{Since: day, Until: clk.t}, DefaultPrices(), always("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 1 || r.Lines[0].TableByteHours != 600 {
		t.Errorf("report after pruning: got %+v, want 600 byte-hours (6 kept days)", r.Lines)
	}
}
