package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
)

// heldOf returns the files data.key of the account holds.
func heldOf(t *testing.T, dir string, id silo.AccountID) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "accounts", string(id), fileDataKey))
	if err != nil {
		t.Fatal(err)
	}
	_, held, err := decodeAccount(b)
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// onboardFixture onboards acme (the changes of TestOnboardKill9) in a new
// data dir, with a table value and a secret, and closes the provider.
func onboardFixture(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	p := newTestProvider(t, Config{Dir: dir})
	if _, err := p.CreateAccountWith(ctx, "acme", silo.KindTenant, onboardChangesInternal()); err != nil {
		t.Fatal(err)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, d.Put(ctx, "findings", "k", []byte("before")))
	mustDo(t, p.PutSecret(ctx, "acme", "github-token", []byte("tok")))
	p.Close()
	return dir
}

// wantAcme checks that acme holds what onboardFixture gave it, config plan
// being plan; its table too unless when names another process (which
// cannot open the store another provider has open).
func wantAcme(t *testing.T, p *Provider, plan, when string) {
	t.Helper()
	ctx := context.Background()
	rs, err := p.Resources(ctx, "acme")
	if err != nil || len(rs) != len(onboardChangesInternal()) {
		t.Fatalf("%s: acme holds %v (%v); want all %d changes", when, rs, err, len(onboardChangesInternal()))
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if !strings.HasSuffix(when, "another process") {
		if v, err := d.Get(ctx, "findings", "k"); err != nil || string(v) != "before" {
			t.Errorf("%s: table value = %q, %v; want before", when, v, err)
		}
	}
	if v, err := d.Config(ctx, "plan"); err != nil || v != plan {
		t.Errorf("%s: config plan = %q, %v; want %s", when, v, err, plan)
	}
	if v, err := d.Secret(ctx, "github-token"); err != nil || string(v) != "tok" {
		t.Errorf("%s: secret = %q, %v; want tok", when, v, err)
	}
}

// TestAccountFileHoldsNewFiles: a new account's storage key, config.json and
// manifest are in its data.key, not files of their own, and read from
// there, also after a start that scans for accounts to seal; a later write of config.json takes the copy's place, for this
// process and another; the first write of data.key (a data-key rotation)
// writes the copies out as files, leaving the written config.json alone,
// and data.key is a ring alone from then on; everything reads the same at
// each step.
func TestAccountFileHoldsNewFiles(t *testing.T) {
	ctx := context.Background()
	dir := onboardFixture(t)
	acct := filepath.Join(dir, "accounts", "acme")
	for _, f := range heldFiles {
		if _, err := os.Lstat(filepath.Join(acct, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a new account has its own %s (%v); want it in data.key", f, err)
		}
	}
	if held := heldOf(t, dir, "acme"); len(held) != len(heldFiles) {
		t.Fatalf("data.key holds %d files, want %d", len(held), len(heldFiles))
	}
	// A start without the record of a sealed data dir scans every account
	// for storage.key (migrateAll): the copy in data.key is the storage
	// key, not a missing one, and the table value still opens.
	mustDo(t, os.Remove(filepath.Join(dir, fileAllSealed)))
	p := newTestProvider(t, Config{Dir: dir})
	reader := newTestProvider(t, Config{Dir: dir, CacheRecheck: -1})
	wantAcme(t, p, "pro", "new")
	wantAcme(t, reader, "pro", "new, another process")

	plan := silo.Change{Op: silo.OpUpdate, Type: silo.TypeConfig, Name: "plan", Desired: &silo.Resource{Type: silo.TypeConfig, Name: "plan", Spec: []byte(`{"value":"enterprise"}`)}}
	if _, err := p.ApplyBatch(ctx, "acme", []silo.Change{plan}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(acct, fileConfig)); err != nil {
		t.Fatalf("config.json after a config change: %v", err)
	}
	wantAcme(t, p, "enterprise", "config changed")
	wantAcme(t, reader, "enterprise", "config changed, another process")

	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, f := range heldFiles {
		if _, err := os.Lstat(filepath.Join(acct, f)); err != nil {
			t.Errorf("%s after the first rotation: %v; want it written out", f, err)
		}
	}
	if held := heldOf(t, dir, "acme"); len(held) != 0 {
		t.Errorf("data.key still holds %d files after a rotation", len(held))
	}
	wantAcme(t, p, "enterprise", "rotated")
	wantAcme(t, reader, "enterprise", "rotated, another process")
}

// TestEarlierLayoutReads: an account in the layout an earlier silo wrote
// (storage.key, config.json and resources.json files of their own, data.key
// a ring alone) reads, changes and rotates as before, and a new account
// next to it gets the account file.
func TestEarlierLayoutReads(t *testing.T) {
	ctx := context.Background()
	dir := onboardFixture(t)
	acct := filepath.Join(dir, "accounts", "acme")
	b, err := os.ReadFile(filepath.Join(acct, fileDataKey))
	if err != nil {
		t.Fatal(err)
	}
	ring, held, err := decodeAccount(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range held {
		mustDo(t, os.WriteFile(filepath.Join(acct, name), data, fileMode))
	}
	mustDo(t, os.WriteFile(filepath.Join(acct, fileDataKey), ring.encode(), fileMode))
	if !bytes.HasPrefix(ring.encode(), []byte(ringMagic)) {
		t.Fatal("control: the earlier layout's data.key is not a ring")
	}

	p := newTestProvider(t, Config{Dir: dir})
	wantAcme(t, p, "pro", "earlier layout")
	if err := p.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	wantAcme(t, p, "pro", "earlier layout, rotated")
	if _, err := p.CreateAccountWith(ctx, "globex", silo.KindTenant, onboardChangesInternal()); err != nil {
		t.Fatal(err)
	}
	if held := heldOf(t, dir, "globex"); len(held) != len(heldFiles) {
		t.Errorf("a new account next to an earlier one: data.key holds %d files, want %d", len(held), len(heldFiles))
	}
}

const settleKillEnv = "SILO_TEST_SETTLE_KILL"

// TestSettleKillChild is the child of TestSettleKill9: it rotates acme's
// data key and SIGKILLs itself just before the n-th sync.
func TestSettleKillChild(t *testing.T) {
	p := killAtSync(t, settleKillEnv, "TestSettleKill9")
	if err := p.RotateDataKey(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	os.Exit(3)
}

// TestSettleKill9 kills a process at each sync of the first rotation of a
// new account, which writes the files data.key holds out first (settle):
// after every kill the account reads whole (its table value, so its
// storage key; its config, manifest and secret), and rotating again
// completes and leaves data.key a ring alone with everything still read.
func TestSettleKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	fixture := onboardFixture(t)
	kills := 0
	for n := 1; ; n++ {
		dir := t.TempDir()
		localtest.CopyTree(t, fixture, dir)
		cmd := exec.Command(os.Args[0], "-test.run=^TestSettleKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), settleKillEnv+"="+strconv.Itoa(n)+"|"+dir)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("sync %d: child: %v\n%s", n, err, out)
		}
		if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() {
			if ws.ExitStatus() != 3 || n == 1 {
				t.Fatalf("sync %d: child exited with %d, want killed or done (3)\n%s", n, ws.ExitStatus(), out)
			}
			break
		}
		kills++
		when := "killed before sync " + strconv.Itoa(n)
		p, err := New(Config{Dir: dir})
		if err != nil {
			t.Fatalf("%s: open: %v", when, err)
		}
		if ids, err := p.Accounts(ctx); err != nil || !slices.Contains(ids, "acme") {
			t.Fatalf("%s: accounts %v, %v; want acme", when, ids, err)
		}
		wantAcme(t, p, "pro", when)
		if err := p.RotateDataKey(ctx, "acme"); err != nil {
			t.Fatalf("%s: rotating again: %v", when, err)
		}
		wantAcme(t, p, "pro", when+", rotated again")
		if held := heldOf(t, dir, "acme"); len(held) != 0 {
			t.Errorf("%s: data.key holds %d files after a rotation", when, len(held))
		}
		p.Close()
	}
	// settle: 3 files, the directory, data.key, the replaced data.key's
	// blocks; then the rotation's own.
	if kills < 6 {
		t.Fatalf("killed before %d syncs; want at least the 6 of writing the files out", kills)
	}
	t.Logf("killed before each of %d syncs of the first rotation: acme whole every time", kills)
}
