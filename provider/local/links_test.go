package local_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// twoAccounts returns a provider on dir holding acme and globex with the
// example stack, and globex's blob "theirs" and table value "k".
func twoAccounts(t *testing.T, dir string) *local.Provider {
	t.Helper()
	ctx := context.Background()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	g, _ := p.Data(ctx, "globex")
	if err := g.PutBlob(ctx, "uploads", "theirs", []byte("GLOBEX-BLOB")); err != nil {
		t.Fatal(err)
	}
	if err := g.Put(ctx, "findings", "k", []byte("GLOBEX-VALUE")); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBlobKeyDotsRefused: a key with a "." or ".." part would alias another
// blob of the same bucket ("x/../y" is "y"); such keys are refused and the
// blob they would alias is unchanged. Twin: keys with dots inside parts work.
func TestBlobKeyDotsRefused(t *testing.T) {
	ctx := context.Background()
	p := twoAccounts(t, t.TempDir())
	d, _ := p.Data(ctx, "acme")
	for _, k := range []string{"y", "x/z"} {
		if err := d.PutBlob(ctx, "uploads", k, []byte("original "+k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{".", "..", "./y", "x/../y", "x/./z", "x/..", "x/z/..", "../uploads/y"} {
		t.Run(key, func(t *testing.T) {
			if err := provider.ValidateBlobKey(key); silo.ErrorCode(err) != silo.CodeInvalid {
				t.Errorf("ValidateBlobKey(%q) = %v, want CodeInvalid", key, err)
			}
			if err := d.PutBlob(ctx, "uploads", key, []byte("aliased")); silo.ErrorCode(err) != silo.CodeInvalid {
				t.Errorf("PutBlob(%q) = %v, want CodeInvalid", key, err)
			}
			if v, err := d.GetBlob(ctx, "uploads", key); silo.ErrorCode(err) != silo.CodeInvalid {
				t.Errorf("GetBlob(%q) = %q, %v; want CodeInvalid", key, v, err)
			}
			if err := d.DeleteBlob(ctx, "uploads", key); silo.ErrorCode(err) != silo.CodeInvalid {
				t.Errorf("DeleteBlob(%q) = %v, want CodeInvalid", key, err)
			}
		})
	}
	for _, k := range []string{"y", "x/z"} {
		if v, err := d.GetBlob(ctx, "uploads", k); err != nil || string(v) != "original "+k {
			t.Errorf("blob %q after the attempts = %q, %v; want it unchanged", k, v, err)
		}
	}
	// Twin: dots inside a part are ordinary characters.
	for _, key := range []string{"a.b", "..a", ".hidden", "x/.y", "v1.2/notes.txt"} {
		if err := d.PutBlob(ctx, "uploads", key, []byte(key)); err != nil {
			t.Errorf("PutBlob(%q) = %v, want it stored", key, err)
		}
		if v, err := d.GetBlob(ctx, "uploads", key); err != nil || string(v) != key {
			t.Errorf("GetBlob(%q) = %q, %v", key, v, err)
		}
	}
}

// TestLinkToBlobInSameBucketRefused plants a link from one key to another
// blob of the same bucket: os.Root would follow it (it stays inside the
// root), so only the provider's own refusal stops an alias. GetBlob says it
// is a link, PutBlob replaces the link and not its target, ListBlobs omits
// it. Twin: the target itself reads.
func TestLinkToBlobInSameBucketRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := twoAccounts(t, dir)
	d, _ := p.Data(ctx, "acme")
	if err := d.PutBlob(ctx, "uploads", "real", []byte("REAL")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutBlob(ctx, "uploads", "sub/real", []byte("SUBREAL")); err != nil {
		t.Fatal(err)
	}
	bucket := filepath.Join(dir, "accounts", "acme", "blobs", "uploads")
	for link, target := range map[string]string{"alias": "real", "sub/alias": "real2", "up": "../uploads/real"} {
		if target == "real2" {
			target = "real"
		}
		if err := os.Symlink(target, filepath.Join(bucket, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub", filepath.Join(bucket, "dirlink")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"alias", "sub/alias", "dirlink/real"} {
		v, err := d.GetBlob(ctx, "uploads", key)
		if c := silo.ErrorCode(err); c != silo.CodeInvalid && c != silo.CodeNotFound {
			t.Errorf("GetBlob(%q) = %q, %v; want it refused as a link (CodeInvalid) or not found", key, v, err)
		}
	}
	if err := d.PutBlob(ctx, "uploads", "dirlink/real", []byte("THROUGH")); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("PutBlob(dirlink/real) = %v; want it refused as a link", err)
	}
	if err := d.DeleteBlob(ctx, "uploads", "dirlink/real"); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("DeleteBlob(dirlink/real) = %v; want it refused as a link", err)
	}
	if err := d.PutBlob(ctx, "uploads", "alias", []byte("OVERWRITE")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(filepath.Join(bucket, "alias")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("PutBlob over a link left %v, %v; want a regular file in its place", st.Mode(), err)
	}
	ks, err := d.ListBlobs(ctx, "uploads", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k == "sub/alias" || k == "dirlink/real" || k == "up" {
			t.Errorf("ListBlobs lists the link %q: %q", k, ks)
		}
	}
	// Twin: the targets are intact and read; the overwritten key reads its
	// own value.
	for key, want := range map[string]string{"real": "REAL", "sub/real": "SUBREAL", "alias": "OVERWRITE"} {
		if v, err := d.GetBlob(ctx, "uploads", key); err != nil || string(v) != want {
			t.Errorf("GetBlob(%q) = %q, %v; want %q", key, v, err, want)
		}
	}
}

// TestLinksRefusedAtEveryLevel replaces, one at a time, each level of acme's
// tree with a link to globex's: the account directory, blobs/, the bucket,
// and the store file. No blob or table operation of acme reaches globex's
// data, and globex's data is unchanged. Twin: on the untouched tree the same
// operations work.
func TestLinksRefusedAtEveryLevel(t *testing.T) {
	levels := []struct {
		name  string
		path  string // under accounts/, replaced by a link
		blobs bool   // the level affects blob operations (else tables)
	}{
		{"account dir", "acme", true},
		{"blobs dir", "acme/blobs", true},
		{"bucket dir", "acme/blobs/uploads", true},
		{"store file", "acme/data.db", false},
	}
	ctx := context.Background()
	for _, lv := range levels {
		t.Run(lv.name, func(t *testing.T) {
			dir := t.TempDir()
			p := twoAccounts(t, dir)
			p.Close() // releases the store files: bbolt would otherwise wait on its own lock
			accounts := filepath.Join(dir, "accounts")
			mine, theirs := filepath.Join(accounts, lv.path), filepath.Join(accounts, "globex", filepath.Base(lv.path))
			if lv.path == "acme" {
				theirs = filepath.Join(accounts, "globex")
			}
			keep := filepath.Join(t.TempDir(), "kept")
			if err := os.Rename(mine, keep); err != nil {
				t.Fatal(err)
			}
			if lv.path == "acme" { // acme must still exist: its key ring is in place, behind the link
				if err := os.MkdirAll(theirs, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(theirs, mine); err != nil {
				t.Fatal(err)
			}
			p, err := local.New(local.Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			d, err := p.Data(ctx, "acme")
			if err != nil {
				// The account directory is the link: globex's key ring is
				// what acme would read, and it does not open as acme's.
				if lv.path != "acme" {
					t.Fatal(err)
				}
			} else {
				attack(t, d, lv.blobs)
			}
			globexUnchanged(t, p)

			// Twin: put the real level back; the same operations work.
			p.Close()
			os.Remove(mine)
			if err := os.Rename(keep, mine); err != nil {
				t.Fatal(err)
			}
			p, err = local.New(local.Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			d, err = p.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if err := d.PutBlob(ctx, "uploads", "mine", []byte("ACME")); err != nil {
				t.Errorf("twin: PutBlob = %v", err)
			}
			if err := d.Put(ctx, "findings", "k", []byte("ACME")); err != nil {
				t.Errorf("twin: Put = %v", err)
			}
			if v, err := d.GetBlob(ctx, "uploads", "mine"); err != nil || string(v) != "ACME" {
				t.Errorf("twin: GetBlob = %q, %v", v, err)
			}
		})
	}
}

// attack tries acme's reads and writes through a tree with a link in it;
// each must fail.
func attack(t *testing.T, d provider.Data, blobs bool) {
	t.Helper()
	ctx := context.Background()
	if blobs {
		if v, err := d.GetBlob(ctx, "uploads", "theirs"); err == nil || bytes.Contains(v, []byte("GLOBEX")) {
			t.Errorf("GetBlob through the link = %q, %v; want an error", v, err)
		}
		if err := d.PutBlob(ctx, "uploads", "planted", []byte("FROM-ACME")); err == nil {
			t.Error("PutBlob through the link succeeded")
		}
		if ks, err := d.ListBlobs(ctx, "uploads", "", 100); err == nil {
			t.Errorf("ListBlobs through the link = %q, want an error", ks)
		}
		return
	}
	if v, err := d.Get(ctx, "findings", "k"); err == nil || bytes.Contains(v, []byte("GLOBEX")) {
		t.Errorf("Get through the link = %q, %v; want an error", v, err)
	}
	if err := d.Put(ctx, "findings", "planted", []byte("FROM-ACME")); err == nil {
		t.Error("Put through the link succeeded")
	}
}

func globexUnchanged(t *testing.T, p *local.Provider) {
	t.Helper()
	ctx := context.Background()
	g, err := p.Data(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := g.ListBlobs(ctx, "uploads", "", 100); err != nil || len(ks) != 1 || ks[0] != "theirs" {
		t.Errorf("globex's blobs = %q, %v; want only theirs", ks, err)
	}
	if v, err := g.GetBlob(ctx, "uploads", "theirs"); err != nil || string(v) != "GLOBEX-BLOB" {
		t.Errorf("globex's blob = %q, %v", v, err)
	}
	if kvs, err := g.Scan(ctx, "findings", "", "", 100); err != nil || len(kvs) != 1 || string(kvs[0].Value) != "GLOBEX-VALUE" {
		t.Errorf("globex's table = %v, %v; want only k", kvs, err)
	}
}
