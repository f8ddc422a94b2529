package local_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// TestDeleteDestroysKeysInPlace keeps a second name (a hard link, as a
// snapshot or an open file descriptor would) for acme's data.key and
// storage.key, deletes acme, and shows that the very blocks behind those
// names were overwritten: the wrapped data key no longer unwraps. Removing
// the directory alone would leave them intact behind the other name.
func TestDeleteDestroysKeysInPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
	}
	master, err := envelope.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	keep := t.TempDir() // the same file system: t.TempDir is under one root
	links := map[silo.AccountID]map[string]string{}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		links[id] = map[string]string{}
		for _, name := range []string{"data.key", "storage.key"} {
			links[id][name] = filepath.Join(keep, string(id)+"-"+name)
			if err := os.Link(filepath.Join(dir, "accounts", string(id), name), links[id][name]); err != nil {
				t.Skipf("no hard links here: %v", err)
			}
		}
	}
	unwraps := func(id silo.AccountID) bool {
		b, err := os.ReadFile(links[id]["data.key"])
		if err != nil {
			t.Fatal(err)
		}
		ring, err := local.DecodeWrappedKeys(b)
		if err != nil {
			return false
		}
		_, err = master.Unwrap(id, ring[0])
		return err == nil
	}
	// Control: before the delete, the second name opens acme's key.
	if !unwraps("acme") {
		t.Fatal("control: acme's data.key does not unwrap through the link before the delete")
	}
	storageBefore, _ := os.ReadFile(links["acme"]["storage.key"])

	if _, err := p.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if unwraps("acme") {
		t.Error("after delete, acme's data key still unwraps from the blocks of its data.key: it was removed, not destroyed")
	}
	if after, _ := os.ReadFile(links["acme"]["storage.key"]); bytes.Equal(after, storageBefore) {
		t.Error("after delete, acme's storage.key blocks are unchanged")
	}
	// Twin: globex, not deleted, still unwraps through its link.
	if !unwraps("globex") {
		t.Error("globex's data key no longer unwraps; the test destroyed more than acme")
	}
}

// TestDeleteCrashAfterShred stops a delete between its steps: the keys are
// shredded, but moving the directory to the trash fails (the trash is a file
// in the way). The account must already not exist and its data must open
// nothing; after New (the next start) the remains are gone and a re-created
// account starts empty.
func TestDeleteCrashAfterShred(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, _ := p.Data(ctx, "acme")
	if err := d.Put(ctx, "findings", "k", []byte("acme-value")); err != nil {
		t.Fatal(err)
	}
	trash := filepath.Join(dir, "trash")
	if err := os.Remove(trash); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trash, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DeleteAccount(ctx, "acme"); err == nil {
		t.Fatal("DeleteAccount succeeded with the trash blocked; the test crashes nothing")
	}
	acct := filepath.Join(dir, "accounts", "acme")
	if _, err := os.Stat(filepath.Join(acct, "data.db")); err != nil {
		t.Fatalf("the directory is not left behind as a crash would leave it: %v", err)
	}
	for _, name := range []string{"data.key", "storage.key"} {
		if _, err := os.Lstat(filepath.Join(acct, name)); !os.IsNotExist(err) {
			t.Errorf("%s is still in place after the failed delete: %v", name, err)
		}
	}
	if _, err := p.Data(ctx, "acme"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("Data of the half-deleted account: got %v, want not found", err)
	}
	if ids, _ := p.Accounts(ctx); len(ids) != 0 {
		t.Errorf("half-deleted account listed: %v", ids)
	}
	p.Close()

	os.Remove(trash)
	p, err = local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, _ = p.Data(ctx, "acme")
	if v, err := d.Get(ctx, "findings", "k"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("re-created acme: Get = %q, %v; want not found", v, err)
	}
	// Twin: the re-created account works.
	if err := d.Put(ctx, "findings", "k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "findings", "k"); err != nil || string(v) != "new" {
		t.Errorf("re-created acme: Get = %q, %v; want new", v, err)
	}
}
