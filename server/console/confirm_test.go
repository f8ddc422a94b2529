package console_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// TestConfirmStepListsWhatIsDestroyed: before a rollout or a rollback, its
// confirm step lists every table, bucket or secret it would delete, with
// the accounts, and only then offers the checkbox; a harmless one says
// nothing would be deleted and offers none. Unconfirmed, ticked without
// the list's digest, or confirmed for a list that has since changed (the
// rollout package refuses it, given the digest the console sends),
// nothing starts and the list is shown again; confirmed for the list as
// it stands, it starts.
func TestConfirmStepListsWhatIsDestroyed(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	f.sp.Tenant(t, "globex")
	f.sp.Tenant(t, "initech")
	cur, err := f.p.Plane.CurrentRelease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	notes := build(t, f, "  findings: {description: \"Findings reported by the tenant's scanners.\"}\n", "  notes: {}\n")
	b := f.browser(t)
	b.signIn()
	tok := b.csrf("/console/releases")

	// A release that adds a table destroys nothing: no list, no checkbox.
	pg := b.get("/console/releases/" + notes.ID + "/rollout")
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `id="no-loss"`) {
		t.Fatalf("confirm step of a release that adds a table (%d): does not say nothing would be deleted:\n%s", pg.status, pg.body)
	}
	if strings.Contains(pg.body, `name="allow_data_loss"`) || strings.Contains(pg.body, `id="losses"`) {
		t.Errorf("confirm step of a release that adds a table lists losses or offers the checkbox")
	}
	if !strings.Contains(b.get("/console/releases").body, `href="/console/releases/`+notes.ID+`/rollout"`) {
		t.Errorf("the releases page does not link release %s to its confirm step", notes.ID)
	}
	pg = b.post("/console/releases/"+notes.ID+"/rollout", url.Values{"csrf": {tok}, "losses": {digest(t, pg.body)}})
	if pg.location != "/console/releases" || !strings.Contains(b.get(pg.location).body, "started") {
		t.Fatalf("Roll out of a harmless release: to %q, not started", pg.location)
	}
	ro := finished(t, f)

	// Back to the first release would delete notes: both pages list it.
	for _, path := range []string{"/console/releases/" + cur.ID + "/rollout", "/console/rollouts/" + ro.ID + "/rollback"} {
		pg = b.get(path)
		if pg.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, pg.status)
		}
		if got := losses(pg.body); got != "delete table/notes: globex initech" {
			t.Errorf("GET %s lists %q, want delete table/notes: globex initech", path, got)
		}
		if !strings.Contains(pg.body, `name="allow_data_loss"`) {
			t.Errorf("GET %s: no checkbox to confirm the loss", path)
		}
	}

	// Unconfirmed: nothing starts, back to the list.
	rollback := "/console/rollouts/" + ro.ID + "/rollback"
	pg = b.post(rollback, url.Values{"csrf": {tok}})
	if pg.location != rollback {
		t.Errorf("unconfirmed rollback: to %q, want back to %s", pg.location, rollback)
	}
	if after := b.get(pg.location).body; !strings.Contains(after, `class="flash err"`) || !strings.Contains(after, "tick the box to confirm") || losses(after) == "" {
		t.Errorf("unconfirmed rollback: no error saying to tick the box, or no list, on the page it leads to")
	}
	notRolledBack(t, f, ro.ID)
	pg = b.post("/console/releases/"+cur.ID+"/rollout", url.Values{"csrf": {tok}})
	if pg.location != "/console/releases/"+cur.ID+"/rollout" {
		t.Errorf("unconfirmed rollout: to %q, want back to its confirm step", pg.location)
	}
	if ros, _ := f.p.Runner.List(ctx, 10); len(ros) != 1 {
		t.Errorf("an unconfirmed rollout started: %d rollouts, want 1", len(ros))
	}

	// Ticked on a form that does not say which list it confirms: nothing
	// starts, back to the list.
	pg = b.post(rollback, url.Values{"csrf": {tok}, "allow_data_loss": {"yes"}})
	if pg.location != rollback || !strings.Contains(b.get(pg.location).body, "did not say which list it confirms") {
		t.Errorf("rollback ticked without the list's digest: to %q, want back to %s saying why", pg.location, rollback)
	}
	notRolledBack(t, f, ro.ID)

	// Confirmed for a list that has since grown (a new tenant on the
	// release): the rollout package, planning again as it starts, refuses
	// it; nothing starts, and the list shows the tenant with the API's
	// reason above it.
	stale := digest(t, b.get(rollback).body)
	f.sp.Tenant(t, "hooli")
	pg = b.post(rollback, url.Values{"csrf": {tok}, "allow_data_loss": {"yes"}, "losses": {stale}})
	if pg.location != rollback {
		t.Errorf("rollback confirmed for a stale list: to %q, want back to %s", pg.location, rollback)
	}
	notRolledBack(t, f, ro.ID)
	now := b.get(rollback).body
	if got := losses(now); got != "delete table/notes: globex hooli initech" {
		t.Errorf("after a new tenant the list is %q, want it named too", got)
	}
	if want := "what would be lost changed since you confirmed: it now deletes table/notes in globex, hooli, initech; nothing was started."; !strings.Contains(now, want) {
		t.Errorf("rollback confirmed for a stale list: the page does not say %q", want)
	}

	// Confirmed for the list as it stands: the rollback starts.
	pg = b.post(rollback, url.Values{"csrf": {tok}, "allow_data_loss": {"yes"}, "losses": {digest(t, now)}})
	if pg.location != "/console/releases" || !strings.Contains(b.get(pg.location).body, "rolls back "+ro.ID) {
		t.Fatalf("confirmed rollback: to %q, not started", pg.location)
	}
	if r, err := f.p.Runner.Get(ctx, ro.ID); err != nil || r.RolledBackBy == "" {
		t.Errorf("rollout %s after a confirmed rollback: not rolled back (%v)", ro.ID, err)
	}

	// A confirm step that cannot be shown says why, with no form.
	for path, want := range map[string]int{
		"/console/releases/r-doesnotexist/rollout": http.StatusNotFound,
		rollback: http.StatusConflict, // rolled back already
	} {
		pg := b.get(path)
		if pg.status != want || !strings.Contains(pg.body, `id="preview-error"`) || strings.Contains(pg.body, `method="post" action="`+path+`"`) {
			t.Errorf("GET %s: %d, want %d with the reason and no form", path, pg.status, want)
		}
	}
}

