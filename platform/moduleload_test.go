package platform_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// releaseOf returns the release the account runs.
func releaseOf(t *testing.T, p *silotest.Platform, id silo.AccountID) string {
	t.Helper()
	a, err := p.Platform().Plane.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Release
}

// logText is the account's log lines, message and attributes, one a line.
func logText(es []logs.Entry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Msg)
		for k, v := range e.Attrs {
			b.WriteString(" " + k + "=" + v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// notLoadable is a wasm module that passes the build's and the upload's
// checks (it exports handle, of the handler's type, returning 0) and that
// the runtime refuses when it compiles it: it exports nothing else a
// function must (silo_alloc, memory).
var notLoadable = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x07\x01\x60\x02\x7f\x7f\x01\x7e" + // type 0: (i32, i32) i64
	"\x03\x02\x01\x00" + // function 0 has type 0
	"\x07\x0a\x01\x06handle\x00\x00" + // export handle: function 0
	"\x0a\x06\x01\x04\x00\x42\x00\x0b") // its code: i64.const 0

// TestModuleThatDoesNotLoadIsAServerFailure: a function whose module the
// runtime refuses answers the tenant 500, with no operator instruction in
// the body; the release's gate metrics count the request as an error, and
// the account's log holds the runtime's reason. Its twin: a caller's bad
// request to a function that loads stays a 4xx and is not a gate error,
// while a good request is counted and served (must).
func TestModuleThatDoesNotLoadIsAServerFailure(t *testing.T) {
	ctx := context.Background()
	yaml := `version: 1
name: broken
functions:
  broken: {source: ./broken.wasm, timeout: 2s}
routes:
  - {method: GET, path: /broken, function: broken}
`
	// The server refuses such a module on upload and at release
	// (TestUploadRefusesModuleThatCannotRun), so the release is put in the
	// store as an older server kept it, its module in the artifact
	// directory, and rolled out through the control-plane API.
	p := silotest.New(t)
	c := apiClient(t, p.Platform())
	rel := storeUnchecked(t, p.Platform(), yaml, map[string][]byte{"broken": notLoadable})
	ro, err := c.StartRollout(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Follow(ctx, ro.ID, func(rollout.Rollout) error { return nil }); err != nil {
		t.Fatal(err)
	}
	acme := p.Tenant(t, "acme")
	rt := p.Platform().Runtime
	release := releaseOf(t, p, acme.ID)
	if release != rel.ID {
		t.Fatalf("acme runs %s, want the uploaded release %s", release, rel.ID)
	}

	for i := range 2 {
		r := acme.GET(t, "/broken")
		if r.Status != http.StatusInternalServerError {
			t.Fatalf("request %d to a function whose module does not load: %s; want 500", i+1, r)
		}
		for _, leak := range []string{"wasm", "GOOS", "buildmode", "invalid", "sdk/fn"} {
			if strings.Contains(string(r.Body), leak) {
				t.Errorf("the tenant's error body tells of %q (an operator's matter): %s", leak, r.Body)
			}
		}
	}
	if m := rt.ReleaseMetrics(acme.ID, release); m.Invocations != 2 || m.Errors != 2 {
		t.Errorf("gate metrics of release %s: %d requests, %d errors; want 2 and 2", release, m.Invocations, m.Errors)
	}
	lines := logText(p.Logs(t, acme.ID))
	if !strings.Contains(lines, "load function") || !strings.Contains(lines, "does not export") {
		t.Errorf("the account's log does not hold why the module does not load:\n%s", lines)
	}

	// The twin, on the findings app: a bad request is the caller's (4xx,
	// not a gate error), a good one is served and counted.
	q := silotest.New(t)
	q.Deploy(t, app)
	globex := q.Tenant(t, "globex")
	qrel := releaseOf(t, q, globex.ID)
	if r := globex.POST(t, "/findings", `{"severity":`); r.Status < 400 || r.Status > 499 {
		t.Fatalf("POST of a body cut short: %s; want a 4xx", r)
	}
	if r := globex.GET(t, "/findings"); r.Status != http.StatusOK {
		t.Fatalf("GET /findings: %s; want 200", r)
	}
	if m := q.Platform().Runtime.ReleaseMetrics(globex.ID, qrel); m.Invocations != 2 || m.Errors+m.Status5xx != 0 {
		t.Errorf("gate metrics of release %s: %d requests, %d errors, %d 5xx; want 2 requests, no error", qrel, m.Invocations, m.Errors, m.Status5xx)
	}
}
