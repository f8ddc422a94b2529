package runtime

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// The tests that run guests which never stop by themselves (endless loops,
// loop-free recursion) run each in a child process of the test binary. If
// the guards that stop such guests broke (the checkpoints at function
// entry and loop headers), the guest would spin in machine code forever,
// and while it does Go's garbage collector cannot stop the world, so every
// other goroutine, including the one behind go test -timeout, waits on it:
// in-process the test binary would hang with no report. From outside, the
// parent kills the child at runawayDeadline and fails with a message.

const (
	childEnv = "SILO_RUNTIME_TEST_CHILD" // the test the child runs
	cacheEnv = "SILO_RUNTIME_TEST_CACHE" // the parent's compilation cache
)

// runawayDeadline is how long a child may take. The tests take seconds;
// it only bounds how long a broken guard hangs before the failure.
const runawayDeadline = 3 * time.Minute

// inSubprocess runs the calling top-level test in a child process and
// reports true in the parent, which must then return; in the child it
// reports false and the test runs.
func inSubprocess(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), runawayDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), cacheEnv+"="+cacheDir)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s did not finish within %s and was killed: a guest kept running past its deadline (is every function entry and loop header instrumented?); its output:\n%s", t.Name(), runawayDeadline, out)
	case err != nil:
		t.Fatalf("%s failed in its child process: %v; its output:\n%s", t.Name(), err, out)
	}
	return true
}