// build builds the example with one line of silo.yaml (after) added after
// another (at) and returns the release.
func build(t *testing.T, f *fixture, at, after string) engine.Release {
	t.Helper()
	app := silotest.CopyExample(t)
	y, err := os.ReadFile(filepath.Join(app, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), at) {
		t.Fatalf("silo.yaml has no line %q", at)
	}
	if err := os.WriteFile(filepath.Join(app, "silo.yaml"), []byte(strings.Replace(string(y), at, at+after, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := f.p.Build(context.Background(), app)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return rel
}

// finished waits for the latest rollout to succeed and returns it.
func finished(t *testing.T, f *fixture) rollout.Rollout {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ros, err := f.p.Runner.List(context.Background(), 1)
		if err != nil || len(ros) == 0 {
			t.Fatalf("rollouts: %v, %v", ros, err)
		}
		if r := ros[0]; !r.State.Active() {
			if r.State != rollout.StateSucceeded {
				t.Fatalf("rollout %s: %s (%s)", r.ID, r.State, r.Reason)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s still %s", ros[0].ID, ros[0].State)
		}
	}
}

func notRolledBack(t *testing.T, f *fixture, id string) {
	t.Helper()
	if r, err := f.p.Runner.Get(context.Background(), id); err != nil || r.RolledBackBy != "" {
		t.Errorf("rollout %s rolled back by %q (%v), want not", id, r.RolledBackBy, err)
	}
}

var (
	lossRow    = regexp.MustCompile(`(?s)<tr><td class="bad">([^<]+)</td><td class="mono">([^<]+)</td><td>(.*?)</td></tr>`)
	lossAcct   = regexp.MustCompile(`<li><a class="mono" href="[^"]+">([^<]+)</a></li>`)
	lossDigest = regexp.MustCompile(`name="losses" value="([^"]*)"`)
)

// losses reads the confirm step's list as "op type/name: accounts; …".
func losses(body string) string {
	var out []string
	for _, m := range lossRow.FindAllStringSubmatch(body, -1) {
		var accts []string
		for _, a := range lossAcct.FindAllStringSubmatch(m[3], -1) {
			accts = append(accts, a[1])
		}
		out = append(out, m[1]+" "+m[2]+": "+strings.Join(accts, " "))
	}
	return strings.Join(out, "; ")
}

// digest returns the confirm step's digest of its list.
func digest(t *testing.T, body string) string {
	t.Helper()
	m := lossDigest.FindStringSubmatch(body)
	if m == nil || m[1] == "" {
		t.Fatalf("confirm step has no digest of its list")
	}
	return m[1]
}

// TestReleaseThatFailedShipsAgainOnlyConfirmed: a release whose rollout
// failed (its smoke gate) is marked so on the releases page, and its
// confirm step says why and asks, with a box, to ship it again; without
// the box nothing starts and the step is shown again, with it the
// rollout starts. A release that never failed asks nothing of the kind.
func TestReleaseThatFailedShipsAgainOnlyConfirmed(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	f.sp.Tenant(t, "globex")
	cur, err := f.p.Plane.CurrentRelease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	app := silotest.CopyExample(t)
	smoke := filepath.Join(app, "functions", "smoke", "main.go")
	src, err := os.ReadFile(smoke)
	if err != nil {
		t.Fatal(err)
	}
	const hook = "func handle(r *fn.Request) *fn.Response {\n"
	if !strings.Contains(string(src), hook) {
		t.Fatalf("%s has no %q", smoke, hook)
	}
	broken := strings.Replace(string(src), hook, hook+"\treturn finding.Error(503, \"broken on purpose\")\n", 1)
	if err := os.WriteFile(smoke, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	bad, err := f.p.Build(ctx, app)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	first, err := f.p.Runner.Start(ctx, bad.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := f.p.Runner.Get(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !r.State.Active() {
			if r.State != rollout.StateFailed {
				t.Fatalf("rollout of a release whose smoke check fails: %s (%s), want failed", r.State, r.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s still %s", r.ID, r.State)
		}
	}
	b := f.browser(t)
	b.signIn()
	tok := b.csrf("/console/releases")
	if page := b.get("/console/releases").body; !strings.Contains(page, `its last rollout <span class="mono">`+first.ID+`</span> failed`) || !strings.Contains(page, "Roll out again…") {
		t.Errorf("the releases page does not mark release %s as failed in rollout %s", bad.ID, first.ID)
	}
	review := "/console/releases/" + bad.ID + "/rollout"
	pg := b.get(review)
	if !strings.Contains(pg.body, `id="failed-before"`) || !strings.Contains(pg.body, `name="retry_failed"`) {
		t.Fatalf("the confirm step of a failed release does not say so or asks nothing:\n%s", pg.body)
	}
	count := func() int {
		ros, err := f.p.Runner.List(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(ros)
	}
	before := count()
	// Must not: without the box, nothing starts.
	pg = b.post(review, url.Values{"csrf": {tok}, "losses": {digest(t, pg.body)}})
	if pg.location != review || !strings.Contains(b.get(pg.location).body, first.ID) {
		t.Errorf("a failed release rolled out without the box: to %q, want back to %s naming %s", pg.location, review, first.ID)
	}
	if n := count(); n != before {
		t.Errorf("a failed release rolled out without the box started a rollout (%d rollouts, want %d)", n, before)
	}
	// Must: with it, the rollout starts.
	pg = b.post(review, url.Values{"csrf": {tok}, "losses": {digest(t, b.get(review).body)}, "retry_failed": {"yes"}})
	if pg.location != "/console/releases" || count() != before+1 {
		t.Errorf("a failed release rolled out with the box: to %q, %d rollouts, want /console/releases and %d", pg.location, count(), before+1)
	}
	// A release that never failed asks nothing of the kind.
	if good := b.get("/console/releases/" + cur.ID + "/rollout").body; strings.Contains(good, `name="retry_failed"`) || strings.Contains(good, `id="failed-before"`) {
		t.Errorf("the confirm step of release %s, which never failed, asks to ship it again", cur.ID)
	}
}
