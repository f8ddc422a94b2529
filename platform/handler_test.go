package platform_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// setHandler sets the handler of the example's function list to h in the
// app's silo.yaml.
func setHandler(t *testing.T, app, h string) {
	t.Helper()
	yml := filepath.Join(app, "silo.yaml")
	y := mustReadFile(t, yml)
	const src = "    source: ./functions/list\n"
	if !strings.Contains(y, src) {
		t.Fatalf("setHandler: %s has no %q; update setHandler", yml, src)
	}
	writeFile(t, yml, strings.Replace(y, src, src+"    handler: "+h+"\n", 1))
}

// wantNoHandler fails t unless err is the release build's refusal of the
// example's function list for not exporting handler run.
func wantNoHandler(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s of an app whose list declares handler run, which its module does not export: no error", what)
	}
	if silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("%s: code %s, want %s: %v", what, silo.ErrorCode(err), silo.CodeInvalid, err)
	}
	msg := silo.UserMessage(err)
	for _, want := range []string{`function "list"`, `handler "run"`, "exports the handler handle", "handler: in silo.yaml", "//go:wasmexport run"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: the error does not say %q: %s", what, want, msg)
		}
	}
	for _, other := range []string{"silo_alloc", "_initialize", `"ingest"`, `"smoke"`} {
		if strings.Contains(msg, other) {
			t.Errorf("%s: the error names %s, which is not the problem: %s", what, other, msg)
		}
	}
}

// TestHandlerTheModuleDoesNotExportIsRefused: a function whose silo.yaml
// names a handler its module does not export is refused where a release
// is made: by the release build (silo build, plan, apply and dev build
// through PrepareRelease; silo deploy through BuildRelease) and by the
// server for an uploaded release, naming the function, the handler, the
// handlers the module exports and the fix; nothing is stored. Its twins:
// the app as it is, and the app whose code exports run as the fix says,
// are built, uploaded and served.
func TestHandlerTheModuleDoesNotExportIsRefused(t *testing.T) {
	ctx := context.Background()
	app := silotest.CopyExample(t)
	yml := filepath.Join(app, "silo.yaml")
	p := silotest.New(t)
	plane := p.Platform().Plane
	c := apiClient(t, p.Platform())

	// Must: the app as it is builds, and its release uploads.
	cache := t.TempDir()
	good, err := platform.BuildRelease(ctx, yml, cache, io.Discard)
	if err != nil {
		t.Fatalf("build of the example: %v", err)
	}
	arts := map[string]string{}
	for k, d := range good.Artifacts {
		data, err := os.ReadFile(platform.BuiltArtifact(cache, d))
		if err != nil {
			t.Fatal(err)
		}
		if arts[k], err = c.PutArtifact(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	goodYAML := mustReadFile(t, yml)
	if _, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: goodYAML, Artifacts: arts}); err != nil {
		t.Fatalf("upload of the example's release: %v", err)
	}
	before, err := c.Releases(ctx, 100, true)
	if err != nil {
		t.Fatal(err)
	}

	// Must not: list declares handler run.
	setHandler(t, app, "run")
	_, _, err = plane.PrepareRelease(ctx, yml, store.Origin{Kind: store.OriginDeploy})
	wantNoHandler(t, "PrepareRelease", err)
	_, err = platform.BuildRelease(ctx, yml, cache, io.Discard)
	wantNoHandler(t, "BuildRelease", err)
	_, err = c.UploadRelease(ctx, server.ReleaseRequest{Spec: mustReadFile(t, yml), Artifacts: arts})
	wantNoHandler(t, "the upload", err)
	if after, err := c.Releases(ctx, 100, true); err != nil || len(after) != len(before) {
		t.Errorf("releases after the refusals: %d (%v), want %d as before", len(after), err, len(before))
	}

	// Must: the code exports run as the error says; the release builds
	// and serves through run.
	writeFile(t, filepath.Join(app, "functions", "list", "run.go"), `//go:build wasip1

package main

import "github.com/silo-run/silo/sdk/fn"

//go:wasmexport run
func run(ptr, n uint32) uint64 { return fn.Serve(ptr, n, handle) }
`)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	if r := acme.GET(t, "/findings"); r.Status != http.StatusOK {
		t.Fatalf("GET /findings through handler run: %s; want 200", r)
	}
}

