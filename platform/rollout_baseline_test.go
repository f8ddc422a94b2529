package platform_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// breakable makes the example's list function answer 500 when its plan
// config says "broken" and the request asks for it (?fail=1), and sets the
// plan config to "${param.plan}<suffix>": releases that differ only in
// that suffix behave as healthy ("") or broken ("-broken...").
func breakable(t *testing.T, app, suffix string) {
	t.Helper()
	fnPath := filepath.Join(app, "functions", "list", "main.go")
	src := mustReadFile(t, fnPath)
	const hook = "func handle(r *fn.Request) *fn.Response {\n"
	if !strings.Contains(src, "broken") {
		if !strings.Contains(src, hook) {
			t.Fatalf("breakable: %s has no %q; update breakable", fnPath, hook)
		}
		src = strings.Replace(src, hook, hook+"\tif strings.Contains(fn.Config(\"plan\"), \"broken\") && r.QueryValue(\"fail\") != \"\" {\n\t\treturn finding.Error(500, \"broken\")\n\t}\n", 1)
		src = strings.Replace(src, "import (\n", "import (\n\t\"strings\"\n", 1)
		writeFile(t, fnPath, src)
	}
	yml := filepath.Join(app, "silo.yaml")
	y := mustReadFile(t, yml)
	i := strings.Index(y, "  plan: \"${param.plan}")
	if i < 0 {
		t.Fatalf("breakable: %s has no plan config", yml)
	}
	j := i + strings.Index(y[i:], "\n")
	writeFile(t, yml, y[:i]+"  plan: \"${param.plan}"+suffix+"\""+y[j:])
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// End to end through the gateway and the runtime's per-release metrics: a
// broken release served errors in the canary ring and was rolled back; the
// next rollout's baseline is what the previous release served, so a second
// release failing a third of its requests fails the 2% gate (under the
// baseline the broken release left behind, ≈ 50%, it would pass), and a
// healthy one passes.
func TestGateBaselineAfterBrokenRelease(t *testing.T) {
	for _, tc := range []struct {
		name      string
		suffix    string
		failEvery int // every failEvery-th request asks to fail
		want      rollout.State
	}{
		{"partly broken release fails", "-broken-again", 3, rollout.StateFailed},
		{"healthy release passes", "-fine", 3, rollout.StateSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := silotest.New(t)
			app := silotest.CopyExample(t)
			breakable(t, app, "")
			v1 := p.Deploy(t, app).Release.ID
			acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
			p.Tenant(t, "globex")
			ctx := context.Background()
			pp := p.Platform()
			traffic := func(n, failEvery int) {
				for i := 1; i <= n; i++ {
					path := "/findings"
					if failEvery > 0 && i%failEvery == 0 {
						path += "?fail=1"
					}
					acme.GET(t, path)
				}
			}
			traffic(40, 3) // v1 ignores ?fail: all succeed
			roll := func(suffix string, n, failEvery int) rollout.Rollout {
				t.Helper()
				breakable(t, app, suffix)
				rel, err := pp.Build(ctx, app)
				if err != nil {
					t.Fatal(err)
				}
				r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
				if err != nil {
					t.Fatal(err)
				}
				waitRollout(t, pp.Runner, r.ID, "canary baking", func(r rollout.Rollout) bool {
					return ringPhase(r, "canary") == rollout.PhaseBaking && !r.Rings[2].BakeUntil.IsZero()
				})
				traffic(n, failEvery)
				p.Clock().Advance(time.Minute)
				return waitRollout(t, pp.Runner, r.ID, "done", func(r rollout.Rollout) bool { return r.State != rollout.StateRunning })
			}
			if r := roll("-broken", 40, 1); r.State != rollout.StateFailed {
				t.Fatalf("the broken release: %s (%s), want failed", r.State, r.Reason)
			}
			if got := acme.GET(t, "/findings?fail=1"); got.Status != 200 {
				t.Fatalf("after the rollback acme answers %d, want 200 (back on %s)", got.Status, v1)
			}
			r := roll(tc.suffix, 60, tc.failEvery)
			if r.State != tc.want {
				t.Fatalf("next release: %s (%s), want %s", r.State, r.Reason, tc.want)
			}
			v := r.Rings[2].Verdict
			if v == nil || v.PrevRelease != v1 || v.PrevErrorRate != 0 {
				t.Errorf("canary verdict %s, want a baseline of release %s without errors", fmt.Sprintf("%+v", v), v1)
			}
		})
	}
}
