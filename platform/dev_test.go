package platform_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
)

// edit rewrites the list function so that its response carries marker.
func edit(t testing.TB, app, marker string) {
	t.Helper()
	p := filepath.Join(app, "functions", "list", "main.go")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if i := strings.Index(s, "\nconst marker"); i >= 0 {
		s = s[:i]
	}
	switch {
	case strings.Contains(s, `"version": marker`), strings.Contains(s, "withVersion("):
	case strings.Contains(s, `"plan": fn.Config("plan")`): // a map marshalled to JSON
		s = strings.Replace(s, `"plan": fn.Config("plan")`, `"plan": fn.Config("plan"), "version": marker`, 1)
	default: // hand-written JSON: wrap the response body
		const call = `finding.AppendList(body, count, fn.Config("plan"))`
		if !strings.Contains(s, call) {
			t.Fatalf("edit: %s has neither a plan field nor %s; update edit", p, call)
		}
		s = strings.Replace(s, call, "withVersion("+call+")", 1)
	}
	s += "\nconst marker = " + fmt.Sprintf("%q", marker) + "\n"
	if strings.Contains(s, "withVersion(") {
		s += "\nfunc withVersion(b []byte) []byte { return append([]byte(`{\"version\":\"`+marker+`\",`), b[1:]...) }\n"
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func startDev(t testing.TB, p *silotest.Platform, app string) (*platform.Dev, <-chan platform.DevEvent, func()) {
	t.Helper()
	d := &platform.Dev{P: p.Platform(), App: app, Account: platform.DevAccount("tester")}
	ev, err := d.Prepare(context.Background())
	if err != nil || ev.Kind != "live" {
		t.Fatalf("prepare: got %+v, %v, want live", ev, err)
	}
	events := make(chan platform.DevEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Watch(ctx, func(e platform.DevEvent) { events <- e })
	}()
	if e := <-events; e.Kind != "watching" {
		t.Fatalf("first watch event: got %+v, want watching", e)
	}
	return d, events, func() { cancel(); <-done }
}

// next returns the next event that applied or failed a build, skipping
// "unchanged" ones (an editor's write can arrive as two batches of file
// events, the second finding nothing new).
func next(t testing.TB, events <-chan platform.DevEvent) platform.DevEvent {
	t.Helper()
	for {
		select {
		case e := <-events:
			if e.Kind != "unchanged" && e.Kind != "watching" {
				return e
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("no dev event after an edit")
			return platform.DevEvent{}
		}
	}
}

// TestDevEditBuildErrorAndRecovery edits a function (live), breaks it (the
// build error is reported and the last good version keeps serving), and
// fixes it again. Only the developer account changes.
func TestDevEditBuildErrorAndRecovery(t *testing.T) {
	p := silotest.New(t)
	app := silotest.CopyExample(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	d, events, stop := startDev(t, p, app)
	defer stop()
	key, err := p.Platform().IssueKey(context.Background(), d.Account, "test")
	if err != nil {
		t.Fatal(err)
	}
	dev := p.Client(d.Account, key)

	edit(t, app, "v2")
	if e := next(t, events); e.Kind != "live" {
		t.Fatalf("after an edit: got %s (%v), want live", e.Kind, e.Err)
	}
	if resp := dev.GET(t, "/findings"); !strings.Contains(string(resp.Body), `"version":"v2"`) {
		t.Fatalf("dev account after the edit: got %s, want version v2", resp)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != 200 || strings.Contains(string(resp.Body), "version") {
		t.Errorf("acme must not get the developer's edit: got %s", resp)
	}

	bad := filepath.Join(app, "functions", "list", "broken.go")
	os.WriteFile(bad, []byte("package main\n\nfunc broken() int { return \"no\" }\n"), 0o644)
	e := next(t, events)
	if e.Kind != "failed" || e.Err == nil || !strings.Contains(e.Err.Error(), "broken.go") {
		t.Fatalf("after a bad edit: got %s (%v), want failed naming broken.go", e.Kind, e.Err)
	}
	if silo.ErrorCode(e.Err) != silo.CodeInvalid {
		t.Errorf("build error code: got %s, want invalid", silo.ErrorCode(e.Err))
	}
	if resp := dev.GET(t, "/findings"); resp.Status != 200 || !strings.Contains(string(resp.Body), `"version":"v2"`) {
		t.Fatalf("the last good version must keep serving: got %s", resp)
	}

	os.Remove(bad)
	edit(t, app, "v3")
	for {
		e := next(t, events)
		if e.Kind == "live" {
			break
		}
		if e.Kind == "failed" {
			t.Logf("intermediate: %v", e.Err)
		}
	}
	if resp := dev.GET(t, "/findings"); !strings.Contains(string(resp.Body), `"version":"v3"`) {
		t.Fatalf("after the fix: got %s, want version v3", resp)
	}
}

// BenchmarkDevEditToLive measures silo dev's edit-to-live time for the
// example: from writing a changed function source to the new version
// answering through the gateway (file event, debounce, build, apply, first
// request, which starts a cold instance).
func BenchmarkDevEditToLive(b *testing.B) {
	p := silotest.New(b)
	app := silotest.CopyExample(b)
	p.Deploy(b, app)
	d, events, stop := startDev(b, p, app)
	defer stop()
	key, err := p.Platform().IssueKey(context.Background(), d.Account, "bench")
	if err != nil {
		b.Fatal(err)
	}
	dev := p.Client(d.Account, key)
	edit(b, app, "warm")
	next(b, events)
	b.ResetTimer()
	for i := range b.N {
		marker := fmt.Sprintf("v%d-%d", i, time.Now().UnixNano())
		edit(b, app, marker)
		for {
			if e := next(b, events); e.Kind == "live" {
				break
			} else if e.Kind == "failed" {
				b.Fatal(e.Err)
			}
		}
		if resp := dev.GET(b, "/findings"); !strings.Contains(string(resp.Body), marker) {
			b.Fatalf("got %s, want %s", resp, marker)
		}
	}
}

// TestGuestStdioReachesAccountLog checks that what a function prints to
// standard error lands in its own account's log, and nowhere else.
func TestGuestStdioReachesAccountLog(t *testing.T) {
	p := silotest.New(t)
	app := silotest.CopyExample(t)
	f := filepath.Join(app, "functions", "smoke", "main.go")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "func handle(r *fn.Request) *fn.Response {", "func handle(r *fn.Request) *fn.Response {\n\tprintln(\"smoke says hi\")", 1)
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	p.Tenant(t, "globex")
	if resp := acme.GET(t, "/health"); resp.Status != 200 {
		t.Fatalf("GET /health: got %s", resp)
	}
	found := false
	for _, e := range p.Logs(t, "acme") {
		if e.Function == "smoke" && strings.Contains(e.Msg, "smoke says hi") {
			found = true
		}
	}
	if !found {
		t.Errorf("acme's log lacks the function's stderr line: %+v", p.Logs(t, "acme"))
	}
	if es := p.Logs(t, "globex"); len(es) != 0 {
		t.Errorf("globex's log holds %d lines, want none: %+v", len(es), es)
	}
}

// TestDevGatesTheBuild: silo dev applies a build only once the per-account
// isolation gate passed it, for the developer account as recorded (its
// kind and parameters), beside the production account as recorded. A
// build that differs from what the fleet runs (it drops a plan a tenant
// is on, which the fleet's gate refuses) goes live: it is for the
// developer's account alone. A build granting a production export that
// production does not export is refused with what to do: the build is
// not stored, the account keeps its release and keeps serving. The twin:
// the fix goes live.
func TestDevGatesTheBuild(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	app := silotest.CopyExample(t)
	p.Deploy(t, app)
	d, events, stop := startDev(t, p, app)
	defer stop()
	pl := p.Platform()
	key, err := pl.IssueKey(ctx, d.Account, "test")
	if err != nil {
		t.Fatal(err)
	}
	dev := p.Client(d.Account, key)

	// A tenant on a plan the developer's build drops: the build differs
	// from what the fleet runs, legitimately, and goes to dev-tester alone
	// (on the default plan), so it is gated for dev-tester alone.
	if _, err := pl.CreateAccount(ctx, control.CreateRequest{ID: "acme", Params: map[string]string{"plan": "enterprise"}}); err != nil {
		t.Fatal(err)
	}
	yml := filepath.Join(app, "silo.yaml")
	src, err := os.ReadFile(yml)
	if err != nil {
		t.Fatal(err)
	}
	noEnterprise := strings.Replace(string(src), "enum: [free, pro, enterprise]", "enum: [free, pro]", 1)
	if noEnterprise == string(src) {
		t.Fatal("the example's plan param moved; update the test")
	}
	if err := os.WriteFile(yml, []byte(noEnterprise), 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, app, "v2")
	e := next(t, events)
	if e.Kind != "live" {
		t.Fatalf("after an edit that drops a plan a tenant is on: got %s (%v), want live", e.Kind, e.Err)
	}
	build, err := pl.Plane.Release(ctx, e.Release)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Plane.Gate(ctx, build); err == nil {
		t.Errorf("the fleet's gate passed build %s, which acme's plan does not fit; want it refused (the build is for dev-tester alone)", build.ID)
	}
	before, err := pl.Plane.Account(ctx, d.Account)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(noEnterprise)
	bad := strings.Replace(string(src), "    config: [plan]\n  smoke:", "    config: [plan]\n    exports: [unshipped]\n  smoke:", 1)
	bad = strings.Replace(bad, "    threat-intel: {table: threat-intel}\n", "    threat-intel: {table: threat-intel}\n    unshipped: {table: threat-intel}\n", 1)
	if bad == string(src) || strings.Count(bad, "unshipped") != 2 {
		t.Fatal("the example's list function or production exports moved; update the test")
	}
	if err := os.WriteFile(yml, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	e = next(t, events)
	msg := silo.UserMessage(e.Err)
	if e.Kind != "failed" || silo.ErrorCode(e.Err) != silo.CodeFailedCheck {
		t.Fatalf("a build granting an export production does not have: got %s (%v), want failed_check", e.Kind, e.Err)
	}
	for _, s := range []string{`grants export "unshipped", which this silo.yaml adds to production but the production account does not export yet`,
		"silo dev never changes the production account", string(d.Account) + " keeps running what it ran", "Deploy the export first"} {
		if !strings.Contains(msg, s) {
			t.Errorf("refusal %q does not say %q", msg, s)
		}
	}
	after, err := pl.Plane.Account(ctx, d.Account)
	if err != nil {
		t.Fatal(err)
	}
	if after.Release != before.Release || after.Version != before.Version {
		t.Errorf("refused build changed %s: %s v%d → %s v%d", d.Account, before.Release, before.Version, after.Release, after.Version)
	}
	if _, err := pl.Plane.Release(ctx, e.Release); !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("refused build %s was stored (%v)", e.Release, err)
	}
	if resp := dev.GET(t, "/findings"); resp.Status != 200 || !strings.Contains(string(resp.Body), `"version":"v2"`) {
		t.Fatalf("the last good version must keep serving: got %s", resp)
	}
	if prod, err := pl.Plane.Account(ctx, silo.ProductionID); err != nil || prod.Release == e.Release {
		t.Fatalf("production after the refused build: %+v, %v; want it untouched", prod, err)
	}

	// A grant of an export the silo.yaml does not declare at all is the
	// build's own error, with its position: refused the same way.
	nowhere := strings.Replace(string(src), "    config: [plan]\n  smoke:", "    config: [plan]\n    exports: [nowhere]\n  smoke:", 1)
	if err := os.WriteFile(yml, []byte(nowhere), 0o644); err != nil {
		t.Fatal(err)
	}
	e = next(t, events)
	if msg := silo.UserMessage(e.Err); e.Kind != "failed" || !strings.Contains(msg, "silo.yaml:") || !strings.Contains(msg, `"nowhere"`) {
		t.Fatalf("a build granting an export silo.yaml does not declare: got %s (%v), want a silo.yaml error naming it", e.Kind, e.Err)
	}
	if after, err := pl.Plane.Account(ctx, d.Account); err != nil || after.Release != before.Release {
		t.Fatalf("refused build changed %s: %+v, %v", d.Account, after, err)
	}

	// Once production exports it (a release that adds the export without
	// the grant, deployed), the build that was refused goes live.
	prodSide := silotest.CopyExample(t)
	orig, err := os.ReadFile(filepath.Join(prodSide, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	withExport := strings.Replace(string(orig), "    threat-intel: {table: threat-intel}\n", "    threat-intel: {table: threat-intel}\n    unshipped: {table: threat-intel}\n", 1)
	if err := os.WriteFile(filepath.Join(prodSide, "silo.yaml"), []byte(withExport), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Deploy(t, prodSide)
	if err := os.WriteFile(yml, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, app, "v2b")
	if e = next(t, events); e.Kind != "live" {
		t.Fatalf("the build granting %q after production exports it: got %s (%v), want live", "unshipped", e.Kind, e.Err)
	}
	if resp := dev.GET(t, "/findings"); !strings.Contains(string(resp.Body), `"version":"v2b"`) {
		t.Fatalf("after production exports it: got %s, want version v2b", resp)
	}

	if err := os.WriteFile(yml, src, 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, app, "v3")
	for {
		e := next(t, events)
		if e.Kind == "live" {
			break
		}
		if e.Kind == "failed" && silo.ErrorCode(e.Err) == silo.CodeFailedCheck {
			t.Fatalf("the fixed build was refused: %v", e.Err)
		}
	}
	if resp := dev.GET(t, "/findings"); !strings.Contains(string(resp.Body), `"version":"v3"`) {
		t.Fatalf("after the fix: got %s, want version v3", resp)
	}
}
