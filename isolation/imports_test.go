package isolation_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the package's dependencies to the contracts: no runtime,
// gateway, or store/provider implementation outside tests.
func TestImports(t *testing.T) {
	for _, pkg := range []string{".", "./report"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Skipf("go list unavailable: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			ours := strings.HasPrefix(dep, "github.com/silo-run/silo/")
			for _, bad := range []string{"/runtime", "/gateway", "/store/sqlite", "/store/postgres", "/provider/local", "/provider/aws"} {
				if ours && strings.Contains(strings.TrimPrefix(dep, "github.com/silo-run/silo"), bad) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
			for _, bad := range []string{"wazero", "modernc.org", "bbolt", "chromedp"} {
				if strings.Contains(dep, bad) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
