package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// TestReleaseOrigins runs silo as a user does. A build of silo dev is
// listed as a dev build for the developer account (text and -o json) and
// silo deploy --release refuses to roll it out, with one error saying what
// it is and what to do, starting nothing; silo build -f other.yaml is
// listed as a build of other.yaml and rolls out (must twin). silo deploy of
// the project's sources the dev build was made of records that release as
// deployed and rolls it out (the dev mark upgraded); a dev build of a
// release deployed before leaves it deployed.
func TestReleaseOrigins(t *testing.T) {
	t.Setenv("USER", "tester")
	file, src := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme") // the first release, current
	list := func() map[string]server.ReleaseInfo {
		t.Helper()
		var rs []server.ReleaseInfo
		out := c.ok("release", "list", "-o", "json")
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("release list -o json: %v\n%s", err, out)
		}
		m := map[string]server.ReleaseInfo{}
		for _, r := range rs {
			m[r.ID] = r
		}
		return m
	}
	first := ""
	for id, r := range list() {
		first = id
		if r.Origin.Kind != store.OriginDeploy || !r.Current {
			t.Errorf("the first release: %+v; want it current, origin deploy", r)
		}
	}

	changed := strings.Replace(string(src), "Hello, ", "Hi, ", 1)
	if changed == string(src) {
		t.Fatal("the app's silo.yaml has no greeting to change")
	}
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	devBuild(t, c)
	var dev string
	for id, r := range list() {
		if id != first {
			dev = id
			if r.Origin != store.DevOrigin("dev-tester") || r.Current {
				t.Errorf("silo dev's release %s: %+v; want origin dev for dev-tester, not current", id, r)
			}
		}
	}
	if dev == "" {
		t.Fatal("release list after silo dev: no release of its build")
	}
	if out := c.ok("release", "list"); !strings.Contains(out, "dev build for dev-tester") {
		t.Errorf("release list does not mark %s as a dev build:\n%s", dev, out)
	}
	c.fails("release "+dev+" is a developer's build from silo dev of dev-tester", "deploy", "--release", dev, "--yes")
	_, _, errOut := c.run("deploy", "--release", dev, "--yes")
	if !strings.Contains(errOut, "silo deploy in the directory holding silo.yaml") {
		t.Errorf("deploy --release of a dev build: %q; want it to say what to do", errOut)
	}
	if out := c.ok("rollout", "list"); !strings.Contains(out, "no rollout yet") {
		t.Errorf("rollout list after the refusal: %s; want none", out)
	}

	// The same sources deployed from the project: the same release, now
	// deployed, rolled out.
	if out := c.ok("deploy", "--yes"); !strings.Contains(out, dev) {
		t.Errorf("deploy of the sources silo dev built: %s; want release %s", out, dev)
	}
	if r := list()[dev]; r.Origin.Kind != store.OriginDeploy || !r.Current {
		t.Errorf("the dev build after silo deploy of its sources: %+v; want it deployed and current", r)
	}
	// A dev build of it now leaves it deployed.
	devBuild(t, c)
	if r := list()[dev]; r.Origin.Kind != store.OriginDeploy {
		t.Errorf("a deployed release after silo dev built it again: %+v; want it still deployed", r)
	}

	// A scratch file built is listed as such, and rolls out.
	other := filepath.Join(filepath.Dir(file), "other.yaml")
	if err := os.WriteFile(other, src, 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("build", "-f", other)
	r, ok := list()[first]
	if !ok || r.Origin.Kind != store.OriginDeploy {
		t.Errorf("the first release, built again from other.yaml: %+v; want it still deployed", r)
	}
	scratch := strings.Replace(string(src), "Hello, ", "Howdy, ", 1)
	if err := os.WriteFile(other, []byte(scratch), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("build", "-f", other)
	var built string
	for id, r := range list() {
		if r.Origin.Kind == store.OriginBuild {
			built = id
			if r.Origin.From != other {
				t.Errorf("silo build -f other.yaml: origin %+v; want a build of %s", r.Origin, other)
			}
		}
	}
	if out := c.ok("release", "list"); !strings.Contains(out, "build of "+other) {
		t.Errorf("release list does not say %s was built from other.yaml:\n%s", built, out)
	}
	c.ok("deploy", "--release", built, "--yes")
	if r := list()[built]; !r.Current {
		t.Errorf("silo build's release after deploy --release: %+v; want it current", r)
	}
}

// devBuild runs silo dev until its build is live, then stops it.
func devBuild(t *testing.T, c *cli) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runCmd(ctx, []string{"dev", "--listen", "127.0.0.1:0", "--data-dir", c.dataDir, "--file", c.file}, &out, &errOut)
	}()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "is live") {
		select {
		case err := <-done:
			t.Fatalf("silo dev exited early: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
		case <-deadline:
			t.Fatalf("silo dev never went live:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	<-done
}
