package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// BenchmarkFleetPage measures the server time of the console's fleet page
// over 10,000 tenants (first page, with a month of usage per row; a page
// deep in the fleet, without usage; an ID-prefix search; a state filter
// that matches few; a parameter filter, common and matching none; sorted
// over the whole fleet by name and by cost), each
// beside its baseline: the API's own
// GET /v1/accounts for the same page as JSON, in the same run.
//
//	go test ./server/console -run '^$' -bench BenchmarkFleetPage -benchtime 200x
func BenchmarkFleetPage(b *testing.B) {
	f := newFixture(b, 0)
	ctx := context.Background()
	const n = 10_000
	now := time.Now().UTC()
	plans := []string{"free", "pro", "enterprise"}
	// Rows straight into the store: the page reads only the registry.
	err := f.p.Store.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			st := silo.StateActive
			if i%500 == 0 {
				st = silo.StateSuspended
			}
			a := silo.Account{ID: silo.AccountID(fmt.Sprintf("t%05d", i)), Kind: silo.KindTenant, State: st,
				Name: fmt.Sprintf("Tenant %d", i), Params: map[string]string{"plan": plans[i%3]}, Release: "r-bench", Created: now, Updated: now}
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// Usage for the first two pages' tenants, every day of the month up to
	// the console's now (the 30th: the most days a page reads), three
	// functions each; the deep page's tenants have none.
	f.clock.Advance(25 * 24 * time.Hour)
	end := f.clock.Now()
	for d := time.Date(end.Year(), end.Month(), 1, 12, 0, 0, 0, time.UTC); !d.After(end); d = d.AddDate(0, 0, 1) {
		var ds []store.UsageDelta
		for i := range 100 {
			for _, fn := range []string{"ingest", "list", "smoke"} {
				ds = append(ds, store.UsageDelta{Account: silo.AccountID(fmt.Sprintf("t%05d", i)), Function: fn,
					Counters: store.Counters{Requests: 1000, Errors: 3, DurationMicros: 2_000_000, MemoryMiBMicros: 256_000_000, BytesIn: 1 << 20, BytesOut: 2 << 20}})
			}
		}
		if err := f.p.Store.Update(ctx, func(tx store.Tx) error { return tx.AddUsage(d, ds) }); err != nil {
			b.Fatal(err)
		}
	}
	h := f.srv.Config.Handler
	cookie := signInCookie(b, h, f.token)
	for _, tc := range []struct{ name, console, api string }{
		{"first", "/console/", "/v1/accounts?limit=51"},
		{"deep", "/console/?after=t07500", "/v1/accounts?limit=51&after=t07500"},
		{"prefix", "/console/?q=t0512", "/v1/accounts?limit=51&after=t0511~"},
		{"suspended", "/console/?state=suspended", "/v1/accounts?limit=51&state=suspended"},
		// A parameter a third of the fleet has, and one none has: the page
		// then reads its bound of accounts (5,000) and links on.
		{"param", "/console/?param=plan%3Dpro", "/v1/accounts?limit=500"},
		{"param-none", "/console/?param=plan%3Dplatinum", "/v1/accounts?limit=5000"},
		// Sorted over the whole fleet: every account read and sorted for
		// each page. By cost the usage summary is reused for a minute
		// (warm), or read again for every page (cold: the clock moves a
		// minute each time). The baseline reads the fleet's accounts as JSON.
		{"sort-name", "/console/?sort=name&page=100", "/v1/accounts?limit=10001"},
		{"sort-cost", "/console/?sort=cost", "/v1/accounts?limit=10001"},
		{"sort-cost-deep", "/console/?sort=cost&page=150", "/v1/accounts?limit=10001"},
		{"sort-cost-cold", "/console/?sort=cost", "/v1/accounts?limit=10001"},
	} {
		b.Run(tc.name+"/console", func(b *testing.B) {
			for b.Loop() {
				if strings.HasSuffix(tc.name, "-cold") {
					f.clock.Advance(time.Minute)
				}
				get(b, h, tc.console, func(r *http.Request) { r.AddCookie(cookie) })
			}
		})
		b.Run(tc.name+"/api-baseline", func(b *testing.B) {
			for b.Loop() {
				get(b, h, tc.api, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+f.token) })
			}
		})
	}
}

func signInCookie(b *testing.B, h http.Handler, token string) *http.Cookie {
	req := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		return c
	}
	b.Fatalf("sign in: %d, no cookie", rec.Code)
	return nil
}

func get(b *testing.B, h http.Handler, path string, set func(*http.Request)) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	set(req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
}
