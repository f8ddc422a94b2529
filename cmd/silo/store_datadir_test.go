package main

import (
	"os"
	"strings"
	"testing"

	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestStoreReadOnlyOutsideAnInstallation: with --store as without it, a
// command that only reads, run on a data dir that does not exist, says
// there is no installation there, creates no data dir and writes nothing to
// the database. The twin: once tenant create made the installation, each
// command reads it.
func TestStoreReadOnlyOutsideAnInstallation(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	commands := [][]string{
		{"tenant", "list"}, {"verify"}, {"usage"}, {"audit", "verify"}, {"drift", "--all"},
	}
	for _, args := range commands {
		c.fails("no silo installation in "+c.dataDir+" (the directory does not exist)", append([]string{"--store", dsn}, args...)...)
		if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
			t.Fatalf("silo --store ... %s created %s (stat: %v)", strings.Join(args, " "), c.dataDir, err)
		}
		if n := pgtest.Tables(t, dsn); n != 0 {
			t.Fatalf("silo --store ... %s: the database holds %d tables, want none", strings.Join(args, " "), n)
		}
	}

	c.ok("--store", dsn, "tenant", "create", "acme")
	for _, args := range commands {
		c.ok(append([]string{"--store", dsn}, args...)...)
	}
	if out := c.ok("--store", dsn, "tenant", "list"); !strings.Contains(out, "acme") {
		t.Errorf("tenant list after tenant create: %s", out)
	}
}

// TestStoreFailedCommandTakesBackItsDataDir: with --store, a command that
// creates a data dir and then fails takes it back while the database holds
// no account (nothing in the data dir can belong to one); while the
// database holds accounts, the data dir is kept (its saved provider choice
// and keys may be theirs), and the command is refused as being on a data
// dir other than the installation's. The twin of both: a command that succeeds keeps
// the data dir it made.
func TestStoreFailedCommandTakesBackItsDataDir(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)

	refused := newCLI(t)
	refused.fails(`"bogus" is not one of`, "--store", dsn, "tenant", "create", "acme", "--param", "plan=bogus")
	if _, err := os.Stat(refused.dataDir); !os.IsNotExist(err) {
		t.Errorf("the refused tenant create left its new data dir %s (stat: %v)", refused.dataDir, err)
	}
	if n := pgtest.Tables(t, dsn); n != 0 {
		t.Errorf("the refused tenant create: the database holds %d tables, want none", n)
	}

	made := newCLI(t)
	made.ok("--store", dsn, "tenant", "create", "acme")
	if _, err := os.Stat(localtest.AccountDir(made.dataDir, "acme")); err != nil {
		t.Fatalf("tenant create kept no account in its data dir: %v", err)
	}

	second := newCLI(t)
	second.fails("is not the one the installation's servers use", "--store", dsn, "tenant", "create", "globex", "--param", "plan=bogus")
	if _, err := os.Stat(second.dataDir); err != nil {
		t.Errorf("a failed command on a new data dir, with accounts in the database, removed the data dir: %v", err)
	}
}
