package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/provider/providertest"
	"go.etcd.io/bbolt"
)

// damageFixture builds a data dir holding the accounts acme and globex, each
// with the example stack, a secret, a blob and a store file of about 700
// pages (small keys in a tree of branch pages, and values that span
// overflow pages), and returns its path. The provider is closed.
func damageFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := map[string]*storageKeys{}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		_, sk, err := p.keysOf(id, false)
		if err != nil {
			t.Fatal(err)
		}
		keys[string(id)] = sk
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
		if err := p.PutSecret(ctx, id, "api_token", []byte("token-of-"+id)); err != nil {
			t.Fatal(err)
		}
		d, err := p.Data(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.PutBlob(ctx, "uploads", "report.txt", []byte("blob-of-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		db, err := bbolt.Open(filepath.Join(dir, "accounts", id, fileDB), fileMode, &bbolt.Options{NoFreelistSync: true})
		if err != nil {
			t.Fatal(err)
		}
		// Values are written straight into the store, sealed as Data.Put
		// seals them, to build a large file quickly.
		put := func(b *bbolt.Bucket, key string, v []byte) error {
			env, err := keys[id].sealValue("findings", key, v)
			if err != nil {
				return err
			}
			return b.Put([]byte(key), env)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("findings"))
			for i := range 3000 {
				if err := put(b, fmt.Sprintf("k%05d", i), bytes.Repeat([]byte{byte(i)}, 300)); err != nil {
					return err
				}
			}
			for i := range 40 {
				if err := put(b, fmt.Sprintf("big%02d", i), bytes.Repeat([]byte{byte(i)}, 20000)); err != nil {
					return err
				}
			}
			return put(b, "marker", []byte("marker-of-"+id))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A damage changes the file at path; other is the same file of the other
// account (for links).
type damageFn func(t *testing.T, path, other string)

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rewrite(t *testing.T, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	mustDo(t, err)
	mustDo(t, os.WriteFile(path, f(b), fileMode))
}

var damages = map[string]damageFn{
	"truncated to 8 KiB": func(t *testing.T, path, _ string) { mustDo(t, os.Truncate(path, min(8192, size(t, path)/2))) },
	"truncated to half":  func(t *testing.T, path, _ string) { mustDo(t, os.Truncate(path, size(t, path)/2)) },
	"emptied":            func(t *testing.T, path, _ string) { mustDo(t, os.Truncate(path, 0)) },
	"zeroed page mid-file": func(t *testing.T, path, _ string) {
		rewrite(t, path, func(b []byte) []byte {
			at := len(b) / 2 &^ 4095
			clear(b[at:min(at+4096, len(b))])
			return b
		})
	},
	"flipped bytes": func(t *testing.T, path, _ string) {
		rewrite(t, path, func(b []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for range 1 + len(b)/512 {
				b[r.IntN(len(b))] ^= 0xff
			}
			return b
		})
	},
	"wrong magic": func(t *testing.T, path, _ string) {
		rewrite(t, path, func(b []byte) []byte {
			for i := 0; i < len(b) && i < 16384; i++ {
				b[i] = "not a silo file "[i%16]
			}
			return b
		})
	},
	"directory in its place": func(t *testing.T, path, _ string) {
		mustDo(t, os.RemoveAll(path))
		mustDo(t, os.Mkdir(path, dirMode))
	},
	"link to the other account's": func(t *testing.T, path, other string) {
		mustDo(t, os.RemoveAll(path))
		mustDo(t, os.Symlink(other, path))
	},
}

func size(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	mustDo(t, err)
	return fi.Size()
}

// exercise runs every data-plane and control-plane call on account id and
// returns what each returned; a panic fails the test (it would have killed
// the host).
func exercise(t *testing.T, p *Provider, id silo.AccountID) (map[string]string, error) {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	try := func(op string, f func() (string, error)) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s of %s panicked: %v", op, id, r)
			}
		}()
		v, err := f()
		if err != nil {
			got[op] = "error: " + err.Error()
			return
		}
		got[op] = v
	}
	d, err := p.Data(ctx, id)
	if err != nil {
		got["data"] = "error: " + err.Error()
		return got, p.Damaged(id)
	}
	try("get", func() (string, error) { v, err := d.Get(ctx, "findings", "marker"); return string(v), err })
	try("scan", func() (string, error) {
		kv, err := d.Scan(ctx, "findings", "k", "", 5)
		return fmt.Sprint(len(kv)), err
	})
	try("put", func() (string, error) { return "ok", d.Put(ctx, "sessions", "s", []byte("v")) })
	try("config", func() (string, error) { return d.Config(ctx, "plan") })
	try("secret", func() (string, error) { v, err := d.Secret(ctx, "api_token"); return string(v), err })
	try("blob", func() (string, error) { v, err := d.GetBlob(ctx, "uploads", "report.txt"); return string(v), err })
	try("resources", func() (string, error) { rs, err := p.Resources(ctx, id); return fmt.Sprint(len(rs)), err })
	damaged := p.Damaged(id) // before PutSecret rewrites secrets.json
	try("put secret", func() (string, error) { return "ok", p.PutSecret(ctx, id, "api_token", []byte("token-of-"+id)) })
	return got, damaged
}

// wantHealthy fails unless every call on id returns its account's own data
// and id is not found damaged.
func wantHealthy(t *testing.T, id silo.AccountID, p *Provider) {
	t.Helper()
	got, damaged := exercise(t, p, id)
	if damaged != nil {
		t.Errorf("Damaged(%s) = %v, want nil", id, damaged)
	}
	want := map[string]string{
		"get": "marker-of-" + string(id), "scan": "5", "put": "ok", "config": "pro",
		"secret": "token-of-" + string(id), "blob": "blob-of-" + string(id), "resources": fmt.Sprint(len(providertest.Stack(t))), "put secret": "ok",
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s of %s: got %q, want %q", op, id, got[op], w)
		}
	}
}

