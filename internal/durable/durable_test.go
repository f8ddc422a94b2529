package durable_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/silo-run/silo/internal/durable"
)

// WriteFile creates a file and replaces it, with the permissions asked
// for, with and without the directory sync, and leaves no temporary file.
func TestWriteFile(t *testing.T) {
	for syncDir, perm := range map[bool]os.FileMode{true: 0o600, false: 0o640} {
		dir := t.TempDir()
		path := filepath.Join(dir, "witness")
		for _, data := range []string{"first\n", "second, longer\n", ""} {
			if err := durable.WriteFile(path, []byte(data), perm, syncDir); err != nil {
				t.Fatalf("WriteFile(%q, syncDir %v): %v", data, syncDir, err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != data {
				t.Errorf("after WriteFile(%q, syncDir %v): read %q, %v", data, syncDir, got, err)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != perm {
				t.Errorf("after WriteFile(syncDir %v): mode %v, %v; want %v", syncDir, fi.Mode().Perm(), err, perm)
			}
			assertOnly(t, dir, "witness")
		}
	}
}

// A write that fails leaves the old file as it was and no temporary file;
// the twin is TestWriteFile, where the same write over a file succeeds.
func TestFailedWriteKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "installation")
	if err := durable.WriteFile(path, []byte("old\n"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	// The rename fails: a directory holds the name of the file beside it.
	busy := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(busy, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(busy, []byte("new\n"), 0o600, true); err == nil {
		t.Errorf("WriteFile over a non-empty directory: no error")
	}
	// The temporary file cannot be created: the directory is read-only.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if os.Geteuid() != 0 { // root writes to a read-only directory anyway
		if err := durable.WriteFile(path, []byte("new\n"), 0o600, true); err == nil {
			t.Errorf("WriteFile in a read-only directory: no error")
		}
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "old\n" {
		t.Errorf("after failed writes: read %q, %v; want the old contents", got, err)
	}
	assertOnly(t, dir, "busy", "installation")
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
