package isolation_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// fleet is an installation's control plane as the platform keeps it: a
// SQLite store whose witness was created when it was new, with n tenants,
// each created with its audit event in the same transaction.
type fleet struct {
	db, witness string
}

func newFleet(t *testing.T, n int) fleet {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := fleet{db: filepath.Join(dir, "state.db"), witness: filepath.Join(dir, isolation.WitnessFile)}
	st, err := sqlite.Open(ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if created, err := isolation.EnsureWitness(ctx, st, f.witness); err != nil || !created {
		t.Fatalf("new installation: witness created %v, %v", created, err)
	}
	ws := isolation.WithWitness(st, f.witness)
	ws.OnError = func(err error) { t.Errorf("witness: %v", err) }
	for i := 1; i <= n; i++ {
		f.addTenant(t, ws, i)
	}
	return f
}

func (f fleet) addTenant(t *testing.T, s store.Store, i int) {
	t.Helper()
	id := silo.AccountID(fmt.Sprintf("t%d", i))
	now := time.Unix(1700000000+int64(i), 0)
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive, Created: now, Updated: now}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(store.AuditEvent{Time: now, Actor: "cli:test", Action: "account.create", Account: id})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f fleet) open(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (f fleet) checkpoint(t *testing.T, key ed25519.PrivateKey) isolation.Checkpoint {
	t.Helper()
	st, err := sqlite.Open(context.Background(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := isolation.MakeCheckpoint(context.Background(), st, key, time.Unix(1800000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Through the file form, as an exported checkpoint is read back.
	c, err = isolation.ParseCheckpoint(c.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f fleet) verify(t *testing.T, cps ...isolation.Checkpoint) (isolation.AuditResult, error) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return isolation.VerifyAudit(context.Background(), st, f.witness, cps...)
}

// copyFiles copies the state files (and the witness) to dir, or back.
func copyState(t *testing.T, from, to fleet) {
	t.Helper()
	for _, pair := range [][2]string{{from.db, to.db}, {from.db + "-wal", to.db + "-wal"}, {from.witness, to.witness}} {
		b, err := os.ReadFile(pair[0])
		if os.IsNotExist(err) {
			os.Remove(pair[1])
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pair[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(to.db + "-shm")
}

// rechain edits entry seq (its actor) and recomputes the hash of it and
// every entry after it, and the witness: what someone who can write the
// data dir can do, since the chain is unkeyed.
func rechain(t *testing.T, f fleet, seq int64) {
	t.Helper()
	var entries []store.AuditEntry
	st := f.open(t)
	if err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		entries, err = tx.Audit(0, 1000)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prev := ""
	var head isolation.Witness
	for _, e := range entries {
		if e.Seq == seq {
			e.Event.Actor = "operator:mallory"
		}
		if e.Seq >= seq {
			e.Prev = prev
			e.Hash = store.ChainHash(prev, e.Seq, e.Event)
			if _, err := db.Exec(`UPDATE audit SET actor = ?, prev = ?, hash = ? WHERE seq = ?`, e.Event.Actor, e.Prev, e.Hash, e.Seq); err != nil {
				t.Fatal(err)
			}
		}
		prev = e.Hash
		head = isolation.Witness{Seq: e.Seq, Hash: e.Hash}
	}
	if err := isolation.WriteWitness(f.witness, head); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointsCatchWhatTheWitnessCannot tampers with the data dir as
// someone who can write it would, and checks that verifying against an
// exported checkpoint catches each case, while the untouched log (the twin)
// verifies against the same checkpoint.
func TestCheckpointsCatchWhatTheWitnessCannot(t *testing.T) {
	const n = 10
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, f fleet)
		want string
		// witnessAlone is whether the local witness alone catches it.
		witnessAlone bool
	}{
		{"edit an entry and recompute every hash and the witness", func(t *testing.T, f fleet) { rechain(t, f, 5) },
			"does not match the checkpoint", false},
		{"cut the tail and remove the witness", func(t *testing.T, f fleet) {
			rawExec(t, f.db, `DELETE FROM audit WHERE seq > 7`)
			os.Remove(f.witness)
		}, "entries were cut off", true},
		{"cut the tail and rewrite the witness", func(t *testing.T, f fleet) {
			rawExec(t, f.db, `DELETE FROM audit WHERE seq > 7`)
			os.Remove(f.witness)
			if _, err := isolation.StartWitness(context.Background(), f.open(t), f.witness); err != nil {
				t.Fatal(err)
			}
		}, "entries were cut off", false},
		{"delete the log and the witness", func(t *testing.T, f fleet) {
			rawExec(t, f.db, `DELETE FROM audit`)
			os.Remove(f.witness)
		}, "the log was deleted", true},
		{"reorder two entries", func(t *testing.T, f fleet) {
			rawExec(t, f.db, `UPDATE audit SET seq = -1 WHERE seq = 4`, `UPDATE audit SET seq = 4 WHERE seq = 5`, `UPDATE audit SET seq = 5 WHERE seq = -1`)
		}, "not intact", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, n)
			cp := f.checkpoint(t, key)
			if r, err := f.verify(t, cp); err != nil || r.Checkpoints != 1 {
				t.Fatalf("twin before tampering: %+v %v", r, err)
			}
			tc.do(t, f)
			_, err := f.verify(t, cp)
			if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), tc.want) {
				t.Fatalf("with the checkpoint: got %v, want failed_check saying %q", err, tc.want)
			}
			_, err = f.verify(t)
			if caught := err != nil; caught != tc.witnessAlone {
				t.Errorf("without a checkpoint: caught %v (%v), want %v", caught, err, tc.witnessAlone)
			}
			if _, err := os.Stat(f.witness); tc.witnessAlone && err == nil && strings.Contains(tc.name, "remove the witness") {
				t.Errorf("verifying created a witness")
			}
		})
	}

	t.Run("replay an old state", func(t *testing.T) {
		f := newFleet(t, 5)
		old := fleet{db: filepath.Join(t.TempDir(), "state.db")}
		old.witness = filepath.Join(filepath.Dir(old.db), isolation.WitnessFile)
		copyState(t, f, old) // a backup taken after 5 entries
		st := f.open(t)
		ws := isolation.WithWitness(st, f.witness)
		for i := 6; i <= n; i++ {
			f.addTenant(t, ws, i)
		}
		st.Close()
		cp := f.checkpoint(t, key)
		if _, err := f.verify(t, cp); err != nil {
			t.Fatalf("twin before the replay: %v", err)
		}
		copyState(t, old, f) // the old state put back, log and witness together
		if _, err := f.verify(t); err != nil {
			t.Fatalf("the old state is consistent by itself, so the witness alone cannot tell: %v", err)
		}
		_, err := f.verify(t, cp)
		if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "an older copy of the log was put back") {
			t.Fatalf("got %v, want the replay caught", err)
		}
		// A checkpoint taken of the old state itself still verifies.
		if _, err := f.verify(t, f.checkpoint(t, key)); err != nil {
			t.Errorf("a checkpoint of the state as it is: %v", err)
		}
	})
}

func TestEmptyLogBesideAccountsIsTampering(t *testing.T) {
	f := newFleet(t, 3)
	rawExec(t, f.db, `DELETE FROM audit`)
	if err := isolation.WriteWitness(f.witness, isolation.Witness{}); err != nil { // a witness of an empty log
		t.Fatal(err)
	}
	if _, err := f.verify(t); silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "holds 3 account(s)") {
		t.Fatalf("got %v, want the deleted log reported", err)
	}
	// Twin: a new, empty installation verifies.
	empty := newFleet(t, 0)
	if r, err := empty.verify(t); err != nil || r.Entries != 0 {
		t.Fatalf("new installation: %+v %v", r, err)
	}
}

// No code path that only reads creates or advances a witness, and a lost
// witness is not recreated by the next commit or by opening.
func TestWitnessIsNeverCreatedForAnExistingLog(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, 3)
	os.Remove(f.witness)
	st := f.open(t)
	if _, err := isolation.VerifyAudit(ctx, st, f.witness); err == nil {
		t.Fatal("a log without its witness verified")
	}
	if created, err := isolation.EnsureWitness(ctx, st, f.witness); err != nil || created {
		t.Fatalf("EnsureWitness on a non-empty log: created %v, %v", created, err)
	}
	ws := isolation.WithWitness(st, f.witness)
	var told error
	ws.OnError = func(err error) { told = err }
	f.addTenant(t, ws, 4)
	if _, err := os.Stat(f.witness); !os.IsNotExist(err) {
		t.Fatalf("a commit recreated the witness (%v)", err)
	}
	// A witness deleted while the store runs is not recreated either.
	g := newFleet(t, 1)
	gs := g.open(t)
	gw := isolation.WithWitness(gs, g.witness)
	gw.OnError = func(err error) { told = err }
	os.Remove(g.witness)
	g.addTenant(t, gw, 2)
	if _, err := os.Stat(g.witness); !os.IsNotExist(err) || told == nil {
		t.Fatalf("a commit recreated a deleted witness (%v), or did not say so (%v)", err, told)
	}
	// Twin: a witness that exists is advanced by commits.
	h := newFleet(t, 2)
	hs := h.open(t)
	isolation.WithWitness(hs, h.witness)
	h.addTenant(t, isolation.WithWitness(hs, h.witness), 3)
	if w, err := isolation.ReadWitness(h.witness); err != nil || w.Seq != 3 {
		t.Fatalf("witness after a commit: %+v %v, want entry 3", w, err)
	}
	// StartWitness is the deliberate way to begin again, and only once.
	if w, err := isolation.StartWitness(ctx, st, f.witness); err != nil || w.Seq != 4 {
		t.Fatalf("StartWitness: %+v %v", w, err)
	}
	if _, err := isolation.StartWitness(ctx, st, f.witness); silo.ErrorCode(err) != silo.CodeConflict {
		t.Fatalf("second StartWitness: got %v, want conflict", err)
	}
}

