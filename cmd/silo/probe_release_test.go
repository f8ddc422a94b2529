package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
)

// TestProbeReleasesAreNotListedOrShipped: after silo verify --probe, the
// release lists (silo release list on the data dir and through the API
// server, GET /v1/releases) leave out the releases the probe built;
// --probes (probes=true) lists them, marked. Rolling one out through the
// API (POST /v1/rollouts and its preview) or through the runner silo
// deploy drives, making it current, or applying it to a tenant is refused
// with one error saying it is a probe build, and changes nothing. Twin:
// the app's release is listed and rolls out through the same calls.
func TestProbeReleasesAreNotListedOrShipped(t *testing.T) {
	file, src := initProject(t)
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme")
		f.local("verify", "--probe")
	})
	ctx := context.Background()
	list := func(out string) (app, probes []string) {
		t.Helper()
		var rs []server.ReleaseInfo
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("release list: %v\n%s", err, out)
		}
		for _, r := range rs {
			if r.Probe {
				probes = append(probes, r.ID)
			} else {
				app = append(app, r.ID)
			}
		}
		return app, probes
	}
	app, probes := list(f.local("release", "list", "-o", "json"))
	if len(app) != 1 || len(probes) != 0 {
		t.Fatalf("release list after silo verify --probe: app %v, probe builds %v; want the app's one release only", app, probes)
	}
	appRel := app[0]
	all, probes := list(f.local("release", "list", "--probes", "-o", "json"))
	if len(probes) == 0 || len(all) != 1 {
		t.Fatalf("release list --probes: app %v, probe builds %v; want the app's release and the probe's, marked", all, probes)
	}
	probeRel := probes[0]
	if out := f.local("release", "list", "--probes"); !strings.Contains(out, probeRel+"  ") || !strings.Contains(out, "(probe build of silo verify --probe)") {
		t.Errorf("release list --probes does not mark %s as a probe build:\n%s", probeRel, out)
	}
	if out := f.local("release", "list"); strings.Contains(out, probeRel) || !strings.Contains(out, appRel) {
		t.Errorf("release list: %s; want %s and not %s", out, appRel, probeRel)
	}
	if a, p := list(f.remote("release", "list", "-o", "json")); len(p) != 0 || len(a) != 1 || a[0] != appRel {
		t.Errorf("release list through the API: app %v, probe builds %v; want [%s] only", a, p, appRel)
	}

	cl := server.NewClient(f.url, f.token, nil)
	rs, err := cl.Releases(ctx, 50, true)
	if err != nil {
		t.Fatal(err)
	}
	marked := false
	for _, r := range rs {
		marked = marked || r.ID == probeRel && r.Probe
	}
	if !marked {
		t.Errorf("GET /v1/releases?probes=true: %+v; want %s marked probe", rs, probeRel)
	}

	// The API refuses to roll the probe's release out, confirmed or not,
	// and to preview it.
	refused := func(what string, err error, acct string) {
		t.Helper()
		want := "release " + probeRel + " is a probe build made by silo verify --probe"
		if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), want) || !strings.Contains(silo.UserMessage(err), "silo deploy") {
			t.Errorf("%s: %v; want it refused as a probe build (%q) naming what to do instead", what, err, want)
		}
		if acct != "" && !strings.Contains(silo.UserMessage(err), "applied to account "+acct) {
			t.Errorf("%s: %v; want it to name account %s", what, err, acct)
		}
	}
	_, err = cl.StartRollout(ctx, probeRel, rollout.Options{AllowDataLoss: true})
	refused("POST /v1/rollouts of the probe's release", err, "")
	_, err = cl.PreviewRollout(ctx, probeRel)
	refused("GET /v1/rollouts/preview of the probe's release", err, "")

	// The runner silo deploy drives on a data dir, making it current and
	// applying it to a tenant refuse it too.
	a, rn, err := localRunner(ctx, &globals{dataDir: f.dir, file: file, stdout: io.Discard, stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rn.Start(ctx, probeRel, rollout.Options{AllowDataLoss: true, RetryFailed: true})
	refused("a local rollout of the probe's release", err, "")
	rel, err := a.plane.Release(ctx, probeRel)
	if err != nil {
		t.Fatal(err)
	}
	refused("making the probe's release current", a.plane.SetCurrent(ctx, rel), "")
	acme, err := a.plane.Account(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := a.plane.Engine.PlanAccount(ctx, acme, rel)
	if err != nil {
		t.Fatal(err)
	}
	refused("applying the probe's release to acme", a.plane.Engine.Apply(ctx, plan), "acme")
	if after, err := a.plane.Account(ctx, "acme"); err != nil || after.Release != appRel {
		t.Errorf("acme after the refusals: release %q, %v; want it left on %s", after.Release, err, appRel)
	}
	a.Close()
	if out := f.remote("rollout", "list"); !strings.Contains(out, "no rollout yet") {
		t.Errorf("rollout list after the refusals: %s; want no rollout", out)
	}

	// Twin: the app's release passes the same API call (it is current on
	// every account: nothing to roll out), and a release of the changed
	// app rolls out through silo deploy, listed as well.
	ro, err := cl.StartRollout(ctx, appRel, rollout.Options{})
	if u, ok := errors.AsType[*rollout.UpToDate](err); !ok || u.Release != appRel {
		t.Fatalf("POST /v1/rollouts of the app's release: %+v, %v; want nothing to roll out", ro, err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "Hello, ", "Hi, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := f.remote("deploy", "--detach"); !strings.Contains(out, "ro-000001") {
		t.Errorf("deploy --detach of the changed app: %s; want rollout ro-000001", out)
	}
	if a, p := list(f.remote("release", "list", "-o", "json")); len(a) != 2 || len(p) != 0 {
		t.Errorf("release list after the deploy: app %v, probe builds %v; want two releases of the app", a, p)
	}
}
