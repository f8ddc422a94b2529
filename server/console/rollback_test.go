package console_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// TestRollBackOfferedWhereItStarts: the releases page offers "Roll back…"
// on exactly the rollout a rollback may undo (the rule the rollback
// itself refuses by). A rollout that failed its smoke gate, which returned
// every account, has no such link (the must-not) and does not take it
// from the rollout before it (the must), whose confirm step offers the
// form; once that rollback runs, no rollout has the link.
func TestRollBackOfferedWhereItStarts(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	f.sp.Tenant(t, "globex")
	good := build(t, f, "  findings: {description: \"Findings reported by the tenant's scanners.\"}\n", "  notes: {}\n")
	ok := waitRollout(t, f, startRollout(t, f, good.ID))
	if ok.State != rollout.StateSucceeded {
		t.Fatalf("rollout of a good release: %s (%s)", ok.State, ok.Reason)
	}
	bad := waitRollout(t, f, startRollout(t, f, brokenSmoke(t, f).ID))
	if bad.State != rollout.StateFailed {
		t.Fatalf("rollout of a release whose smoke check fails: %s (%s), want failed", bad.State, bad.Reason)
	}
	b := f.browser(t)
	b.signIn()
	link := func(id string) string { return `href="/console/rollouts/` + id + `/rollback"` }
	page := b.get("/console/releases").body
	if strings.Contains(page, link(bad.ID)) {
		t.Errorf("the releases page offers to roll back %s, which failed and returned its accounts", bad.ID)
	}
	if !strings.Contains(page, link(ok.ID)) {
		t.Errorf("the releases page does not offer to roll back %s, the latest rollout that moved accounts", ok.ID)
	}
	confirm := b.get("/console/rollouts/" + ok.ID + "/rollback")
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, `method="post" action="/console/rollouts/`+ok.ID+`/rollback"`) {
		t.Fatalf("the confirm step of the offered rollback (%d) has no form:\n%s", confirm.status, confirm.body)
	}
	rb, err := f.p.Runner.Rollback(ctx, ok.ID, rollout.Options{AllowDataLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	if rb = waitRollout(t, f, rb.ID); rb.State != rollout.StateSucceeded {
		t.Fatalf("rollback: %s (%s)", rb.State, rb.Reason)
	}
	page = b.get("/console/releases").body
	for _, id := range []string{ok.ID, bad.ID, rb.ID} {
		if strings.Contains(page, link(id)) {
			t.Errorf("after the rollback, the releases page offers to roll back %s", id)
		}
	}
}

// startRollout starts a rollout of release id and returns its ID.
func startRollout(t *testing.T, f *fixture, id string) string {
	t.Helper()
	r, err := f.p.Runner.Start(context.Background(), id, rollout.Options{AllowDataLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// waitRollout waits until rollout id stops and returns it.
func waitRollout(t *testing.T, f *fixture, id string) rollout.Rollout {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := f.p.Runner.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !r.State.Active() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s still %s", r.ID, r.State)
		}
	}
}

// brokenSmoke builds the example with its smoke function answering 503.
func brokenSmoke(t *testing.T, f *fixture) engine.Release {
	t.Helper()
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
	if err := os.WriteFile(smoke, []byte(strings.Replace(string(src), hook, hook+"\treturn finding.Error(503, \"broken on purpose\")\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := f.p.Build(context.Background(), app)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return rel
}
