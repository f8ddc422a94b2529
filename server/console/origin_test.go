package console_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/silotest"
)

// TestDevBuildIsNotRolledOut: the releases page shows a build of silo dev
// as such and offers no Roll out for it, and a Roll out posted anyway is
// refused with the server's error, starting nothing; a release built to
// ship (the twin) is shown as deployed and offered Roll out.
func TestDevBuildIsNotRolledOut(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	f.sp.Tenant(t, "globex")
	shipped := build(t, f, "  findings: {description: \"Findings reported by the tenant's scanners.\"}\n", "  notes: {}\n")
	app := silotest.CopyExample(t)
	y, err := os.ReadFile(filepath.Join(app, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	at := "  findings: {description: \"Findings reported by the tenant's scanners.\"}\n"
	if err := os.WriteFile(filepath.Join(app, "silo.yaml"), []byte(strings.Replace(string(y), at, at+"  drafts: {}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.EnsureAccount(ctx, control.CreateRequest{ID: "dev-ann", Kind: silo.KindDeveloper, Name: "developer"}); err != nil {
		t.Fatal(err)
	}
	plan, err := f.p.DeployTo(ctx, app, "dev-ann")
	if err != nil {
		t.Fatalf("a dev build: %v", err)
	}
	dev := plan.Release

	b := f.browser(t)
	b.signIn()
	page := b.get("/console/releases").body
	row := func(id string) string {
		t.Helper()
		i := strings.Index(page, id[:10])
		if i < 0 {
			t.Fatalf("the releases page does not list %s:\n%s", id, page)
		}
		rest := page[i:]
		if j := strings.Index(rest, "</tr>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	if r := row(dev); !strings.Contains(r, "dev build for dev-ann") || strings.Contains(r, "/rollout\"") {
		t.Errorf("the row of the dev build %s: %s; want it marked, with no Roll out", dev, r)
	}
	if r := row(shipped.ID); !strings.Contains(r, ">deploy<") || !strings.Contains(r, `href="/console/releases/`+shipped.ID+`/rollout"`) {
		t.Errorf("the row of release %s: %s; want it deployed, with Roll out", shipped.ID, r)
	}

	tok := b.csrf("/console/releases")
	pg := b.post("/console/releases/"+dev+"/rollout", url.Values{"csrf": {tok}})
	if after := b.get(pg.location).body; !strings.Contains(after, `class="flash err"`) || !strings.Contains(after, "is a developer&#39;s build from silo dev of dev-ann") {
		t.Errorf("Roll out of the dev build posted anyway: no refusal shown:\n%s", after)
	}
	if ros, err := f.p.Runner.List(ctx, 10); err != nil || len(ros) != 0 {
		t.Fatalf("rollouts after Roll out of a dev build: %v, %v; want none", ros, err)
	}
}