// TestModuleWithoutItsHandlerIsAServerFailure: a release stored without
// the build's check (as before the check was made) whose function's
// module does not export its handler answers the tenant 500 with the
// gateway's generic message, not 400 with the wasm ABI: the release's
// fault, counted as a failed request by the gates, the detail in the
// account's log. Its twin: the same module under its own handler serves
// 200 and is counted without an error.
func TestModuleWithoutItsHandlerIsAServerFailure(t *testing.T) {
	ctx := context.Background()
	app := silotest.CopyExample(t)
	cache := t.TempDir()
	built, err := platform.BuildRelease(ctx, filepath.Join(app, "silo.yaml"), cache, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(platform.BuiltArtifact(cache, built.Artifacts["list"]))
	if err != nil {
		t.Fatal(err)
	}
	p := silotest.New(t)
	c := apiClient(t, p.Platform())
	d, err := c.PutArtifact(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	// release stores, unchecked, a release whose function hello is the
	// example's list under handler h, and rolls it out.
	release := func(h string) string {
		t.Helper()
		st, err := spec.Parse("silo.yaml", []byte(`version: 1
name: handler
functions:
  hello: {source: ./hello.wasm, handler: `+h+`, timeout: 2s, tables: {findings: read}, config: [plan]}
tables:
  findings: {}
config:
  plan: free
routes:
  - {method: GET, path: /hello, function: hello}
`))
		if err != nil {
			t.Fatal(err)
		}
		_, stored, err := engine.NewRelease(st, map[string]string{"hello": d}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Platform().Plane.PutRelease(ctx, stored); err != nil {
			t.Fatal(err)
		}
		ro, err := c.StartRollout(ctx, stored.ID, rollout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Follow(ctx, ro.ID, func(rollout.Rollout) error { return nil }); err != nil {
			t.Fatal(err)
		}
		return stored.ID
	}
	rt := p.Platform().Runtime

	// Must: under handle, the module serves.
	good := release("handle")
	acme := p.Tenant(t, "acme")
	if got := releaseOf(t, p, acme.ID); got != good {
		t.Fatalf("acme runs %s, want %s", got, good)
	}
	if err := p.Platform().LoadCurrent(ctx); err != nil { // compiled, as on a server that has run a while
		t.Fatal(err)
	}
	if r := acme.GET(t, "/hello"); r.Status != http.StatusOK {
		t.Fatalf("GET /hello under handler handle: %s; want 200", r)
	}
	if m := rt.ReleaseMetrics(acme.ID, good); m.Invocations != 1 || m.Errors != 0 {
		t.Errorf("gate metrics of release %s: %d requests, %d errors; want 1 and 0", good, m.Invocations, m.Errors)
	}

	// Must not: under run, which it does not export.
	bad := release("run")
	if got := releaseOf(t, p, acme.ID); got != bad {
		t.Fatalf("acme runs %s, want %s", got, bad)
	}
	for i := range 2 {
		r := acme.GET(t, "/hello")
		if r.Status != http.StatusInternalServerError {
			t.Fatalf("request %d to a function whose module does not export its handler: %s; want 500", i+1, r)
		}
		for _, leak := range []string{"i32", "i64", "export", "run", "handler", "invalid"} {
			if strings.Contains(string(r.Body), leak) {
				t.Errorf("the tenant's error body tells of %q (an operator's matter): %s", leak, r.Body)
			}
		}
	}
	if m := rt.ReleaseMetrics(acme.ID, bad); m.Invocations != 2 || m.Errors != 2 {
		t.Errorf("gate metrics of release %s: %d requests, %d errors; want 2 and 2", bad, m.Invocations, m.Errors)
	}
	if lines := logText(p.Logs(t, acme.ID)); !strings.Contains(lines, `does not export its handler \"run\"`) && !strings.Contains(lines, `does not export its handler "run"`) {
		t.Errorf("the account's log does not hold which handler is missing:\n%s", lines)
	}
}
