package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/sqlite"
)

// TestStoreFlagBadInput: a PostgreSQL URL that cannot be reached, a
// database whose schema a newer silo wrote, and a store that is not a
// PostgreSQL URL each get one clear error, and nothing is written to the
// data dir or the database. The twin: the same command on a good database
// works and creates no state.db (the state is in PostgreSQL).
func TestStoreFlagBadInput(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stateDB := filepath.Join(c.dataDir, "state.db")

	c.fails("cannot connect to PostgreSQL", "--store", "postgres://silo@127.0.0.1:1/silo?sslmode=disable&connect_timeout=2", "tenant", "list")
	c.fails("--store must be empty", "--store", "mysql://silo@db/silo", "tenant", "list")
	if _, err := os.Stat(stateDB); !os.IsNotExist(err) {
		t.Fatalf("after a refused store, state.db: %v, want none", err)
	}

	newer := pgtest.Fresh(t)
	st, err := postgres.Open(context.Background(), newer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutSetting("x", "1") }); err != nil {
		t.Fatal(err) // the first write creates silo's tables
	}
	st.Close()
	pgtest.Exec(t, newer, "UPDATE silo_schema SET version = 99")
	c.fails("run a newer silo", "--store", newer, "tenant", "list")
	pgtest.Exec(t, newer, "DO $$ BEGIN IF (SELECT version FROM silo_schema) <> 99 THEN RAISE 'schema version changed'; END IF; END $$")

	// The twin: a reachable database of the current schema works.
	if out := c.ok("--store", dsn, "tenant", "list"); strings.Contains(out, "acme") {
		t.Fatalf("tenant list on an empty database: %s", out)
	}
	if _, err := os.Stat(stateDB); !os.IsNotExist(err) {
		t.Errorf("with --store postgres://..., state.db: %v, want none", err)
	}
}

// TestRefusedCommandLeavesAnEmptyDatabaseEmpty: a command with --store on
// an empty PostgreSQL schema that is refused once the store is open (no
// such account, the production account, no release, a parameter the
// release does not accept) or that only reads creates none of silo's
// tables; the must twin: the first command that changes something creates
// them and its change is there.
func TestRefusedCommandLeavesAnEmptyDatabaseEmpty(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		t.Fatal(err) // an installation's data dir, so that each command reaches the store
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "create", "acme", "--param", "plan=bogus"}, `"bogus" is not one of free, pro, enterprise`},
		{[]string{"tenant", "create", "acme", "--param", "tier=gold"}, `"tier"`},
		{[]string{"tenant", "delete", "nosuch", "--yes"}, `no account "nosuch"`},
		{[]string{"tenant", "delete", "production", "--yes"}, `no account "production"`},
		{[]string{"limits", "set", "production", "--rate", "5"}, `no account "production"`},
		{[]string{"env", "delete", "nosuch"}, `no account "nosuch"`},
		{[]string{"keys", "create", "nosuch"}, `no account "nosuch"; silo tenant list shows the accounts`},
		{[]string{"tenant", "update", "nosuch", "--param", "plan=pro"}, "no release yet"},
		{[]string{"rollout", "abort"}, "no rollout is active"},
	} {
		c.fails(tc.want, append([]string{"--store", dsn}, tc.args...)...)
		if n := pgtest.Tables(t, dsn); n != 0 {
			t.Fatalf("after the refused silo %s the database holds %d tables, want none", strings.Join(tc.args, " "), n)
		}
	}
	if out := c.ok("--store", dsn, "tenant", "list"); !strings.Contains(out, "(none)") {
		t.Errorf("tenant list on an empty database: %s", out)
	}
	if n := pgtest.Tables(t, dsn); n != 0 {
		t.Fatalf("after tenant list the database holds %d tables, want none", n)
	}

	c.ok("--store", dsn, "tenant", "create", "acme", "--param", "plan=pro")
	if n := pgtest.Tables(t, dsn); n == 0 {
		t.Fatal("tenant create wrote no tables")
	}
	var releases, audit int
	pgtest.QueryRow(t, dsn, "SELECT (SELECT count(*) FROM releases), (SELECT count(*) FROM audit WHERE action = 'release.current')", &releases, &audit)
	if releases != 1 || audit != 1 {
		t.Errorf("after the first tenant create: %d releases, %d release.current audit entries; want 1 and 1", releases, audit)
	}
	if out := c.ok("--store", dsn, "tenant", "list"); !strings.Contains(out, "acme") {
		t.Errorf("tenant list after tenant create: %s", out)
	}
}

