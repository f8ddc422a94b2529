package isolation_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// auditDB creates a real SQLite store with n audit entries appended through
// the witnessed store, closes it, and returns the DB and witness paths.
func auditDB(t *testing.T, n int) (dbPath, witness string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, witness = filepath.Join(dir, "state.db"), filepath.Join(dir, isolation.WitnessFile)
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := isolation.EnsureWitness(ctx, st, witness); err != nil {
		t.Fatal(err)
	}
	ws := isolation.WithWitness(st, witness)
	ws.OnError = func(err error) { t.Errorf("witness: %v", err) }
	for i := 1; i <= n; i++ {
		appendAudit(t, ws, i)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dbPath, witness
}

func appendAudit(t *testing.T, s store.Store, i int) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Time: time.Unix(1700000000+int64(i), 0), Actor: "cli:test", Action: "tenant.create",
			Account: silo.AccountID(fmt.Sprintf("t%d", i)), Detail: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rawExec(t *testing.T, dbPath string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func verifyAudit(t *testing.T, dbPath, witness string) (isolation.AuditResult, error) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return isolation.VerifyAudit(context.Background(), st, witness)
}

func TestVerifyAudit(t *testing.T) {
	const n = 10
	tampers := []struct {
		name string
		do   func(t *testing.T, db, witness string)
	}{
		{"edit an entry", func(t *testing.T, db, _ string) {
			rawExec(t, db, `UPDATE audit SET actor = 'operator:mallory' WHERE seq = 5`)
		}},
		{"edit the detail", func(t *testing.T, db, _ string) {
			rawExec(t, db, `UPDATE audit SET detail = '{"n":99}' WHERE seq = 3`)
		}},
		{"edit the last entry and its hash", func(t *testing.T, db, _ string) {
			rawExec(t, db, `UPDATE audit SET actor = 'x', hash = 'ab' WHERE seq = 10`)
		}},
		{"delete an entry", func(t *testing.T, db, _ string) {
			rawExec(t, db, `DELETE FROM audit WHERE seq = 5`)
		}},
		{"reorder two entries", func(t *testing.T, db, _ string) {
			rawExec(t, db, `UPDATE audit SET seq = -1 WHERE seq = 4`, `UPDATE audit SET seq = 4 WHERE seq = 5`, `UPDATE audit SET seq = 5 WHERE seq = -1`)
		}},
		{"truncate the tail", func(t *testing.T, db, _ string) {
			rawExec(t, db, `DELETE FROM audit WHERE seq > 7`)
		}},
		{"truncate everything", func(t *testing.T, db, _ string) {
			rawExec(t, db, `DELETE FROM audit`)
		}},
		{"duplicate an entry", func(t *testing.T, db, _ string) {
			rawExec(t, db, `INSERT INTO audit (seq, time, actor, action, account, detail, prev, hash) SELECT 11, time, actor, action, account, detail, prev, hash FROM audit WHERE seq = 6`)
		}},
		{"truncate and re-chain a new tail", func(t *testing.T, db, _ string) {
			rawExec(t, db, `DELETE FROM audit WHERE seq > 7`)
			st, err := sqlite.Open(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for i := 100; i < 103; i++ {
				appendAudit(t, st, i) // a valid chain, but not the one the witness saw
			}
		}},
		{"witness deleted", func(t *testing.T, _, witness string) {
			os.Remove(witness)
		}},
		{"witness edited", func(t *testing.T, _, witness string) {
			os.WriteFile(witness, []byte("{not json"), 0o600)
		}},
	}
	for _, tt := range tampers {
		t.Run(tt.name, func(t *testing.T) {
			db, witness := auditDB(t, n)
			if _, err := verifyAudit(t, db, witness); err != nil {
				t.Fatalf("twin before tampering: %v", err)
			}
			tt.do(t, db, witness)
			_, err := verifyAudit(t, db, witness)
			if silo.ErrorCode(err) != silo.CodeFailedCheck {
				t.Fatalf("got %v, want failed_check", err)
			}
			t.Log(silo.UserMessage(err))
		})
	}

	t.Run("untouched verifies", func(t *testing.T) {
		db, witness := auditDB(t, n)
		r, err := verifyAudit(t, db, witness)
		if err != nil || r.Entries != n || r.Witness == nil || r.Witness.Seq != n || r.Head.Seq != n {
			t.Fatalf("got %+v %v, want %d entries with the witness at the head", r, err, n)
		}
	})
	t.Run("witness behind the log after a crash verifies", func(t *testing.T) {
		db, witness := auditDB(t, n)
		st, err := sqlite.Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		appendAudit(t, st, 11) // committed without the witness write, as after a crash
		st.Close()
		r, err := verifyAudit(t, db, witness)
		if err != nil || r.Head.Seq != n+1 || r.Witness.Seq != n {
			t.Fatalf("got %+v %v, want head %d and witness %d", r, err, n+1, n)
		}
	})
	t.Run("empty log without witness verifies", func(t *testing.T) {
		db, witness := auditDB(t, 0)
		if _, err := verifyAudit(t, db, witness); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEnsureWitness(t *testing.T) {
	ctx := context.Background()
	db, witness := auditDB(t, 0)
	os.Remove(witness)
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A new installation gets its witness, once.
	if created, err := isolation.EnsureWitness(ctx, st, witness); err != nil || !created {
		t.Fatalf("new installation: got %v %v, want created", created, err)
	}
	if created, err := isolation.EnsureWitness(ctx, st, witness); err != nil || created {
		t.Fatalf("second call: got %v %v, want left alone", created, err)
	}
	// One whose log has entries does not: the log could be cut already.
	appendAudit(t, st, 1)
	os.Remove(witness)
	if created, err := isolation.EnsureWitness(ctx, st, witness); err != nil || created {
		t.Fatalf("non-empty log: got %v %v, want no witness created", created, err)
	}
	if _, err := os.Stat(witness); !os.IsNotExist(err) {
		t.Fatalf("a witness exists for a log that had none (%v)", err)
	}
}

func TestWitnessFileMode(t *testing.T) {
	_, witness := auditDB(t, 1)
	fi, err := os.Stat(witness)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("got mode %v, want 0600", fi.Mode().Perm())
	}
	w, err := isolation.ReadWitness(witness)
	if err != nil || w.Seq != 1 || w.Hash == "" {
		t.Fatalf("got %+v %v", w, err)
	}
}

// TestDeferredWitness: a commit whose transaction defers its witness leaves
// the witness where it was (behind the log, which verifies), and the next
// commit writes it, even one that appends nothing. The twin: a commit that
// does not defer writes it at once.
func TestDeferredWitness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, witness := filepath.Join(dir, "state.db"), filepath.Join(dir, isolation.WitnessFile)
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := isolation.EnsureWitness(ctx, st, witness); err != nil {
		t.Fatal(err)
	}
	ws := isolation.WithWitness(st, witness)
	ws.OnError = func(err error) { t.Errorf("witness: %v", err) }
	seq := func() int64 {
		t.Helper()
		w, err := isolation.ReadWitness(witness)
		if err != nil {
			t.Fatal(err)
		}
		return w.Seq
	}
	appendAudit(t, ws, 1)
	if got := seq(); got != 1 {
		t.Fatalf("witness after a commit that does not defer: seq %d, want 1", got)
	}
	err = ws.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.AppendAudit(store.AuditEvent{Time: time.Unix(1700000002, 0), Actor: "cli:test", Action: "account.create", Account: "t2"}); err != nil {
			return err
		}
		d, ok := tx.(interface{ DeferWitness() })
		if !ok {
			t.Fatalf("a witnessed store's transaction (%T) cannot defer its witness", tx)
		}
		d.DeferWitness()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seq(); got != 1 {
		t.Fatalf("witness after a deferring commit: seq %d, want 1 (left for the next commit)", got)
	}
	if res, err := isolation.VerifyAudit(ctx, st, witness); err != nil || res.Head.Seq != 2 {
		t.Fatalf("VerifyAudit with the witness behind: %+v, %v; want the log of 2 accepted", res, err)
	}
	err = ws.Update(ctx, func(tx store.Tx) error { return tx.PutSetting("current_release", "r1") })
	if err != nil {
		t.Fatal(err)
	}
	if got := seq(); got != 2 {
		t.Fatalf("witness after the next commit (no audit entry): seq %d, want 2", got)
	}
	if _, err := isolation.VerifyAudit(ctx, st, witness); err != nil {
		t.Fatal(err)
	}
}
