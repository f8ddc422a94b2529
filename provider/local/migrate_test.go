package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
	"go.etcd.io/bbolt"
)

// legacyAccount turns account id in dir into what a silo before data-at-rest
// encryption left: no storage.key, plaintext table values (no seal mark),
// plaintext blobs.
func legacyAccount(t *testing.T, dir string, id silo.AccountID, values, blobs map[string]string) {
	t.Helper()
	acct := filepath.Join(dir, "accounts", string(id))
	// An older silo's account has no storage key: neither storage.key nor
	// a copy in data.key (keyring.go), which keeps its ring alone.
	if err := os.Remove(filepath.Join(acct, fileStorageKey)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(acct, fileDataKey))
	if err != nil {
		t.Fatal(err)
	}
	ring, held, err := decodeAccount(b)
	if err != nil {
		t.Fatal(err)
	}
	delete(held, fileStorageKey)
	if err := os.WriteFile(filepath.Join(acct, fileDataKey), encodeAccount(ring, held), fileMode); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(acct, fileDB), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte(metaBucket)); err != nil && err != bbolt.ErrBucketNotFound {
			return err
		}
		b := tx.Bucket([]byte("findings"))
		for k, v := range values {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range blobs {
		path := filepath.Join(acct, dirBlobs, "uploads", filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// grepDir returns the files under dir holding s.
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(s)) {
				hits = append(hits, path)
			}
		}
		return nil
	})
	return hits
}

// TestLegacyDataDirMigrates: a data dir from before data-at-rest encryption
// opens, every value and blob reads as before, and afterwards no plaintext
// of them is on disk. An account whose migration was cut short (some blobs
// sealed, .migrating still there) is finished without sealing anything
// twice.
func TestLegacyDataDirMigrates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newTestProvider(t, Config{Dir: dir})
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	p.Close()
	// The data dir as an older silo leaves it: it never writes the
	// marker of a sealed data dir.
	if err := os.Remove(filepath.Join(dir, fileAllSealed)); err != nil {
		t.Fatal(err)
	}
	values := map[silo.AccountID]map[string]string{}
	blobs := map[silo.AccountID]map[string]string{}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		values[id] = map[string]string{"k1": "PLAIN-" + string(id) + "-v1", "k2": "", "k3": "PLAIN-" + string(id) + "-v3"}
		blobs[id] = map[string]string{"a.txt": "PLAIN-" + string(id) + "-a", "dir/b.bin": "PLAIN-" + string(id) + "-b"}
		legacyAccount(t, dir, id, values[id], blobs[id])
	}
	// Second names for acme's legacy store and blob (a hard link, as an
	// open descriptor or a snapshot would be): the migration must overwrite
	// the replaced files' blocks, not only unlink them.
	keep := t.TempDir()
	for name, rel := range map[string]string{"db": fileDB, "blob": filepath.Join(dirBlobs, "uploads", "a.txt")} {
		if err := os.Link(filepath.Join(dir, "accounts", "acme", rel), filepath.Join(keep, name)); err != nil {
			t.Fatal(err)
		}
	}
	if hits := grepDir(t, keep, "PLAIN-acme"); len(hits) != 2 {
		t.Fatalf("control: the links hold plaintext in %d files before the migration, want 2", len(hits))
	}
	// Then globex is made to look like a migration the process died in:
	// its storage key and sealed blobs in place, .migrating too, and one
	// blob not sealed yet.
	gdir := filepath.Join(dir, "accounts", "globex")
	p = newTestProvider(t, Config{Dir: dir}) // migrates both
	p.Close()
	os.Remove(filepath.Join(dir, fileAllSealed)) // as the process that died midway would not have written it
	if err := os.WriteFile(filepath.Join(gdir, fileMigrating), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gdir, dirBlobs, "uploads", "late.txt"), []byte("PLAIN-globex-late"), 0o600); err != nil {
		t.Fatal(err)
	}
	blobs["globex"]["late.txt"] = "PLAIN-globex-late"

	p = newTestProvider(t, Config{Dir: dir})
	for _, id := range []silo.AccountID{"acme", "globex"} {
		d, err := p.Data(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range values[id] {
			if v, err := d.Get(ctx, "findings", k); err != nil || string(v) != want {
				t.Errorf("%s: Get(%s) = %q, %v; want %q", id, k, v, err, want)
			}
		}
		for k, want := range blobs[id] {
			if v, err := d.GetBlob(ctx, "uploads", k); err != nil || string(v) != want {
				t.Errorf("%s: GetBlob(%s) = %q, %v; want %q", id, k, v, err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "accounts", string(id), fileMigrating)); !os.IsNotExist(err) {
			t.Errorf("%s: %s left after the migration: %v", id, fileMigrating, err)
		}
	}
	if hits := grepDir(t, keep, "PLAIN-"); len(hits) != 0 {
		t.Errorf("the replaced legacy files still hold plaintext: %s", strings.Join(hits, ", "))
	}
	if hits := grepDir(t, dir, "PLAIN-"); len(hits) != 0 {
		t.Errorf("plaintext left on disk after the migration: %s", strings.Join(hits, ", "))
	}
}

// TestSealedDataDirSkipsScan: once a start found every account sealed, it
// records so (fileAllSealed) and later starts do not look at each account:
// a legacy account planted afterwards (as a silo from before encryption at
// rest would create it) is left alone, and its error says how to have it
// migrated. The control: with the record removed, the next start seals it.
func TestSealedDataDirSkipsScan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newTestProvider(t, Config{Dir: dir})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	p.Close()
	if !exists(filepath.Join(dir, fileAllSealed)) {
		t.Fatalf("no %s after a start that found every account sealed", fileAllSealed)
	}
	legacyAccount(t, dir, "acme", map[string]string{"k1": "PLAIN-v1"}, nil)

	p = newTestProvider(t, Config{Dir: dir})
	if exists(filepath.Join(dir, "accounts", "acme", fileStorageKey)) {
		t.Fatal("a start with the record scanned the accounts and migrated acme")
	}
	d, err := p.Data(ctx, "acme")
	if err == nil {
		_, err = d.Get(ctx, "findings", "k1")
	}
	if err == nil || !strings.Contains(err.Error(), "remove "+fileAllSealed) {
		t.Errorf("Get on the unsealed account: got %v, want an error saying to remove %s", err, fileAllSealed)
	}
	p.Close()

	if err := os.Remove(filepath.Join(dir, fileAllSealed)); err != nil {
		t.Fatal(err)
	}
	p = newTestProvider(t, Config{Dir: dir})
	d, err = p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Get(ctx, "findings", "k1"); err != nil || string(got) != "PLAIN-v1" {
		t.Errorf("after the record was removed: Get(k1) = %q, %v; want PLAIN-v1 (migrated at start)", got, err)
	}
	if !exists(filepath.Join(dir, fileAllSealed)) {
		t.Errorf("no %s after the migrating start", fileAllSealed)
	}
}
