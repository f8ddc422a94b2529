package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// TestSignInRateLimit: after five wrong tokens from one address even the
// right token is refused, with how long to wait; once the window has
// passed the right token signs in again. The twin: four wrong tokens do
// not stop the right one.
func TestSignInRateLimit(t *testing.T) {
	f := newFixture(t, 0)
	wrong := url.Values{"token": {"not-the-token"}}
	b := f.browser(t)
	for range 4 {
		if pg := b.post("/console/signin", wrong); pg.status != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d, want 401", pg.status)
		}
	}
	b.signIn() // four failures: still allowed

	b2 := f.browser(t)
	for range 5 {
		b2.post("/console/signin", wrong)
	}
	pg := b2.post("/console/signin", url.Values{"token": {f.token}})
	if pg.status != http.StatusTooManyRequests || pg.header.Get("Retry-After") == "" || !strings.Contains(pg.body, "Too many failed sign-ins") {
		t.Fatalf("after 9 failures in a minute: %d %q, want 429 with Retry-After", pg.status, pg.header.Get("Retry-After"))
	}
	if got := pg.header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("a refused sign-in set a cookie: %v", got)
	}
	f.clock.Advance(61 * time.Second)
	b2.signIn()
}

// TestEditParams: the parameter form changes the account's parameters
// through the API (planned, applied and audited as silo tenant update); a
// value the stack refuses changes nothing and says why.
func TestEditParams(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	b := f.browser(t)
	b.signIn()
	tok := b.csrf("/console/tenants/acme")
	pg := b.post("/console/tenants/acme/params", url.Values{"csrf": {tok}, "params": {"plan=pro\n"}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("save params: %d", pg.status)
	}
	if got := f.account(t, "acme").Params["plan"]; got != "pro" {
		t.Errorf("plan after saving: %q, want pro", got)
	}
	if !contains(f.audited(t, "acme"), "account.update") {
		t.Errorf("parameter change not audited")
	}
	for _, bad := range []string{"plan=platinum", "no equals sign"} {
		pg = b.post("/console/tenants/acme/params", url.Values{"csrf": {tok}, "params": {bad}})
		after := b.get(pg.location)
		if !strings.Contains(after.body, `class="flash err"`) {
			t.Errorf("params %q: no error shown", bad)
		}
		if got := f.account(t, "acme").Params["plan"]; got != "pro" {
			t.Errorf("params %q changed plan to %q", bad, got)
		}
	}
	// Removing the line removes the parameter (the stack's default applies).
	b.post("/console/tenants/acme/params", url.Values{"csrf": {tok}, "params": {""}})
	if _, ok := f.account(t, "acme").Params["plan"]; ok {
		t.Errorf("an emptied form kept the plan parameter")
	}
}

// TestTenantExtras: the tenant page shows stored bytes per table, the
// limits, the usage charts (inline SVG), the newest log lines, and that
// the tenant's signed report verifies against the installation's key.
func TestTenantExtras(t *testing.T) {
	f := newFixture(t, 0)
	acme := f.sp.Tenant(t, "acme", silotest.Param("plan", "pro"))
	if r := acme.POST(t, "/findings", `{"severity":"high","app":"github","title":"t"}`); r.Status != 201 {
		t.Fatalf("POST /findings: %d", r.Status)
	}
	if err := f.p.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn()
	body := b.get("/console/tenants/acme").body
	for _, want := range []string{
		"Stored data", `<td class="mono">findings</td>`, "Per month",
		"Requests per day", "<svg viewBox=", `class="bar"`,
		"finding stored", "Verifies: signed by this installation", "/.well-known/silo/isolation-report",
		"Edit parameters", "plan=pro</textarea>",
		"Create API key", "Download (HTML)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("tenant page lacks %q", want)
		}
	}
	// The production account takes no keys and has no tenant report: its
	// page offers neither.
	prod := b.get("/console/tenants/production").body
	for _, bad := range []string{"Create API key", "Download (HTML)", "Download signed isolation report"} {
		if strings.Contains(prod, bad) {
			t.Errorf("the production account's page offers %q, which always fails there", bad)
		}
	}
	if !strings.Contains(prod, "takes no API keys") {
		t.Errorf("the production account's page does not say why it has no key form")
	}
}

