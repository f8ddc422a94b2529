package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tenantsRing is a rollout section whose one ring selects the tenants.
const tenantsRing = `
rollout:
  rings:
    - name: tenants
      select: {kind: tenant}
`

// A rollback whose rings leave out no account it returns prints no ring
// rest, with the default rings (which select every kind of account) and
// with rings over the tenants alone. The twin: an environment created on
// the rolled-back release is one the rollback returns and only rest
// selects it, so the rollback prints rest, with that account returned.
func TestRollbackPrintsNoEmptyRest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		rollout string // appended to silo.yaml
		env     bool   // an environment created after the deploy
		rest    bool
	}{
		{"default rings", "", false, false},
		{"tenants ring, no other account", tenantsRing, false, false},
		{"tenants ring, an environment", tenantsRing, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file, src := initProject(t)
			writeFile(t, file, string(src)+tc.rollout)
			c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
			c.ok("tenant", "create", "acme")
			writeFile(t, file, strings.Replace(string(src)+tc.rollout, "Hello, ", "Hi, ", 1))
			c.ok("deploy")
			if tc.env {
				c.ok("env", "create", "e2e-1", "--kind", "test", "--ttl", "1h")
			}
			out := c.ok("rollout", "rollback")
			if !strings.Contains(out, "succeeded") {
				t.Fatalf("rollback: %s; want it followed until it succeeded", out)
			}
			returned := regexp.MustCompile(`(?m)^\s+ring rest\s+✓ promoted\s+1/1 applied`)
			for _, cmd := range []string{"rollout rollback", "rollout status ro-000002"} {
				if cmd != "rollout rollback" {
					out = c.ok(strings.Fields(cmd)...)
				}
				if got := strings.Contains(out, "ring rest"); got != tc.rest || (tc.rest && !returned.MatchString(out)) {
					t.Errorf("silo %s printed:\n%s\nwant ring rest: %v (with the environment returned)", cmd, out, tc.rest)
				}
			}
		})
	}
}