// TestDamagedAccountFiles damages each file of one account in every way of
// the corpus, then opens the data dir and uses both accounts. Nothing
// panics; the damaged account's calls fail with a DamageError naming the
// file (or, where the damage left a file bbolt reads as valid, return that
// account's own data and never the other's); the other account answers
// everything unchanged, and so does the undamaged twin of the damaged one.
func TestDamagedAccountFiles(t *testing.T) {
	fixture := damageFixture(t)
	files := []string{fileDB, fileDataKey, fileConfig, fileSecrets, fileResources, dirBlobs}
	for _, file := range files {
		for name, damage := range damages {
			if file == dirBlobs && name != "link to the other account's" && name != "emptied" {
				continue // a directory: only replaced
			}
			t.Run(file+"/"+name, func(t *testing.T) {
				dir := t.TempDir()
				localtest.CopyTree(t, fixture, dir)
				acct := filepath.Join(dir, "accounts", "acme")
				path := filepath.Join(acct, file)
				if file == dirBlobs && name == "emptied" { // a file in the directory's place
					mustDo(t, os.RemoveAll(path))
					mustDo(t, os.WriteFile(path, nil, fileMode))
				} else {
					damage(t, path, filepath.Join(dir, "accounts", "globex", file))
				}
				p := newTestProvider(t, Config{Dir: dir})

				// A check before any use finds it (silo doctor, drift).
				cerr := p.CheckAccount(context.Background(), "acme")
				switch {
				case cerr == nil && !tolerated(file, name):
					t.Errorf("CheckAccount(acme) after %s of %s = nil, want the damage", name, file)
				case cerr != nil && !strings.Contains(cerr.Error(), file):
					t.Errorf("CheckAccount(acme) = %v, want an error naming %s", cerr, file)
				}
				if err := p.CheckAccount(context.Background(), "globex"); err != nil {
					t.Errorf("CheckAccount(globex) = %v, want nil", err)
				}
				p.Close()
				p = newTestProvider(t, Config{Dir: dir}) // forgets what the check found

				got, damaged := exercise(t, p, "acme")
				for op, v := range got {
					if strings.Contains(v, "globex") {
						t.Errorf("%s of acme: got %q, which is the other account's", op, v)
					}
				}
				failed := 0
				for op, v := range got {
					if !strings.HasPrefix(v, "error: ") {
						continue
					}
					failed++
					if !strings.Contains(v, file) {
						t.Errorf("%s of acme: got %q, want an error naming %s", op, v, file)
					}
				}
				if failed > 0 {
					err := damaged
					var de *DamageError
					if !errors.As(err, &de) || de.File != file && !(file == dirBlobs) {
						t.Errorf("Damaged(acme) = %v, want a DamageError for %s (calls: %v)", err, file, got)
					}
					if silo.ErrorCode(err) != silo.CodeUnavailable && file != dirBlobs {
						t.Errorf("Damaged(acme) code = %s, want %s", silo.ErrorCode(err), silo.CodeUnavailable)
					}
				}
				if failed == 0 && !tolerated(file, name) {
					t.Errorf("every call on acme succeeded after %s of %s: %v", name, file, got)
				}
				wantHealthy(t, "globex", p)
			})
		}
	}
	t.Run("undamaged twin", func(t *testing.T) {
		dir := t.TempDir()
		localtest.CopyTree(t, fixture, dir)
		p := newTestProvider(t, Config{Dir: dir})
		for _, id := range []silo.AccountID{"acme", "globex"} {
			if err := p.CheckAccount(context.Background(), id); err != nil {
				t.Errorf("CheckAccount(%s) = %v, want nil", id, err)
			}
		}
		wantHealthy(t, "acme", p)
		wantHealthy(t, "globex", p)
	})
}

// tolerated names the damages after which the account may still work:
// bytes flipped inside values or unused pages of the store file (bbolt keeps
// no checksums of its pages), an emptied store (bbolt starts a new one, the
// tables are then missing), and files whose loss only empties them.
func tolerated(file, damage string) bool {
	switch {
	case file == fileDB && damage == "flipped bytes":
		return true
	case file == dirBlobs:
		return false
	}
	return false
}

// TestLockFilesDoNotPileUp: after accounts are created, changed and
// deleted, no lock file of an account is left (with removal switched off,
// one per account is: the twin); two providers changing one account at
// once still serialize (TestTwoProcessesWriteOneAccount runs with removal
// on).
func TestLockFilesDoNotPileUp(t *testing.T) {
	for _, remove := range []bool{true, false} {
		t.Run(fmt.Sprint("remove=", remove), func(t *testing.T) {
			defer func(old bool) { removeExclusive = old }(removeExclusive)
			removeExclusive = remove
			ctx := context.Background()
			p := newTestProvider(t, Config{})
			for i := range 5 {
				id := silo.AccountID(fmt.Sprintf("t%d", i))
				if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
					t.Fatal(err)
				}
				setConfig(t, p, id, "plan", "pro")
				if _, err := p.DeleteAccount(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			ents, err := os.ReadDir(filepath.Join(p.cfg.Dir, dirLocks))
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, e := range ents {
				if e.Name() != "master.lock" {
					left = append(left, e.Name())
				}
			}
			if want := map[bool]int{true: 0, false: 5}[remove]; len(left) != want {
				t.Fatalf("lock files left: %v, want %d", left, want)
			}
		})
	}
}
