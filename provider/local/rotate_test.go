package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
)

var rotIDs = []silo.AccountID{"acme", "globex", "initech"}

func secretValue(id silo.AccountID, name string) string { return string(id) + "-" + name + "-value" }

// rotFixture creates the accounts of rotIDs in dir, each with secrets a and
// b, and closes the provider.
func rotFixture(t *testing.T, dir string) {
	t.Helper()
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, id := range rotIDs {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b"} {
			declareSecret(t, p, id, name)
			if err := p.PutSecret(ctx, id, name, []byte(secretValue(id, name))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// wantAllSecrets checks that every secret of every account decrypts.
func wantAllSecrets(t *testing.T, p *Provider) {
	t.Helper()
	for _, id := range rotIDs {
		d, err := p.Data(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b"} {
			wantSecret(t, d, name, secretValue(id, name))
		}
	}
}

func ringLen(t *testing.T, dir string, id silo.AccountID) int {
	t.Helper()
	w, err := WrappedKeys(filepath.Join(dir, "accounts", string(id)))
	if err != nil {
		t.Fatal(err)
	}
	return len(w)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil { // a new inode, as every write of the provider
		t.Fatal(err)
	}
}

func keyInfo(t *testing.T, p *Provider, id silo.AccountID) (fp, wrappedBy string) {
	t.Helper()
	ki, err := p.KeyInfo(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ki.Fingerprint, ki.WrappedBy
}

// TestRotateDataKey: after a rotation every secret decrypts (must), the
// fingerprint changed, the other accounts are untouched, and the ciphertext
// copied before the rotation no longer decrypts (must not).
func TestRotateDataKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	acme := filepath.Join(dir, "accounts", "acme")
	oldSecrets := filepath.Join(t.TempDir(), "secrets.json")
	copyFile(t, filepath.Join(acme, fileSecrets), oldSecrets)
	fpAcme, byAcme := keyInfo(t, p, "acme")
	fpGlobex, _ := keyInfo(t, p, "globex")

	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	wantAllSecrets(t, p)
	fp, by := keyInfo(t, p, "acme")
	if fp == fpAcme || len(fp) != len(fpAcme) {
		t.Errorf("KeyInfo fingerprint after rotation = %q, want a new one (was %q)", fp, fpAcme)
	}
	if by != byAcme {
		t.Errorf("WrappedBy changed with a data-key rotation: %q, was %q", by, byAcme)
	}
	if fp, _ := keyInfo(t, p, "globex"); fp != fpGlobex {
		t.Errorf("globex's key changed when acme's rotated")
	}
	if n := ringLen(t, dir, "acme"); n != 1 {
		t.Errorf("ring holds %d keys after rotation, want 1", n)
	}
	// A fresh provider (a restart) agrees.
	p2, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	wantAllSecrets(t, p2)
	if fp2, _ := keyInfo(t, p2, "acme"); fp2 != fp {
		t.Errorf("fingerprint after restart %q, want %q", fp2, fp)
	}

	wantOldCiphertextDead(t, p, acme, oldSecrets)

	if err := p.RotateDataKey(ctx, "ghost"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("rotate a missing account: got %v, want CodeNotFound", err)
	}
}

// wantOldCiphertextDead puts the secrets.json copied before a rotation back
// in place: it must not decrypt; then puts the current one back: it must.
// The files are swapped behind p's back, so p's cached copies are made due
// for a recheck (expire), as if CacheRecheck had passed.
func wantOldCiphertextDead(t *testing.T, p *Provider, acctDir, oldSecrets string) {
	t.Helper()
	id := silo.AccountID(filepath.Base(acctDir))
	cur := filepath.Join(t.TempDir(), "current.json")
	copyFile(t, filepath.Join(acctDir, fileSecrets), cur)
	copyFile(t, oldSecrets, filepath.Join(acctDir, fileSecrets))
	expire(p, id)
	d, err := p.Data(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Secret(context.Background(), "a"); err == nil || !errors.Is(err, envelope.ErrDecrypt) {
		t.Errorf("ciphertext from before the rotation: Secret = %q, %v; want ErrDecrypt", v, err)
	}
	copyFile(t, cur, filepath.Join(acctDir, fileSecrets))
	expire(p, id)
	wantSecret(t, d, "a", secretValue(id, "a"))
}

// diskRing returns the account's data.key as on disk.
func diskRing(t *testing.T, dir string, id silo.AccountID) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "accounts", string(id), fileDataKey))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cachedRing returns the key ring p serves from memory, encoded; nil if none.
func cachedRing(p *Provider, id silo.AccountID) []byte {
	if c := cachedFileOf(p, id, fileDataKey); c != nil {
		return encodeAccount(c.ring, c.held)
	}
	return nil
}

// TestRotateCacheNotStale: the rotating provider serves the new files at
// once; another provider on the same directory (silo up, while the CLI
// rotates) serving from memory never fails a read meanwhile, and within
// its CacheRecheck (polled for) holds the new key ring and the new master
// key.
func TestRotateCacheNotStale(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p1 := newTestProvider(t, Config{Dir: dir})
	p2 := newTestProvider(t, Config{Dir: dir, CacheRecheck: 20 * time.Millisecond})
	age(t, p1, "acme")
	for _, p := range []*Provider{p1, p2} {
		d, _ := p.Data(ctx, "acme")
		wantSecret(t, d, "a", secretValue("acme", "a"))
		if !cached(p, "acme", fileSecrets) {
			t.Fatal("control: secrets.json is not cached after a read of an old file")
		}
	}
	readsOK := func() error {
		for _, id := range rotIDs {
			d, err := p2.Data(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"a", "b"} {
				if err := secretIs(d, name, secretValue(id, name)); err != nil {
					t.Fatalf("provider 2 while following a rotation: %s: %v", id, err)
				}
			}
		}
		return nil
	}
	readsOK()

	if err := p1.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if cached(p1, "acme", fileSecrets) {
		t.Error("the rotating provider still caches the old secrets.json")
	}
	wantAllSecrets(t, p1)
	if !bytes.Equal(cachedRing(p1, "acme"), diskRing(t, dir, "acme")) {
		t.Error("the rotating provider does not serve the new key ring at once")
	}
	eventually(t, "provider 2 follows the data-key rotation", func() error {
		readsOK()
		if !bytes.Equal(cachedRing(p2, "acme"), diskRing(t, dir, "acme")) {
			return errors.New("provider 2 serves another key ring than the one on disk")
		}
		return nil
	})

	// p2 must also follow a master-key rotation by p1.
	if err := p1.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "provider 2 follows the master-key rotation", func() error {
		readsOK()
		for _, id := range rotIDs {
			if !bytes.Equal(cachedRing(p2, id), diskRing(t, dir, id)) {
				return fmt.Errorf("provider 2 serves another key ring of %s than the one on disk", id)
			}
		}
		if p2.MasterFingerprint() != p1.MasterFingerprint() {
			return errors.New("provider 2 did not reload the rotated master key")
		}
		return nil
	})
}

// TestRotateSeenByWarmReader: a second provider on the same directory has
// every secret of every account cached (for an hour) when the first one
// rotates, and the rotation stops after one of its steps, as a crash or a
// rotation still running would leave it. Whichever of the reader's cached
// files are then due for a recheck — none, the ring, secrets.json, both, or
// those of another account read first (which reloads master.key) — every
// secret decrypts: a value naming a key that is not in the cached ring, or
// a ring entry that no longer unwraps, makes Secret read both files again
// whatever their age. Control: until then the reader serves the ring from
// before the rotation; once everything is rechecked, it serves the one on
// disk.
func TestRotateSeenByWarmReader(t *testing.T) {
	expiries := []struct {
		name string
		do   func(p *Provider)
	}{
		{"none", func(p *Provider) {}},
		{"ring", func(p *Provider) { expire(p, "acme", fileDataKey) }},
		{"secrets", func(p *Provider) { expire(p, "acme", fileSecrets) }},
		{"both", func(p *Provider) { expire(p, "acme") }},
		{"other-account-first", func(p *Provider) {
			expire(p, "globex")
			d, _ := p.Data(context.Background(), "globex")
			if err := secretIs(d, "a", secretValue("globex", "a")); err != nil {
				panic(err)
			}
		}},
	}
	for _, tt := range []struct{ kind, stop string }{
		{"data", StepDataKeyAdded},
		{"data", StepDataKeyResealed},
		{"data", ""}, // complete
		{"master", StepMasterKeyAdded},
		{"master", StepMasterKeyRewrap}, // acme rewrapped, globex and initech not yet
		{"master", ""},
	} {
		t.Run(tt.kind+"/"+tt.stop, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			rotFixture(t, dir)
			readers := make([]*Provider, len(expiries))
			before := map[silo.AccountID][]byte{}
			for i := range readers {
				readers[i] = newTestProvider(t, Config{Dir: dir, CacheRecheck: time.Hour})
				wantAllSecrets(t, readers[i])
			}
			for _, id := range rotIDs {
				before[id] = diskRing(t, dir, id)
			}
			rot := newTestProvider(t, Config{Dir: dir, OnRotateStep: func(step string, _ silo.AccountID) error {
				if step == tt.stop {
					return errors.New("stopped by the test")
				}
				return nil
			}})
			var err error
			if tt.kind == "data" {
				err = rot.RotateDataKey(ctx, "acme")
			} else {
				err = rot.RotateMasterKey(ctx)
			}
			if (err != nil) != (tt.stop != "") {
				t.Fatalf("rotation stopping after %q: %v", tt.stop, err)
			}
			if bytes.Equal(before["acme"], diskRing(t, dir, "acme")) && tt.stop != StepMasterKeyAdded {
				t.Fatal("control: the rotation did not change acme's key ring")
			}
			for i, e := range expiries {
				p := readers[i]
				if !bytes.Equal(cachedRing(p, "acme"), before["acme"]) {
					t.Fatalf("%s: control: the reader does not serve the ring from before the rotation", e.name)
				}
				e.do(p)
				wantAllSecrets(t, p)
				expireAll(p)
				wantAllSecrets(t, p)
				for _, id := range rotIDs {
					if !bytes.Equal(cachedRing(p, id), diskRing(t, dir, id)) {
						t.Errorf("%s: after a recheck the reader serves another ring of %s than the one on disk", e.name, id)
					}
				}
			}
		})
	}
}

