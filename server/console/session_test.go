package console_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/server/console"
	"github.com/silo-run/silo/silotest"
)

func TestSignIn(t *testing.T) {
	f := newFixture(t, 0)
	t.Run("wrong token is refused and sets no cookie", func(t *testing.T) {
		b := f.browser(t)
		for _, tok := range []string{"", "wrong", f.token + "x", strings.ToUpper(f.token)} {
			pg := b.post("/console/signin", url.Values{"token": {tok}})
			if pg.status != http.StatusUnauthorized {
				t.Errorf("token %q: got %d, want 401", tok, pg.status)
			}
			if c := pg.header.Get("Set-Cookie"); c != "" {
				t.Errorf("token %q: got Set-Cookie %q, want none", tok, c)
			}
		}
		if pg := b.get("/console/"); pg.status != http.StatusSeeOther {
			t.Errorf("after refused sign-ins: GET /console/ got %d, want 303 to sign in", pg.status)
		}
	})
	t.Run("right token sets a session cookie that is not the token", func(t *testing.T) {
		b := f.browser(t)
		pg := b.post("/console/signin", url.Values{"token": {f.token}})
		if pg.status != http.StatusSeeOther || pg.location != "/console/" {
			t.Fatalf("got %d to %q, want 303 to /console/", pg.status, pg.location)
		}
		resp := http.Response{Header: pg.header}
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == console.CookieName {
				ck = c
			}
		}
		if ck == nil {
			t.Fatalf("no %s cookie in %q", console.CookieName, pg.header.Values("Set-Cookie"))
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" {
			t.Errorf("cookie: got HttpOnly=%v SameSite=%v Path=%q, want HttpOnly, Strict, /console/", ck.HttpOnly, ck.SameSite, ck.Path)
		}
		if strings.Contains(ck.Value, f.token) || len(ck.Value) != 64 {
			t.Errorf("cookie value %q: want 64 hex digits of a random ID, never the token", ck.Value)
		}
		if pg := b.get("/console/"); pg.status != http.StatusOK || !strings.Contains(pg.body, "<h1>Fleet</h1>") {
			t.Errorf("signed in: GET /console/ got %d, want 200 with the fleet", pg.status)
		}
	})
}

// TestWithoutSession: every page redirects to sign-in and every action is
// refused without a session; the twin shows the same requests succeed
// with one.
func TestWithoutSession(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	pages := []string{"/console/", "/console/tenants/acme", "/console/releases", "/console/isolation", "/console/tenants/acme/report"}
	anon := f.browser(t)
	for _, p := range pages {
		if pg := anon.get(p); pg.status != http.StatusSeeOther || pg.location != "/console/signin" {
			t.Errorf("anonymous GET %s: got %d to %q, want 303 to /console/signin", p, pg.status, pg.location)
		}
	}
	if pg := anon.get("/"); pg.status != http.StatusSeeOther || pg.location != "/console/" {
		t.Errorf("GET /: got %d to %q, want 303 to /console/", pg.status, pg.location)
	}
	if pg := anon.post("/console/tenants/acme/suspend", url.Values{"csrf": {"x"}}); pg.status != http.StatusUnauthorized {
		t.Errorf("anonymous suspend: got %d, want 401", pg.status)
	}
	if got := f.account(t, "acme").State; got != silo.StateActive {
		t.Errorf("after anonymous suspend: state %s, want active", got)
	}
	// The API's own routes still need the bearer token, also when the
	// path only starts like the console's.
	for _, p := range []string{"/v1/accounts", "/console/../v1/accounts", "/console/%2e%2e/v1/accounts", "/consolev1/accounts"} {
		pg := anon.get(p)
		if pg.status == http.StatusOK || strings.Contains(pg.body, `"id"`) {
			t.Errorf("GET %s without a token: got %d %q, want no account list", p, pg.status, pg.body)
		}
	}

	b := f.browser(t)
	b.signIn()
	for _, p := range pages {
		if pg := b.get(p); pg.status != http.StatusOK {
			t.Errorf("signed in GET %s: got %d, want 200", p, pg.status)
		}
	}
	if pg := b.post("/console/tenants/acme/suspend", url.Values{"csrf": {b.csrf("/console/tenants/acme")}}); pg.status != http.StatusSeeOther {
		t.Errorf("signed in suspend: got %d, want 303", pg.status)
	}
	if got := f.account(t, "acme").State; got != silo.StateSuspended {
		t.Errorf("after suspend: state %s, want suspended", got)
	}
}

