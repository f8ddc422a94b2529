package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestTenantUpdateKeepsADevelopersBuild: a developer account on its own
// build (as silo dev leaves it: a release with a table the current one
// lacks) keeps that build when silo tenant update changes a parameter: the
// plan changes the parameter alone, on the same release, and the table
// stays. The twin: a tenant's update applies the current release.
func TestTenantUpdateKeepsADevelopersBuild(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c := &cli{t: t, dataDir: filepath.Join(dir, "demo", ".silo"), file: filepath.Join(dir, "demo", "silo.yaml")}
	c.ok("init", "demo")
	c.ok("tenant", "create", "acme")
	createDeveloper(t, c, "dev-ann")
	current, _ := releaseOf(t, c, "acme")

	spec, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	own := strings.Replace(string(spec), "tables:\n  visits: {}", "tables:\n  visits: {}\n  scratch: {}", 1)
	if own == string(spec) {
		t.Fatalf("the scaffold's silo.yaml has no visits table:\n%s", spec)
	}
	if err := os.WriteFile(c.file, []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &globals{dataDir: c.dataDir, file: c.file, stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	a, err := openApp(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Platform.DeployTo(context.Background(), c.file, "dev-ann") // what silo dev does
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	build := p.Release
	if build == current {
		t.Fatalf("the developer's build is the current release %s", current)
	}

	out := c.ok("tenant", "update", "dev-ann", "--param", "plan=pro")
	if want := "dev-ann (developer): " + build + " → " + build; !strings.Contains(out, want) || !strings.Contains(out, "update config/greeting") || strings.Contains(out, "table/scratch") {
		t.Fatalf("tenant update dev-ann:\n%s\nwant %q with config/greeting updated alone", out, want)
	}
	if rel, _ := releaseOf(t, c, "dev-ann"); rel != build {
		t.Fatalf("dev-ann after the update: on %s, want its build %s", rel, build)
	}
	if show := c.ok("tenant", "show", "dev-ann"); !strings.Contains(show, "scratch") || !strings.Contains(show, "plan=pro") {
		t.Fatalf("tenant show dev-ann after the update:\n%s\nwant table scratch kept and plan=pro", show)
	}

	// The twin: a tenant is applied with the current release.
	out = c.ok("tenant", "update", "acme", "--param", "plan=pro")
	if want := "acme (tenant): " + current + " → " + current; !strings.Contains(out, want) {
		t.Fatalf("tenant update acme:\n%s\nwant %q", out, want)
	}
	if rel, st := releaseOf(t, c, "acme"); rel != current || st != silo.StateActive {
		t.Fatalf("acme after the update: %s on %s, want active on %s", st, rel, current)
	}
}

// TestSuspendTakesWhatTheREADMESays: silo tenant suspend and resume take
// tenants, developer accounts and environments, and refuse the production
// account with the same sentence on the data dir and through a server
// (before, the data dir suspended it). Nothing changes on a refusal.
func TestSuspendTakesWhatTheREADMESays(t *testing.T) {
	t.Parallel()
	const want = "silo: the production account cannot be suspended or resumed: the gateway never serves it; suspend a tenant, developer account or environment\n"
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("env", "create", "demo-acme", "--kind", "demo", "--ttl", "1h")
	createDeveloper(t, c, "dev-ann")
	f := startRemote(t) // holds the environment demo-acme
	f.remote("tenant", "create", "acme")
	type runner func(args ...string) (int, string, string)
	for name, run := range map[string]runner{"data dir": c.run, "server": f.remoteRun} {
		for _, verb := range []string{"suspend", "resume"} {
			if code, out, errOut := run("tenant", verb, "production"); code != 1 || out != "" || errOut != want {
				t.Errorf("%s: silo tenant %s production: exit %d, stdout %q, stderr %q; want exit 1, %q", name, verb, code, out, errOut, want)
			}
		}
		if code, out, _ := run("tenant", "list", "--kind", "production"); code != 0 || !strings.Contains(out, "production  active") {
			t.Errorf("%s: production after the refusals:\n%s\nwant active", name, out)
		}
		// The twins: a tenant and an environment are suspended and resumed.
		for _, id := range []string{"acme", "demo-acme"} {
			for _, verb := range []string{"suspend", "resume"} {
				if code, out, errOut := run("tenant", verb, id); code != 0 || errOut != "" {
					t.Errorf("%s: silo tenant %s %s: exit %d, stdout %q, stderr %q; want it done", name, verb, id, code, out, errOut)
				}
			}
		}
	}
	if out := c.ok("tenant", "suspend", "dev-ann"); out != "dev-ann is suspended\n" {
		t.Errorf("tenant suspend dev-ann: %q", out)
	}
}
