package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestPostgresDataDirWithoutStore: a data dir first opened with a
// PostgreSQL store records it, so a command on it without --store (never
// migrated, so no store-moved.json) is refused, saying where the control
// plane is, without naming the database or its password, and creates no
// state.db (must not); the same with a server file naming a server that
// is gone. With --store it works (must), and an installation on SQLite
// works without --store as before (must).
func TestPostgresDataDirWithoutStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("--store", dsn, "tenant", "create", "acme")
	const want = "this installation's control plane is in PostgreSQL"
	stateDB := filepath.Join(c.dataDir, "state.db")
	noState := func(after string) {
		t.Helper()
		if _, err := os.Stat(stateDB); !os.IsNotExist(err) {
			t.Fatalf("%s made state.db in the data dir of a PostgreSQL installation (%v)", after, err)
		}
	}
	for _, args := range [][]string{{"tenant", "list"}, {"tenant", "create", "globex"}, {"doctor"}} {
		_, _, errOut := c.run(args...)
		if !strings.Contains(errOut, want) || !strings.Contains(errOut, "pass --store or set $SILO_STORE") || strings.Contains(errOut, "127.0.0.1") {
			t.Errorf("silo %s without --store: %q, want %q and what to pass, naming no database", strings.Join(args, " "), errOut, want)
		}
		noState("silo " + strings.Join(args, " "))
	}

	// A server file naming a server that is gone (killed): the command
	// does not go through it, and is refused the same way.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	stale, _ := json.Marshal(platform.RunningServer{URL: "http://127.0.0.1:1", PID: dead.Process.Pid})
	if err := os.WriteFile(filepath.Join(c.dataDir, platform.ServerFile), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(want, "tenant", "list")
	noState("silo tenant list beside a stale server file")

	if out := c.ok("--store", dsn, "tenant", "list"); !strings.Contains(out, "acme") {
		t.Errorf("silo --store tenant list: %s, want acme", out)
	}

	sq := newCLI(t)
	sq.ok("tenant", "create", "acme")
	if out := sq.ok("tenant", "list"); !strings.Contains(out, "acme") {
		t.Errorf("tenant list on a SQLite installation: %s, want acme", out)
	}
	if _, err := os.Stat(filepath.Join(sq.dataDir, platform.StoreFile)); !os.IsNotExist(err) {
		t.Errorf("a SQLite installation's data dir has %s (%v)", platform.StoreFile, err)
	}
}

// TestStoreFlagThroughAServer: with a server found serving the data dir, a
// --store naming another installation's database, or one that cannot be
// reached, is refused with one error instead of being answered from the
// server's database (must not); the server's own database, and no
// --store, go through it (must).
func TestStoreFlagThroughAServer(t *testing.T) {
	t.Parallel()
	dsn, other := pgtest.Fresh(t), pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("--store", dsn, "tenant", "create", "acme")
	o := newCLI(t)
	o.ok("--store", other, "tenant", "create", "globex")

	serveStore(t, c.dataDir, dsn)

	c.fails("uses another control-plane store (postgres, installation ", "--store", other, "tenant", "list")
	c.fails("cannot connect to PostgreSQL", "--store", "postgres://postgres@127.0.0.1:1/x?sslmode=disable", "tenant", "list")
	for _, args := range [][]string{{"--store", dsn, "tenant", "list"}, {"tenant", "list"}} {
		if out := c.ok(args...); !strings.Contains(out, "acme") || strings.Contains(out, "globex") {
			t.Errorf("silo %s through the server: %s, want acme (and not globex)", strings.Join(args, " "), out)
		}
	}
}

// serveStore runs silo server on dataDir and the PostgreSQL store dsn
// until the test ends, and returns it once it serves the data dir.
func serveStore(t *testing.T, dataDir, dsn string) platform.RunningServer {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", dataDir, "--store", dsn, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	t.Cleanup(func() { stop(); <-done })
	for {
		if rs, ok := platform.Running(dataDir); ok {
			return rs
		}
		select {
		case code := <-done:
			t.Fatalf("silo server exited %d: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestStoreFlagWithAnExplicitServer: with --server named (the data dir's
// server file plays no part: the command runs on another data dir), a
// --store naming another installation's database is refused with one
// error instead of being answered from the server's database (must not);
// the server's own database, and no --store, go through it (must).
func TestStoreFlagWithAnExplicitServer(t *testing.T) {
	t.Parallel()
	dsn, other := pgtest.Fresh(t), pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("--store", dsn, "tenant", "create", "acme")
	o := newCLI(t)
	o.ok("--store", other, "tenant", "create", "globex")
	rs := serveStore(t, c.dataDir, dsn)
	tok, err := os.ReadFile(filepath.Join(c.dataDir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	via := []string{"--server", rs.URL, "--token", strings.TrimSpace(string(tok))}

	elsewhere := newCLI(t) // no server file: only --server says where
	elsewhere.fails("the silo server at "+rs.URL+" uses another control-plane store (postgres, installation ", append(via, "--store", other, "tenant", "list")...)
	for _, args := range [][]string{append(via, "--store", dsn, "tenant", "list"), append(via, "tenant", "list")} {
		if out := elsewhere.ok(args...); !strings.Contains(out, "acme") || strings.Contains(out, "globex") {
			t.Errorf("silo %s: %s, want acme (and not globex)", strings.Join(args, " "), out)
		}
	}
}

// TestStoreFlagTellsEmptyDatabasesApart: two new (empty) databases on one
// PostgreSQL server hold no installation ID yet, and still a --store
// naming the one the server does not serve is refused, and writes nothing
// there (must not); the server's database is accepted, also when reached
// by another host name (must).
func TestStoreFlagTellsEmptyDatabasesApart(t *testing.T) {
	t.Parallel()
	served, _ := pgtest.FreshDatabase(t)
	other, _ := pgtest.FreshDatabase(t)
	c := newCLI(t)
	rs := serveStore(t, c.dataDir, served)
	tok, err := os.ReadFile(filepath.Join(c.dataDir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	si, err := server.NewClient(rs.URL, strings.TrimSpace(string(tok)), nil).StoreIdentity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if si.Installation != "" || si.Store != "postgres" || si.Database == "" {
		t.Fatalf("GET /v1/store of a server on a new database: %+v, want postgres, no installation yet, a database identity", si)
	}

	c.fails("uses another control-plane store (postgres, installation none yet, database "+si.Database[:8]+")", "--store", other, "tenant", "list")
	if n := pgtest.Tables(t, other); n != 0 {
		t.Errorf("the refused command made %d tables in the database it named, want none", n)
	}
	byName := strings.Replace(served, "127.0.0.1", "localhost", 1)
	if byName == served {
		t.Fatalf("SILO_TEST_POSTGRES names no 127.0.0.1 to reach another way: %s", served)
	}
	for _, dsn := range []string{served, byName} {
		c.ok("--store", dsn, "tenant", "list")
	}
}
