package isolation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
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
	return writeWitness(path, w, durable.Options{})
}

// advanceWitness replaces an existing witness with a later head: temp file,
// fsync, rename, without the directory fsync of WriteWitness. The new
// file's contents are on disk before the rename, so after a power loss the
// name holds either the new witness or the one it replaced, never a torn
// file; the old one is behind the log, which VerifyAudit accepts (as it
// accepts a crash between a commit and its witness write). The rename
// reaches the disk with the file system's next journal commit or the next
// directory sync of the data dir. Creating a witness (EnsureWitness, silo
// audit witness) keeps the directory fsync: a witness lost there would be
// reported as deleted.
func advanceWitness(path string, w Witness) error {
	return writeWitness(path, w, durable.Options{NoDirSync: true})
}

func writeWitness(path string, w Witness, o durable.Options) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(b, '\n'), o); err != nil {
		return fmt.Errorf("write audit witness: %w", err)
	}
	return nil
}

// WitnessedStore is a store.Store that, after every committed Update that
// appended audit entries, writes the new head of the log to a witness file.
// The witness only moves forward, and only a witness that exists: if there
// was none when the store was wrapped, or it disappears, it is not written
// again (OnError is told), so that a deleted witness stays missing and
// VerifyAudit reports it. A crash between the commit and the witness write
// leaves the witness behind the log, which VerifyAudit accepts.
//
// An Update whose transaction calls DeferWitness leaves the write to the
// next committed Update, whatever that one appends (the engine's onboarding
// commits twice in a row and asks for it in the first): the witness is
// then written once for both. A witness that moves forward is written
// without a directory sync (see advanceWitness).
type WitnessedStore struct {
	store.Store
	path string
	// OnError, if set, is called when a witness write fails after a commit;
	// the commit stands, and the next successful write catches up.
	OnError func(error)

	mu       sync.Mutex
	last     int64
	deferred *store.AuditEntry // the newest head whose write was deferred
}

// WithWitness wraps s so that each audit append commit advances the witness
// at path (see WitnessedStore). Create the witness of a new installation
// first with EnsureWitness.
func WithWitness(s store.Store, path string) *WitnessedStore {
	w := &WitnessedStore{Store: s, path: path}
	if cur, err := ReadWitness(path); err == nil {
		w.last = cur.Seq
	}
	return w
}