// TestRotateMasterKey: after a master-key rotation every secret decrypts,
// data-key fingerprints are kept, WrappedBy names the new master key, and
// a data.key copied before no longer opens.
func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	oldMaster := p.MasterFingerprint()
	fp, by := keyInfo(t, p, "acme")
	oldKey := filepath.Join(t.TempDir(), "data.key")
	acme := filepath.Join(dir, "accounts", "acme")
	copyFile(t, filepath.Join(acme, fileDataKey), oldKey)

	if err := p.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	wantAllSecrets(t, p)
	if p.MasterFingerprint() == oldMaster {
		t.Error("master fingerprint unchanged after rotation")
	}
	fp2, by2 := keyInfo(t, p, "acme")
	if fp2 != fp || by2 == by || !strings.HasSuffix(by2, p.MasterFingerprint()) {
		t.Errorf("KeyInfo after master rotation = %q wrapped by %q; want %q wrapped by the new master %s", fp2, by2, fp, p.MasterFingerprint())
	}
	if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Size() != envelope.KeySize {
		t.Errorf("master.key is %d bytes after rotation, want %d (one key)", st.Size(), envelope.KeySize)
	}
	p2, _ := New(Config{Dir: dir})
	defer p2.Close()
	wantAllSecrets(t, p2)
	wantOldRingDead(t, p2, acme, oldKey)
}

