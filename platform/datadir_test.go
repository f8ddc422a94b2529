package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// openOn opens a platform on dir with st (nil: the data dir's SQLite).
func openOn(t *testing.T, dir string, st store.Store) (*platform.Platform, error) {
	t.Helper()
	cache := silotest.CacheDir()
	return platform.Open(context.Background(), platform.Config{
		DataDir: dir, Store: st,
		BuildCache: filepath.Join(cache, "builds"), CompileCache: filepath.Join(cache, "compiled"),
	})
}

// recorded returns the installation ID recorded in dir ("" if none).
func recorded(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, platform.InstallationFile))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// storeID returns the installation ID st holds ("" if none).
func storeID(t *testing.T, st store.Store) string {
	t.Helper()
	id, err := control.InstallationID(st)(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDataDirRecordsItsInstallation: opening a new, empty installation
// records nothing and leaves its store without an ID (a refused first
// command must leave it empty); once it holds an account, the next open
// makes the store's installation ID and records it in the data dir, and
// the open after that finds them matching, the record unchanged.
func TestDataDirRecordsItsInstallation(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "silo")
	p, err := openOn(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, id := recorded(t, dir), storeID(t, p.Store); got != "" || id != "" {
		t.Fatalf("a new installation records %q and its store holds %q; want neither", got, id)
	}
	if _, err := p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	var id string
	for i := range 2 {
		p, err = openOn(t, dir, nil)
		if err != nil {
			t.Fatalf("open %d of the installation: %v", i+2, err)
		}
		if i == 0 {
			id = storeID(t, p.Store)
		}
		p.Close()
		if id == "" || recorded(t, dir) != id {
			t.Fatalf("after open %d the data dir records %q and the store holds %q; want the same ID", i+2, recorded(t, dir), id)
		}
	}
}

// TestDataDirOfAnotherInstallation: two installations, each a data dir on
// a PostgreSQL database of its own. The first's data dir opened with the
// second's database is refused with one sentence naming both
// installations and what to do, and nothing is written: the data dir and
// the database keep their IDs. The twin: each data dir on its own
// database opens.
func TestDataDirOfAnotherInstallation(t *testing.T) {
	ctx := context.Background()
	dsn := [2]string{pgtest.Fresh(t), pgtest.Fresh(t)}
	dirs := [2]string{filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")}
	open := func(dir, dsn string) (*platform.Platform, error) {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return openOn(t, dir, st)
	}
	var ids [2]string
	for i := range dirs {
		// Each store has its ID (as an AWS installation's gets at its
		// first account): the first open records it.
		st, err := postgres.Open(ctx, dsn[i])
		if err != nil {
			t.Fatal(err)
		}
		if ids[i], err = control.InstallationID(st)(ctx, true); err != nil {
			t.Fatal(err)
		}
		st.Close()
		p, err := open(dirs[i], dsn[i])
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	if ids[0] == ids[1] || recorded(t, dirs[0]) != ids[0] || recorded(t, dirs[1]) != ids[1] {
		t.Fatalf("installations %v, data dirs recording %q and %q; want two IDs, each recorded in its data dir", ids, recorded(t, dirs[0]), recorded(t, dirs[1]))
	}

	_, err := open(dirs[0], dsn[1])
	if silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Fatalf("first data dir on the second database: %v; want a failed check", err)
	}
	msg := silo.UserMessage(err)
	for _, want := range []string{"belongs to installation " + ids[0], "is installation " + ids[1] + "'s", "--data-dir", "--store"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if recorded(t, dirs[0]) != ids[0] {
		t.Errorf("after the refusal the first data dir records %q, want %q", recorded(t, dirs[0]), ids[0])
	}
	st, err := postgres.Open(ctx, dsn[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := storeID(t, st); got != ids[1] {
		t.Errorf("after the refusal the second database is installation %q, want %q", got, ids[1])
	}
	st.Close()

	for i := range dirs {
		p, err := open(dirs[i], dsn[i])
		if err != nil {
			t.Errorf("data dir %d on its own database: %v", i, err)
			continue
		}
		p.Close()
	}
}

// TestOldDataDirWithoutInstallationFile: a data dir of a silo version
// before the record (no installation.id) is checked by its accounts as
// before: without its account files it is refused with the lost-files
// sentence and records nothing; with them it opens and records the
// store's installation ID.
func TestOldDataDirWithoutInstallationFile(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "silo")
	p, err := openOn(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	// Recorded at the next open, so the data dir is as an older version
	// left it: accounts, no installation.id.
	if got := recorded(t, dir); got != "" {
		t.Fatalf("before the next open the data dir records %q, want nothing", got)
	}

	accounts := filepath.Join(dir, "accounts")
	if err := os.Rename(accounts, accounts+".aside"); err != nil {
		t.Fatal(err)
	}
	_, err = openOn(t, dir, nil)
	if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "were lost or moved") {
		t.Fatalf("old data dir without its account files: %v; want the lost-files refusal", err)
	}
	if got := recorded(t, dir); got != "" {
		t.Errorf("the refused data dir records %q, want nothing", got)
	}

	if err := os.RemoveAll(accounts); err != nil { // what the refused open made
		t.Fatal(err)
	}
	if err := os.Rename(accounts+".aside", accounts); err != nil {
		t.Fatal(err)
	}
	p, err = openOn(t, dir, nil)
	if err != nil {
		t.Fatalf("old data dir with its account files: %v", err)
	}
	id := storeID(t, p.Store)
	p.Close()
	if got := recorded(t, dir); id == "" || got != id {
		t.Errorf("the old data dir now records %q, want the store's %q", got, id)
	}
}
