package runtime

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps wazero inside this package: the SDK and the build package
// must not pull it (nor the runtime) in.
func TestDeps(t *testing.T) {
	for _, pkg := range []string{"../sdk/fn", "../internal/build"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/tetratelabs/wazero") || dep == "github.com/silo-run/silo/runtime" {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
		// Twin: the listing is real.
		if !strings.Contains(string(out), "github.com/silo-run/silo") {
			t.Errorf("go list %s lists no silo package:\n%s", pkg, out)
		}
	}
}