// Update runs fn like the wrapped store and, if it committed audit entries
// or an earlier Update deferred its witness write, advances the witness.
func (w *WitnessedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	var head *store.AuditEntry
	var deferred bool
	err := w.Store.Update(ctx, func(tx store.Tx) error {
		head, deferred = nil, false // fn may be retried
		return fn(&witnessTx{Tx: tx, head: &head, deferred: &deferred})
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if head != nil && deferred {
		if w.deferred == nil || head.Seq > w.deferred.Seq {
			w.deferred = head
		}
		return nil
	}
	if w.deferred != nil && (head == nil || w.deferred.Seq > head.Seq) {
		head = w.deferred
	}
	w.deferred = nil
	if head == nil || head.Seq <= w.last {
		return nil // nothing new, no witness, or a later commit already moved it past this one
	}
	if _, err := os.Lstat(w.path); errors.Is(err, os.ErrNotExist) {
		if w.OnError != nil {
			w.OnError(fmt.Errorf("audit witness %s has disappeared; it is not recreated (silo audit verify reports it)", w.path))
		}
		return nil
	}
	if werr := advanceWitness(w.path, Witness{Seq: head.Seq, Hash: head.Hash}); werr != nil {
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
	head     **store.AuditEntry
	deferred *bool
}

func (t *witnessTx) AppendAudit(e store.AuditEvent) (store.AuditEntry, error) {
	ent, err := t.Tx.AppendAudit(e)
	if err == nil {
		*t.head = &ent
	}
	return ent, err
}

// DeferWitness leaves the witness write of this transaction's audit entries
// to the next committed Update of the store. Until then a crash leaves the
// witness behind the log, which VerifyAudit accepts.
func (t *witnessTx) DeferWitness() { *t.deferred = true }

// AuditResult is the outcome of VerifyAudit.
type AuditResult struct {
	Entries int      `json:"entries"`
	Head    Witness  `json:"head"`    // the last entry of the log
	Witness *Witness `json:"witness"` // nil if the log is empty and there is none
	// Checkpoints is how many checkpoints the log was shown to extend.
	Checkpoints int `json:"checkpoints"`
}

// VerifyAudit checks the whole audit log's hash chain; that a control plane
// holding accounts has a non-empty log; that the log extends every
// checkpoint given (the entry at the checkpoint's sequence number exists and
// has its hash); and that it still reaches the witness at witnessPath. The
// log may be ahead of the witness (a crash after a commit), never behind it.
// It only reads: it never creates or moves the witness.
//
// The witness sits beside the log, so someone who can write both can
// rewrite them together; checkpoints kept where the host cannot write them
// (see Checkpoint) are what catch that.
//
// # Errors
//
// CodeFailedCheck with one sentence naming the first problem: an edited,
// deleted, reordered or duplicated entry, an empty log beside a control
// plane that holds accounts, a log that does not extend a checkpoint, a
// cut-off tail, or a missing witness for a non-empty log.
func VerifyAudit(ctx context.Context, s store.Store, witnessPath string, checkpoints ...Checkpoint) (AuditResult, error) {
	w, werr := ReadWitness(witnessPath)
	if werr != nil && !errors.Is(werr, silo.ErrNotFound) {
		return AuditResult{}, werr
	}
	want := map[int64]string{}
	if werr == nil {
		want[w.Seq] = ""
	}
	for _, c := range checkpoints {
		want[c.Seq] = ""
	}
	res, err := walkAudit(ctx, s, want)
	if err != nil {
		return res, err
	}
	if res.Entries == 0 {
		n, err := accountCount(ctx, s)
		if err != nil {
			return res, err
		}
		if n > 0 {
			return res, silo.Errorf(silo.CodeFailedCheck, "the audit log is empty but the control plane holds %d account(s), each of which was recorded in it: the log was deleted", n)
		}
	}
	for _, c := range checkpoints {
		if res.Head.Seq < c.Seq {
			return res, silo.Errorf(silo.CodeFailedCheck, "audit log ends at entry %d but the checkpoint of %s saw entry %d: entries were cut off, or an older copy of the log was put back", res.Head.Seq, c.Time.UTC().Format(time.RFC3339), c.Seq)
		}
		if c.Seq > 0 && want[c.Seq] != c.Hash {
			return res, silo.Errorf(silo.CodeFailedCheck, "audit entry %d does not match the checkpoint of %s: the log was rewritten up to that entry", c.Seq, c.Time.UTC().Format(time.RFC3339))
		}
		res.Checkpoints++
	}
	if werr != nil {
		if res.Entries > 0 {
			return res, silo.Errorf(silo.CodeFailedCheck, "audit log has %d entries but there is no witness at %s, so a cut-off tail cannot be ruled out; restore the witness from a backup, or check the log against your latest checkpoint and then run silo audit witness", res.Entries, witnessPath)
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
	if want[w.Seq] != w.Hash {
		return res, silo.Errorf(silo.CodeFailedCheck, "audit entry %d does not match the witness: the log was rewritten from that entry on", w.Seq)
	}
	return res, nil
}

func accountCount(ctx context.Context, s store.Store) (int, error) {
	var n int
	err := s.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.CountAccounts(store.Filter{IncludeDeleted: true})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count accounts: %w", err)
	}
	return n, nil
}

// walkAudit checks the whole chain and returns its head; it fills in the
// hash of each entry whose sequence number is a key of at.
func walkAudit(ctx context.Context, s store.Store, at map[int64]string) (AuditResult, error) {
	var res AuditResult
	var prev string
	var after int64
	for {
		var page []store.AuditEntry
		if err := s.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.Audit(after, 1000)
			return err
		}); err != nil {
			return res, fmt.Errorf("read audit log: %w", err)
		}
		n, err := store.VerifyChain(prev, after, page)
		res.Entries += n
		if err != nil {
			return res, silo.Errorf(silo.CodeFailedCheck, "audit log is not intact: %v", err)
		}
		if len(page) == 0 {
			return res, nil
		}
		for _, e := range page {
			if _, ok := at[e.Seq]; ok {
				at[e.Seq] = e.Hash
			}
		}
		last := page[len(page)-1]
		prev, after = last.Hash, last.Seq
		res.Head = Witness{Seq: last.Seq, Hash: last.Hash}
	}
}

// EnsureWitness creates the witness of a new installation, one whose audit
// log is empty and whose control plane holds no account, so that every
// later commit advances it. It never creates a witness for a non-empty log
// or control plane: that would take a log whose tail was cut, or that was
// deleted, as the truth. It reports whether it created the witness; an
// existing witness is left alone.
func EnsureWitness(ctx context.Context, s store.Store, path string) (bool, error) {
	if _, err := ReadWitness(path); !errors.Is(err, silo.ErrNotFound) {
		return false, err
	}
	res, err := walkAudit(ctx, s, nil)
	if err != nil {
		return false, err
	}
	if res.Entries > 0 {
		return false, nil
	}
	if n, err := accountCount(ctx, s); err != nil || n > 0 {
		return false, err
	}
	if err := WriteWitness(path, Witness{}); err != nil {
		return false, err
	}
	return true, nil
}

// StartWitness records the log's current head as the witness of an
// installation that has none (made before the witness existed, or whose
// witness was lost). It trusts the log as it is now, so check it against
// your latest exported checkpoint first (VerifyAudit with checkpoints).
//
// # Errors
//
// CodeConflict if a witness exists; CodeFailedCheck if the chain is broken.
func StartWitness(ctx context.Context, s store.Store, path string) (Witness, error) {
	if _, err := ReadWitness(path); !errors.Is(err, silo.ErrNotFound) {
		if err == nil {
			return Witness{}, silo.Errorf(silo.CodeConflict, "an audit witness exists at %s; silo audit verify checks against it", path)
		}
		return Witness{}, err
	}
	res, err := walkAudit(ctx, s, nil)
	if err != nil {
		return Witness{}, err
	}
	return res.Head, WriteWitness(path, res.Head)
}
