package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/provider/providertest"
)

// TestMissingAccountFiles deletes, from one account that declares tables
// and a bucket, its table store, its blobs directory or its bucket's
// directory. The check (silo doctor, silo drift) reports the file as
// damaged and missing; every call on the account that needs it fails with a
// DamageError naming it (never "does not exist", which would hide that the
// data is gone), and neither a call nor a repeated apply makes a new, empty
// one in its place; the other account is served unchanged. Once the file is
// restored from the backup, the account serves its own data again, with no
// restart.
func TestMissingAccountFiles(t *testing.T) {
	fixture := damageFixture(t)
	tests := []struct {
		remove string // deleted from accounts/acme
		file   string // the damaged file reported
	}{
		{remove: fileDB, file: fileDB},
		{remove: dirBlobs, file: dirBlobs + "/uploads"},
		{remove: dirBlobs + "/uploads", file: dirBlobs + "/uploads"},
	}
	for _, tt := range tests {
		t.Run(tt.remove, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			localtest.CopyTree(t, fixture, dir)
			path := filepath.Join(dir, "accounts", "acme", tt.remove)
			mustDo(t, os.RemoveAll(path))

			p := newTestProvider(t, Config{Dir: dir})
			err := p.CheckAccount(ctx, "acme")
			if err == nil || !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), "missing") {
				t.Errorf("CheckAccount(acme) = %v, want %s reported missing", err, tt.file)
			}
			if err := p.CheckAccount(ctx, "globex"); err != nil {
				t.Errorf("CheckAccount(globex) = %v, want nil", err)
			}
			p.Close()

			p = newTestProvider(t, Config{Dir: dir}) // forgets what the check found
			got, damaged := exercise(t, p, "acme")
			var de *DamageError
			if !errors.As(damaged, &de) || de.File != tt.file || silo.ErrorCode(damaged) != silo.CodeUnavailable {
				t.Errorf("Damaged(acme) = %v, want an %s DamageError for %s (calls: %v)", damaged, silo.CodeUnavailable, tt.file, got)
			}
			needs := []string{"get", "scan", "put"} // the table store
			if tt.file != fileDB {
				needs = []string{"blob"}
			}
			for _, op := range needs {
				if !strings.HasPrefix(got[op], "error: ") || !strings.Contains(got[op], tt.file) {
					t.Errorf("%s of acme: got %q, want an error naming %s", op, got[op], tt.file)
				}
			}
			// Repeating the apply would make an empty one in its place.
			for _, r := range providertest.Stack(t) {
				if r.Type != silo.TypeTable && r.Type != silo.TypeBucket {
					continue
				}
				err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r})
				if (r.Type == silo.TypeTable) == (tt.file == fileDB) && !errors.As(err, &de) {
					t.Errorf("apply create %s to acme = %v, want the DamageError", r.Key(), err)
				}
			}
			d, err := p.Data(ctx, "acme")
			mustDo(t, err)
			if tt.file != fileDB {
				if err := d.PutBlob(ctx, "uploads", "new.txt", []byte("x")); !errors.As(err, &de) {
					t.Errorf("PutBlob(acme) = %v, want the DamageError", err)
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, "accounts", "acme", tt.file)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s of acme was made anew (Lstat: %v), want it still missing", tt.file, err)
			}
			wantHealthy(t, "globex", p)

			// Restored from the backup: served again, by the same provider.
			localtest.CopyTree(t, filepath.Join(fixture, "accounts", "acme", tt.remove), path)
			if err := p.CheckAccount(ctx, "acme"); err != nil {
				t.Errorf("CheckAccount(acme) after the restore = %v, want nil", err)
			}
			wantHealthy(t, "acme", p)
		})
	}
}

// TestNoStoreWithoutTables is TestMissingAccountFiles's control: an account
// whose manifest records no table and no bucket has no store file and no
// blobs directory, and that is no damage; a table it does not declare does
// not exist.
func TestNoStoreWithoutTables(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{})
	mustDo(t, p.CreateAccount(ctx, "acme", silo.KindTenant))
	var rest []silo.Resource
	for _, r := range providertest.Stack(t) {
		if r.Type != silo.TypeTable && r.Type != silo.TypeBucket {
			rest = append(rest, r)
		}
	}
	providertest.ApplyAll(t, p, "acme", rest)
	for _, name := range []string{fileDB, dirBlobs} {
		if _, err := os.Lstat(filepath.Join(p.accounts, "acme", name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s of acme: Lstat = %v, want it not there", name, err)
		}
	}
	if err := p.CheckAccount(ctx, "acme"); err != nil {
		t.Errorf("CheckAccount(acme) = %v, want nil", err)
	}
	d, err := p.Data(ctx, "acme")
	mustDo(t, err)
	if _, err := d.Get(ctx, "findings", "k"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Get(findings) = %v, want %s", err, silo.CodeNotFound)
	}
	if _, err := d.GetBlob(ctx, "uploads", "k"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("GetBlob(uploads) = %v, want %s", err, silo.CodeNotFound)
	}
	if err := p.Damaged("acme"); err != nil {
		t.Errorf("Damaged(acme) = %v, want nil", err)
	}
	// Its first table and bucket are made, as for any account.
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	mustDo(t, d.Put(ctx, "findings", "k", []byte("v")))
	mustDo(t, d.PutBlob(ctx, "uploads", "k", []byte("v")))
}

// TestStoreDeletedWhileOpen: a store file deleted while this process has it
// open (silo up serving the account) is reported by the check all the same:
// the open store is the unlinked file, which is gone once it is closed.
func TestStoreDeletedWhileOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	localtest.CopyTree(t, damageFixture(t), dir)
	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	mustDo(t, err)
	if v, err := d.Get(ctx, "findings", "marker"); err != nil || string(v) != "marker-of-acme" {
		t.Fatalf("Get(acme) = %q, %v, want marker-of-acme", v, err)
	}
	if err := p.CheckAccount(ctx, "acme"); err != nil {
		t.Fatalf("CheckAccount(acme) with its store open = %v, want nil", err)
	}
	mustDo(t, os.Remove(filepath.Join(dir, "accounts", "acme", fileDB)))
	err = p.CheckAccount(ctx, "acme")
	var de *DamageError
	if !errors.As(err, &de) || de.File != fileDB || !strings.Contains(err.Error(), "missing") {
		t.Errorf("CheckAccount(acme) after its open store was deleted = %v, want %s reported missing", err, fileDB)
	}
}

// TestBucketDeletedByApplyIsNotDamage: deleting a bucket removes its
// directory before the manifest entry; a blob call in between waits for the
// account's lock and then finds the bucket gone from the manifest too, so
// it is "no such bucket", not damage. The test stands in for the apply: it
// holds the lock, removes the directory, then the entry.
func TestBucketDeletedByApplyIsNotDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	localtest.CopyTree(t, damageFixture(t), dir)
	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	mustDo(t, err)
	a := p.ref("acme")
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	mustDo(t, err)
	mustDo(t, os.RemoveAll(filepath.Join(a.dir, dirBlobs, "uploads")))
	got := make(chan error, 1)
	go func() {
		_, err := d.GetBlob(ctx, "uploads", "report.txt")
		got <- err
	}()
	m, err := a.manifest()
	mustDo(t, err)
	delete(m, string(silo.TypeBucket)+"/uploads")
	mustDo(t, a.writeManifest(m))
	unlock()
	if err := <-got; silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("GetBlob(uploads) during its deletion = %v, want %s", err, silo.CodeNotFound)
	}
	if err := p.Damaged("acme"); err != nil {
		t.Errorf("Damaged(acme) = %v, want nil", err)
	}
}
