package isolation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// WitnessFile is the conventional name of the audit witness in the data dir.
const WitnessFile = "audit.witness"

// Witness is the head of the audit log as last seen after a commit: its
// sequence number and hash. Kept outside the store, it lets VerifyAudit see
// a log whose tail was cut off, which the hash chain alone cannot.
type Witness struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// ReadWitness reads a witness file. A missing file is silo.ErrNotFound.
func ReadWitness(path string) (Witness, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Witness{}, silo.Errorf(silo.CodeNotFound, "no audit witness at %s", path)
	}
	if err != nil {
		return Witness{}, fmt.Errorf("read audit witness %s: %w", path, err)
	}
	var w Witness
	if err := json.Unmarshal(b, &w); err != nil || w.Seq < 0 {
		return Witness{}, silo.Errorf(silo.CodeFailedCheck, "audit witness %s is unreadable; it was damaged or edited", path)
	}
	return w, nil
}

// WriteWitness writes a witness file atomically: temp file, fsync, rename,
// directory fsync. The file is 0600.
func WriteWitness(path string, w Witness) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".witness-*")
	if err != nil {
		return fmt.Errorf("write audit witness: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err = f.Write(append(b, '\n')); err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write audit witness: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write audit witness: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WitnessedStore is a store.Store that, after every committed Update that
// appended audit entries, writes the new head of the log to a witness file.
// The witness only moves forward. A crash between the commit and the
// witness write leaves the witness behind the log, which VerifyAudit
// accepts.
type WitnessedStore struct {
	store.Store
	path string
	// OnError, if set, is called when a witness write fails after a commit;
	// the commit stands, and the next successful write catches up.
	OnError func(error)

	mu   sync.Mutex
	last int64
}

// WithWitness wraps s so that each audit append commit updates the witness
// at path (see WitnessedStore).
func WithWitness(s store.Store, path string) *WitnessedStore {
	w := &WitnessedStore{Store: s, path: path}
	if cur, err := ReadWitness(path); err == nil {
		w.last = cur.Seq
	}
	return w
}

// Update runs fn like the wrapped store and, if it committed audit entries,
// writes the witness.
func (w *WitnessedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	var head *store.AuditEntry
	err := w.Store.Update(ctx, func(tx store.Tx) error {
		head = nil // fn may be retried
		return fn(&witnessTx{Tx: tx, head: &head})
	})
	if err != nil || head == nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if head.Seq <= w.last {
		return nil // a later commit already moved the witness past this one
	}
	if werr := WriteWitness(w.path, Witness{Seq: head.Seq, Hash: head.Hash}); werr != nil {
		if w.OnError != nil {
			w.OnError(werr)
		}
		return nil
	}
	w.last = head.Seq
	return nil
}

type witnessTx struct {
	store.Tx
	head **store.AuditEntry
}

func (t *witnessTx) AppendAudit(e store.AuditEvent) (store.AuditEntry, error) {
	ent, err := t.Tx.AppendAudit(e)
	if err == nil {
		*t.head = &ent
	}
	return ent, err
}

// AuditResult is the outcome of VerifyAudit.
type AuditResult struct {
	Entries int      `json:"entries"`
	Head    Witness  `json:"head"`    // the last entry of the log
	Witness *Witness `json:"witness"` // nil if the log is empty and there is none
}

// VerifyAudit checks the whole audit log's hash chain and that the log still
// reaches the witness at witnessPath: the entry at the witness' sequence
// number exists and has the witness' hash. The log may be ahead of the
// witness (a crash after a commit), never behind it.
//
// # Errors
//
// CodeFailedCheck with one sentence naming the first problem: an edited,
// deleted, reordered or duplicated entry, a cut-off tail, or a missing
// witness for a non-empty log.
func VerifyAudit(ctx context.Context, s store.Store, witnessPath string) (AuditResult, error) {
	w, werr := ReadWitness(witnessPath)
	if werr != nil && !errors.Is(werr, silo.ErrNotFound) {
		return AuditResult{}, werr
	}
	res, atWitness, err := walkAudit(ctx, s, w.Seq)
	if err != nil {
		return res, err
	}
	if werr != nil {
		if res.Entries > 0 {
			return res, silo.Errorf(silo.CodeFailedCheck, "audit log has %d entries but there is no witness at %s, so a cut-off tail cannot be ruled out; restore the witness file from a backup", res.Entries, witnessPath)
		}
		return res, nil
	}
	res.Witness = &w
	if w.Seq == 0 {
		return res, nil
	}
	if res.Head.Seq < w.Seq {
		return res, silo.Errorf(silo.CodeFailedCheck, "audit log ends at entry %d but the witness saw entry %d: %d entries were cut off the end", res.Head.Seq, w.Seq, w.Seq-res.Head.Seq)
	}
	if atWitness != w.Hash {
		return res, silo.Errorf(silo.CodeFailedCheck, "audit entry %d does not match the witness: the log was rewritten from that entry on", w.Seq)
	}
	return res, nil
}

// walkAudit checks the whole chain and returns its head and the hash of the
// entry with sequence number seq ("" if there is none).
func walkAudit(ctx context.Context, s store.Store, seq int64) (AuditResult, string, error) {
	var res AuditResult
	var prev, atSeq string
	var after int64
	for {
		var page []store.AuditEntry
		if err := s.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.Audit(after, 1000)
			return err
		}); err != nil {
			return res, "", fmt.Errorf("read audit log: %w", err)
		}
		n, err := store.VerifyChain(prev, after, page)
		res.Entries += n
		if err != nil {
			return res, "", silo.Errorf(silo.CodeFailedCheck, "audit log is not intact: %v", err)
		}
		if len(page) == 0 {
			return res, atSeq, nil
		}
		for _, e := range page {
			if e.Seq == seq {
				atSeq = e.Hash
			}
		}
		last := page[len(page)-1]
		prev, after = last.Hash, last.Seq
		res.Head = Witness{Seq: last.Seq, Hash: last.Hash}
	}
}

// EnsureWitness creates the witness for an installation that has none yet
// (first start, or an installation older than the witness): it checks the
// chain and writes the current head. It trusts the log as it is at that
// moment, so call it when the installation is opened, not when verifying.
// It reports whether it created the witness; an existing witness is left
// alone.
func EnsureWitness(ctx context.Context, s store.Store, path string) (bool, error) {
	if _, err := ReadWitness(path); !errors.Is(err, silo.ErrNotFound) {
		return false, err
	}
	res, _, err := walkAudit(ctx, s, 0)
	if err != nil {
		return false, err
	}
	if err := WriteWitness(path, res.Head); err != nil {
		return false, err
	}
	return true, nil
}
