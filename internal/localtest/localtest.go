// Package localtest holds test helpers for the files the local provider
// keeps in a data dir: where an account's directory is, copying a tree, and
// leaving behind an account whose deletion was recorded while the provider
// still holds it. Tests of several packages use them; nothing else should.
package localtest

import (
	"os"
	"path/filepath"
	"testing"
)

// AccountDir is the local provider's directory of account id in the data
// dir dataDir.
func AccountDir(dataDir, id string) string {
	return filepath.Join(dataDir, "accounts", "accounts", id)
}

// CopyTree copies the directory tree src into dst: directories and regular
// files, each file with mode 0600 and each directory 0700 (what the local
// provider makes), other entries skipped.
func CopyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// DeletedButHeld runs del, which deletes account id, with the local
// provider's directory of the account copied aside before and put back
// after: what a deletion run from an older copy of the data dir on a
// shared store leaves, a deletion recorded while the provider still holds
// the account's data and data key.
func DeletedButHeld(t testing.TB, dataDir, id string, del func()) {
	t.Helper()
	dir := AccountDir(dataDir, id)
	kept := t.TempDir()
	CopyTree(t, dir, kept)
	del()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("account %s's directory is still there after its deletion (%v): the deletion did not destroy it, so this fixture makes nothing", id, err)
	}
	CopyTree(t, kept, dir)
}
