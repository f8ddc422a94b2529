package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// onPostgres puts a platform's control plane in a PostgreSQL schema of its
// own (skipped without SILO_TEST_POSTGRES).
func onPostgres(t *testing.T) silotest.Option {
	st, err := postgres.Open(context.Background(), pgtest.Fresh(t))
	if err != nil {
		t.Fatalf("open PostgreSQL store: %v", err)
	}
	return silotest.WithConfig(func(c *platform.Config) { c.Store = st })
}

// TestBadInputIsRefusedOnEveryStore sends the API and the console paging
// cursors, searches and usage windows that no account or report can have
// (bytes that are not UTF-8, NUL, a window starting before the year 1), on
// SQLite and on PostgreSQL: each gets the same answer on both, a 400 with
// a message or a page that lists nothing, never a 500 or an empty 200;
// the well-formed twin of each is served.
func TestBadInputIsRefusedOnEveryStore(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var opts []silotest.Option
			if backend == "postgres" {
				opts = append(opts, onPostgres(t))
			}
			f := newFixture(t, 0, opts...)
			f.sp.Tenant(t, "acme")
			api := func(path string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+f.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			for _, tc := range []struct {
				path   string
				status int
				want   string // in the body
			}{
				{"/v1/accounts?after=%ff", 400, `after=\"\\xff\" is not an account ID`},
				{"/v1/accounts?after=%00", 400, `is not an account ID`},
				{"/v1/accounts?after=ac%C3%A9", 400, `is not an account ID`},
				{"/v1/accounts?after=ab", 200, `[{"id":"acme"`},
				{"/v1/accounts?after=acm~", 200, `[{"id":"production"`}, // the console's cursor form: past acme
				{"/v1/usage?since=1000000d", 400, `since=\"1000000d\" reaches back before the year 1`},
				{"/v1/usage?since=0000-06-01T00:00:00Z", 400, `reaches back before the year 1`},
				{"/v1/usage?since=100000d", 200, `"account":"acme"`},
			} {
				status, body := api(tc.path)
				if status != tc.status || !strings.Contains(body, tc.want) {
					t.Errorf("GET %s: got %d %s, want %d with %s", tc.path, status, body, tc.status, tc.want)
				}
				var v any
				if err := json.Unmarshal([]byte(body), &v); err != nil {
					t.Errorf("GET %s: the body %q is not JSON: %v", tc.path, body, err)
				}
			}
			b := f.browser(t)
			b.signIn()
			for _, tc := range []struct {
				path   string
				status int
				acme   bool // listed
			}{
				{"/console/?q=%ff", 200, false},
				{"/console/?q=%ff&sort=cost", 200, false},
				{"/console/?q=%C3%80", 200, false},
				{"/console/?q=a%00", 200, false},
				{"/console/?q=ac", 200, true},
				{"/console/?q=ac&sort=cost", 200, true},
				{"/console/?after=%ff", 400, false},
				{"/console/?after=ab", 200, true},
			} {
				pg := b.get(tc.path)
				if pg.status != tc.status || strings.Contains(pg.body, `href="/console/tenants/acme"`) != tc.acme {
					t.Errorf("GET %s: got %d, acme listed %v; want %d, listed %v", tc.path, pg.status, !tc.acme, tc.status, tc.acme)
				}
			}
		})
	}
}