// wantOldRingDead puts the data.key copied before a master rotation back:
// it must not open; then the current one: it must (p's cached copies made
// due for a recheck, as in wantOldCiphertextDead).
func wantOldRingDead(t *testing.T, p *Provider, acctDir, oldKey string) {
	t.Helper()
	id := silo.AccountID(filepath.Base(acctDir))
	cur := filepath.Join(t.TempDir(), "current.key")
	copyFile(t, filepath.Join(acctDir, fileDataKey), cur)
	copyFile(t, oldKey, filepath.Join(acctDir, fileDataKey))
	expire(p, id)
	d, err := p.Data(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Secret(context.Background(), "a"); err == nil {
		t.Errorf("data.key from before the master rotation still opens: Secret = %q", v)
	}
	copyFile(t, cur, filepath.Join(acctDir, fileDataKey))
	expire(p, id)
	wantSecret(t, d, "a", secretValue(id, "a"))
}

// TestLegacyFilesMigrate: an account written before rotation existed (a
// bare wrapped key in data.key, bare base64 in secrets.json) keeps working,
// keeps its fingerprint, and is migrated by its first rotation.
func TestLegacyFilesMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	acme := filepath.Join(dir, "accounts", "acme")
	master, err := envelope.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	dk, wrapped, err := master.NewDataKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(acme, fileDataKey), wrapped, 0o600); err != nil {
		t.Fatal(err)
	}
	// Nor had it a storage key: data at rest was not encrypted yet (the
	// copy in the account file is gone with it).
	if err := os.Remove(filepath.Join(acme, fileStorageKey)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	sec := map[string]string{}
	for _, name := range []string{"a", "b"} {
		env, _ := dk.Seal(name, []byte(secretValue("acme", name)))
		sec[name] = base64.StdEncoding.EncodeToString(env)
	}
	b, _ := json.Marshal(sec)
	if err := os.WriteFile(filepath.Join(acme, fileSecrets), b, 0o600); err != nil {
		t.Fatal(err)
	}

	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	wantAllSecrets(t, p)
	if fp, _ := keyInfo(t, p, "acme"); fp != envelope.Fingerprint(wrapped) {
		t.Errorf("legacy KeyInfo fingerprint = %q, want %q as before", fp, envelope.Fingerprint(wrapped))
	}
	// A secret put now, next to the legacy ones, is readable too.
	if err := p.PutSecret(ctx, "acme", "b", []byte(secretValue("acme", "b"))); err != nil {
		t.Fatal(err)
	}
	wantAllSecrets(t, p)

	if err := p.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	wantAllSecrets(t, p)
	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	wantAllSecrets(t, p)
	raw, _ := os.ReadFile(filepath.Join(acme, fileDataKey))
	if !bytes.HasPrefix(raw, []byte(ringMagic)) {
		t.Error("data.key was not migrated to the key ring format")
	}
	for name, v := range readRaw(t, acme) {
		if !strings.Contains(v, ":") {
			t.Errorf("secret %s has no key ID after rotation", name)
		}
	}
}