// TestRefusedFirstTenantStoresNothing: on an installation without a
// release yet, on SQLite and on PostgreSQL, a tenant create whose
// parameters the spec file's release refuses stores neither the release
// nor an audit entry; the twin, the same create with a parameter the
// release accepts, stores the release, makes it current and audits that.
func TestRefusedFirstTenantStoresNothing(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			c := newCLI(t)
			var st []string
			if backend == "postgres" {
				st = []string{"--store", pgtest.Fresh(t)}
			}
			if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			c.fails(`"bogus" is not one of`, append(st, "tenant", "create", "acme", "--param", "plan=bogus")...)
			// The same for the first environment: its parameters, and its
			// seed directory, are checked before the release is stored.
			c.fails(`"bogus" is not one of`, append(st, "env", "create", "e1", "--ttl", "1h", "--param", "plan=bogus")...)
			c.fails("holds nothing silo loads", append(st, "env", "create", "e1", "--ttl", "1h", "--seed", t.TempDir())...)
			if out := c.ok(append(st, "release", "list", "-o", "json")...); strings.TrimSpace(out) != "[]" {
				t.Errorf("release list after the refused create: %s, want []", out)
			}
			if out := c.ok(append(st, "audit", "list", "-o", "json")...); strings.TrimSpace(out) != "[]" {
				t.Errorf("audit list after the refused create: %s, want []", out)
			}

			c.ok(append(st, "tenant", "create", "acme", "--param", "plan=pro")...)
			if out := c.ok(append(st, "release", "list")...); strings.Count(out, "r-") != 1 || !strings.Contains(out, "current") {
				t.Errorf("release list after the first tenant: %s, want one release, current", out)
			}
			if out := c.ok(append(st, "audit", "list")...); !strings.Contains(out, "release.current") || !strings.Contains(out, "account.create") {
				t.Errorf("audit list after the first tenant: %s, want release.current and account.create", out)
			}
		})
	}
}

