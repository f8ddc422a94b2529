//go:build unix

package durable_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/silo-run/silo/internal/durable"
)

// killEnv makes the test binary a child that writes a file and kills
// itself just before a sync (TestKilledWrite).
const killEnv = "DURABLE_TEST_KILL"

// TestKilledWriteChild is the child of TestKilledWrite: it replaces or
// creates (exclusive) the file and kills itself with SIGKILL just before
// the n-th sync.
func TestKilledWriteChild(t *testing.T) {
	v := os.Getenv(killEnv)
	if v == "" {
		t.Skip("run by TestKilledWrite")
	}
	var n int
	var exclusive bool
	var path string
	if _, err := fmt.Sscanf(v, "%d %t %s", &n, &exclusive, &path); err != nil {
		t.Fatal(err)
	}
	count := 0
	o := durable.Options{Exclusive: exclusive, BeforeSync: func(string) {
		if count++; count == n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}}
	if err := durable.WriteFile(path, []byte(strings.Repeat("new\n", 4096)), o); err != nil {
		t.Fatal(err)
	}
	os.Exit(3)
}

// TestKilledWrite kills a process writing a file just before each of its
// syncs, replacing a file or creating one: the name then holds the old
// contents (or nothing) before the temporary file's sync, and all of the
// new after the rename, never part of them; what is left of the temporary
// file is what Temps lists. The twin: a child not killed writes the file
// and leaves nothing.
func TestKilledWrite(t *testing.T) {
	newData := strings.Repeat("new\n", 4096)
	for _, tc := range []struct {
		exclusive bool
		kill      int    // the sync before which the child dies; 0: none
		want      string // the contents after it ("" none)
		temps     int
	}{
		{false, 1, "old\n", 1},
		{false, 2, newData, 0},
		{false, 0, newData, 0},
		{true, 1, "", 1},
		{true, 2, newData, 0},
		{true, 0, newData, 0},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "record")
		if !tc.exclusive {
			if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriteChild$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %t %s", killEnv, tc.kill, tc.exclusive, path))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("child (kill at sync %d): %v\n%s", tc.kill, err, out)
		}
		killed := ee.Sys().(syscall.WaitStatus).Signaled()
		if killed != (tc.kill != 0) || (!killed && ee.ExitCode() != 3) {
			t.Fatalf("child (kill at sync %d): %v, killed %v\n%s", tc.kill, err, killed, out)
		}
		b, err := os.ReadFile(path)
		if tc.want == "" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("exclusive, killed at sync %d: %d bytes at the name, %v; want none", tc.kill, len(b), err)
		}
		if tc.want != "" && string(b) != tc.want {
			t.Errorf("exclusive %v, killed at sync %d: the name holds %d bytes (%v), want %d", tc.exclusive, tc.kill, len(b), err, len(tc.want))
		}
		temps := durable.Temps(path)
		if len(temps) != tc.temps {
			t.Errorf("exclusive %v, killed at sync %d: Temps = %q, want %d", tc.exclusive, tc.kill, temps, tc.temps)
		}
		for _, tmp := range temps { // a complete copy, never yet in place
			assertFile(t, tmp, newData, 0o600)
		}
	}
}