func readRaw(t *testing.T, acctDir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	b, err := os.ReadFile(filepath.Join(acctDir, fileSecrets))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRotateConcurrent: rotations of both kinds race with account creation
// and secret reads in one process; no read fails and afterwards every
// account, including those created meanwhile, opens under the one master
// key left.
func TestRotateConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	run := func(fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				errs <- err
			}
		}()
	}
	for i := 0; i < 3; i++ {
		run(func() error { return p.RotateMasterKey(ctx) })
		for _, id := range rotIDs {
			run(func() error { return p.RotateDataKey(ctx, id) })
		}
		run(func() error { return p.CreateAccount(ctx, silo.AccountID(fmt.Sprintf("new-%d", i)), silo.KindTenant) })
		for _, id := range rotIDs {
			run(func() error {
				d, err := p.Data(ctx, id)
				if err != nil {
					return err
				}
				for j := 0; j < 20; j++ {
					if v, err := d.Secret(ctx, "a"); err != nil || string(v) != secretValue(id, "a") {
						return fmt.Errorf("Secret of %s during rotation = %q, %v", id, v, err)
					}
				}
				return nil
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Size() != envelope.KeySize {
		t.Errorf("master.key holds %d bytes after the rotations, want one key", st.Size())
	}
	p2, _ := New(Config{Dir: dir})
	defer p2.Close()
	wantAllSecrets(t, p2)
	ids, _ := p2.Accounts(ctx)
	for _, id := range ids {
		if _, err := p2.KeyInfo(ctx, id); err != nil {
			t.Errorf("KeyInfo(%s) after concurrent rotations: %v", id, err)
		}
	}
	if len(ids) != len(rotIDs)+3 {
		t.Errorf("%d accounts, want %d", len(ids), len(rotIDs)+3)
	}
}

// TestRotateShredsStaleTemps: copies of keys in temporary files left by a
// write that crashed before its rename are destroyed by the next rotation
// once a minute old; a fresh one (maybe another process's write in flight)
// is left alone.
func TestRotateShredsStaleTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p, _ := New(Config{Dir: dir})
	defer p.Close()
	acme := filepath.Join(dir, "accounts", "acme")
	key, _ := os.ReadFile(filepath.Join(acme, fileDataKey))
	master, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	old := time.Now().Add(-time.Hour)
	plant := func(path string, b []byte, stale bool) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if stale {
			os.Chtimes(path, old, old)
		}
	}
	staleKey, freshKey := filepath.Join(acme, ".tmp-data.key-1"), filepath.Join(acme, ".tmp-data.key-2")
	staleMaster, freshMaster := filepath.Join(dir, ".tmp-master.key-1"), filepath.Join(dir, ".tmp-master.key-2")
	// The names of temporary master keys before internal/durable.
	staleOlder, freshOlder := filepath.Join(dir, ".master.key.tmp-1"), filepath.Join(dir, ".master.key.tmp-2")
	plant(staleKey, key, true)
	plant(freshKey, key, false)
	plant(staleMaster, master, true)
	plant(freshMaster, master, false)
	plant(staleOlder, master, true)
	plant(freshOlder, master, false)
	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := p.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{staleKey, staleMaster, staleOlder} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("stale %s survived the rotation: %v", filepath.Base(path), err)
		}
	}
	for _, path := range []string{freshKey, freshMaster, freshOlder} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("control: fresh %s was removed: %v", filepath.Base(path), err)
		}
	}
	wantAllSecrets(t, p)
}
