package control_test

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"sync"
	"testing"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/sqlite"
)

// TestInstallationIDIsMadeOnce: without create, an installation that has
// no ID yet answers "" and writes nothing; the first call with create
// makes a 128-bit ID, and every later call, through any handle on the
// store, answers the same.
func TestInstallationIDIsMadeOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := control.InstallationID(st)
	if got, err := id(ctx, false); got != "" || err != nil {
		t.Fatalf("ID before any was made = %q, %v; want none", got, err)
	}
	made, err := id(ctx, true)
	if b, herr := hex.DecodeString(made); err != nil || herr != nil || len(b) != 16 {
		t.Fatalf("ID made = %q, %v; want 32 hex digits", made, err)
	}
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, create := range []bool{false, true} {
		if got, err := control.InstallationID(other)(ctx, create); got != made || err != nil {
			t.Errorf("ID read again (create %v) = %q, %v; want %q", create, got, err, made)
		}
	}
}

// TestServersAgreeOnTheInstallationID: servers that share a PostgreSQL
// store and make the installation's ID at the same moment all get the
// same one.
func TestServersAgreeOnTheInstallationID(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Fresh(t)
	var stores []store.Store
	for range 4 {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
	}
	ids := make([]string, 16)
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() { ids[i], errs[i] = control.InstallationID(stores[i%len(stores)])(ctx, true) })
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] || ids[0] == "" {
			t.Errorf("server %d made ID %q, %v; server 0 made %q", i, ids[i], errs[i], ids[0])
		}
	}
}
