package durable_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/silo-run/silo/internal/durable"
)

// TestWriteFile writes over nothing and over an older file with each
// option, and checks the contents, the mode, the syncs made (through
// BeforeSync: the file's, then the directory's unless NoDirSync) and that
// no temporary file is left.
func TestWriteFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		o     durable.Options
		mode  os.FileMode // the mode expected
		syncs int         // file, then directory
	}{
		{"zero options", durable.Options{}, 0o600, 2},
		{"perm 0640", durable.Options{Perm: 0o640}, 0o640, 2},
		{"perm 0644, beyond a umask of 022's 0600 temp", durable.Options{Perm: 0o644}, 0o644, 2},
		{"no directory sync", durable.Options{NoDirSync: true}, 0o600, 1},
		{"no-follow, no link there", durable.Options{NoFollow: true, Perm: 0o600}, 0o600, 2},
		{"exclusive", durable.Options{Exclusive: true, Perm: 0o644}, 0o644, 2},
		{"exclusive, no directory sync", durable.Options{Exclusive: true, NoDirSync: true}, 0o600, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, old := range []string{"", "old contents, longer than the new\n"} {
				dir := t.TempDir()
				path := filepath.Join(dir, "record")
				if old != "" {
					if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				var synced []string
				o := tc.o
				o.BeforeSync = func(p string) { synced = append(synced, p) }
				err := durable.WriteFile(path, []byte("new\n"), o)
				if tc.o.Exclusive && old != "" {
					// Must not: replace a file that is there.
					if !errors.Is(err, fs.ErrExist) {
						t.Errorf("exclusive write over a file: %v, want an error matching fs.ErrExist", err)
					}
					assertFile(t, path, old, 0o600)
					assertOnly(t, dir, "record")
					continue
				}
				if err != nil {
					t.Fatalf("WriteFile (old %q): %v", old, err)
				}
				assertFile(t, path, "new\n", tc.mode)
				assertOnly(t, dir, "record")
				if len(synced) != tc.syncs {
					t.Fatalf("synced %q, want %d syncs", synced, tc.syncs)
				}
				if !strings.HasPrefix(filepath.Base(synced[0]), ".tmp-record-") || filepath.Dir(synced[0]) != dir {
					t.Errorf("first sync of %s, want the temporary file beside the record", synced[0])
				}
				if tc.syncs == 2 && synced[1] != dir {
					t.Errorf("second sync of %s, want the directory %s", synced[1], dir)
				}
			}
		})
	}
}

// TestNoFollow: with NoFollow a symbolic link at the path is refused, and
// the link and the file it points to stay as they were; the twin, without
// NoFollow, replaces the link itself with the file, and never writes the
// file it pointed to.
func TestNoFollow(t *testing.T) {
	for _, noFollow := range []bool{true, false} {
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere")
		if err := os.WriteFile(target, []byte("theirs\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "key")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		err := durable.WriteFile(path, []byte("ours\n"), durable.Options{NoFollow: noFollow})
		assertFile(t, target, "theirs\n", 0o600)
		assertOnly(t, dir, "elsewhere", "key")
		fi, lerr := os.Lstat(path)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if noFollow {
			if !errors.Is(err, durable.ErrLink) {
				t.Errorf("NoFollow over a link: %v, want ErrLink", err)
			}
			if fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("NoFollow over a link: the link was replaced")
			}
			continue
		}
		if err != nil {
			t.Errorf("write over a link without NoFollow: %v", err)
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("write over a link without NoFollow: %v at the path, want the file", fi.Mode())
		}
		assertFile(t, path, "ours\n", 0o600)
	}
}

// TestNotReplacedUntilComplete looks at the files just before the
// temporary file is synced (the last moment before it can take the
// name): the name still holds the old contents, and the temporary file
// already all of the new.
func TestNotReplacedUntilComplete(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "record")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("new contents\n", 10000)
	seen := 0
	o := durable.Options{BeforeSync: func(p string) {
		if p == dir {
			return
		}
		seen++
		assertFile(t, path, "old\n", 0o600)
		assertFile(t, p, data, 0o600)
	}}
	if err := durable.WriteFile(path, []byte(data), o); err != nil {
		t.Fatal(err)
	}
	if seen != 1 {
		t.Fatalf("BeforeSync saw the temporary file %d times, want 1", seen)
	}
	assertFile(t, path, data, 0o600)
}

// TestFailedWriteKeepsTheOldFile: a write that fails leaves the old file
// as it was and no temporary file; the twin is TestWriteFile, where the
// same write over a file succeeds.
func TestFailedWriteKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "installation")
	if err := durable.WriteFile(path, []byte("old\n"), durable.Options{}); err != nil {
		t.Fatal(err)
	}
	// The rename fails: a directory holds the name of the file beside it.
	busy := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(busy, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(busy, []byte("new\n"), durable.Options{}); err == nil {
		t.Errorf("WriteFile over a non-empty directory: no error")
	}
	// The temporary file cannot be created: the directory is read-only.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if os.Geteuid() != 0 { // root writes to a read-only directory anyway
		err := durable.WriteFile(path, []byte("new\n"), durable.Options{})
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("WriteFile in a read-only directory: %v, want permission denied", err)
		}
		if c := durable.Cause(err); c.Error() != "permission denied" {
			t.Errorf("Cause(%v) = %q, want the reason alone", err, c)
		}
	}
	assertFile(t, path, "old\n", 0o600)
	assertOnly(t, dir, "busy", "installation")
}

// TestCause: the reason without the paths, for each kind of error the
// os package returns, and any other error as it is.
func TestCause(t *testing.T) {
	reason := syscall.EACCES
	other := errors.New("not a file system error")
	for _, tc := range []struct {
		err, want error
	}{
		{&fs.PathError{Op: "open", Path: "/srv/x", Err: reason}, reason},
		{fmt.Errorf("write: %w", &os.LinkError{Op: "rename", Old: "/a", New: "/b", Err: reason}), reason},
		{os.NewSyscallError("fsync", reason), reason},
		{other, other},
	} {
		if got := durable.Cause(tc.err); got != tc.want {
			t.Errorf("Cause(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// assertFile fails unless the file at path holds want with mode perm.
func assertFile(t *testing.T, path, want string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s holds %d bytes (%v), want %d", filepath.Base(path), len(b), err, len(want))
	}
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != perm {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), perm)
	}
}

// assertOnly fails unless dir holds exactly the names want (sorted).
func assertOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v (a temporary file left behind?)", dir, got, want)
	}
}
