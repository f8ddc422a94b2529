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

	ctx, stop := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", c.dataDir, "--store", dsn, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	defer func() { stop(); <-done }()
	for _, ok := platform.Running(c.dataDir); !ok; _, ok = platform.Running(c.dataDir) {
		select {
		case code := <-done:
			t.Fatalf("silo server exited %d: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}

	c.fails("uses another control-plane store (postgres, installation ", "--store", other, "tenant", "list")
	c.fails("cannot connect to PostgreSQL", "--store", "postgres://postgres@127.0.0.1:1/x?sslmode=disable", "tenant", "list")
	for _, args := range [][]string{{"--store", dsn, "tenant", "list"}, {"tenant", "list"}} {
		if out := c.ok(args...); !strings.Contains(out, "acme") || strings.Contains(out, "globex") {
			t.Errorf("silo %s through the server: %s, want acme (and not globex)", strings.Join(args, " "), out)
		}
	}
}
