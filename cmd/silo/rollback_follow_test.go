package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startServer runs silo server on c's data dir in this process until the
// test ends, and returns once its API answers.
func startServer(t *testing.T, c *cli) {
	t.Helper()
	var errOut lockedBuffer
	startServerTo(t, c, &errOut)
}

// startServerTo is startServer writing the server's stderr to errOut, as
// it runs.
func startServerTo(t *testing.T, c *cli, errOut *lockedBuffer) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", c.dataDir, "--file", c.file, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, errOut)
	}()
	t.Cleanup(func() { stop(); <-done })
	api := regexp.MustCompile(`API on (http://\S+)`)
	for deadline := time.Now().Add(time.Minute); api.FindString(errOut.String()) == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", errOut.String())
		}
	}
}

// Through a running server, silo rollout rollback follows the rollback's
// rollout until it stops, as silo deploy follows its own, and exits as
// deploy does; with --detach (deploy's flag too) it returns with the
// rollout as it started.
func TestRollbackFollowsThroughAServer(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	startServer(t, c)

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

// Through a running server, silo rollout resume follows the resumed
// rollout until it stops and exits as silo deploy does: a ring whose gate
// is inconclusive again pauses it again, and the command fails saying so.
// With --detach it returns with the rollout running, and succeeds.
func TestResumeFollowsThroughAServer(t *testing.T) {
	t.Parallel()
	c, file, src := gatedServer(t)

	// acme changes, the canary gate sees no traffic: the rollout pauses.
	writeFile(t, file, strings.Replace(string(src)+gatedRing, "Hello, ", "Hi, ", 1))
	c.fails("is paused", "deploy")

	// Resumed, the ring bakes again, its gate is inconclusive again, and
	// the rollout pauses again: the follow ends there and fails.
	code, out, errOut := c.run("rollout", "resume")
	if code == 0 || !strings.Contains(errOut, "rollout ro-000001 is paused: ring canary is inconclusive") || !strings.Contains(out, "paused") {
		t.Errorf("rollout resume through the server: exit %d, stdout %q, stderr %q; want the rollout followed until it paused again, and a failure saying so", code, out, errOut)
	}

	// Twin: --detach returns with the rollout as it resumed.
	if got := c.ok("rollout", "resume", "--detach"); !strings.Contains(got, "ro-000001") || !strings.Contains(got, "running") {
		t.Errorf("rollout resume --detach through the server: %s; want ro-000001 running", got)
	}
}

// gatedServer makes a project whose silo.yaml has gatedRing, creates
// acme on it and starts a server on its data dir. It returns the CLI, the
// spec file and the spec without gatedRing.
func gatedServer(t *testing.T) (*cli, string, []byte) {
	t.Helper()
	file, src := initProject(t)
	if err := os.WriteFile(file, append(src, gatedRing...), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	startServer(t, c)
	return c, file, src
}