// TestStartRollout: a release that does not exist is refused with the
// API's error; the Roll out button of the release every account runs
// already says so and starts nothing, audits nothing. (The buttons of
// releases that move accounts start rollouts: confirm_test.go.)
func TestStartRollout(t *testing.T) {
	f := newFixture(t, 0)
	b := f.browser(t)
	b.signIn()
	tok := b.csrf("/console/releases")
	pg := b.post("/console/releases/r-doesnotexist/rollout", url.Values{"csrf": {tok}})
	if after := b.get(pg.location); !strings.Contains(after.body, `class="flash err"`) {
		t.Errorf("an unknown release: no error shown")
	}
	if ros, _ := f.p.Runner.List(context.Background(), 10); len(ros) != 0 {
		t.Fatalf("an unknown release started a rollout: %v", ros)
	}
	cur, err := f.p.Plane.CurrentRelease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pg = b.post("/console/releases/"+cur.ID+"/rollout", url.Values{"csrf": {tok}})
	want := "Nothing was started: release " + cur.ID + " is already current on every account; nothing to roll out."
	if after := b.get(pg.location); !strings.Contains(after.body, want) || !strings.Contains(after.body, `class="flash ok"`) {
		t.Errorf("Roll out of the current release: the page does not say %q: %s", want, after.body)
	}
	ros, err := f.p.Runner.List(context.Background(), 10)
	if err != nil || len(ros) != 0 {
		t.Fatalf("rollouts after Roll out of the current release: %v, %v; want none", ros, err)
	}
	if contains(f.audited(t, ""), "rollout.start") {
		t.Errorf("a rollout start was audited for the current release")
	}
	_ = rollout.StateRunning
}

// TestEnvironmentsPage: an environment shows with its expiry and the time
// left; a tenant does not show there.
func TestEnvironmentsPage(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	f.sp.Env(t, "preview", "test", 2*time.Hour)
	b := f.browser(t)
	b.signIn()
	body := b.get("/console/environments").body
	if !strings.Contains(body, "preview") || !regexpMust(`data-left="[^"]+">[12]h [0-5]\dm [0-5]\ds left</time>`).MatchString(body) {
		t.Errorf("environments page lacks the environment with its time left:\n%s", body)
	}
	if strings.Contains(body, `href="/console/tenants/acme"`) {
		t.Errorf("a tenant is listed among environments")
	}
}

