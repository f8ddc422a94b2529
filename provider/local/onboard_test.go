package local_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/local"
)

// TestCreateAccountAppearsWhole: an account is put together in a staging
// directory and renamed into place, so the remains of a creation killed
// half way (a staging directory holding only a storage key) are no
// account, and the next creation of that ID clears them and succeeds. The
// twin: the created account is listed, holds both keys, and takes data.
func TestCreateAccountAppearsWhole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stage := filepath.Join(dir, "accounts", ".new-acme")
	if err := os.Mkdir(stage, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "storage.key"), []byte("k1:half-written\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ids, err := p.Accounts(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("Accounts with a staging directory left over = %v, %v; want none", ids, err)
	}
	if _, err := p.Data(ctx, "acme"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Fatalf("Data(acme) before it is created: %v; want not found", err)
	}
	newAccount(t, p, "acme")
	if ids, err := p.Accounts(ctx); err != nil || !reflect.DeepEqual(ids, []silo.AccountID{"acme"}) {
		t.Fatalf("Accounts = %v, %v; want [acme]", ids, err)
	}
	if _, err := os.Lstat(stage); !os.IsNotExist(err) {
		t.Fatalf("the staging directory left over is still there (%v)", err)
	}
	for _, f := range []string{"storage.key", "data.key"} {
		if _, err := os.Stat(filepath.Join(dir, "accounts", "acme", f)); err != nil {
			t.Errorf("acme's %s: %v", f, err)
		}
	}
	if n, err := p.ApplyBatch(ctx, "acme", onboardChanges()); err != nil || n != len(onboardChanges()) {
		t.Fatalf("ApplyBatch = %d, %v", n, err)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatalf("put into the new account: %v", err)
	}
}

// TestNewStoreAfterAnInterruptedOne: a new account's table store is built
// under a temporary name and renamed into place; the temporary file of a
// creation killed before the rename is removed by the next batch, which
// builds the store with every table (the twin: the tables take writes), and
// no temporary file stays behind.
func TestNewStoreAfterAnInterruptedOne(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	newAccount(t, p, "acme")
	acct := filepath.Join(dir, "accounts", "acme")
	if err := os.WriteFile(filepath.Join(acct, ".tmp-data.db-123"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := p.ApplyBatch(ctx, "acme", onboardChanges()); err != nil || n != len(onboardChanges()) {
		t.Fatalf("ApplyBatch = %d, %v", n, err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(acct, ".tmp-*")); len(tmps) != 0 {
		t.Fatalf("temporary files left in the account: %v", tmps)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"findings", "audit"} {
		if err := d.Put(ctx, table, "k", []byte("v")); err != nil {
			t.Errorf("put into table %s: %v", table, err)
		}
	}
	if err := d.Put(ctx, "nosuch", "k", []byte("v")); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("put into a table never created: %v; want not found", err)
	}
}
