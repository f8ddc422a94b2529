package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/server/console"
	"github.com/silo-run/silo/silotest"
)

// fixture is a real in-process platform whose API serves the console.
type fixture struct {
	sp    *silotest.Platform
	p     *platform.Platform
	srv   *httptest.Server
	token string
	clock *clock
}

// clock is the console's clock, moved by tests that expire sessions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFixture(t testing.TB, pageSize int, opts ...silotest.Option) *fixture {
	t.Helper()
	sp := silotest.New(t, opts...)
	p := sp.Platform()
	sp.Deploy(t, "../../examples/findings")
	api, err := p.API()
	if err != nil {
		t.Fatalf("api: %v", err)
	}
	tok, err := server.LoadOrCreateToken(p.Config().DataDir)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	clk := &clock{t: sp.Clock().Now()} // the platform's fake time, so usage lines up
	con, err := console.New(console.Config{API: api.Handler(), Token: tok, PageSize: pageSize, Now: clk.Now})
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	api.SetConsole(con)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &fixture{sp: sp, p: p, srv: srv, token: tok, clock: clk}
}

// browser is a plain HTTP client with a cookie jar that does not follow
// redirects, so tests see where the console sends them.
type browser struct {
	t   testing.TB
	f   *fixture
	hc  *http.Client
	jar http.CookieJar
}

func (f *fixture) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, jar: jar, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.f.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(out), header: resp.Header}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do(http.MethodGet, path, nil) }
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do(http.MethodPost, path, form)
}

// signIn signs in with the operator token and fails the test otherwise.
func (b *browser) signIn() {
	b.t.Helper()
	pg := b.post("/console/signin", url.Values{"token": {b.f.token}})
	if pg.status != http.StatusSeeOther || pg.location != "/console/" {
		b.t.Fatalf("sign in: got %d to %q, want 303 to /console/", pg.status, pg.location)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the forms on a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	pg := b.get(path)
	m := csrfField.FindStringSubmatch(pg.body)
	if m == nil {
		b.t.Fatalf("GET %s (%d): no csrf field", path, pg.status)
	}
	return m[1]
}

// audited returns the audit actions recorded for an account, in order.
func (f *fixture) audited(t testing.TB, id silo.AccountID) []string {
	t.Helper()
	es, err := f.p.Plane.AuditLog(context.Background(), 0, 0, id)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Event.Action)
	}
	return out
}

func (f *fixture) account(t testing.TB, id silo.AccountID) silo.Account {
	t.Helper()
	a, err := f.p.Plane.Account(context.Background(), id)
	if err != nil {
		t.Fatalf("account %s: %v", id, err)
	}
	return a
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
