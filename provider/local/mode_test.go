package local_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// TestFilesArePrivate: a data directory open to group or others is closed
// to them at start, and every file the provider writes is 0600 and every
// directory 0700. Twin: a private directory is left as it is.
func TestFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		mode, want os.FileMode
	}{
		{"open to others", 0o755, 0o700},
		{"open to group", 0o770, 0o700},
		{"private", 0o700, 0o700},
		{"owner read-only bits kept", 0o750, 0o700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			p, err := local.New(local.Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if st, _ := os.Stat(dir); st.Mode().Perm() != tc.want {
				t.Errorf("data dir mode after New = %04o, want %04o", st.Mode().Perm(), tc.want)
			}
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
			d, _ := p.Data(ctx, "acme")
			if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			if err := d.PutBlob(ctx, "uploads", "a/b", []byte("v")); err != nil {
				t.Fatal(err)
			}
			if err := p.PutSecret(ctx, "acme", "api_token", []byte("s")); err != nil {
				t.Fatal(err)
			}
			files := 0
			filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				fi, _ := e.Info()
				want := os.FileMode(0o600)
				if e.IsDir() {
					want = 0o700
				} else {
					files++
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
				}
				return nil
			})
			if files < 6 {
				t.Errorf("walked %d files; the test is not looking at the data", files)
			}
		})
	}
}

// TestMasterKeyOutsideDataDir: with MasterKeyFile set the master key lives
// there and not in the data dir, so a copy of the data dir alone (a backup)
// opens nothing: under another master key its data does not read. Twin: the
// copy with the right key file reads everything, rotation included.
func TestMasterKeyOutsideDataDir(t *testing.T) {
	ctx := context.Background()
	dir, keyFile := t.TempDir(), filepath.Join(t.TempDir(), "silo-master.key")
	p, err := local.New(local.Config{Dir: dir, MasterKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, _ := p.Data(ctx, "acme")
	if err := d.Put(ctx, "findings", "k", []byte("VALUE")); err != nil {
		t.Fatal(err)
	}
	if err := p.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !os.IsNotExist(err) {
		t.Errorf("master.key is in the data dir: %v", err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want it, 0600", st, err)
	}
	read := func(cfg local.Config) ([]byte, error) {
		p, err := local.New(cfg)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		d, err := p.Data(ctx, "acme")
		if err != nil {
			return nil, err
		}
		return d.Get(ctx, "findings", "k")
	}
	if v, err := read(local.Config{Dir: dir}); err == nil || string(v) == "VALUE" {
		t.Errorf("the data dir alone reads %q, %v; want an error", v, err)
	}
	os.Remove(filepath.Join(dir, "master.key")) // the one the previous New made
	if v, err := read(local.Config{Dir: dir, MasterKeyFile: keyFile}); err != nil || string(v) != "VALUE" {
		t.Errorf("with the key file: %q, %v; want VALUE", v, err)
	}
}
