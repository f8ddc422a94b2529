package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// TestFleetSortBrowser: in Chromium, sorting the fleet by cost puts the
// most expensive tenant first on page 1, though by name and by ID it is on
// the last page; the next page goes on in the same order; by requests the
// busiest comes first. Pages hold 3 rows over 10 tenants.
func TestFleetSortBrowser(t *testing.T) {
	bctx := chromium(t)
	f := newFixture(t, 3)
	ctx := context.Background()
	now := f.clock.Now().UTC()
	err := f.p.Store.Update(ctx, func(tx store.Tx) error {
		for i := range 9 {
			id := silo.AccountID(fmt.Sprintf("t%02d", i))
			if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive, Name: fmt.Sprintf("Tenant %d", i), Created: now, Updated: now}); err != nil {
				return err
			}
		}
		// Last by ID and by name; 10 TiB stored for an hour makes it the
		// most expensive (its byte-hours priced per GB-month).
		if err := tx.CreateAccount(silo.Account{ID: "zz-rich", Kind: silo.KindTenant, State: silo.StateActive, Name: "Zeta Rich", Created: now, Updated: now}); err != nil {
			return err
		}
		if err := tx.SetStored(now, []store.StoredSample{{Account: "zz-rich", Kind: store.StoredTable, Name: "findings", Bytes: 10 << 40}}); err != nil {
			return err
		}
		// t07 is the busiest, and second by cost.
		return tx.AddUsage(now, []store.UsageDelta{
			{Account: "t07", Function: "ingest", Counters: store.Counters{Requests: 50_000, DurationMicros: 1e9, MemoryMiBMicros: 128e9}},
			{Account: "t03", Function: "ingest", Counters: store.Counters{Requests: 10}},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: bctx, base: f.srv.URL, shot: t.TempDir()}
	b.open("/console/signin")
	b.do("type the token", chromedp.SendKeys(chromedp.CSS("#token"), f.token))
	b.submit("form button[type=submit]")
	rows := func() []string {
		t.Helper()
		return run(b, "rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll("tbody tr td:first-child a")].map(a => a.textContent.trim())`))
	}
	// The twin: by name (and by ID) zz-rich is not on page 1.
	b.open("/console/?sort=name")
	if got := rows(); len(got) != 3 || got[0] == "zz-rich" || strings.Contains(strings.Join(got, " "), "zz-rich") {
		t.Errorf("sorted by name, page 1: %v, want 3 rows without zz-rich", got)
	}
	b.open("/console/?sort=name&page=4")
	if got := rows(); len(got) == 0 || got[len(got)-1] != "zz-rich" {
		t.Errorf("sorted by name, page 4: %v, want zz-rich last (Zeta Rich)", got)
	}
	// Sort by cost from the page's own form.
	b.open("/console/")
	if got := rows(); len(got) != 3 || got[0] == "zz-rich" {
		t.Fatalf("by ID, page 1: %v, want 3 rows from t00", got)
	}
	b.do("choose cost", chromedp.SetValue(chromedp.CSS("select[name=sort]"), "cost"))
	b.submit(".filters button[type=submit]")
	if got := rows(); len(got) != 3 || got[0] != "zz-rich" || got[1] != "t07" || got[2] != "t03" {
		t.Errorf("sorted by cost, page 1: %v, want zz-rich, t07, t03 (then the rest by ID)", got)
	}
	if txt := b.text(); !strings.Contains(txt, "Page 1 of 4, 11 accounts") {
		t.Errorf("sorted by cost: page text lacks %q:\n%s", "Page 1 of 4, 11 accounts", txt)
	}
	b.screenshot("fleet-by-cost")
	b.submit(`a[rel=next]`)
	if got := rows(); len(got) != 3 || got[0] != "production" && got[0] != "t00" {
		t.Errorf("sorted by cost, page 2: %v, want the accounts with only their floor, by ID", got)
	}
	if loc := b.location(); !strings.Contains(loc, "sort=cost") || !strings.Contains(loc, "page=2") {
		t.Errorf("next page: at %s, want sort=cost&page=2", loc)
	}
	b.open("/console/?sort=requests")
	if got := rows(); len(got) != 3 || got[0] != "t07" || got[1] != "t03" {
		t.Errorf("sorted by requests, page 1: %v, want t07, t03 first", got)
	}
}
