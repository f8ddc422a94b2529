package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Through a running server, silo rollout rollback follows the rollback's
// rollout until it stops, as silo deploy follows its own, and exits as
// deploy does; with --detach (deploy's flag too) it returns with the
// rollout as it started.
func TestRollbackFollowsThroughAServer(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")

	ctx, stop := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", c.dataDir, "--file", c.file, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	t.Cleanup(func() { stop(); <-done })
	api := regexp.MustCompile(`API on (http://\S+)`)
	for deadline := time.Now().Add(time.Minute); api.FindString(errOut.String()) == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", errOut.String())
		}
	}

	for i, greeting := range []string{"Hi, ", "Hey, "} {
		writeFile(t, file, strings.Replace(string(src), "Hello, ", greeting, 1))
		if got := c.ok("deploy"); !strings.Contains(got, "succeeded") {
			t.Fatalf("deploy %d through the server: %s", i+1, got)
		}
		if i == 0 {
			got := c.ok("rollout", "rollback")
			if !strings.Contains(got, "ro-000002") || !strings.Contains(got, "succeeded") {
				t.Errorf("rollout rollback through the server: %s; want the rollback's rollout ro-000002 followed until it succeeded", got)
			}
			continue
		}
		got := c.ok("rollout", "rollback", "--detach")
		if !strings.Contains(got, "ro-000004") || !strings.Contains(got, "running") || strings.Contains(got, "succeeded") {
			t.Errorf("rollout rollback --detach through the server: %s; want ro-000004 as it started, running", got)
		}
	}
}