// TestStoreMigrateRoundTrip builds a fleet of the example app on SQLite
// (tenants, a suspended and a deleted one, keys issued and revoked, a limit
// override, metered usage and stored bytes, schedule claims), copies it
// into PostgreSQL with silo store migrate, and finds the same registry,
// resources, keys, releases, journal, settings, limit overrides, usage,
// schedule claims and audit chain there; the
// CLI then works on the copy with --store, and a second migrate into the
// now non-empty database (with store-moved.json set aside) is refused and
// changes nothing.
func TestStoreMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--param", "plan=pro")
	c.ok("tenant", "create", "globex")
	c.ok("tenant", "create", "initech")
	c.ok("keys", "create", "acme", "--name", "ci")
	c.ok("tenant", "suspend", "globex")
	c.ok("tenant", "delete", "initech", "--yes")
	c.ok("limits", "set", "acme", "--rate", "7")
	c.ok("audit", "verify")
	meter(t, filepath.Join(c.dataDir, "state.db"))

	// Pointing the data dir at an empty database before migrating is
	// refused with what to do, and writes nothing there.
	c.fails("copy it with silo store migrate", "--store", dsn, "tenant", "list")
	c.fails("copy it with silo store migrate", "--store", dsn, "tenant", "create", "hooli")

	out := c.ok("store", "migrate", "--to", dsn)
	for _, want := range []string{" accounts", "1 limit overrides", "2 usage days", "1 stored-bytes days", "2 schedule claims"} {
		if !strings.Contains(out, want) {
			t.Errorf("store migrate: %s, want %q among the counts copied", out, want)
		}
	}
	// The URL is said as the one given, not printed redacted (which could
	// not be pasted) nor with its password.
	if !strings.Contains(out, "start the servers with --store (or $SILO_STORE) set to the same URL you gave --to") || strings.Contains(out, "…@") {
		t.Errorf("store migrate: %s, want how to start the servers without a redacted URL", out)
	}
	ctx := context.Background()
	src, err := sqlite.Open(ctx, filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	want, got := dump(t, src), dump(t, dst)
	if len(want.Audit) == 0 || len(want.Accounts) < 4 || len(want.Overrides) != 1 || len(want.Usage) != 2 || len(want.Runs) != 2 {
		t.Fatalf("the source fleet is too small to show anything: %d accounts, %d audit entries", len(want.Accounts), len(want.Audit))
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(silo.Account{}, "Version"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("PostgreSQL after migrate (-sqlite +postgres):\n%s", diff)
	}

	// The CLI works on the copy, and the copied chain verifies and reaches
	// the data dir's witness.
	if out := c.ok("--store", dsn, "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify on the copy: %s", out)
	}
	if out := c.ok("--store", dsn, "limits", "show", "acme"); !strings.Contains(out, "7") {
		t.Errorf("limits show on the copy: %s, want the rate override 7", out)
	}
	if out := c.ok("--store", dsn, "usage", "acme", "--since", "30d", "--by", "function", "--output", "csv"); !strings.Contains(out, "acme,hello,,154,") {
		t.Errorf("usage on the copy: %s, want the 154 requests metered before the move", out)
	}
	list := c.ok("--store", dsn, "tenant", "list")
	for _, id := range []string{"acme", "globex"} {
		if !strings.Contains(list, id) {
			t.Errorf("tenant list on the copy: %s, want %s", list, id)
		}
	}
	// Without --store the data dir's SQLite state is refused now: it is
	// out of date, and changing it beside servers on PostgreSQL would split
	// the fleet. Removing the record makes it usable again on purpose.
	c.ok("--store", dsn, "tenant", "create", "hooli") // a change made on PostgreSQL only
	c.fails("copied to postgres://postgres@127.0.0.1", "tenant", "list")
	c.fails("pass --store or set SILO_STORE", "tenant", "create", "pied")
	if _, err := os.Stat(localtest.AccountDir(c.dataDir, "pied")); !os.IsNotExist(err) {
		t.Errorf("a refused tenant create on the moved state made an account: %v", err)
	}
	c.fails("every change since is only in that database", "apply", "--all", "--yes")
	c.fails("silo cannot move the state back to SQLite: removing "+filepath.Join(c.dataDir, "store-moved.json")+" would make silo use the SQLite state as it was then", "doctor")
	if err := os.Rename(filepath.Join(c.dataDir, "store-moved.json"), filepath.Join(c.dataDir, "moved.bak")); err != nil {
		t.Fatal(err)
	}
	// Removed on purpose, the SQLite state is the fleet at the migration.
	if out := c.ok("tenant", "list"); strings.Contains(out, "hooli") || !strings.Contains(out, "acme") {
		t.Errorf("tenant list on the SQLite state after removing the record: %s; want the fleet at the migration", out)
	}

	// A second migrate is refused: the target is not empty (and with the
	// record back, the data dir moved already: TestStoreMigrateRefusedOnceMoved).
	before := dump(t, dst).Audit
	c.fails("is not empty", "store", "migrate", "--to", dsn)
	if diff := cmp.Diff(before, dump(t, dst).Audit); diff != "" {
		t.Errorf("the refused migrate changed the audit log (-before +after):\n%s", diff)
	}
	if err := os.Rename(filepath.Join(c.dataDir, "moved.bak"), filepath.Join(c.dataDir, "store-moved.json")); err != nil {
		t.Fatal(err)
	}
}

