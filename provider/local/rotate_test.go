package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
func wantOldCiphertextDead(t *testing.T, p *Provider, acctDir, oldSecrets string) {
	t.Helper()
	cur := filepath.Join(t.TempDir(), "current.json")
	copyFile(t, filepath.Join(acctDir, fileSecrets), cur)
	copyFile(t, oldSecrets, filepath.Join(acctDir, fileSecrets))
	d, err := p.Data(context.Background(), silo.AccountID(filepath.Base(acctDir)))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Secret(context.Background(), "a"); err == nil || !errors.Is(err, envelope.ErrDecrypt) {
		t.Errorf("ciphertext from before the rotation: Secret = %q, %v; want ErrDecrypt", v, err)
	}
	copyFile(t, cur, filepath.Join(acctDir, fileSecrets))
	wantSecret(t, d, "a", secretValue(silo.AccountID(filepath.Base(acctDir)), "a"))
}

// TestRotateCacheNotStale: secrets.json served from memory, by this
// provider and by another one on the same directory, is not served stale
// after a rotation.
func TestRotateCacheNotStale(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p1, _ := New(Config{Dir: dir})
	defer p1.Close()
	p2, _ := New(Config{Dir: dir})
	defer p2.Close()
	age(t, p1, "acme")
	for _, p := range []*Provider{p1, p2} {
		d, _ := p.Data(ctx, "acme")
		wantSecret(t, d, "a", secretValue("acme", "a"))
		if !cached(p, "acme", fileSecrets) {
			t.Fatal("control: secrets.json is not cached after a read of an old file")
		}
	}
	if err := p1.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if cached(p1, "acme", fileSecrets) {
		t.Error("the rotating provider still caches the old secrets.json")
	}
	for i, p := range []*Provider{p1, p2} {
		d, _ := p.Data(ctx, "acme")
		if v, err := d.Secret(ctx, "a"); err != nil || string(v) != secretValue("acme", "a") {
			t.Errorf("provider %d after rotation: Secret = %q, %v", i+1, v, err)
		}
	}
	// p2 must also follow a master-key rotation by p1.
	if err := p1.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	wantAllSecrets(t, p2)
	if p2.MasterFingerprint() != p1.MasterFingerprint() {
		t.Errorf("p2 did not reload the rotated master key")
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
// it must not open; then the current one: it must.
func wantOldRingDead(t *testing.T, p *Provider, acctDir, oldKey string) {
	t.Helper()
	id := silo.AccountID(filepath.Base(acctDir))
	cur := filepath.Join(t.TempDir(), "current.key")
	copyFile(t, filepath.Join(acctDir, fileDataKey), cur)
	copyFile(t, oldKey, filepath.Join(acctDir, fileDataKey))
	d, err := p.Data(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Secret(context.Background(), "a"); err == nil {
		t.Errorf("data.key from before the master rotation still opens: Secret = %q", v)
	}
	copyFile(t, cur, filepath.Join(acctDir, fileDataKey))
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

// The kill -9 test: a child process (this test binary, re-executed) rotates
// and SIGKILLs itself at one step boundary.
const childEnv = "SILO_LOCAL_ROTATE_CHILD"

// TestRotateChild is the child; it does nothing unless run by
// TestRotateKill9.
func TestRotateChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("the child of TestRotateKill9")
	}
	kind, rest, _ := strings.Cut(spec, "|")
	step, rest, _ := strings.Cut(rest, "|")
	acct, dir, _ := strings.Cut(rest, "|")
	p, err := New(Config{Dir: dir, OnRotateStep: func(s string, id silo.AccountID) error {
		if s == step && (acct == "" || string(id) == acct) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "data":
		err = p.RotateDataKey(context.Background(), "acme")
	case "master":
		err = p.RotateMasterKey(context.Background())
	}
	t.Fatalf("rotation finished without reaching step %s of %s (err %v)", step, acct, err)
}

func TestRotateKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	tests := []struct {
		kind, step, acct string
		ring, masters    int // keys in acme's ring and in master.key right after the kill
	}{
		{"data", StepDataKeyAdded, "acme", 2, 1},
		{"data", StepDataKeyResealed, "acme", 2, 1},
		{"data", StepDataKeyDestroyed, "acme", 1, 1},
		{"master", StepMasterKeyAdded, "", 1, 2},
		{"master", StepMasterKeyRewrap, "acme", 1, 2},
		{"master", StepMasterKeyRewrap, "globex", 1, 2},
		{"master", StepMasterKeyRewrap, "initech", 1, 2},
		{"master", StepMasterKeyDestroyed, "", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.step+"/"+tt.acct, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			rotFixture(t, dir)
			acme := filepath.Join(dir, "accounts", "acme")
			saved := t.TempDir()
			oldSecrets, oldKey := filepath.Join(saved, fileSecrets), filepath.Join(saved, fileDataKey)
			copyFile(t, filepath.Join(acme, fileSecrets), oldSecrets)
			copyFile(t, filepath.Join(acme, fileDataKey), oldKey)

			cmd := exec.Command(os.Args[0], "-test.run=^TestRotateChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tt.kind+"|"+tt.step+"|"+tt.acct+"|"+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("control: the child was not killed at the step: %v\n%s", err, out)
			}
			// The kill left the intermediate state it was meant to.
			if n := ringLen(t, dir, "acme"); n != tt.ring {
				t.Errorf("after the kill acme's ring holds %d keys, want %d", n, tt.ring)
			}
			if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Size() != int64(tt.masters*envelope.KeySize) {
				t.Errorf("after the kill master.key holds %d bytes, want %d keys", st.Size(), tt.masters)
			}

			// Must: a fresh provider decrypts every secret.
			p, err := New(Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			wantAllSecrets(t, p)

			// A second rotation completes, and every secret still decrypts.
			if tt.kind == "data" {
				err = p.RotateDataKey(ctx, "acme")
			} else {
				err = p.RotateMasterKey(ctx)
			}
			if err != nil {
				t.Fatalf("second rotation: %v", err)
			}
			wantAllSecrets(t, p)
			for _, id := range rotIDs {
				if n := ringLen(t, dir, id); n != 1 {
					t.Errorf("%s's ring holds %d keys after the second rotation, want 1", id, n)
				}
			}
			if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Size() != envelope.KeySize {
				t.Errorf("master.key holds %d bytes after the second rotation, want one key", st.Size())
			}

			// Must not: what was on disk before no longer decrypts.
			if tt.kind == "data" {
				wantOldCiphertextDead(t, p, acme, oldSecrets)
			} else {
				wantOldRingDead(t, p, acme, oldKey)
			}
		})
	}
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
	staleMaster, freshMaster := filepath.Join(dir, ".master.key.tmp-1"), filepath.Join(dir, ".master.key.tmp-2")
	plant(staleKey, key, true)
	plant(freshKey, key, false)
	plant(staleMaster, master, true)
	plant(freshMaster, master, false)
	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := p.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{staleKey, staleMaster} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("stale %s survived the rotation: %v", filepath.Base(path), err)
		}
	}
	for _, path := range []string{freshKey, freshMaster} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("control: fresh %s was removed: %v", filepath.Base(path), err)
		}
	}
	wantAllSecrets(t, p)
}
