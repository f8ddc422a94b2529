package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// TestSmokeFailureNamesALogLineThatExists: a release whose smoke function
// answers 500 without logging anything fails its rollout with a message
// naming the request; silo logs of the account finds that request, and the
// smoke function, by the smoke check's own line. The twin: the smoke check
// of a good release before it is in the log too, as passed.
func TestSmokeFailureNamesALogLineThatExists(t *testing.T) {
	p := silotest.New(t)
	app := silotest.CopyExample(t)
	p.Deploy(t, app)
	p.Tenant(t, "globex")
	ctx := context.Background()
	pp := p.Platform()
	roll := func() rollout.Rollout {
		t.Helper()
		rel, err := pp.Build(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool {
			return r.State != rollout.StateRunning && r.State != rollout.StatePaused
		})
	}
	smokeLines := func(q logs.Query) []logs.Entry {
		t.Helper()
		es, err := pp.ReadLogs(ctx, "globex", q)
		if err != nil {
			t.Fatal(err)
		}
		var out []logs.Entry
		for _, e := range es {
			if e.Attrs["source"] == "smoke" {
				out = append(out, e)
			}
		}
		return out
	}

	// The twin: a release whose smoke passes is logged as passed.
	edit(t, app, "v2")
	if r := roll(); r.State != rollout.StateSucceeded {
		t.Fatalf("rollout of a good release: %s (%s), want succeeded", r.State, r.Reason)
	}
	if es := smokeLines(logs.Query{Function: "smoke"}); len(es) != 1 || es[0].Msg != "smoke check GET / passed" || !strings.HasPrefix(es[0].RequestID, "smoke-") {
		t.Fatalf("the smoke check of the good release in globex's log: %+v; want one line, passed", es)
	}

	src := filepath.Join(app, "functions", "smoke", "main.go")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "func handle(r *fn.Request) *fn.Response {", "func handle(r *fn.Request) *fn.Response {\n\treturn fn.JSON(500, map[string]any{\"ok\": false})", 1)
	if s == string(b) {
		t.Fatal("the smoke function's handler was not found")
	}
	if err := os.WriteFile(src, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	r := roll()
	m := regexp.MustCompile(`smoke function "smoke" of globex answered 500; its lines and the smoke check's own are in silo logs globex --request (smoke-[A-Z0-9]+)`).FindStringSubmatch(r.Reason)
	if m == nil {
		t.Fatalf("rollout %s: %q; want the smoke failure naming its request", r.State, r.Reason)
	}
	for _, q := range []logs.Query{{RequestID: m[1]}, {Function: "smoke"}} {
		found := false
		for _, e := range smokeLines(q) {
			found = found || e.RequestID == m[1] && e.Msg == "smoke check GET / failed: answered 500"
		}
		if !found {
			t.Errorf("silo logs globex %+v: %+v; want the failed smoke check of %s", q, smokeLines(q), m[1])
		}
	}
}
