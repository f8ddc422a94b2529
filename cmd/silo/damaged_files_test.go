package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/silo-run/silo/internal/localtest"
)

// osText is how the system words a failed file operation: an operation
// and a path ("stat /…/data.key"), or the error's own text.
var osText = regexp.MustCompile(`\b(stat|lstat|open|read|write|rename|shred|mkdir|remove) /|: (not a directory|is a directory|permission denied|no such file or directory)`)

// TestDamagedAccountFilesSayWhatToDo damages tenant acme's local files in
// several ways: a file where its directory should be, its data key file
// unreadable (a directory in its place), its table store truncated. Every
// command on acme then fails with what is wrong and what to do, naming the
// account and no path of the data dir and no words of the system (must
// not); globex, beside it, still plans, drifts, rotates its key and
// updates (must); and deleting acme, one of the fixes the messages name,
// works.
func TestDamagedAccountFilesSayWhatToDo(t *testing.T) {
	t.Parallel()
	drift, rotate, report, doctor := []string{"drift", "acme"}, []string{"rotate", "data-key", "acme"}, []string{"report", "acme"}, []string{"doctor"}
	all := [][]string{drift, rotate, report, {"tenant", "update", "acme", "--param", "plan=pro"}, doctor}
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   string
		cmds   [][]string // the commands that need the damaged file
	}{
		{"file where its directory goes", func(dir string) error {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			return os.WriteFile(dir, []byte("x"), 0o600)
		}, "the local files of account acme are damaged (data.key cannot be reached: a file is where a directory should be); move that file away", all},
		{"data key unreadable", func(dir string) error {
			if err := os.Remove(filepath.Join(dir, "data.key")); err != nil {
				return err
			}
			return os.Mkdir(filepath.Join(dir, "data.key"), 0o700)
		}, "account acme is out of service: its file data.key is damaged (a directory is in its place); restore it from a backup", [][]string{drift, rotate, report, doctor}},
		{"table store truncated", func(dir string) error {
			return os.Truncate(filepath.Join(dir, "data.db"), 100)
		}, "account acme is out of service: its file data.db is damaged", [][]string{drift, doctor}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			c.ok("tenant", "create", "acme")
			c.ok("tenant", "create", "globex")
			c.ok("rotate", "data-key", "--all") // data.db and data.key as files of their own
			if err := tc.damage(localtest.AccountDir(c.dataDir, "acme")); err != nil {
				t.Fatal(err)
			}
			for _, args := range tc.cmds {
				code, out, errOut := c.run(args...)
				said := out + errOut
				if code == 0 || !strings.Contains(said, tc.want) {
					t.Errorf("silo %s: exit %d\n%s\nwant a failure saying %q", strings.Join(args, " "), code, said, tc.want)
				}
				if strings.Contains(said, filepath.Dir(c.dataDir)) || osText.MatchString(said) {
					t.Errorf("silo %s shows a path or the system's words:\n%s", strings.Join(args, " "), said)
				}
			}
			// The tenant beside it is not affected.
			c.ok("drift", "globex")
			c.ok("rotate", "data-key", "globex")
			c.ok("tenant", "update", "globex", "--param", "plan=pro")
			c.ok("plan", "globex")
			// A fix the messages name: deleting the account.
			c.ok("tenant", "delete", "acme", "--yes")
			c.ok("doctor")
		})
	}
}