// state is everything a store holds, for comparing two.
type state struct {
	Accounts  []silo.Account
	Resources map[silo.AccountID][]silo.Resource
	Keys      map[silo.AccountID][]store.APIKey
	Releases  []store.Release
	Journal   []string // key state error, in order
	Settings  map[string]string
	Overrides map[silo.AccountID]silo.Limits
	Usage     []store.UsageDay
	Stored    []store.StoredDay
	Runs      []store.ScheduleRun
	Audit     []store.AuditEntry
}

// meter records, in the SQLite state at path, what a served fleet holds
// beside the registry: acme's usage on two days (the older rolled up),
// its stored bytes, and two schedule claims (one finished).
func meter(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	err = s.Update(ctx, func(tx store.Tx) error {
		d := store.UsageDelta{Account: "acme", Function: "hello", Counters: store.Counters{Requests: 77}}
		for _, at := range []time.Time{now, now.Add(-10 * 24 * time.Hour)} {
			if err := tx.AddUsage(at, []store.UsageDelta{d}); err != nil {
				return err
			}
		}
		if _, _, err := tx.PruneUsage(now.Add(-5*24*time.Hour), now.Add(-100*24*time.Hour)); err != nil {
			return err
		}
		if err := tx.SetStored(now, []store.StoredSample{{Account: "acme", Kind: store.StoredTable, Name: "visits", Bytes: 4096}}); err != nil {
			return err
		}
		for i, name := range []string{"nightly", "hourly"} {
			c := store.ScheduleClaim{Account: "acme", Schedule: name, Due: now.Add(time.Duration(i) * time.Hour).Truncate(time.Second), Owner: "server-a", Until: now.Add(2 * time.Hour).Truncate(time.Second)}
			if err := tx.ClaimScheduleRun(c, c.Due); err != nil {
				return err
			}
			if i == 0 {
				if err := tx.FinishScheduleRun(c); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dump(t *testing.T, s store.Store) state {
	t.Helper()
	st := state{Resources: map[silo.AccountID][]silo.Resource{}, Keys: map[silo.AccountID][]store.APIKey{}, Overrides: map[silo.AccountID]silo.Limits{}}
	err := s.View(context.Background(), func(tx store.Tx) error {
		var err error
		if st.Accounts, err = tx.Accounts(store.Filter{IncludeDeleted: true}); err != nil {
			return err
		}
		for _, a := range st.Accounts {
			if st.Resources[a.ID], err = tx.Resources(a.ID); err != nil {
				return err
			}
			if st.Keys[a.ID], err = tx.Keys(a.ID); err != nil {
				return err
			}
			sort.Slice(st.Keys[a.ID], func(i, j int) bool { return st.Keys[a.ID][i].ID < st.Keys[a.ID][j].ID })
			if l, err := tx.LimitOverride(a.ID); err == nil {
				st.Overrides[a.ID] = l
			}
		}
		if st.Releases, err = tx.Releases(0, true); err != nil {
			return err
		}
		l := tx.(store.Lister)
		in, err := l.Journal(0, 0)
		if err != nil {
			return err
		}
		for _, i := range in {
			st.Journal = append(st.Journal, i.Key+" "+string(i.State)+" "+i.Error)
		}
		if st.Settings, err = l.Settings(); err != nil {
			return err
		}
		if st.Usage, err = tx.Usage(store.UsageQuery{}); err != nil {
			return err
		}
		if st.Stored, err = tx.Stored(store.UsageQuery{}); err != nil {
			return err
		}
		if st.Runs, err = l.ScheduleRuns(); err != nil {
			return err
		}
		st.Audit, err = tx.Audit(0, 100000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
