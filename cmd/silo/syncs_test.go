package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cliArgsEnv makes the test binary run silo with the arguments it holds (a
// JSON array) instead of the tests (TestMain).
const cliArgsEnv = "SILO_TEST_CLI_ARGS"

// maxOnboardingSyncs is the most syncs one silo tenant create of the
// example stack may make, control plane included (docs/benchmarks.md,
// "Onboarding"): the journal's two commits and the first sync of the
// log in a new process (its directory), the audit witness, and the local
// provider's 4 (TestOnboardingSyncs).
const maxOnboardingSyncs = 8

// syncCall matches a sync call in strace's output (-f: "PID call(...",
// or "PID call(... <unfinished ...>" whose "<... call resumed>" line is not
// counted again).
var syncCall = regexp.MustCompile(`(?m)^\d+ +(fsync|fdatasync|sync_file_range)\(`)

// TestTenantCreateSyncs counts, under strace, the syncs of the whole
// process of one silo tenant create of the example stack, the second
// tenant of a data dir (the release built and stored already, the
// installation recorded in the data dir), and fails
// above maxOnboardingSyncs. The twin: the count is not zero, and the
// tenant exists afterwards. Skipped where strace is missing or may not
// trace.
func TestTenantCreateSyncs(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the example's functions")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed")
	}
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	// The next open records the installation in the data dir, once per
	// data dir (platform/datadir.go); the count is of an onboarding.
	c.ok("tenant", "list")
	args, _ := json.Marshal([]string{"--data-dir", c.dataDir, "--file", c.file, "tenant", "create", "globex"})
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-y", "-o", trace, "-e", "trace=fsync,fdatasync,sync_file_range", os.Args[0])
	cmd.Env = append(os.Environ(), cliArgsEnv+"="+string(args))
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "ptrace") {
			t.Skipf("strace may not trace here: %s", out)
		}
		t.Fatalf("silo tenant create globex under strace: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	calls := syncCall.FindAllString(string(b), -1)
	t.Logf("%d syncs:\n%s", len(calls), b)
	if len(calls) == 0 {
		t.Fatal("strace saw no sync: the count measures nothing")
	}
	if len(calls) > maxOnboardingSyncs {
		t.Errorf("silo tenant create synced %d times, want at most %d (the list is above)", len(calls), maxOnboardingSyncs)
	}
	c.ok("tenant", "show", "globex")
}
