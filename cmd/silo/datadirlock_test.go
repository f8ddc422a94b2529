package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestMigrateRefusedWhileUpStarts: silo up takes the data dir's lock
// before its build and writes its server file only after, so a silo store
// migrate (or apply) started in between is refused by the lock alone,
// naming silo up, and copies nothing (must not); once the lock is let go,
// the same migrate copies the state (must).
func TestMigrateRefusedWhileUpStarts(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	// Held as silo up holds it while it builds: through another open of
	// the lock file, with no server file yet.
	up, err := platform.LockDataDir(c.dataDir, true, platform.Holder{Command: "silo up", Phase: "starting"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, platform.ServerFile)); !os.IsNotExist(err) {
		t.Fatalf("%s: %v, want none (silo up writes it once it serves)", platform.ServerFile, err)
	}
	want := fmt.Sprintf("silo up (pid %d) is starting on the data dir %s; stop it before migrating", os.Getpid(), c.dataDir)
	c.fails(want, "store", "migrate", "--to", dsn)
	if _, _, errOut := c.run("store", "migrate", "--to", dsn); strings.Count(errOut, "stop ") != 1 {
		t.Errorf("the refusal says how to go on more than once: %s", errOut)
	}
	if n := pgtest.Tables(t, dsn); n != 0 {
		t.Errorf("the refused migrate made %d tables in PostgreSQL, want none", n)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, platform.StoreMovedFile)); !os.IsNotExist(err) {
		t.Errorf("the refused migrate left %s: %v", platform.StoreMovedFile, err)
	}
	c.fails("silo up (pid", "apply", "--all")

	up.Release()
	if out := c.ok("store", "migrate", "--to", dsn); !strings.Contains(out, "2 accounts") { // production and acme
		t.Errorf("store migrate once silo up let the data dir go: %s, want production and acme copied", out)
	}
}

// TestUpRefusedWhileMigrating: silo store migrate holds the data dir's
// lock for its whole copy, so silo up and silo server started while it
// copies are refused, naming it (must not); after it, a server on the new
// store starts and holds the lock while it serves, so that a migrate is
// refused even with no server file to go by (must).
func TestUpRefusedWhileMigrating(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("tenant", "create", "acme")

	// The copy waits on PostgreSQL's schema lock, taken by the first
	// change written to an empty schema, while the test holds it.
	release := pgtest.Hold(t, dsn, `SELECT pg_advisory_xact_lock(hashtext('silo-schema:' || current_schema()))`)
	migrated := make(chan string, 1)
	go func() {
		code, out, errOut := c.run("store", "migrate", "--to", dsn)
		migrated <- fmt.Sprintf("exit %d: %s%s", code, out, errOut)
	}()
	// Until the migrate waits on that lock (an advisory lock's key is
	// split into classid and objid in pg_locks).
	const waiting = `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
		AND objid = ((hashtext('silo-schema:' || current_schema())::bigint & 4294967295)::text)::oid`
	for n := 0; n == 0; pgtest.QueryRow(t, dsn, waiting, &n) {
		select {
		case res := <-migrated:
			t.Fatalf("store migrate ended before the copy could be held: %s", res)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if h, held := platform.DataDirHeld(c.dataDir); !held || h.Command != migrateCommand {
		// (The commands below would then start and serve.)
		t.Fatalf("the data dir's lock while store migrate copies: %+v (held: %v), want held by silo store migrate", h, held)
	}
	want := fmt.Sprintf("silo store migrate (pid %d) is copying the control-plane state of the data dir %s into PostgreSQL; wait for it to finish", os.Getpid(), c.dataDir)
	c.refuses(want, "up", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0")
	c.refuses(want, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0")
	c.refuses(want, "--store", dsn, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0")
	release()
	if res := <-migrated; !strings.HasPrefix(res, "exit 0:") || !strings.Contains(res, "2 accounts") { // production and acme
		t.Fatalf("store migrate once the schema lock was let go: %s", res)
	}

	ctx, stop := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", c.dataDir, "--store", dsn, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	defer func() { stop(); <-done }()
	api := regexp.MustCompile(`API on (http://\S+)`)
	for api.FindStringSubmatch(errOut.String()) == nil {
		select {
		case code := <-done:
			t.Fatalf("silo server on the new store exited %d: %s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, ok := platform.Running(c.dataDir); !ok; _, ok = platform.Running(c.dataDir) {
		select {
		case code := <-done:
			t.Fatalf("silo server on the new store exited %d: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := os.Remove(filepath.Join(c.dataDir, platform.ServerFile)); err != nil {
		t.Fatal(err)
	}
	c.refuses(fmt.Sprintf("silo server (pid %d) is serving on the data dir", os.Getpid()), "store", "migrate", "--to", pgtest.Fresh(t))
}

// refuses is fails for a command that, were it not refused, would go on
// until stopped: a silo up or silo server that starts (and serves, or
// waits on the PostgreSQL lock the test holds), or a migrate that waits.
// Such a command is stopped through its context once it has run far longer
// than any refusal takes (refuseBound), and the test fails saying it was
// not refused, instead of hanging until the test binary's timeout. The
// bound is no measure of speed: nothing is asserted of how long a refusal
// takes.
func (c *cli) refuses(want string, args ...string) {
	c.t.Helper()
	const refuseBound = time.Minute
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"--data-dir", c.dataDir, "--file", c.file}, args...), strings.NewReader(""), &out, &errOut)
	}()
	select {
	case code := <-done:
		refused(c.t, want, args, code, out.String(), errOut.String())
	case <-time.After(refuseBound):
		stop()
		select {
		case <-done:
		case <-time.After(refuseBound):
		}
		c.t.Fatalf("silo %s was not refused: it was still running after %v (stopped now), want it refused with %q\nstderr: %s", strings.Join(args, " "), refuseBound, want, errOut.String())
	}
}