// TestLiveLogs: the logs event stream sends a tenant's new log line as a
// table row, escaped; it sends nothing of another tenant.
func TestLiveLogs(t *testing.T) {
	f := newFixture(t, 0)
	acme := f.sp.Tenant(t, "acme")
	globex := f.sp.Tenant(t, "globex")
	b := f.browser(t)
	b.signIn()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	since := time.Now().UTC().Format(time.RFC3339Nano)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/console/tenants/acme/logs/events?since="+url.QueryEscape(since), nil)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	globex.POST(t, "/findings", `{"severity":"globex-only","app":"x"}`)
	acme.POST(t, "/findings", `{"severity":"<img src=x id=injected>","app":"x"}`)
	sc := bufio.NewScanner(resp.Body)
	var got strings.Builder
	for sc.Scan() {
		line := sc.Text()
		got.WriteString(line + "\n")
		if strings.Contains(line, "rejected finding") {
			break
		}
	}
	s := got.String()
	if !strings.Contains(s, "event: log") || !strings.Contains(s, "&lt;img src=x id=injected&gt;") {
		t.Fatalf("stream did not send acme's line escaped:\n%s", s)
	}
	if strings.Contains(s, "<img") || strings.Contains(s, "globex-only") {
		t.Errorf("stream sent raw HTML or another tenant's line:\n%s", s)
	}
	// Reconnecting with the last event's ID goes on after it: the line
	// already shown is not sent again, a new one is.
	m := regexpMust(`(?m)^id: (.+)$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("log events carry no id:\n%s", s)
	}
	resp.Body.Close()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/console/tenants/acme/logs/events?since="+url.QueryEscape(since), nil)
	req.Header.Set("Last-Event-ID", m[1])
	resp2, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	acme.POST(t, "/findings", `{"severity":"low","app":"after-reconnect"}`)
	sc = bufio.NewScanner(resp2.Body)
	got.Reset()
	for sc.Scan() {
		got.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "after-reconnect") {
			break
		}
	}
	if s := got.String(); strings.Contains(s, "rejected finding") || !strings.Contains(s, "after-reconnect") {
		t.Errorf("after reconnecting: want the new line alone:\n%s", s)
	}
	_ = silo.KindTenant
}

// TestIsolationShowsLastProbe: before any live probe the isolation page
// says none has run; after one is recorded it shows its counts.
func TestIsolationShowsLastProbe(t *testing.T) {
	f := newFixture(t, 0)
	b := f.browser(t)
	b.signIn()
	if body := b.get("/console/isolation").body; !strings.Contains(body, "No live probe has run yet") {
		t.Errorf("before a probe: the page does not say none has run")
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec, _ := json.Marshal(report.Probe{Status: report.ProbePassed, At: &at, Attempts: 41, Controls: 17})
	if err := f.p.Store.Update(context.Background(), func(tx store.Tx) error { return tx.PutSetting(server.SettingLastProbe, string(rec)) }); err != nil {
		t.Fatal(err)
	}
	body := b.get("/console/isolation").body
	for _, want := range []string{"Passed, 2026-03-01 12:00 UTC", "<dt>Attacks attempted</dt><dd>41</dd>", "<dt>Controls (allowed calls that must work)</dt><dd>17</dd>"} {
		if !strings.Contains(body, want) {
			t.Errorf("isolation page lacks %q", want)
		}
	}
}

// TestFleetParamAndSort: the parameter filter lists exactly the accounts
// with that parameter (key=value, or key for any value) across pages;
// sorting orders a page's rows by requests.
func TestFleetParamAndSort(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	for _, c := range []struct{ id, plan string }{{"a1", "pro"}, {"a2", "free"}, {"a3", "pro"}, {"a4", ""}, {"a5", "pro"}} {
		req := control.CreateRequest{ID: c.id}
		if c.plan != "" {
			req.Params = map[string]string{"plan": c.plan}
		}
		if _, err := f.p.Plane.CreateAccount(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	b := f.browser(t)
	b.signIn()
	rowID := regexpMust(`<a href="/console/tenants/([^"]+)" class="mono strong">`)
	nextLink := regexpMust(`<a href="/console/\?([^"]+)" rel="next"`)
	collect := func(q string) []string {
		var got []string
		for next, i := "/console/?"+q, 0; next != ""; i++ {
			if i > 10 {
				t.Fatalf("more than 10 pages for %q", q)
			}
			pg := b.get(next)
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
	for q, want := range map[string]string{
		"param=plan%3Dpro":  "a1 a3 a5",
		"param=plan%3Dfree": "a2",
		"param=plan":        "a1 a2 a3 a5",
		"param=plan%3Dnone": "",
	} {
		if got := strings.Join(collect(q), " "); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
	// Sorting by requests puts the busier account of a page first.
	deltas := []store.UsageDelta{
		{Account: "a1", Function: "f", Counters: store.Counters{Requests: 3}},
		{Account: "a2", Function: "f", Counters: store.Counters{Requests: 9}},
	}
	if err := f.p.Store.Update(ctx, func(tx store.Tx) error { return tx.AddUsage(f.clock.Now(), deltas) }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rowID.FindAllString(b.get("/console/?sort=requests").body, 2), " "); !strings.Contains(got, "a2") || strings.Index(got, "a2") > strings.Index(got, "a1") {
		t.Errorf("sorted by requests: %q, want a2 before a1", got)
	}
	if got := strings.Join(rowID.FindAllString(b.get("/console/").body, 2), " "); strings.Index(got, "a1") > strings.Index(got, "a2") {
		t.Errorf("by ID: %q, want a1 before a2", got)
	}
}

// TestCreateTenant: the fleet page's form onboards a tenant on the current
// release, audited, and its page shows the first API key once; a bad ID
// and an existing one change nothing and say why.
func TestCreateTenant(t *testing.T) {
	f := newFixture(t, 0)
	b := f.browser(t)
	b.signIn()
	tok := b.csrf("/console/")
	pg := b.post("/console/tenants", url.Values{"csrf": {tok}, "id": {"initech"}, "name": {"Initech"}, "params": {"plan=pro"}})
	if pg.status != http.StatusSeeOther || pg.location != "/console/tenants/initech" {
		t.Fatalf("create: %d to %q", pg.status, pg.location)
	}
	// Another form sent before the tenant page is loaded (a second tab, a
	// refused onboarding) does not take the key away: its message comes
	// with the key, which stays on every page until it is dismissed.
	if pg := b.post("/console/tenants", url.Values{"csrf": {tok}, "id": {"Bad_ID"}}); pg.status != http.StatusSeeOther {
		t.Fatalf("refused create: %d", pg.status)
	}
	body := b.get("/console/tenants/initech").body
	m := regexpMust(`id="newkey-([^"]+)" readonly value="(sk_initech_[^"]+)"`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `class="flash err"`) || !strings.Contains(body, "New first API key of initech") {
		t.Fatalf("after onboarding and a refused onboarding, the tenant page shows no key or no error:\n%s", body)
	}
	if again := b.get("/console/").body; !strings.Contains(again, m[2]) {
		t.Errorf("the first key is gone from the next page before it was dismissed")
	}
	if pg := b.post("/console/keys/dismiss", url.Values{"csrf": {"wrong"}, "key": {m[1]}}); pg.status != http.StatusForbidden {
		t.Errorf("dismiss without the form's token: %d, want 403", pg.status)
	}
	if pg := b.post("/console/keys/dismiss", url.Values{"csrf": {tok}, "key": {m[1]}}); pg.status != http.StatusSeeOther {
		t.Fatalf("dismiss: %d", pg.status)
	}
	if again := b.get("/console/tenants/initech").body; strings.Contains(again, m[2]) {
		t.Errorf("the first key is shown after it was dismissed")
	}
	m = m[1:]
	a := f.account(t, "initech")
	if a.State != silo.StateActive || a.Params["plan"] != "pro" || a.Name != "Initech" || a.Release == "" {
		t.Errorf("created account: %+v", a)
	}
	if r := f.sp.Client("initech", m[1]).GET(t, "/health"); r.Status != 200 {
		t.Errorf("the new tenant's key on its route: %d", r.Status)
	}
	if got := f.audited(t, "initech"); len(got) == 0 {
		t.Errorf("onboarding not audited")
	}
	for _, bad := range []url.Values{
		{"id": {"Bad ID!"}},
		{"id": {"initech"}},
		{"id": {"hooli"}, "params": {"plan=platinum"}},
	} {
		bad.Set("csrf", tok)
		pg := b.post("/console/tenants", bad)
		if after := b.get(pg.location).body; !strings.Contains(after, `class="flash err"`) {
			t.Errorf("create %v: no error shown", bad)
		}
	}
	if _, err := f.p.Plane.Account(context.Background(), "hooli"); err == nil {
		t.Errorf("a tenant with a refused parameter was created")
	}
}