func TestSessionEnds(t *testing.T) {
	f := newFixture(t, 0)
	t.Run("sign out", func(t *testing.T) {
		b := f.browser(t)
		b.signIn()
		tok := b.csrf("/console/")
		old := b.jar.Cookies(mustURL(t, f.srv.URL+"/console/"))
		if pg := b.post("/console/signout", url.Values{"csrf": {tok}}); pg.status != http.StatusSeeOther {
			t.Fatalf("sign out: got %d, want 303", pg.status)
		}
		// Replaying the old cookie after sign-out must not work.
		replay := f.browser(t)
		replay.jar.SetCookies(mustURL(t, f.srv.URL+"/console/"), old)
		if pg := replay.get("/console/"); pg.status != http.StatusSeeOther {
			t.Errorf("old cookie after sign-out: got %d, want 303 to sign in", pg.status)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		b := f.browser(t)
		b.signIn()
		f.clock.Advance(11 * time.Hour)
		if pg := b.get("/console/"); pg.status != http.StatusOK {
			t.Errorf("11 h after sign-in: got %d, want 200", pg.status)
		}
		f.clock.Advance(time.Hour)
		if pg := b.get("/console/"); pg.status != http.StatusSeeOther {
			t.Errorf("12 h after sign-in: got %d, want 303 to sign in", pg.status)
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestCSRF: a state-changing form with a missing, forged or another
// session's token is refused and changes nothing; with its own token the
// same form works and is audited.
func TestCSRF(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	b, other := f.browser(t), f.browser(t)
	b.signIn()
	other.signIn()
	mine, theirs := b.csrf("/console/tenants/acme"), other.csrf("/console/tenants/acme")
	if mine == theirs {
		t.Fatalf("two sessions share the CSRF token %q", mine)
	}
	for name, form := range map[string]url.Values{
		"missing":       {},
		"empty":         {"csrf": {""}},
		"forged":        {"csrf": {strings.Repeat("0", len(mine))}},
		"other session": {"csrf": {theirs}},
		"prefix":        {"csrf": {mine[:len(mine)-1]}},
	} {
		t.Run(name, func(t *testing.T) {
			if pg := b.post("/console/tenants/acme/suspend", form); pg.status != http.StatusForbidden {
				t.Errorf("got %d, want 403", pg.status)
			}
			if got := f.account(t, "acme").State; got != silo.StateActive {
				t.Errorf("state %s, want active", got)
			}
		})
	}
	if contains(f.audited(t, "acme"), "account.suspend") {
		t.Fatalf("a refused form was audited: %v", f.audited(t, "acme"))
	}
	t.Run("own token", func(t *testing.T) {
		if pg := b.post("/console/tenants/acme/suspend", url.Values{"csrf": {mine}}); pg.status != http.StatusSeeOther {
			t.Errorf("got %d, want 303", pg.status)
		}
		if got := f.account(t, "acme").State; got != silo.StateSuspended {
			t.Errorf("state %s, want suspended", got)
		}
		if !contains(f.audited(t, "acme"), "account.suspend") {
			t.Errorf("audit log %v lacks account.suspend", f.audited(t, "acme"))
		}
	})
}

// TestFleetPaging lists a fleet a page at a time, by ID prefix and by
// state, and checks every account appears exactly once.
func TestFleetPaging(t *testing.T) {
	f := newFixture(t, 3)
	ids := []string{"acme", "acme-2", "acme-3", "acmf", "beta", "beta-2", "zed"}
	for _, id := range ids {
		f.sp.Tenant(t, id)
	}
	b := f.browser(t)
	b.signIn()
	collect := func(q string) []string {
		var got []string
		next := "/console/?" + q
		for i := 0; next != ""; i++ {
			if i > 10 {
				t.Fatalf("more than 10 pages for %q", q)
			}
			pg := b.get(next)
			if pg.status != http.StatusOK {
				t.Fatalf("GET %s: %d", next, pg.status)
			}
			for _, m := range rowID.FindAllStringSubmatch(pg.body, -1) {
				got = append(got, m[1])
			}
			next = ""
			if m := nextLink.FindStringSubmatch(pg.body); m != nil {
				next = "/console/?" + strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		return got
	}
	for _, tc := range []struct {
		name, q string
		want    []string
	}{
		{"all", "", []string{"acme", "acme-2", "acme-3", "acmf", "beta", "beta-2", "production", "zed"}},
		{"prefix", "q=acme", []string{"acme", "acme-2", "acme-3"}},
		{"prefix upper case", "q=ACM", []string{"acme", "acme-2", "acme-3", "acmf"}},
		{"prefix ending in a", "q=beta", []string{"beta", "beta-2"}},
		{"prefix matches nothing", "q=nope", nil},
		{"kind", "kind=production", []string{"production"}},
		{"state", "state=active&kind=tenant", ids},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

var (
	rowID    = regexpMust(`<a href="/console/tenants/[^"]+" class="mono strong">([^<]+)</a>`)
	nextLink = regexpMust(`<a href="/console/\?([^"]+)" rel="next"`)
)

// TestTenantActions: each tenant action through the console changes the
// account and is audited as the API's is.
func TestTenantActions(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	f.sp.Tenant(t, "dev-ann", silotest.Kind(silo.KindDeveloper))
	b := f.browser(t)
	b.signIn()
	tok := b.csrf("/console/tenants/acme")
	post := func(path string, form url.Values) page {
		t.Helper()
		form.Set("csrf", tok)
		pg := b.post(path, form)
		if pg.status != http.StatusSeeOther {
			t.Fatalf("POST %s: got %d, want 303: %s", path, pg.status, pg.body)
		}
		return b.get(pg.location)
	}

	pg := post("/console/tenants/acme/keys", url.Values{"name": {"ci"}})
	m := regexpMust(`id="newkey-([^"]+)" readonly value="([^"]+)"`).FindStringSubmatch(pg.body)
	if m == nil {
		t.Fatalf("the new key is not shown after creating it")
	}
	b.post("/console/keys/dismiss", url.Values{"csrf": {tok}, "key": {m[1]}})
	if again := b.get("/console/tenants/acme"); strings.Contains(again.body, m[2]) {
		t.Errorf("the new key is shown after it was dismissed")
	}
	m = m[1:]
	keys, err := f.p.Plane.Keys(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ci string
	for _, k := range keys {
		if k.Name == "ci" {
			ci = k.ID
		}
	}
	if ci == "" {
		t.Fatalf("no key named ci in %v", keys)
	}
	if !strings.HasPrefix(m[1], ci) {
		t.Errorf("shown key %q is not key %s", m[1], ci)
	}
	post("/console/tenants/acme/keys/"+ci+"/revoke", url.Values{})
	keys, _ = f.p.Plane.Keys(t.Context(), "acme")
	for _, k := range keys {
		if k.ID == ci && k.Revoked == nil {
			t.Errorf("key %s not revoked", ci)
		}
	}

	post("/console/tenants/acme/suspend", url.Values{})
	if got := f.account(t, "acme").State; got != silo.StateSuspended {
		t.Errorf("after suspend: %s", got)
	}
	post("/console/tenants/acme/resume", url.Values{})
	if got := f.account(t, "acme").State; got != silo.StateActive {
		t.Errorf("after resume: %s", got)
	}

	// Delete needs the account ID typed: a wrong one changes nothing.
	pg = post("/console/tenants/acme/delete", url.Values{"confirm": {"acm"}})
	if !strings.Contains(pg.body, "Nothing was deleted") {
		t.Errorf("a wrong confirmation does not say nothing was deleted")
	}
	if got := f.account(t, "acme").State; got != silo.StateActive {
		t.Errorf("after a wrong confirmation: %s, want active", got)
	}
	post("/console/tenants/acme/delete", url.Values{"confirm": {"acme"}})
	if got := f.account(t, "acme").State; got != silo.StateDeleted {
		t.Errorf("after delete: %s, want deleted", got)
	}
	// A developer account's page deletes it too (as silo env delete: the
	// API's tenant delete refuses it).
	post("/console/tenants/dev-ann/delete", url.Values{"confirm": {"dev-ann"}})
	if got := f.account(t, "dev-ann").State; got != silo.StateDeleted {
		t.Errorf("developer account after delete: %s, want deleted", got)
	}

	want := []string{"key.issue", "key.revoke", "account.suspend", "account.resume", "account.delete"}
	got := f.audited(t, "acme")
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("audit log %v lacks %s", got, w)
		}
	}
}

// TestRolloutActionRefusedWithoutCSRF: a rollout form without the token
// is refused before the API is called; with the token an unknown rollout
// gets the API's own clear error.
func TestRolloutActionRefusedWithoutCSRF(t *testing.T) {
	f := newFixture(t, 0)
	b := f.browser(t)
	b.signIn()
	if pg := b.post("/console/rollouts/r-nope/abort", url.Values{}); pg.status != http.StatusForbidden {
		t.Errorf("without csrf: got %d, want 403", pg.status)
	}
	pg := b.post("/console/rollouts/r-nope/abort", url.Values{"csrf": {b.csrf("/console/releases")}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("with csrf: got %d, want 303", pg.status)
	}
	if body := b.get(pg.location).body; !strings.Contains(body, `class="flash err"`) {
		t.Errorf("an unknown rollout shows no error")
	}
}

// TestTenantUsage: requests through the gateway show on the tenant page;
// the twin, a tenant with no traffic, shows none.
func TestTenantUsage(t *testing.T) {
	f := newFixture(t, 0)
	acme := f.sp.Tenant(t, "acme")
	f.sp.Tenant(t, "globex")
	for range 3 {
		if r := acme.GET(t, "/findings"); r.Status != http.StatusOK {
			t.Fatalf("GET /findings: %s", r)
		}
	}
	if err := f.p.Usage.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn()
	requests := regexpMust(`Requests, yesterday and today</dt><dd>(\d+)</dd>`)
	for id, want := range map[string]string{"acme": "3", "globex": "0"} {
		m := requests.FindStringSubmatch(b.get("/console/tenants/" + id).body)
		if m == nil || m[1] != want {
			t.Errorf("%s: got requests %v, want %s", id, m, want)
		}
	}
	fleet := b.get("/console/").body
	for id, want := range map[string]string{"acme": "3", "globex": "0"} {
		m := regexpMust(`class="mono strong">` + id + `</a>(?s:.*?)<td class="num">(\d+)</td>`).FindStringSubmatch(fleet)
		if m == nil || m[1] != want {
			t.Errorf("fleet row %s: got requests %v, want %s", id, m, want)
		}
	}
}

// TestEscaping checks the HTML itself (no browser): text from tenants
// is escaped wherever it is shown, and shown.
func TestEscaping(t *testing.T) {
	f := newFixture(t, 0)
	corpus := []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `' onmouseover='alert(1)`}
	for i, v := range corpus {
		id := fmt.Sprintf("x%d", i)
		if _, err := f.p.Plane.CreateAccount(t.Context(), control.CreateRequest{ID: id, Name: v}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.p.Plane.IssueKey(t.Context(), silo.AccountID(id), v); err != nil {
			t.Fatal(err)
		}
	}
	b := f.browser(t)
	b.signIn()
	// A parameter value the stack refuses comes back in the error message.
	tok := b.csrf("/console/tenants/x0")
	for _, v := range corpus {
		pg := b.post("/console/tenants/x0/params", url.Values{"csrf": {tok}, "params": {"plan=" + v}})
		body := b.get(pg.location).body
		if strings.Contains(body, v) {
			t.Errorf("param error: %q appears unescaped", v)
		}
		if !strings.Contains(body, `class="flash err"`) || !strings.Contains(body, html.EscapeString(strings.ReplaceAll(v, `"`, `\"`))) {
			t.Errorf("param error: %q is not shown escaped", v)
		}
	}
	for i, v := range corpus {
		for _, path := range []string{"/console/", fmt.Sprintf("/console/tenants/x%d", i)} {
			body := b.get(path).body
			if strings.Contains(body, v) {
				t.Errorf("%s: %q appears unescaped", path, v)
			}
			if esc := html.EscapeString(v); !strings.Contains(body, esc) {
				t.Errorf("%s: %q is not shown (escaped: %q)", path, v, esc)
			}
		}
	}
}

// TestTenantPages: a missing account gets the API's own error, with its
// status; the report downloads as an attachment.
func TestTenantPages(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	b := f.browser(t)
	b.signIn()
	pg := b.get("/console/tenants/nope")
	if pg.status != http.StatusNotFound || !strings.Contains(pg.body, `class="flash err"`) {
		t.Errorf("missing account: got %d, want 404 with an error on the page", pg.status)
	}
	if pg := b.get("/console/tenants/acme"); pg.status != http.StatusOK {
		t.Errorf("acme: got %d, want 200", pg.status)
	}
	for _, tc := range []struct{ format, ctype, want string }{
		{"", "text/html; charset=utf-8", "Isolation report"},
		{"json", "application/json", `"signature"`},
	} {
		pg := b.get("/console/tenants/acme/report?format=" + tc.format)
		if pg.status != http.StatusOK || pg.header.Get("Content-Type") != tc.ctype || !strings.HasPrefix(pg.header.Get("Content-Disposition"), "attachment;") {
			t.Errorf("report %q: got %d %q %q", tc.format, pg.status, pg.header.Get("Content-Type"), pg.header.Get("Content-Disposition"))
		}
		if !strings.Contains(pg.body, tc.want) {
			t.Errorf("report %q lacks %s", tc.format, tc.want)
		}
	}
}

// TestSecureCookie: behind a TLS-terminating proxy the cookie is Secure;
// the twin, plain HTTP, is not (or the browser would never send it back).
func TestSecureCookie(t *testing.T) {
	f := newFixture(t, 0)
	for _, tc := range []struct {
		proto string
		want  bool
	}{{"https", true}, {"", false}, {"http", false}} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/console/signin", strings.NewReader(url.Values{"token": {f.token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.proto != "" {
			req.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		resp, err := f.browser(t).hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if len(cs) != 1 || cs[0].Secure != tc.want {
			t.Errorf("X-Forwarded-Proto %q: got cookies %v, want one with Secure=%v", tc.proto, cs, tc.want)
		}
	}
}

// TestHeaders: pages allow only the console's own script (no inline
// script, nothing from elsewhere) and forbid framing and sniffing; the one
// stylesheet and the one script are served from the binary.
func TestHeaders(t *testing.T) {
	f := newFixture(t, 0)
	b := f.browser(t)
	for _, p := range []string{"/console/signin", "/console/static/console.css"} {
		pg := b.get(p)
		if pg.status != http.StatusOK {
			t.Fatalf("GET %s: %d", p, pg.status)
		}
		csp := pg.header.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none';") || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q, want default-src 'none', scripts from the console only, nothing inline", p, csp)
		}
		if pg.header.Get("X-Frame-Options") != "DENY" || pg.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", p, pg.header)
		}
	}
	if css := b.get("/console/static/console.css"); !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || !strings.Contains(css.body, ".grid") {
		t.Errorf("stylesheet: %q", css.header.Get("Content-Type"))
	}
	if js := b.get("/console/static/console.js"); !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") || !strings.Contains(js.body, "EventSource") {
		t.Errorf("script: %d %q", js.status, js.header.Get("Content-Type"))
	}
	pg := b.get("/console/signin")
	if strings.Contains(pg.body, "http://") || strings.Contains(pg.body, "https://") {
		t.Errorf("the sign-in page loads something from elsewhere")
	}
	if scripts := regexpMust(`<script[^>]*>`).FindAllString(pg.body, -1); len(scripts) != 1 || scripts[0] != `<script src="/console/static/console.js" defer>` {
		t.Errorf("the sign-in page's scripts: %q, want the console's own script alone, no inline script", scripts)
	}
}
