package usage

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

func openStore(t *testing.T) store.Store { return openStoreB(t) }

func openStoreB(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

func read(t *testing.T, st store.Store, q store.UsageQuery) []store.UsageDay {
	t.Helper()
	var out []store.UsageDay
	if err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = tx.Usage(q)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMeterFlush: what the meter aggregates reaches the store exactly, per
// account and function, in the hour it was recorded; a failed flush keeps
// the usage for the next one.
func TestMeterFlush(t *testing.T) {
	st := openStore(t)
	clk := &clock{t0}
	m, err := New(Config{Store: st, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		m.Add("acme", "ingest", Sample{At: t0, Duration: 3 * time.Millisecond, MemoryMiB: 64, BytesIn: 10, BytesOut: 20, Error: i%10 == 0})
	}
	m.Add("acme", "list", Sample{At: t0, Duration: time.Second, MemoryMiB: 128})
	m.Add("beta", "ingest", Sample{At: t0})
	if n, _ := m.Pending("acme", time.Time{}); n != 101 {
		t.Errorf("pending for acme: got %d, want 101", n)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, gen := m.Pending("acme", time.Time{}); n != 0 || gen != 1 {
		t.Errorf("after the flush: got %d pending, generation %d; want 0, 1", n, gen)
	}
	got := map[string]store.Counters{}
	for _, u := range read(t, st, store.UsageQuery{}) {
		got[string(u.Account)+"/"+u.Function] = u.Total
		if u.Hours == nil || u.Hours[12] != u.Total {
			t.Errorf("%s/%s: want everything in hour 12, got %+v", u.Account, u.Function, u.Hours)
		}
	}
	want := map[string]store.Counters{
		"acme/ingest": {Requests: 100, Errors: 10, DurationMicros: 300000, MemoryMiBMicros: 64 * 3000 * 100, BytesIn: 1000, BytesOut: 2000},
		"acme/list":   {Requests: 1, DurationMicros: 1e6, MemoryMiBMicros: 128 * 1e6},
		"beta/ingest": {Requests: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored usage (-want +got):\n%s", diff)
	}

	// A store that fails: the usage stays pending, and is written later.
	broken := openStore(t)
	mb, err := New(Config{Store: broken, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	mb.Add("acme", "ingest", Sample{At: t0})
	broken.Close()
	if err := mb.Flush(context.Background()); err == nil {
		t.Fatal("flush into a closed store: got no error")
	}
	mb.Add("acme", "ingest", Sample{At: t0})
	if n, _ := mb.Pending("acme", time.Time{}); n != 2 {
		t.Errorf("after a failed flush: got %d pending, want 2 (kept and the new one)", n)
	}
	mb.cfg.Store = st // the store is back
	if err := mb.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u := read(t, st, store.UsageQuery{Account: "acme"}); len(u) != 2 || u[0].Total.Requests != 102 {
		t.Errorf("after the retry: got %+v, want acme/ingest with 102 requests", u)
	}
}

// TestMeterKeepsAccountsWithOneIDApart: requests of a deleted account and
// of the new account with its ID, recorded in one flush interval, are
// pending and stored apart, each under its account's creation.
func TestMeterKeepsAccountsWithOneIDApart(t *testing.T) {
	st := openStore(t)
	m, err := New(Config{Store: st, Now: (&clock{t0}).now})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := t0.Add(-48*time.Hour), t0.Add(-time.Hour)
	m.Add("acme", "f", Sample{At: t0, Created: c1})
	m.Add("acme", "f", Sample{At: t0, Created: c1})
	m.Add("acme", "f", Sample{At: t0, Created: c2})
	if n, _ := m.Pending("acme", c2); n != 1 {
		t.Errorf("pending for the new acme: got %d, want its 1 request", n)
	}
	if n, _ := m.Pending("acme", c1); n != 2 {
		t.Errorf("pending for the deleted acme: got %d, want its 2 requests", n)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	u := read(t, st, store.UsageQuery{Account: "acme"})
	if len(u) != 2 || !u[0].Created.Equal(c1) || u[0].Total.Requests != 2 || !u[1].Created.Equal(c2) || u[1].Total.Requests != 1 {
		t.Errorf("stored: got %+v, want 2 requests under %s, 1 under %s", u, c1, c2)
	}
}

// TestMeterRetention: with a fake clock past the retention, the meter's
// prune rolls hours up and deletes old days; days inside it keep their
// hours.
func TestMeterRetention(t *testing.T) {
	st := openStore(t)
	clk := &clock{t0}
	m, err := New(Config{Store: st, Now: clk.now, HourlyRetention: 2 * 24 * time.Hour, DailyRetention: 5 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		m.Add("acme", "f", Sample{At: clk.t})
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(24 * time.Hour)
	}
	clk.t = clk.t.Add(-24 * time.Hour) // the day of the last flush
	if err := m.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	days := read(t, st, store.UsageQuery{})
	var got []string
	for _, u := range days {
		form := "daily"
		if u.Hours != nil {
			form = "hourly"
		}
		got = append(got, u.Day.Format("01-02")+" "+form)
	}
	want := []string{"03-14 daily", "03-15 daily", "03-16 daily", "03-17 hourly", "03-18 hourly", "03-19 hourly"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("days kept (-want +got):\n%s", diff)
	}
	for _, c := range []Config{{}, {Store: st, Flush: -1}, {Store: st, HourlyRetention: 48 * time.Hour, DailyRetention: 24 * time.Hour}} {
		if _, err := New(c); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("New(%+v): got %v, want invalid", c, err)
		}
	}
}

// TestReport: lines by account, function and day add up to what was
// stored, an idle account is listed with its floor, costs follow the price
// table, and pages cover every line once.
func TestReport(t *testing.T) {
	st := openStore(t)
	add := func(at time.Time, acct silo.AccountID, fn string, c store.Counters) {
		if err := st.Update(context.Background(), func(tx store.Tx) error {
			return tx.AddUsage(at, []store.UsageDelta{{Account: acct, Function: fn, Counters: c}})
		}); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	add(day.Add(time.Hour), "acme", "ingest", store.Counters{Requests: 1e6, MemoryMiBMicros: 1024 * 1000 * 1e6, BytesOut: 1 << 30})
	add(day.Add(25*time.Hour), "acme", "list", store.Counters{Requests: 5, Errors: 1})
	add(day.Add(-24*time.Hour), "acme", "list", store.Counters{Requests: 99}) // before the window
	p := Prices{PerMillionRequests: 2, PerGBSecond: 0.5, PerGBOut: 3, AccountPerMonth: 30}
	q := Query{Since: day, Until: day.Add(24 * time.Hour)}
	r, err := Build(context.Background(), st, q, p, always("acme", "idle"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{
		{Account: "acme", Counters: store.Counters{Requests: 1e6 + 5, Errors: 1, MemoryMiBMicros: 1024 * 1000 * 1e6, BytesOut: 1 << 30},
			GBSeconds: 1000, Cost: (1e6+5)/1e6*2 + 1000*0.5 + 3, Floor: 2},
		{Account: "idle", Floor: 2},
	}
	if diff := cmp.Diff(want, r.Lines, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
		t.Errorf("by account (-want +got):\n%s", diff)
	}

	q.By = ByFunction
	r, err = Build(context.Background(), st, q, p, always("acme", "idle"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 || r.Lines[0].Function != "ingest" || r.Lines[1].Function != "list" || r.Lines[1].Requests != 5 || r.Lines[1].Floor != 0 {
		t.Errorf("by function: got %+v, want ingest and list (5 requests), no floor", r.Lines)
	}

	q.By, q.Limit = ByDay, 1
	var days []string
	for range 10 {
		r, err = Build(context.Background(), st, q, p, always("acme", "idle"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Lines {
			days = append(days, string(l.Account)+" "+l.Day)
		}
		if r.Next == "" {
			break
		}
		q.After = r.Next
	}
	if diff := cmp.Diff([]string{"acme 2026-03-01", "acme 2026-03-02", "idle 2026-03-01", "idle 2026-03-02"}, days); diff != "" {
		t.Errorf("by day, one line a page (-want +got):\n%s", diff)
	}

	for _, bad := range []Query{{Since: day, Until: day, By: "week"}, {Since: day.Add(48 * time.Hour), Until: day}, {Until: day}, {Since: day, Until: day, After: "!!"}} {
		if _, err := Build(context.Background(), st, bad, p, nil); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("Build(%+v): got %v, want invalid", bad, err)
		}
	}
}

// TestReportListsTheGivenAccounts: a report of every account lists the
// accounts it is given only, so usage recorded for another (the production
// account, which control leaves out of a billing export) is not listed,
// by account, function or day; the twin: a report of that one account,
// asked for by name, lists its usage, without a floor.
func TestReportListsTheGivenAccounts(t *testing.T) {
	st := openStore(t)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.AddUsage(day.Add(time.Hour), []store.UsageDelta{
			{Account: "acme", Function: "ingest", Counters: store.Counters{Requests: 3}},
			{Account: silo.ProductionID, Function: "sync", Counters: store.Counters{Requests: 7}},
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.SetStored(day.Add(time.Hour), []store.StoredSample{{Account: silo.ProductionID, Kind: store.StoredTable, Name: "intel", Bytes: 1 << 30}})
	}); err != nil {
		t.Fatal(err)
	}
	p := DefaultPrices()
	for _, by := range []string{ByAccount, ByFunction, ByDay} {
		r, err := Build(context.Background(), st, Query{Since: day, Until: day, By: by}, p, always("acme"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Lines {
			if l.Account != "acme" {
				t.Errorf("every account by %q: got a line of %s (%+v), want acme's only", by, l.Account, l)
			}
		}
		if len(r.Lines) != 1 || r.Lines[0].Requests != 3 {
			t.Errorf("every account by %q: got %+v, want acme's one line with 3 requests", by, r.Lines)
		}
	}
	r, err := Build(context.Background(), st, Query{Account: silo.ProductionID, Since: day, Until: day}, p, always("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 1 || r.Lines[0].Account != silo.ProductionID || r.Lines[0].Requests != 7 || r.Lines[0].TableByteHours != 1<<30 || r.Lines[0].Floor != 0 {
		t.Errorf("the production account by name: got %+v, want its 7 requests and 1 GiB-hour, no floor", r.Lines)
	}
}

// TestReportTellsAccountsWithOneIDApart: when a deleted account's ID was
// taken by a new account, the report lists each on lines of its own, the
// deleted one first with its creation and deletion, each with its own
// usage, stored bytes and floor; the new one inherits none of the old
// one's, whether every account or the ID is asked for.
func TestReportTellsAccountsWithOneIDApart(t *testing.T) {
	st := openStore(t)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	oldFrom, oldTo := day.Add(-24*time.Hour), day.Add(6*time.Hour)
	newFrom, now := day.Add(12*time.Hour), day.Add(18*time.Hour)
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.AddUsage(day.Add(time.Hour), []store.UsageDelta{
			{Account: "acme", Created: oldFrom, Function: "ingest", Counters: store.Counters{Requests: 10}},
		}); err != nil {
			return err
		}
		if err := tx.AddUsage(day.Add(13*time.Hour), []store.UsageDelta{
			{Account: "acme", Created: newFrom, Function: "ingest", Counters: store.Counters{Requests: 2}},
		}); err != nil {
			return err
		}
		return tx.SetStored(day.Add(time.Hour), []store.StoredSample{{Account: "acme", Created: oldFrom, Kind: store.StoredTable, Name: "t", Bytes: 5}})
	}); err != nil {
		t.Fatal(err)
	}
	lives := []Lifetime{{Account: "acme", From: newFrom, To: now}, {Account: "acme", From: oldFrom, To: oldTo, Deleted: true}}
	p := Prices{AccountPerMonth: 720} // $1 an hour
	for _, q := range []Query{{Since: day, Until: now}, {Account: "acme", Since: day, Until: now}} {
		r, err := Build(context.Background(), st, q, p, lives)
		if err != nil {
			t.Fatal(err)
		}
		deleted := oldTo
		want := []Line{
			{Account: "acme", Created: oldFrom, Deleted: &deleted, Counters: store.Counters{Requests: 10}, TableByteHours: 5, Floor: 6},
			{Account: "acme", Created: newFrom, Counters: store.Counters{Requests: 2}, Floor: 6},
		}
		if d := cmp.Diff(want, r.Lines, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); d != "" {
			t.Errorf("report of %q (-want +got):\n%s", q.Account, d)
		}
	}
	r, err := Build(context.Background(), st, Query{Since: day, Until: now, By: ByFunction}, p, lives)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 2 || r.Lines[0].Requests != 10 || r.Lines[0].Deleted == nil || r.Lines[1].Requests != 2 || r.Lines[1].Deleted != nil {
		t.Errorf("by function: got %+v, want the deleted acme's 10 requests, then the new one's 2", r.Lines)
	}
}

// always is accounts that existed before and after any window of a test.
func always(ids ...silo.AccountID) []Lifetime {
	out := make([]Lifetime, len(ids))
	for i, id := range ids {
		out[i] = Lifetime{Account: id}
	}
	return out
}

// TestFloorCoversLifetime: an account's floor is charged for the time it
// existed in the window, from its creation to its deletion or now, on
// account lines and on day lines; an account is listed only on the days it
// existed, and not at all if it did not exist in the window. A window that
// starts long before any account (100,000 days back) charges each account
// its whole lifetime, no more.
func TestFloorCoversLifetime(t *testing.T) {
	st := openStore(t)
	at := func(month time.Month, day, hour int) time.Time {
		return time.Date(2026, month, day, hour, 0, 0, 0, time.UTC)
	}
	now := at(3, 2, 12)
	p := Prices{AccountPerMonth: 720} // $1 an hour
	cases := []struct {
		name  string
		life  Lifetime
		floor float64            // by account over Mar 1 09:00 to now; -1: not listed
		days  map[string]float64 // by day over the same window
		// over the window that starts 100,000 days back: the floor (the
		// whole lifetime) and how many day lines
		lifeFloor float64
		lifeDays  int
	}{
		{"existed throughout", Lifetime{From: at(2, 1, 0), To: now}, 36,
			map[string]float64{"2026-03-01": 24, "2026-03-02": 12}, 28*24 + 36, 28 + 2},
		{"created in the window", Lifetime{From: at(3, 1, 18), To: now}, 18,
			map[string]float64{"2026-03-01": 6, "2026-03-02": 12}, 18, 2},
		{"created an hour ago", Lifetime{From: at(3, 2, 11), To: now}, 1,
			map[string]float64{"2026-03-02": 1}, 1, 1},
		{"created now", Lifetime{From: now, To: now}, 0,
			map[string]float64{"2026-03-02": 0}, 0, 1},
		{"deleted in the window", Lifetime{From: at(2, 1, 0), To: at(3, 1, 6)}, 6,
			map[string]float64{"2026-03-01": 6}, 28*24 + 6, 28 + 1},
		{"created and deleted in the window", Lifetime{From: at(3, 2, 1), To: at(3, 2, 3)}, 2,
			map[string]float64{"2026-03-02": 2}, 2, 1},
		{"deleted at the window's first midnight", Lifetime{From: at(2, 27, 12), To: at(3, 1, 0)}, -1, nil, 36, 2},
		{"deleted before the window", Lifetime{From: at(1, 1, 0), To: at(2, 19, 15)}, -1, nil, (31+18)*24 + 15, 31 + 19},
	}
	var lives []Lifetime
	for i := range cases {
		cases[i].life.Account = silo.AccountID(fmt.Sprintf("acct-%d", i))
		lives = append(lives, cases[i].life)
	}
	report := func(since time.Time) (map[silo.AccountID]float64, map[silo.AccountID]map[string]float64) {
		t.Helper()
		floors, days := map[silo.AccountID]float64{}, map[silo.AccountID]map[string]float64{}
		r, err := Build(context.Background(), st, Query{Since: since, Until: now}, p, lives)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Lines {
			floors[l.Account] = l.Floor
		}
		r, err = Build(context.Background(), st, Query{Since: since, Until: now, By: ByDay, Limit: MaxLines}, p, lives)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Lines {
			if days[l.Account] == nil {
				days[l.Account] = map[string]float64{}
			}
			days[l.Account][l.Day] = l.Floor
		}
		return floors, days
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
	floors, days := report(at(3, 1, 9))
	far, farDays := report(now.AddDate(0, 0, -100_000))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, listed := floors[c.life.Account]
			switch {
			case c.floor < 0 && listed:
				t.Errorf("by account: listed with floor %v, want not listed", got)
			case c.floor >= 0 && !listed:
				t.Errorf("by account: not listed, want floor %v", c.floor)
			case listed && math.Abs(got-c.floor) > 1e-9:
				t.Errorf("by account: floor %v, want %v", got, c.floor)
			}
			if diff := cmp.Diff(c.days, days[c.life.Account], approx); diff != "" {
				t.Errorf("by day, floor per day (-want +got):\n%s", diff)
			}
			if got := far[c.life.Account]; math.Abs(got-c.lifeFloor) > 1e-9 {
				t.Errorf("since 100,000 days back, by account: floor %v, want %v (the lifetime)", got, c.lifeFloor)
			}
			var sum float64
			for _, f := range farDays[c.life.Account] {
				sum += f
			}
			if n := len(farDays[c.life.Account]); n != c.lifeDays || math.Abs(sum-c.lifeFloor) > 1e-9 {
				t.Errorf("since 100,000 days back, by day: %d lines, floors summing to %v; want %d, %v", n, sum, c.lifeDays, c.lifeFloor)
			}
		})
	}
}

// TestLoadPrices: a price file replaces the fields it sets and keeps the
// defaults of the rest; a negative price or a malformed file is refused.
func TestLoadPrices(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := LoadPrices(write("ok.json", `{"per_gb_out": 0.05}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPrices()
	if p.PerGBOut != 0.05 || p.PerMillionRequests != want.PerMillionRequests || p.AccountPerMonth != want.AccountPerMonth {
		t.Errorf("got %+v, want per_gb_out 0.05 and the other defaults", p)
	}
	for name, body := range map[string]string{"negative.json": `{"per_gb_second": -1}`, "bad.json": `[1]`} {
		if _, err := LoadPrices(write(name, body)); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("%s: got %v, want invalid", name, err)
		}
	}
	if _, err := LoadPrices(filepath.Join(dir, "missing.json")); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("missing file: got %v, want invalid", err)
	}
}

// TestStoredPerMonth: stored bytes are priced per GB (2^30 bytes) and 30
// days, at the table or the bucket price.
func TestStoredPerMonth(t *testing.T) {
	p := Prices{PerGBMonthTable: 0.25, PerGBMonthBucket: 0.023}
	for _, tc := range []struct {
		bytes  int64
		bucket bool
		want   float64
	}{{1 << 30, false, 0.25}, {1 << 30, true, 0.023}, {512 << 20, false, 0.125}, {0, true, 0}} {
		if got := p.StoredPerMonth(tc.bytes, tc.bucket); got != tc.want {
			t.Errorf("%d bytes (bucket %v): $%v, want $%v", tc.bytes, tc.bucket, got, tc.want)
		}
	}
}