func TestCheckpointFile(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	f := newFleet(t, 2)
	cp := f.checkpoint(t, key)
	file := cp.Encode()
	fp := func(k ed25519.PrivateKey) string {
		c, _ := isolation.MakeCheckpoint(context.Background(), f.open(t), k, time.Now())
		return c.Signer
	}
	if _, err := isolation.ParseCheckpoint(file, []string{fp(key)}); err != nil {
		t.Fatalf("twin: the checkpoint against its signer: %v", err)
	}
	if _, err := isolation.ParseCheckpoint(file, []string{fp(other)}); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Errorf("against another key: got %v, want failed_check", err)
	}
	var m map[string]any
	json.Unmarshal(file, &m)
	for field, v := range map[string]any{"seq": 1, "hash": strings.Repeat("0", 64), "time": "2020-01-01T00:00:00Z", "signer": strings.Repeat("a", 64)} {
		edited := map[string]any{}
		for k, x := range m {
			edited[k] = x
		}
		edited[field] = v
		b, _ := json.Marshal(edited)
		if _, err := isolation.ParseCheckpoint(b, nil); silo.ErrorCode(err) != silo.CodeFailedCheck {
			t.Errorf("edited %s: got %v, want failed_check", field, err)
		}
	}
	// Re-signed by another key: intact, but not by the key trusted.
	forged, _ := isolation.MakeCheckpoint(context.Background(), f.open(t), other, time.Now())
	if _, err := isolation.ParseCheckpoint(forged.Encode(), []string{cp.Signer}); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Errorf("a checkpoint by another key: got %v, want failed_check", err)
	}
}
