package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterruptedCommandSaysSo runs commands whose context was cancelled as
// Ctrl-C cancels it (with signal.NotifyContext's cause): each says
// "interrupted", not what failed on the way out, and a data dir the command
// had just created is not left behind. The twins, not interrupted, report
// their own failure.
func TestInterruptedCommandSaysSo(t *testing.T) {
	t.Parallel()
	interrupted, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupt signal received"))
	for _, tc := range []struct {
		name string
		ctx  context.Context
		args []string
		want string
	}{
		{"probe", interrupted, []string{"--server", "http://127.0.0.1:1", "--token", "t", "verify", "--probe"}, "silo: interrupted\n"},
		{"create", interrupted, []string{"tenant", "create", "acme"}, "silo: interrupted\n"},
		{"probe, not interrupted", context.Background(), []string{"--server", "http://127.0.0.1:1", "--token", "t", "verify", "--probe"}, "cannot reach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			var out, errOut bytes.Buffer
			code := run(tc.ctx, append([]string{"--data-dir", c.dataDir, "--file", c.file}, tc.args...), strings.NewReader(""), &out, &errOut)
			if code != 1 || !strings.Contains(errOut.String(), tc.want) || strings.Contains(errOut.String(), "\n\t") {
				t.Fatalf("silo %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
			}
			if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
				t.Fatalf("silo %s left %s behind (stat: %v)", strings.Join(tc.args, " "), c.dataDir, err)
			}
		})
	}
}

// TestFailedCreateLeavesNoDataDir: a command that creates an installation
// and fails takes back the data dir it created; one that succeeds (the
// twin) keeps it, and a later failure on it keeps it too.
func TestFailedCreateLeavesNoDataDir(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	good := c.file
	c.file = filepath.Join(t.TempDir(), "silo.yaml")
	os.WriteFile(c.file, []byte("version: 1\nname: demo\nfunctons: {}\n"), 0o644)
	c.fails("silo.yaml:3:1", "tenant", "create", "acme")
	if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
		t.Fatalf("a failed tenant create left %s behind (stat: %v)", c.dataDir, err)
	}
	c.file = good
	c.ok("tenant", "create", "acme")
	c.fails("exists already", "tenant", "create", "acme")
	if _, err := os.Stat(filepath.Join(c.dataDir, "state.db")); err != nil {
		t.Fatalf("a failed command on an installation removed it: %v", err)
	}
}
