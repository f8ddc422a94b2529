package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/storetest"
)

// crashChildEnv makes the test binary act as the crash-test child: it
// commits updates to the database named by the variable until it is killed.
const crashChildEnv = "SILO_SQLITE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestSettingsReadBack opens a database and reads the pragmas back from both
// the writer and a reader connection, independently of Open's own check.
func TestSettingsReadBack(t *testing.T) {
	s := openTemp(t)
	for name, db := range map[string]*sql.DB{"writer": s.w, "reader": s.r} {
		t.Run(name, func(t *testing.T) {
			var mode string
			var sync, fk, busy int
			for q, dst := range map[string]any{"PRAGMA journal_mode": &mode, "PRAGMA synchronous": &sync, "PRAGMA foreign_keys": &fk, "PRAGMA busy_timeout": &busy} {
				if err := db.QueryRow(q).Scan(dst); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if mode != "wal" || sync != 2 || fk != 1 || busy <= 0 {
				t.Errorf("got journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d, want wal 2 1 >0", mode, sync, fk, busy)
			}
		})
	}
	var ro int
	if err := s.r.QueryRow("PRAGMA query_only").Scan(&ro); err != nil || ro != 1 {
		t.Errorf("reader query_only = %d, %v; want 1", ro, err)
	}
	// Readers keep a 64 KiB page cache (see open); the writer keeps
	// SQLite's default (2,000 KiB), since every commit goes through it.
	var rc, wc int
	if err := s.r.QueryRow("PRAGMA cache_size").Scan(&rc); err != nil || rc != -64 {
		t.Errorf("reader cache_size = %d, %v; want -64 (KiB)", rc, err)
	}
	if err := s.w.QueryRow("PRAGMA cache_size").Scan(&wc); err != nil || wc != -2000 {
		t.Errorf("writer cache_size = %d, %v; want -2000 (KiB, the default)", wc, err)
	}
}

func TestVerifySettings(t *testing.T) {
	tests := []struct {
		mode     string
		sync, fk int
		ok       bool
	}{
		{"wal", 2, 1, true},
		{"WAL", 2, 1, true},
		{"delete", 2, 1, false},
		{"memory", 2, 1, false},
		{"wal", 1, 1, false},
		{"wal", 0, 1, false},
		{"wal", 3, 1, false},
		{"wal", 2, 0, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%d/%d", tc.mode, tc.sync, tc.fk), func(t *testing.T) {
			err := verifySettings(tc.mode, tc.sync, tc.fk)
			if (err == nil) != tc.ok {
				t.Errorf("verifySettings = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestWrongSettingRefusesToStart asks SQLite for synchronous=NORMAL and
// checks that Open refuses, and (the twin) that the default opens.
func TestWrongSettingRefusesToStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	_, err := open(context.Background(), path, options{synchronous: "NORMAL"})
	if err == nil {
		t.Fatal("open with synchronous=NORMAL: got no error")
	}
	if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(err.Error(), "synchronous=1") || !strings.Contains(err.Error(), "refusing to start") {
		t.Errorf("got %v (code %s), want an unavailable error naming synchronous=1 and refusing to start", err, silo.ErrorCode(err))
	}
	s, err := open(context.Background(), path, options{})
	if err != nil {
		t.Fatalf("open with defaults: %v", err)
	}
	s.Close()
}

// writeValidDB creates a database with some content and returns its path.
func writeValidDB(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(tx store.Tx) error {
		for i := range 200 {
			if err := tx.CreateAccount(silo.Account{ID: silo.AccountID(fmt.Sprintf("t%04d", i)), Kind: silo.KindTenant, State: silo.StateActive, Name: strings.Repeat("x", 200)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Everything into the database file, the log emptied: the cases damage
	// the file alone (closing leaves the log in place: wal.go).
	if _, err := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// schemaPages returns the numbers of the pages holding the schema
// (sqlite_schema) of the database at path, whose pages are 4 KiB.
func schemaPages(t *testing.T, path string) map[int]bool {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var size int
	if err := s.w.QueryRow("PRAGMA page_size").Scan(&size); err != nil || size != 4096 {
		t.Fatalf("page size %d, %v; want 4096", size, err)
	}
	rows, err := s.w.Query(`SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	pages := map[int]bool{}
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		pages[p] = true
	}
	if err := rows.Err(); err != nil || !pages[1] {
		t.Fatalf("schema pages %v, %v; want page 1 among them", pages, err)
	}
	return pages
}

// TestCorruptedFile: a damaged state file is refused with a clear message
// and left as it was. Damage to the header or schema is refused by Open;
// damage to other pages (Open reads only the schema) by the first statement
// that reads them and by Check. The valid database is the control: it
// opens, reads and checks clean.
func TestCorruptedFile(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string) // nil: leave the valid file alone
		ok      bool
		atOpen  bool // refused by Open itself
	}{
		{"valid database", nil, true, false},
		{"text file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("these are my notes, not a database\n"), 0o600)
		}, false, true},
		{"random bytes", func(t *testing.T, path string) {
			b := make([]byte, 8192)
			for i := range b {
				b[i] = byte(i*131 + 7)
			}
			os.WriteFile(path, b, 0o600)
		}, false, true},
		{"truncated header", func(t *testing.T, path string) {
			os.WriteFile(path, sqliteHeader[:10], 0o600)
		}, false, true},
		{"garbage pages", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the header and the schema's pages, overwrite the
			// table pages.
			keep := schemaPages(t, path)
			for i := 4096; i < len(b); i++ {
				if !keep[i/4096+1] {
					b[i] = byte(i * 7)
				}
			}
			os.WriteFile(path, b, 0o600)
		}, false, false},
		{"truncated to half", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, b[:len(b)/2], 0o600)
		}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := writeValidDB(t, dir)
			if tc.corrupt != nil {
				tc.corrupt(t, path)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var errs []error // what each step reported
			s, err := Open(ctx, path)
			switch {
			case err != nil:
				errs = append(errs, err)
				if !tc.atOpen {
					t.Errorf("Open: %v, want it to open (only the header and schema are read)", err)
				}
			case tc.atOpen:
				s.Close()
				t.Fatal("Open of a file with a damaged header or schema: got no error")
			default:
				errs = append(errs,
					s.View(ctx, func(tx store.Tx) error {
						_, err := tx.Accounts(store.Filter{})
						return err
					}),
					s.Check(ctx))
				s.Close()
			}
			if tc.ok {
				for _, err := range errs {
					if err != nil {
						t.Errorf("valid database: %v", err)
					}
				}
				return
			}
			want := "state file " + path + " is corrupted: "
			for i, err := range errs {
				t.Logf("error %d: %v", i, err)
				var se *silo.Error
				if !errors.As(err, &se) || se.Code != silo.CodeUnavailable {
					t.Errorf("step %d: got %v (%T), want a *silo.Error with code unavailable", i, err, err)
					continue
				}
				if !strings.HasPrefix(se.Message, want) || !strings.Contains(se.Message, "restore it from a backup") {
					t.Errorf("step %d: message %q, want it to start with %q and say to restore from a backup", i, se.Message, want)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("the corrupted file was modified (%d bytes before, %d after)", len(before), len(after))
			}
		})
	}
}

func TestUnwritableDir(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, []byte("a regular file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"writable", filepath.Join(dir, "data", "state.db"), true},
		{"dir is a file", filepath.Join(blocker, "state.db"), false},
		{"parent is a file", filepath.Join(blocker, "data", "state.db"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.path)
			if tc.ok {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open: got no error")
			}
			want := "cannot write to " + filepath.Dir(tc.path) + ": "
			if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.HasPrefix(silo.UserMessage(err), want) || !strings.HasSuffix(err.Error(), "; choose a writable --data-dir") {
				t.Errorf("got %q (code %s), want %q...; choose a writable --data-dir", err, silo.ErrorCode(err), want)
			}
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := writeValidDB(t, t.TempDir())
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path)
	if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(err.Error(), "run a newer silo") {
		t.Errorf("got %v, want an unavailable error asking for a newer silo", err)
	}
}

// crashChild commits one account and one audit entry per update, printing
// the index of each after its commit returns, until it is killed.
func crashChild(path string) int {
	s, err := Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id := silo.AccountID(fmt.Sprintf("t%06d", i))
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive}); err != nil {
				return err
			}
			_, err := tx.AppendAudit(store.AuditEvent{Actor: "crash-test", Action: "tenant.create", Account: id})
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintln(w, i)
		w.Flush()
	}
}

// TestCrashSafety kills a writer with SIGKILL in the middle of a stream of
// commits and checks that everything it reported committed is there, the
// file passes its integrity check and the audit chain verifies.
func TestCrashSafety(t *testing.T) {
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			kill := 40 + 25*round
			last := -1
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				n, err := strconv.Atoi(sc.Text())
				if err != nil || n != last+1 {
					t.Fatalf("child printed %q after %d", sc.Text(), last)
				}
				last = n
				if last == kill {
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			cmd.Wait()
			if last < kill {
				t.Fatalf("child stopped after %d commits: %s", last+1, stderr.String())
			}

			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatalf("reopen after SIGKILL: %v", err)
			}
			defer s.Close()
			if err := s.Check(context.Background()); err != nil {
				t.Fatalf("Check after SIGKILL: %v", err)
			}
			var ok string
			if err := s.r.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
				t.Fatalf("integrity_check = %q, %v", ok, err)
			}
			err = s.View(context.Background(), func(tx store.Tx) error {
				accts, err := tx.Accounts(store.Filter{})
				if err != nil {
					return err
				}
				// Every reported commit is there; at most the updates in
				// flight after the last report may be there too.
				if len(accts) < last+1 {
					t.Errorf("got %d accounts, want at least %d", len(accts), last+1)
				}
				for i, a := range accts {
					if want := silo.AccountID(fmt.Sprintf("t%06d", i)); a.ID != want {
						t.Fatalf("account %d is %s, want %s (a gap)", i, a.ID, want)
					}
				}
				es, err := tx.Audit(0, 0)
				if err != nil {
					return err
				}
				if n, err := store.VerifyChain("", 0, es); err != nil {
					t.Errorf("audit chain after crash: %d verified, %v", n, err)
				}
				if len(es) != len(accts) {
					t.Errorf("got %d audit entries for %d accounts; each commit has one of each", len(es), len(accts))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// The store takes new writes after recovery.
			err = s.Update(context.Background(), func(tx store.Tx) error {
				_, err := tx.AppendAudit(store.AuditEvent{Time: time.Now(), Actor: "test", Action: "recovered"})
				return err
			})
			if err != nil {
				t.Fatalf("write after recovery: %v", err)
			}
		})
	}
}

// TestUpgradeFromSchema2: a state file written by a silo that kept the
// current release and rollouts in settings and rollout steps in the
// journal opens with them as records (storetest.CheckUpgraded).
func TestUpgradeFromSchema2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	legacy := storetest.LegacyData()
	type stmt struct {
		q    string
		args []any
	}
	stmts := []stmt{{migrations[0], nil}, {migrations[1], nil}, {"PRAGMA user_version = 2", nil}}
	for _, r := range legacy.Releases {
		stmts = append(stmts, stmt{`INSERT INTO releases (id, created) VALUES (?, ?)`, []any{r.ID, micros(r.Created)}})
	}
	for n, v := range legacy.Settings {
		stmts = append(stmts, stmt{`INSERT INTO settings (name, value) VALUES (?, ?)`, []any{n, v}})
	}
	for _, in := range legacy.Intents {
		stmts = append(stmts, stmt{`INSERT INTO intents (key, account, action, state, error, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			[]any{in.Key, string(in.Account), in.Action, string(in.State), in.Error, micros(in.Created), micros(in.Updated)}})
	}
	for _, st := range stmts {
		if _, err := db.Exec(st.q, st.args...); err != nil {
			t.Fatalf("write the schema 2 file: %v", err)
		}
	}
	db.Close()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a schema 2 file: %v", err)
	}
	defer s.Close()
	storetest.CheckUpgraded(t, s)
}

// TestUpgradeMarksLegacyProbes: a state file of schema 5, written by a silo
// that did not mark the releases silo verify --probe builds, opens with
// exactly the probe's releases marked (storetest.CheckLegacyProbes); the
// operator's releases, and the probe-shaped ones that were shipped, stay
// listed.
func TestUpgradeMarksLegacyProbes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.LegacyProbeData(t, s)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(schema6, `ALTER TABLE releases DROP COLUMN probe`, `PRAGMA user_version = 5`) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("take the state file back to schema 5: %v", err)
		}
	}
	db.Close()
	s, err = Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a schema 5 file: %v", err)
	}
	defer s.Close()
	storetest.CheckLegacyProbes(t, s)
}

// schema8 takes a state file of schema 9 back to schema 8: releases
// without origins.
var schema8 = []string{
	`ALTER TABLE releases DROP COLUMN origin`,
	`ALTER TABLE releases DROP COLUMN origin_from`,
	`PRAGMA user_version = 8`,
}

// TestUpgradeKeepsReleasesUnrecorded: a state file of schema 8, written by
// a silo that did not record where releases came from, opens with its
// releases of no origin, shippable, and upgraded by a deploy
// (storetest.CheckOriginsUpgraded).
func TestUpgradeKeepsReleasesUnrecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.LegacyOriginData(t, s)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range schema8 {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("take the state file back to schema 8: %v", err)
		}
	}
	db.Close()
	s, err = Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a schema 8 file: %v", err)
	}
	defer s.Close()
	storetest.CheckOriginsUpgraded(t, s)
}

// schema6 takes a state file of schema 9 back to schema 6: no release
// origins, no published request metrics, usage and stored bytes kept per
// ID, no purged accounts. Each ID must have one account's rows only.
var schema6 = append(schema8[:2:2],
	`DROP TABLE release_metrics`,
	`DROP TABLE purged_accounts`,
	`CREATE TABLE usage_v6 (day INTEGER NOT NULL, account TEXT NOT NULL, function TEXT NOT NULL, rolled INTEGER NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (day, account, function)) WITHOUT ROWID`,
	`INSERT INTO usage_v6 SELECT day, account, function, rolled, data FROM usage`,
	`DROP TABLE usage`,
	`ALTER TABLE usage_v6 RENAME TO usage`,
	`CREATE INDEX usage_account ON usage (account, day)`,
	`CREATE TABLE stored_usage_v6 (day INTEGER NOT NULL, account TEXT NOT NULL, rolled INTEGER NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (day, account)) WITHOUT ROWID`,
	`INSERT INTO stored_usage_v6 SELECT day, account, rolled, data FROM stored_usage`,
	`DROP TABLE stored_usage`,
	`ALTER TABLE stored_usage_v6 RENAME TO stored_usage`,
	`CREATE INDEX stored_usage_account ON stored_usage (account, day)`,
	`PRAGMA user_version = 6`,
)

// TestUpgradeKeepsUsagePerAccount: a state file of schema 6, which kept
// usage per ID, opens with each row under the account registered with its
// ID (storetest.CheckUsageUpgraded).
func TestUpgradeKeepsUsagePerAccount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.UsageByIDData(t, s)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range schema6 {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("take the state file back to schema 6: %v", err)
		}
	}
	db.Close()
	s, err = Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open of a schema 6 file: %v", err)
	}
	defer s.Close()
	storetest.CheckUsageUpgraded(t, s)
}
