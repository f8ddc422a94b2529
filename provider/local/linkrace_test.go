package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
)

// swapBackAfterOpen puts a link in place of mine (to theirs) and makes
// afterOpen put the real mine back once path is opened: the race a check
// before the open would lose. It returns a func reporting whether the swap
// happened.
func swapBackAfterOpen(t *testing.T, mine, theirs, path string) func() bool {
	t.Helper()
	real := mine + ".real"
	if err := os.Rename(mine, real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(theirs, mine); err != nil {
		t.Fatal(err)
	}
	swapped := false
	afterOpen = func(p string) {
		if p == path && !swapped {
			swapped = true
			os.Remove(mine)
			os.Rename(real, mine)
		}
	}
	t.Cleanup(func() { afterOpen = nil })
	return func() bool { return swapped }
}

// TestBucketSwappedBackAfterOpen: a link to globex's bucket is in place of
// acme's while acme's bucket is opened, and acme's is put back before the
// check. The opened root is compared with the bucket reached without links,
// so the write is refused and globex's bucket untouched. Twin: without the
// swap the same write works.
func TestBucketSwappedBackAfterOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newTestProvider(t, Config{Dir: dir})
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	d := &data{p: p, id: "acme"}
	if err := d.PutBlob(ctx, "uploads", "control", []byte("ok")); err != nil {
		t.Fatalf("control: %v", err)
	}
	mine := filepath.Join(dir, "accounts", "acme", "blobs", "uploads")
	theirs := strings.Replace(mine, "/acme/", "/globex/", 1)
	// The link goes in after the directories were checked (a link in place
	// before is refused by that check) and out again after the open.
	swapped := false
	beforeOpen = func(p string) {
		if p == mine && !swapped {
			swapped = true
			mustDo(t, os.Rename(mine, mine+".real"))
			mustDo(t, os.Symlink(theirs, mine))
		}
	}
	afterOpen = func(p string) {
		if p == mine {
			os.Remove(mine)
			os.Rename(mine+".real", mine)
		}
	}
	t.Cleanup(func() { beforeOpen, afterOpen = nil, nil })
	err := d.PutBlob(ctx, "uploads", "planted", []byte("FROM-ACME"))
	if !swapped {
		t.Fatalf("the bucket was never opened (%v); the test swaps nothing", err)
	}
	if err == nil {
		t.Error("PutBlob went through a link swapped back after the open")
	}
	if _, err := os.Lstat(filepath.Join(theirs, "planted")); !os.IsNotExist(err) {
		t.Errorf("acme's blob landed in globex's bucket: %v", err)
	}
}

// TestStoreDirSwappedBackAfterOpen: openNoFollow (how bbolt opens data.db)
// opens a file whose directory is a link at that moment and is put back
// before the check; the file opened is not the one the path names without
// links, so it is refused. Twin: without the swap the file opens.
func TestStoreDirSwappedBackAfterOpen(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"acme", "globex"} {
		os.MkdirAll(filepath.Join(dir, id), 0o700)
		if err := os.WriteFile(filepath.Join(dir, id, fileDB), []byte(id), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "acme", fileDB)
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	f.Close()
	swapped := swapBackAfterOpen(t, filepath.Join(dir, "acme"), filepath.Join(dir, "globex"), path)
	f, err = openNoFollow(path, os.O_RDONLY, 0)
	if !swapped() {
		t.Fatalf("the file was never opened (%v); the test swaps nothing", err)
	}
	if err == nil {
		b := make([]byte, 8)
		n, _ := f.Read(b)
		f.Close()
		t.Errorf("openNoFollow returned the file behind a link swapped back after the open (it holds %q)", b[:n])
	}
}

// TestStoreDirLinkRefused: an account directory that is a link (here to a
// copy of the account elsewhere, which its own keys still open) is refused
// when the store file is opened. Twin: the real directory opens.
func TestStoreDirLinkRefused(t *testing.T) {
	dir := t.TempDir()
	acct := filepath.Join(dir, "acme")
	os.MkdirAll(acct, 0o700)
	if err := os.WriteFile(filepath.Join(acct, fileDB), []byte("acme"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openNoFollow(filepath.Join(acct, fileDB), os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	f.Close()
	elsewhere := filepath.Join(t.TempDir(), "acme-copy")
	if err := os.Rename(acct, elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, acct); err != nil {
		t.Fatal(err)
	}
	if f, err := openNoFollow(filepath.Join(acct, fileDB), os.O_RDONLY, 0); err == nil {
		f.Close()
		t.Error("openNoFollow opened a store file through a linked account directory")
	}
}
