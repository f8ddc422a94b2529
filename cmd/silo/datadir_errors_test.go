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

// osOp is a file operation the system names with its path ("open data/…").
var osOp = regexp.MustCompile(`\b(stat|lstat|open|read|write|rename|mkdir|remove|sync) \S*/`)

// runIn runs silo in a process of its own in directory dir, with
// --data-dir data (relative, as a user types it), and returns its exit
// code and output.
func runIn(t *testing.T, dir, file string, args ...string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(append([]string{"--data-dir", "data", "--file", file}, args...))
	cmd := exec.Command(os.Args[0])
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cliArgsEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("silo %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// TestDataDirErrorsNameWhatTheFileIs damages the data dir's installation
// record (installation.id) and the data dir itself in several ways: each
// command then fails saying which file it is by what it is, the data dir
// as the user gave it (--data-dir data), the reason and what to do, and
// names no path inside the data dir, no absolute path and no operation of
// the system (must not); with the damage undone, the same command works
// (must).
func TestDataDirErrorsNameWhatTheFileIs(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the example's functions")
	}
	record := func(dir string) string { return filepath.Join(dir, "data", "installation.id") }
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) (undo func())
		want   string
	}{
		{"installation record unreadable (a directory in its place)", func(t *testing.T, dir string) func() {
			b := mustRead(t, record(dir))
			must(t, os.Remove(record(dir)))
			must(t, os.Mkdir(record(dir), 0o700))
			return func() { must(t, os.Remove(record(dir))); must(t, os.WriteFile(record(dir), []byte(b), 0o600)) }
		}, "silo: cannot read the installation record (installation.id) in the data dir data, which says which installation the data dir belongs to: is a directory; restore installation.id from a backup of the data dir (docs/operations.md)"},
		{"installation record not readable by the user", func(t *testing.T, dir string) func() {
			if os.Geteuid() == 0 {
				t.Skip("root reads a file of mode 0000")
			}
			must(t, os.Chmod(record(dir), 0))
			return func() { must(t, os.Chmod(record(dir), 0o600)) }
		}, "silo: cannot read the installation record (installation.id) in the data dir data, which says which installation the data dir belongs to: permission denied; check the owner and permissions of the data dir and its files: run silo as the user that owns them"},
		{"installation record damaged", func(t *testing.T, dir string) func() {
			b := mustRead(t, record(dir))
			must(t, os.WriteFile(record(dir), []byte("not an ID\n"), 0o600))
			return func() { must(t, os.WriteFile(record(dir), []byte(b), 0o600)) }
		}, "silo: the installation record (installation.id) in the data dir data does not hold an installation ID (32 hex digits); restore installation.id from a backup of the data dir, or remove it to have silo check the data dir by its accounts and record the ID again (docs/operations.md)"},
		{"data dir not writable", func(t *testing.T, dir string) func() {
			data := filepath.Join(dir, "data")
			if out, err := exec.Command("chattr", "+i", data).CombinedOutput(); err != nil {
				if os.Geteuid() == 0 {
					t.Skipf("chattr +i: %v %s", err, out)
				}
				must(t, os.Chmod(data, 0o500))
				return func() { must(t, os.Chmod(data, 0o700)) }
			}
			return func() {
				if out, err := exec.Command("chattr", "-i", data).CombinedOutput(); err != nil {
					t.Fatalf("chattr -i: %v %s", err, out)
				}
			}
		}, "silo: cannot write to the data dir data: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			dir := t.TempDir()
			runOK := func(args ...string) {
				if code, out := runIn(t, dir, c.file, args...); code != 0 {
					t.Fatalf("silo %s: exit %d\n%s", strings.Join(args, " "), code, out)
				}
			}
			runOK("tenant", "create", "acme", "--no-key")
			runOK("tenant", "list") // records the installation
			undo := tc.damage(t, dir)
			code, out := runIn(t, dir, c.file, "tenant", "list")
			undo()
			if code == 0 || !strings.HasPrefix(out, tc.want) {
				t.Errorf("silo tenant list: exit %d\n%s\nwant a failure starting %q", code, out, tc.want)
			}
			if strings.Count(strings.TrimSpace(out), "\n") != 0 || strings.Contains(out, dir) || strings.Contains(out, "data"+string(filepath.Separator)) || osOp.MatchString(out) {
				t.Errorf("silo tenant list shows more than one line, a path or the system's words:\n%s", out)
			}
			runOK("tenant", "list")
		})
	}
	// A data dir that is a file: named as given, nothing created.
	c := newCLI(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o600))
	code, out := runIn(t, dir, c.file, "tenant", "create", "acme", "--no-key")
	if want := "silo: cannot create the data dir data: not a directory; choose a writable --data-dir"; code == 0 || !strings.HasPrefix(out, want) || strings.Contains(out, dir) {
		t.Errorf("silo tenant create on a file: exit %d\n%s\nwant a failure starting %q, without the absolute path", code, out, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
