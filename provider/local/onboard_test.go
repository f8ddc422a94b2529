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
	// data.key holds the storage key too (the table write below opens it).
	if _, err := os.Stat(filepath.Join(dir, "accounts", "acme", "data.key")); err != nil {
		t.Errorf("acme's data.key: %v", err)
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

// TestCreateAccountWith: creating an account with its changes in one step
// leaves it as CreateAccount followed by ApplyBatch does (resources,
// tables, bucket, config), with nothing of the staging directory left; a
// failing change creates the account with the changes before it; a bad
// name creates nothing; on an account that exists it applies the changes
// as a batch.
func TestCreateAccountWith(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	newAccount(t, p, "two")
	if n, err := p.ApplyBatch(ctx, "two", onboardChanges()); err != nil || n != len(onboardChanges()) {
		t.Fatalf("ApplyBatch = %d, %v", n, err)
	}
	if n, err := p.CreateAccountWith(ctx, "one", silo.KindTenant, onboardChanges()); err != nil || n != len(onboardChanges()) {
		t.Fatalf("CreateAccountWith = %d, %v; want %d, nil", n, err, len(onboardChanges()))
	}
	want, err := p.Resources(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Resources(ctx, "one")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("resources created in one step:\n%v (%v)\nin two:\n%v", got, err, want)
	}
	d, err := p.Data(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"findings", "audit"} {
		if err := d.Put(ctx, table, "k", []byte("v")); err != nil {
			t.Errorf("put into table %s: %v", table, err)
		}
	}
	if err := d.PutBlob(ctx, "reports", "r1", []byte("x")); err != nil {
		t.Errorf("put into bucket: %v", err)
	}
	if v, err := d.Config(ctx, "plan"); err != nil || v != "pro" {
		t.Errorf("config plan = %q, %v; want pro", v, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "accounts", ".new-*")); len(left) != 0 {
		t.Errorf("staging directories left: %v", left)
	}

	cs := onboardChanges()
	cs[3] = createChange(silo.TypeConfig, "plan", `{"value":42}`) // not a string
	if n, err := p.CreateAccountWith(ctx, "part", silo.KindTenant, cs); silo.ErrorCode(err) != silo.CodeInvalid || n != 3 {
		t.Fatalf("CreateAccountWith with a bad config spec = %d, %v; want 3, an invalid-input error", n, err)
	}
	if rs, err := p.Resources(ctx, "part"); err != nil || len(rs) != 3 {
		t.Fatalf("resources of the account whose fourth change failed: %v, %v; want the first 3", rs, err)
	}

	cs = onboardChanges()
	cs[4] = createChange(silo.TypeTable, "bad/name", "")
	if n, err := p.CreateAccountWith(ctx, "none", silo.KindTenant, cs); silo.ErrorCode(err) != silo.CodeInvalid || n != 0 {
		t.Fatalf("CreateAccountWith with a bad name = %d, %v; want 0, an invalid-input error", n, err)
	}
	if _, err := p.Data(ctx, "none"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Fatalf("the account of the rejected creation: %v; want not found", err)
	}

	more := []silo.Change{createChange(silo.TypeTable, "extra", "")}
	if n, err := p.CreateAccountWith(ctx, "one", silo.KindTenant, more); err != nil || n != 1 {
		t.Fatalf("CreateAccountWith on an existing account = %d, %v; want 1, nil", n, err)
	}
	if err := d.Put(ctx, "findings", "k2", []byte("v")); err != nil {
		t.Errorf("the existing account lost its table: %v", err)
	}
	if rs, err := p.Resources(ctx, "one"); err != nil || len(rs) != len(onboardChanges())+1 {
		t.Errorf("resources after applying one more: %d, %v; want %d", len(rs), err, len(onboardChanges())+1)
	}
}

// exampleChanges are the changes of a tenant of the example stack: a table,
// a config, a secret, three functions, four routes.
func exampleChanges() []silo.Change {
	return []silo.Change{
		createChange(silo.TypeTable, "findings", ""),
		createChange(silo.TypeConfig, "plan", `{"value":"free"}`),
		createChange(silo.TypeSecret, "github-token", ""),
		createChange(silo.TypeFunction, "ingest", `{"artifact":"sha256:aa"}`),
		createChange(silo.TypeFunction, "list", `{"artifact":"sha256:bb"}`),
		createChange(silo.TypeFunction, "smoke", `{"artifact":"sha256:cc"}`),
		createChange(silo.TypeRoute, "POST /findings", `{"method":"POST","path":"/findings","function":"ingest"}`),
		createChange(silo.TypeRoute, "GET /findings", `{"method":"GET","path":"/findings","function":"list"}`),
	}
}

// TestOnboardingSyncs counts, through the provider's sync hook, the syncs of
// onboarding a tenant of the example stack: in one step (CreateAccountWith)
// the table store, data.key (which holds the storage key, config.json and
// the manifest: keyring.go), the staging directory and accounts/ (4; the
// empty store its copy comes from is built without a sync: emptyStore); in
// two (CreateAccount, then ApplyBatch) data.key, the staging directory,
// accounts/, the table store, config.json, the account directory before
// the manifest, the manifest and the account directory after it (8). A
// sync added on this path fails the test: say why in its comment, and
// count it here.
func TestOnboardingSyncs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := local.New(local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stop := local.CountSyncs(dir)
	n, err := p.CreateAccountWith(ctx, "acme", silo.KindTenant, exampleChanges())
	one := stop()
	if err != nil || n != len(exampleChanges()) {
		t.Fatalf("CreateAccountWith = %d, %v", n, err)
	}
	if len(one) != 4 {
		t.Errorf("onboarding in one step synced %d times, want 4: %q", len(one), one)
	}

	stop = local.CountSyncs(dir)
	newAccount(t, p, "globex")
	n, err = p.ApplyBatch(ctx, "globex", exampleChanges())
	two := stop()
	if err != nil || n != len(exampleChanges()) {
		t.Fatalf("ApplyBatch = %d, %v", n, err)
	}
	if len(two) != 8 {
		t.Errorf("onboarding in two steps synced %d times, want 8: %q", len(two), two)
	}
}

// TestNewStoresShareNothing: new accounts' table stores are copies of one
// empty store per set of tables; what one account writes is never in the
// store of an account created after it (the twin: the writer reads its own
// value back), and a different set of tables gets its own store.
func TestNewStoresShareNothing(t *testing.T) {
	ctx := context.Background()
	p := newLocal(t)
	if _, err := p.CreateAccountWith(ctx, "acme", silo.KindTenant, exampleChanges()); err != nil {
		t.Fatal(err)
	}
	a, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "findings", "canary", []byte("acme's")); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Get(ctx, "findings", "canary"); err != nil || string(v) != "acme's" {
		t.Fatalf("acme reads its own value: %q, %v", v, err)
	}
	if _, err := p.CreateAccountWith(ctx, "globex", silo.KindTenant, exampleChanges()); err != nil {
		t.Fatal(err)
	}
	g, err := p.Data(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := g.Get(ctx, "findings", "canary"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Fatalf("globex reads acme's key: %q, %v; want not found", v, err)
	}
	if _, err := p.CreateAccountWith(ctx, "initech", silo.KindTenant, []silo.Change{createChange(silo.TypeTable, "other", "")}); err != nil {
		t.Fatal(err)
	}
	i, err := p.Data(ctx, "initech")
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Put(ctx, "other", "k", []byte("v")); err != nil {
		t.Errorf("put into initech's own table: %v", err)
	}
	if err := i.Put(ctx, "findings", "k", []byte("v")); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("put into a table of the other set: %v; want not found", err)
	}
}
