package main

import (
	"strings"
	"testing"

	"github.com/silo-run/silo/provider/aws/awstest"
)

// TestAWSUnreachableSaysSoAtOnce: with the organization's endpoint
// refusing connections (the emulator stopped), a command run without a
// server fails with one sentence saying AWS cannot be reached, and the
// cause (the network's error) is printed only under SILO_DEBUG; while the
// organization runs, the same commands succeed (the twin).
func TestAWSUnreachableSaysSoAtOnce(t *testing.T) {
	awsEnv(t, true)
	c := newCLI(t)
	var url string
	t.Run("organization running", func(t *testing.T) {
		org := awstest.Serve(t, "127.0.0.1:0", t.TempDir())
		url = org.URL()
		t.Setenv("AWS_ENDPOINT_URL", url)
		c := &cli{t: t, dataDir: c.dataDir, file: c.file}
		c.ok("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
		if out := c.ok("doctor"); !strings.Contains(out, "no problem found") {
			t.Errorf("silo doctor:\n%s", out)
		}
		if out := c.ok("tenant", "show", "acme"); strings.Contains(out, "Problems") || !strings.Contains(out, "applied") {
			t.Errorf("silo tenant show acme:\n%s", out)
		}
	})
	if t.Failed() {
		return
	}
	t.Setenv("AWS_ENDPOINT_URL", url) // nothing listens there any more
	for _, args := range [][]string{{"doctor"}, {"tenant", "show", "acme"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Setenv("SILO_DEBUG", "")
			code, out, errOut := c.run(args...)
			t.Logf("exit %d\n%s%s", code, out, errOut)
			all := out + errOut
			if !strings.Contains(all, "cannot reach AWS") {
				t.Errorf("does not say AWS cannot be reached:\n%s", all)
			}
			for _, raw := range []string{"dial", "connection refused", "operation error", "cause:", "server log"} {
				if strings.Contains(all, raw) {
					t.Errorf("says %q:\n%s", raw, all)
				}
			}
			if code == 0 {
				return
			}
			t.Setenv("SILO_DEBUG", "1")
			_, _, errOut = c.run(args...)
			if !strings.Contains(errOut, "cause: ") || !strings.Contains(errOut, "connection refused") {
				t.Errorf("with SILO_DEBUG=1, the cause is not printed:\n%s", errOut)
			}
		})
	}
}
