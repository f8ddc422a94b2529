package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// chromium starts headless Chromium for the test, or skips the test when
// SILO_TEST_CHROMIUM is not set.
func chromium(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("SILO_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("set SILO_TEST_CHROMIUM to a Chromium binary (e.g. SILO_TEST_CHROMIUM=/usr/bin/chromium after apt-get install -y chromium) to run the browser test")
	}
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab drives one Chromium tab against the console.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // directory for screenshots
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// open navigates to a console path and waits for its main content.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// submit clicks a form's button and waits for the page it leads to.
func (b *tab) submit(sel string) {
	b.t.Helper()
	run(b, "mark page", chromedp.Evaluate[bool](`document.body.dataset.old = "1", true`))
	// Clicked in the page, not through a DOM node ID: the page's event
	// stream may replace the form between a query and a click ("Could not
	// find node with given id").
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	run(b, "click "+sel, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).click(), true`, sel)))
	b.do("the answer to "+sel, chromedp.WaitReady(chromedp.CSS("body:not([data-old]) main")))
}

func (b *tab) text() string {
	b.t.Helper()
	// Evaluated in the page, not through a DOM node ID: an ID taken as a
	// submitted form's answer replaces the document is stale ("No node with
	// given id found").
	return run(b, "page text", chromedp.Evaluate[string](`document.body.innerText`))
}

func (b *tab) location() string { b.t.Helper(); return run(b, "location", chromedp.Location()) }

// screenshot saves the page as <name>.png.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	// A page that has just loaded may not have laid out yet ("0 width"):
	// wait for it and try again.
	var png []byte
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		var err error
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			break
		}
		if i == 4 {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		b.do("wait for layout", chromedp.WaitReady(chromedp.CSS("main")), chromedp.Sleep(200*time.Millisecond))
	}
	p := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

// TestConsoleInChromium signs in, renders every page with data from a real
// platform, runs each action through the forms and checks the audit log,
// and checks that HTML in tenant-supplied text is shown as text.
func TestConsoleInChromium(t *testing.T) {
	bctx := chromium(t)
	f := newFixture(t, 0)
	ctx := context.Background()
	acme := f.sp.Tenant(t, "acme", silotest.Param("plan", "pro"))
	f.sp.Tenant(t, "globex")
	f.sp.Tenant(t, "doomed")
	// The XSS corpus, through display names (free text) and key names.
	corpus := []string{
		`<script>document.title="pwned"</script>`,
		`"><img src=x id=injected>`,
		`</td></tr></table><h1 id=injected>x</h1>`,
		`<svg/onload=alert(1) id=injected>`,
		`javascript:alert(1)`,
		`{{.CSRF}} & &amp; &lt;b&gt;`,
	}
	for i, name := range corpus {
		id := silo.AccountID("xss-" + string(rune('a'+i)))
		if _, err := f.p.Plane.CreateAccount(ctx, control.CreateRequest{ID: string(id), Name: name}); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		if _, _, err := f.p.Plane.IssueKey(ctx, id, name); err != nil {
			t.Fatalf("key %s: %v", id, err)
		}
	}
	cur, err := f.p.Plane.CurrentRelease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A second release (one timeout changed), rolled out: the canary ring
	// (acme, plan=pro) bakes on the fake clock, so the rollout stays running.
	app := silotest.CopyExample(t)
	y, err := os.ReadFile(filepath.Join(app, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "silo.yaml"), []byte(strings.Replace(string(y), "timeout: 1s", "timeout: 3s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	next, err := f.p.Build(ctx, app)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ro, err := f.p.Runner.Start(ctx, next.ID, rollout.Options{})
	if err != nil {
		t.Fatalf("start rollout: %v", err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := f.p.Runner.Get(ctx, ro.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Ring > 0 && r.Rings[r.Ring].Phase == rollout.PhaseBaking {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s never baked its canary ring: %+v", ro.ID, r)
		}
	}

	// A month of acme's usage, as the meter rolls it up (the charts), and a
	// few real requests through the gateway (today's usage and the logs).
	seedUsage(t, f, "acme")
	if _, err := f.p.Plane.UpdateParams(ctx, "acme", nil, "Acme Corp."); err != nil {
		t.Fatalf("name acme: %v", err)
	}
	for i := range 12 {
		body := `{"severity":"high","app":"github","title":"Leaked token in CI logs"}`
		if i%5 == 4 {
			body = `{"severity":"<img src=x id=injected>","app":"github"}` // logged as rejected: HTML in a log line
		}
		acme.POST(t, "/findings", body)
	}
	if err := f.p.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.sp.Env(t, "preview", "demo", 3*time.Hour)

	shots := os.Getenv("SILO_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &tab{t: t, ctx: bctx, base: f.srv.URL, shot: shots}

	signedIn := t.Run("sign in", func(t *testing.T) {
		b.t = t
		b.open("/console/tenants/acme")
		if got := b.location(); got != f.srv.URL+"/console/signin" {
			t.Fatalf("without a session: at %s, want the sign-in page", got)
		}
		b.screenshot("signin")
		b.do("type a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"))
		b.submit("form button[type=submit]")
		if !strings.Contains(b.text(), "That is not the operator token") {
			t.Errorf("a wrong token shows no error")
		}
		b.do("type the token", chromedp.SendKeys(chromedp.CSS("#token"), f.token))
		b.submit("form button[type=submit]")
		if got := b.location(); got != f.srv.URL+"/console/" {
			t.Fatalf("after sign-in: at %s, want /console/", got)
		}
		if got := run(b, "cookie", chromedp.Evaluate[string](`document.cookie`)); got != "" {
			t.Errorf("the session cookie is readable from script: %q", got)
		}
	})
	if !signedIn {
		t.Fatal("every other page needs a session")
	}

	t.Run("fleet", func(t *testing.T) {
		b.t = t
		b.open("/console/")
		txt := b.text()
		for _, want := range []string{"acme", "plan=pro", "globex", "production", "tenant", "active"} {
			if !strings.Contains(txt, want) {
				t.Errorf("fleet lacks %q", want)
			}
		}
		b.screenshot("fleet")
		// Keyboard: the first Tab reaches the skip link, the next ones the
		// navigation, in order.
		var focused []string
		for range 4 {
			b.do("tab", chromedp.KeyEvent("\t"))
			focused = append(focused, run(b, "focus", chromedp.Evaluate[string](`document.activeElement.textContent.trim()`)))
		}
		if want := []string{"Skip to content", "◼ silo console", "Fleet", "Releases"}; strings.Join(focused, "|") != strings.Join(want, "|") {
			t.Errorf("Tab order: got %q, want %q", focused, want)
		}
		b.do("search", chromedp.SendKeys(chromedp.CSS("input[name=q]"), "glo"))
		b.submit(".filters button[type=submit]")
		rows := run(b, "rows", chromedp.Evaluate[int](`document.querySelectorAll("tbody tr").length`))
		if txt := b.text(); rows != 1 || !strings.Contains(txt, "globex") {
			t.Errorf("search glo: %d rows, want globex alone", rows)
		}
		// Onboard a tenant from the fleet page.
		b.open("/console/")
		b.do("open the form", chromedp.Click(chromedp.CSS("details.new summary")))
		b.do("fill", chromedp.SendKeys(chromedp.CSS(`form[action="/console/tenants"] input[name=id]`), "initech"),
			chromedp.SendKeys(chromedp.CSS(`form[action="/console/tenants"] input[name=name]`), "Initech"))
		b.screenshot("fleet-new-tenant")
		b.submit(`form[action="/console/tenants"] button`)
		if key := run(b, "first key", chromedp.Value(chromedp.CSS(".newkey input[readonly]"))); !strings.HasPrefix(key, "sk_initech_") {
			t.Errorf("after onboarding: key %q, want initech's first key shown", key)
		}
		b.submit(`form[action="/console/keys/dismiss"] button`)
		if a := f.account(t, "initech"); a.State != silo.StateActive {
			t.Errorf("onboarded tenant is %s", a.State)
		}
	})

	t.Run("escaping", func(t *testing.T) {
		b.t = t
		for _, path := range []string{"/console/", "/console/tenants/xss-a", "/console/tenants/xss-b", "/console/tenants/xss-c", "/console/tenants/xss-d", "/console/tenants/xss-f"} {
			b.open(path)
			n := run(b, "injected", chromedp.Evaluate[int](`document.querySelectorAll('#injected, img, script:not([src="/console/static/console.js"]), [onload], [onerror]').length`))
			if n != 0 {
				t.Errorf("%s: %d injected elements, want 0", path, n)
			}
			if title := run(b, "title", chromedp.Title()); title == "pwned" {
				t.Errorf("%s: an injected script ran", path)
			}
		}
		// The twin: each value is shown, as text.
		b.open("/console/")
		txt := b.text()
		for _, v := range corpus {
			if !strings.Contains(txt, v) {
				t.Errorf("fleet does not show %q as text", v)
			}
		}
		b.open("/console/tenants/xss-b")
		if txt := b.text(); strings.Count(txt, corpus[1]) < 2 { // display name and key name
			t.Errorf("tenant page shows %q fewer than twice", corpus[1])
		}
	})

	t.Run("tenant actions", func(t *testing.T) {
		b.t = t
		b.open("/console/tenants/acme")
		txt := b.text()
		for _, want := range []string{"plan=pro", "ingest", "findings", "github-token", "Requests, yesterday and today", "Usage cost this month", "Download signed isolation report"} {
			if !strings.Contains(txt, want) {
				t.Errorf("tenant page lacks %q", want)
			}
		}
		b.screenshot("tenant")

		b.do("key name", chromedp.SetValue(chromedp.CSS("input[name=name]"), "browser"))
		b.submit(`form[action$="/keys"] button`)
		key := run(b, "new key", chromedp.Value(chromedp.CSS(".newkey input[readonly]")))
		if !strings.HasPrefix(key, "sk_") {
			t.Fatalf("new key %q, want the key shown once", key)
		}
		b.screenshot("tenant-new-key")
		b.open("/console/tenants/acme")
		if shown := run(b, "key again", chromedp.Value(chromedp.CSS(".newkey input[readonly]"))); shown != key {
			t.Errorf("before it is dismissed the new key is not shown again: %q", shown)
		}
		b.submit(`form[action="/console/keys/dismiss"] button`)
		if run(b, "no key", chromedp.Evaluate[bool](`!document.querySelector(".newkey")`)) == false {
			t.Errorf("the new key is shown after it was dismissed")
		}
		b.submit(`form[action*="/keys/"][action$="/revoke"] button`)
		if !strings.Contains(b.text(), "revoked") {
			t.Errorf("no key shows as revoked")
		}

		b.do("secret", chromedp.SendKeys(chromedp.CSS(`form[action$="/secrets"] input[name=name]`), "github-token"),
			chromedp.SendKeys(chromedp.CSS(`form[action$="/secrets"] input[name=value]`), "ghp-canary-value"))
		b.submit(`form[action$="/secrets"] button`)
		if txt := b.text(); !strings.Contains(txt, "Secret github-token set") || strings.Contains(txt, "ghp-canary-value") {
			t.Errorf("setting a secret: want a confirmation and never the value")
		}

		b.submit(`form[action$="/suspend"] button`)
		if got := f.account(t, "acme").State; got != silo.StateSuspended {
			t.Errorf("after Suspend: %s", got)
		}
		b.submit(`form[action$="/resume"] button`)
		if got := f.account(t, "acme").State; got != silo.StateActive {
			t.Errorf("after Resume: %s", got)
		}
		got := f.audited(t, "acme")
		for _, w := range []string{"key.issue", "key.revoke", "secret.set", "account.suspend", "account.resume"} {
			if !contains(got, w) {
				t.Errorf("audit log %v lacks %s", got, w)
			}
		}

		b.open("/console/tenants/doomed")
		b.do("wrong confirmation", chromedp.SendKeys(chromedp.CSS("input[name=confirm]"), "doome"))
		b.submit(`form[action$="/delete"] button`)
		if f.account(t, "doomed").State == silo.StateDeleted {
			t.Fatalf("deleted with a wrong confirmation")
		}
		b.do("confirmation", chromedp.SendKeys(chromedp.CSS("input[name=confirm]"), "doomed"))
		b.submit(`form[action$="/delete"] button`)
		if got := f.account(t, "doomed").State; got != silo.StateDeleted {
			t.Errorf("after typed delete: %s, want deleted", got)
		}
		if !contains(f.audited(t, "doomed"), "account.delete") {
			t.Errorf("delete not audited")
		}
	})

	t.Run("releases", func(t *testing.T) {
		b.t = t
		b.open("/console/releases")
		txt := b.text()
		for _, want := range []string{ro.ID, "developers", "canary", "baking", "current", cur.ID[:12], next.ID[:12]} {
			if !strings.Contains(txt, want) {
				t.Errorf("releases page lacks %q", want)
			}
		}
		b.screenshot("releases")
		// Live: the page holds an event stream; a pause made elsewhere (the
		// API, as the CLI does) shows on the page without a reload.
		b.do("wait for the stream", chromedp.WaitVisible(chromedp.CSS("#live-state.on")))
		run(b, "mark page", chromedp.Evaluate[bool](`document.body.dataset.old = "1", true`))
		r, err := f.p.Runner.Get(ctx, ro.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != rollout.StateRunning {
			t.Skipf("rollout %s is %s already; pause needs a running one", ro.ID, r.State)
		}
		cli := server.NewClient(f.srv.URL, f.token, nil)
		if _, err := cli.Pause(ctx, ro.ID); err != nil {
			t.Fatalf("pause through the API: %v", err)
		}
		b.do("the page shows the pause", chromedp.WaitVisible(chromedp.CSS(`#rollouts article[data-state="paused"] form[action$="/resume"] button`)))
		if !run(b, "same page", chromedp.Evaluate[bool](`document.body.dataset.old === "1"`)) {
			t.Errorf("the page was reloaded to show the pause; want it updated in place")
		}
		b.screenshot("releases-live")
		b.submit(`form[action$="/resume"] button`)
		if r, _ := f.p.Runner.Get(ctx, ro.ID); r.State != rollout.StateRunning {
			t.Errorf("after Resume: %s, want running", r.State)
		}
		b.submit(`form[action$="/pause"] button`)
		if r, _ := f.p.Runner.Get(ctx, ro.ID); r.State != rollout.StatePaused {
			t.Errorf("after Pause: %s, want paused", r.State)
		}
		b.submit(`form[action$="/resume"] button`)
		b.submit(`form[action$="/abort"] button`)
		if r, _ := f.p.Runner.Get(ctx, ro.ID); r.State != rollout.StateAborted {
			t.Errorf("after Abort: %s, want aborted", r.State)
		}
		got := f.audited(t, "")
		for _, w := range []string{"rollout.pause", "rollout.resume", "rollout.abort"} {
			if !contains(got, w) {
				t.Errorf("audit log lacks %s", w)
			}
		}
		b.screenshot("releases-aborted")
		// Roll back… shows what it would destroy first: nothing here (the
		// release changed a timeout), so no checkbox.
		b.submit(`a[href$="/` + ro.ID + `/rollback"]`)
		if txt := b.text(); !strings.Contains(txt, "Nothing would be deleted") {
			t.Errorf("rollback's confirm step does not say nothing would be deleted: %s", txt)
		}
		if run(b, "count checkboxes", chromedp.Evaluate[int](`document.querySelectorAll("input[name=allow_data_loss]").length`)) != 0 {
			t.Errorf("rollback's confirm step offers to delete data when it deletes none")
		}
		b.screenshot("releases-rollback-confirm")
		b.submit(`form[action$="/` + ro.ID + `/rollback"] button`)
		if txt := b.text(); !strings.Contains(txt, "rolls back "+ro.ID) {
			t.Errorf("Roll back: no confirmation on the page")
		}
		if !contains(f.audited(t, ""), "rollout.rollback") {
			t.Errorf("roll back not audited")
		}
		b.screenshot("releases-rollback")
	})

	t.Run("tenant page", func(t *testing.T) {
		b.t = t
		b.open("/console/tenants/acme")
		txt := b.text()
		for _, want := range []string{"Requests per day", "Stored data", "findings", "Verifies: signed by this installation", "finding stored"} {
			if !strings.Contains(txt, want) {
				t.Errorf("tenant page lacks %q", want)
			}
		}
		// One bar per day of the month seeded, plus today's real requests.
		if n := run(b, "bars", chromedp.Evaluate[int](`document.querySelectorAll("figure.chart:first-of-type rect.bar").length`)); n != 30 {
			t.Errorf("requests chart has %d bars, want 30", n)
		}
		if n := run(b, "injected", chromedp.Evaluate[int](`document.querySelectorAll('#injected, img').length`)); n != 0 {
			t.Errorf("a log line's HTML became %d elements", n)
		}
		if !strings.Contains(txt, `severity "<img src=x id=injected>"`) {
			t.Errorf("the log line with HTML is not shown as text")
		}
		b.do("viewport", chromedp.EmulateViewport(1280, 860))
		run(b, "no scrollbar", chromedp.Evaluate[bool](`document.documentElement.style.overflow = "hidden", true`))
		png := run(b, "screenshot", chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(b.shot, "readme.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		b.do("viewport back", chromedp.EmulateViewport(1280, 900))

		// Parameters: edited in the page, applied and audited.
		b.open("/console/tenants/globex")
		b.do("open the form", chromedp.Click(chromedp.CSS("details.edit summary")))
		b.do("edit", chromedp.SetValue(chromedp.CSS("#params"), "plan=enterprise"))
		b.submit(`form[action$="/params"] button`)
		if got := f.account(t, "globex").Params["plan"]; got != "enterprise" {
			t.Errorf("after editing: plan %q, want enterprise", got)
		}
		if !contains(f.audited(t, "globex"), "account.update") {
			t.Errorf("parameter edit not audited")
		}
	})

	t.Run("logs", func(t *testing.T) {
		b.t = t
		b.open("/console/tenants/acme/logs")
		b.do("wait for the stream", chromedp.WaitVisible(chromedp.CSS("#live-state.on")))
		before := run(b, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#log-rows tr").length`))
		run(b, "mark page", chromedp.Evaluate[bool](`document.body.dataset.old = "1", true`))
		plain, _, err := f.p.Plane.IssueKey(ctx, "acme", "logs-test") // the first key was revoked above
		if err != nil {
			t.Fatal(err)
		}
		if r := f.sp.Client("acme", plain).POST(t, "/findings", `{"severity":"<svg/onload=alert(1) id=injected>","app":"github"}`); r.Status != 400 {
			t.Fatalf("POST a finding to log: %d %s", r.Status, r.Body)
		}
		run(b, "new line", chromedp.Poll[bool](`document.querySelectorAll("#log-rows tr").length > `+fmt.Sprint(before), chromedp.WithPollingTimeout(15*time.Second)))
		if !run(b, "same page", chromedp.Evaluate[bool](`document.body.dataset.old === "1"`)) {
			t.Errorf("the logs page reloaded; want the line added in place")
		}
		if after := run(b, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#log-rows tr").length`)); after != before+1 {
			t.Errorf("%d rows after one new line, want %d (no line twice)", after, before+1)
		}
		if n := run(b, "injected", chromedp.Evaluate[int](`document.querySelectorAll('#injected, svg[onload], img').length`)); n != 0 {
			t.Errorf("a streamed log line's HTML became %d elements", n)
		}
		if txt := b.text(); !strings.Contains(txt, "<svg/onload=alert(1) id=injected>") {
			t.Errorf("the streamed line is not shown as text")
		}
		b.screenshot("logs")
	})

	t.Run("logs filter", func(t *testing.T) {
		b.t = t
		b.open("/console/tenants/acme/logs")
		b.do("filter by a function with no lines", chromedp.SetValue(chromedp.CSS(`input[name="function"]`), "nosuch"))
		b.submit(`form[role="search"] button`)
		if loc := b.location(); !strings.HasSuffix(loc, "/console/tenants/acme/logs?function=nosuch&request=&since=&until=") {
			t.Errorf("after filtering: at %s, want the filter in the URL", loc)
		}
		if txt := b.text(); !strings.Contains(txt, "No log line of acme matches these filters.") {
			t.Errorf("a filter matching nothing does not say so:\n%s", txt)
		}
		b.do("filter by ingest", chromedp.SetValue(chromedp.CSS(`input[name="function"]`), "ingest"))
		b.submit(`form[role="search"] button`)
		if n := run(b, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#log-rows tr").length`)); n == 0 || strings.Contains(b.text(), "No log line") {
			t.Errorf("filtered by ingest: %d rows, want ingest's lines", n)
		}
		b.do("a time it cannot read", chromedp.SetValue(chromedp.CSS(`input[name="since"]`), "yesterday"))
		b.submit(`form[role="search"] button`)
		if txt := run(b, "error", chromedp.Text(chromedp.CSS("#filter-error"))); !strings.Contains(txt, `since "yesterday" is not a window`) {
			t.Errorf("a bad time: %q, want it refused with how to write it", txt)
		}
		b.screenshot("logs-filter")
	})

	t.Run("environments", func(t *testing.T) {
		b.t = t
		b.open("/console/environments")
		first := run(b, "ttl", chromedp.Text(chromedp.CSS("time.ttl")))
		if !regexpMust(`^[23]h [0-5]\dm [0-5]\ds left$`).MatchString(first) {
			t.Errorf("time left %q, want about 3h", first)
		}
		// It counts down in the page, without a reload.
		run(b, "tick", chromedp.Poll[bool](`document.querySelector("time.ttl").textContent !== `+strconv.Quote(first), chromedp.WithPollingTimeout(5*time.Second)))
		b.screenshot("environments")
	})

	t.Run("isolation", func(t *testing.T) {
		b.t = t
		b.open("/console/isolation")
		txt := b.text()
		for _, want := range []string{"Proved", "Intact", "account.delete", "key.issue"} {
			if !strings.Contains(txt, want) {
				t.Errorf("isolation page lacks %q", want)
			}
		}
		b.screenshot("isolation")
	})
}

// seedUsage writes 30 days of hourly usage for an account into the store,
// as the meter rolls it up: a working-day pattern with a few errors.
func seedUsage(t *testing.T, f *fixture, id silo.AccountID) {
	t.Helper()
	now := f.clock.Now().UTC()
	for d := 29; d >= 1; d-- {
		day := now.AddDate(0, 0, -d)
		at := time.Date(day.Year(), day.Month(), day.Day(), 12, 0, 0, 0, time.UTC)
		req := int64(800 + 600*((d*7)%5) + 90*(d%4))
		if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
			req /= 4
		}
		ds := []store.UsageDelta{{Account: id, Function: "ingest", Counters: store.Counters{
			Requests: req, Errors: req / int64(40+d), DurationMicros: req * 3_000, MemoryMiBMicros: req * 3_000 * 128,
			BytesIn: req * 400, BytesOut: req * 900}}}
		if err := f.p.Store.Update(context.Background(), func(tx store.Tx) error { return tx.AddUsage(at, ds) }); err != nil {
			t.Fatal(err)
		}
	}
}
