// Package logs keeps the function logs of every account: one file of JSON
// lines per account under a directory, each line with a timestamp, a level,
// the function, the request ID the gateway gave the request, the message and
// its attributes. Retention is bounded per account: when an account's file
// passes Config.MaxBytes it is rotated to "<account>.log.1" (replacing the
// previous one), so an account never holds more than about 2×MaxBytes of logs,
// and always holds at least its most recent MaxBytes minus one line.
//
// Append writes one line and returns once it is written; AppendAll (the
// gateway's access log) writes a batch with one write per account. The
// slog Handler (the functions' log lines) does not wait for the write: its
// lines are queued and written in batches off the request path
// (internal/batch), at most batch.DefaultEvery after they were logged; none
// is dropped: while the disk is slower than the functions logging, a
// logging function writes the queue itself.
// Read, Follow, AppendAll, Remove and Close first write what is queued, so
// within the process a line is read after it was logged, and in a file the
// lines of a request come before the gateway's access line for it. Readers
// give lines in time order (each line's own time; the file's order among
// equal times), so a request's access line, stamped when the request
// arrived, comes before the lines its function logged.
//
// Readers (silo logs, silotest) read the files directly, so they work from
// another process while the platform runs; Follow polls for new lines and
// survives rotation.
//
// With Config.Keys set (the platform sets it to the local provider's
// per-account log key), every record is sealed (AES-256-GCM, account ID as
// additional data) before it is written, as one line "~1 <key ID>
// <base64>", and readers given the Keys show only the records sealed under
// the account's current key: after the account is deleted its key is
// destroyed and nothing of its logs opens, and a new account with the same
// ID (another key) neither sees the old records nor keeps the old files
// (the first append removes them). Open seals the plaintext files an older
// silo wrote, and removes those of accounts that no longer exist. Without
// Keys, records are plain JSON lines.
//
// One record is at most maxRecord bytes of JSON, attributes included, so a
// record cannot push more than that out of the retained history.
//
// It imports the root silo package and the standard library only; it must not
// import the runtime, gateway, providers or stores.
package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/batch"
)

// DefaultMaxBytes is the default size at which an account's log file is
// rotated.
const DefaultMaxBytes = 1 << 20

// maxRecord bounds the JSON of one record, attributes and all (before it is
// sealed); longer records are clipped (clipRecord).
const maxRecord = 16 << 10

// Entry is one log line of one account.
type Entry struct {
	Time      time.Time         `json:"time"`
	Level     string            `json:"level"` // DEBUG, INFO, WARN or ERROR
	Account   silo.AccountID    `json:"account"`
	Function  string            `json:"function,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Msg       string            `json:"msg"`
	Attrs     map[string]string `json:"attrs,omitempty"`
}

// LevelString returns the name Entry.Level uses for l.
func LevelString(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	}
	return "ERROR"
}

// String formats e as one human-readable line:
// "15:04:05.000 INFO  ingest [req-id] message k=v ...".
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("2006-01-02 15:04:05.000"))
	fmt.Fprintf(&b, " %-5s", e.Level)
	if e.Function != "" {
		b.WriteString(" " + e.Function)
	}
	if e.RequestID != "" {
		b.WriteString(" [" + e.RequestID + "]")
	}
	b.WriteString(" " + e.Msg)
	keys := make([]string, 0, len(e.Attrs))
	for k := range e.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := e.Attrs[k]
		if strings.ContainsAny(v, " \t\"=") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

// Config configures a Store.
type Config struct {
	// Dir holds one file per account. Required; created if missing.
	Dir string
	// MaxBytes is the size at which an account's file is rotated; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Now stamps entries appended without a time; time.Now if nil.
	Now func() time.Time
	// Keys, if set, gives the key each account's records are sealed
	// under. Nil stores plain JSON lines.
	Keys Keys
	// Failed, if set, is told why lines logged through the Handler could
	// not be written (Append and AppendAll return their errors instead).
	Failed func(error)
}

// Cipher seals and opens the records of one account. ID names the key: two
// Ciphers with the same ID seal under the same key.
type Cipher interface {
	ID() string
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(env, ad []byte) ([]byte, error)
}

// Keys returns the Cipher of an account. An error with silo.CodeNotFound
// means the account does not exist (so neither do its logs).
type Keys func(acct silo.AccountID) (Cipher, error)

// Store appends and reads per-account logs. It is safe for concurrent use
// within one process; several processes may read while one writes.
type Store struct {
	cfg Config

	mu     sync.Mutex
	files  map[silo.AccountID]*logFile
	closed bool
	buf    []byte // the lines of one write (AppendAll)
	writes int    // write calls made, for tests

	queue *batch.Queue[queued] // the Handler's lines, waiting to be written
}

// queued is a line logged through the Handler, with the Cipher of its
// account when it was logged (nil without Keys): it is never sealed under
// the key of a later account with the same ID.
type queued struct {
	e Entry
	c Cipher
}

type logFile struct {
	f     *os.File
	size  int64
	keyID string // the key its records are sealed under ("" without Keys)
}

// maxOpen bounds the number of account files kept open for appending.
const maxOpen = 64

// Open returns a Store writing under cfg.Dir.
//
// # Errors
//
// CodeInvalid without a Dir; an internal error if the directory cannot be
// created.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "logs: no directory given; set Dir")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log dir %s: %w", cfg.Dir, err)
	}
	if err := private(cfg.Dir); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, files: map[silo.AccountID]*logFile{}}
	s.queue = batch.New(batch.Config[queued]{Write: s.writeQueued})
	if cfg.Keys != nil {
		if err := s.sealLegacy(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// private closes dir to group and others (an older silo, or a directory
// made by hand, may have left it open to them).
func private(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("log dir %s: %w", dir, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&^0o077); err != nil {
			return silo.Errorf(silo.CodeFailedCheck, "log dir %s is open to group or others (mode %04o) and cannot be changed; run chmod 700 %s", dir, perm, dir)
		}
	}
	return nil
}

// Keys returns the Keys the store seals with (nil if none), for readers.
func (s *Store) Keys() Keys { return s.cfg.Keys }

// Dir returns the directory holding the log files.
func (s *Store) Dir() string { return s.cfg.Dir }

// Path returns the current log file of an account.
func Path(dir string, acct silo.AccountID) string {
	return filepath.Join(dir, string(acct)+".log")
}

// paths returns every file an account's log may have: the current one and
// the one rotation keeps.
func paths(dir string, acct silo.AccountID) []string {
	p := Path(dir, acct)
	return []string{p, p + ".1"}
}

// Files returns the files of an account's log that are on disk, whatever
// they hold: after the account is deleted there must be none.
func (s *Store) Files(acct silo.AccountID) []string {
	var out []string
	for _, p := range paths(s.cfg.Dir, acct) {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Append writes e to its account's log, stamping it with Now if e.Time is
// zero, and rotates the file when it passes MaxBytes.
//
// # Errors
//
// CodeInvalid for an entry without a valid account ID; CodeNotFound if the
// account does not exist or is deleted while the line is written (the line
// is dropped).
func (s *Store) Append(e Entry) error {
	line, c, err := s.record(&e, nil, nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return silo.Errorf(silo.CodeUnavailable, "logs: store is closed")
	}
	return s.writeLocked(e.Account, c, [][]byte{line})
}

// AppendAll writes es as Append would write each of them, in order, but with
// one write per account (and one more per rotation) instead of one per line:
// the lines of one account reach its file together. Lines of an account that
// does not exist, or that is deleted while they are written, are dropped
// without error, as its log went with it.
//
// # Errors
//
// CodeInvalid for entries without a valid account ID (the others are still
// written); the errors of writing an account's file (its lines from the first
// that could not be written are lost).
func (s *Store) AppendAll(es []Entry) error {
	s.queue.Flush() // the functions' lines first: they were logged before
	items := make([]queued, len(es))
	var errs []error
	ciphers := map[silo.AccountID]Cipher{} // looked up once per account
	for i, e := range es {
		items[i].e = e
		if s.cfg.Keys == nil {
			continue
		}
		c, ok := ciphers[e.Account]
		if !ok {
			var err error
			if c, err = s.cipher(e.Account); err != nil && silo.ErrorCode(err) != silo.CodeNotFound {
				errs = append(errs, err)
			}
			ciphers[e.Account] = c
		}
		items[i].c = c // nil: no such account (or no valid ID), dropped by write
	}
	return errors.Join(append(errs, s.write(items))...)
}

// cipher returns the Cipher of acct's records. The error has
// silo.CodeNotFound if the account does not exist.
func (s *Store) cipher(acct silo.AccountID) (Cipher, error) {
	if _, err := silo.ParseID(string(acct)); err != nil {
		return nil, err
	}
	c, err := s.cfg.Keys(acct)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", acct, err)
	}
	return c, nil
}

// enqueue stamps e and queues it for the next batch, with its account's
// Cipher as it is now. The account ID is checked once: by cipher with
// Keys, else by record when the batch is written.
func (s *Store) enqueue(e Entry) error {
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	var c Cipher
	if s.cfg.Keys != nil {
		var err error
		if c, err = s.cipher(e.Account); err != nil {
			return err
		}
	}
	s.queue.AddWaiting(queued{e: e, c: c})
	return nil
}

// writeQueued writes a batch of the Handler's lines.
func (s *Store) writeQueued(items []queued) {
	if err := s.write(items); err != nil && s.cfg.Failed != nil {
		s.cfg.Failed(err)
	}
}

// write writes items with one write per account and key (and one more per
// rotation). With Keys, an item without a Cipher is skipped (its account
// does not exist); so are the lines of an account that is deleted while
// they are written, as its log went with it.
func (s *Store) write(items []queued) error {
	var errs []error
	type batch struct {
		acct  silo.AccountID
		c     Cipher
		ad    []byte // recordAD of acct
		lines [][]byte
	}
	var batches []*batch
	byKey := map[string]*batch{} // account and key ID
	for i := range items {
		it := &items[i]
		if s.cfg.Keys != nil && it.c == nil {
			continue
		}
		key := string(it.e.Account)
		if it.c != nil {
			key += "\x00" + it.c.ID()
		}
		b := byKey[key]
		if b == nil {
			b = &batch{acct: it.e.Account, c: it.c}
			if it.c != nil {
				b.ad = recordAD(it.e.Account)
			}
			byKey[key] = b
			batches = append(batches, b)
		}
		line, _, err := s.record(&it.e, b.c, b.ad)
		if err != nil {
			if silo.ErrorCode(err) != silo.CodeNotFound { // else the account does not exist: neither does its log
				errs = append(errs, err)
			}
			continue
		}
		b.lines = append(b.lines, line)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return silo.Errorf(silo.CodeUnavailable, "logs: store is closed")
	}
	for _, b := range batches {
		if len(b.lines) == 0 {
			continue
		}
		err := s.writeLocked(b.acct, b.c, b.lines)
		if err != nil && silo.ErrorCode(err) != silo.CodeNotFound {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// record validates and stamps e and returns its line, newline included,
// sealed under the account's key (c if given, else looked up) with Keys,
// and the Cipher it was sealed with (nil without Keys). ad is the account's
// recordAD, or nil.
func (s *Store) record(e *Entry, c Cipher, ad []byte) ([]byte, Cipher, error) {
	if _, err := silo.ParseID(string(e.Account)); err != nil {
		return nil, nil, err
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	e.Time = e.Time.UTC()
	if e.Level == "" {
		e.Level = "INFO"
	}
	line, err := clipRecord(e)
	if err != nil {
		return nil, nil, fmt.Errorf("encode log entry: %w", err)
	}
	if s.cfg.Keys != nil {
		if c == nil {
			if c, err = s.cfg.Keys(e.Account); err != nil {
				return nil, nil, fmt.Errorf("log of %s: %w", e.Account, err)
			}
		}
		if ad == nil {
			ad = recordAD(e.Account)
		}
		if line, err = sealLine(c, ad, line); err != nil {
			return nil, nil, fmt.Errorf("log of %s: %w", e.Account, err)
		}
	}
	return append(line, '\n'), c, nil
}

// writeLocked appends lines (each ending with a newline) to the log of
// acct, sealed under c (nil without Keys), rotating the file before any
// line that would take it past MaxBytes. The lines between two rotations
// are written with one write.
func (s *Store) writeLocked(acct silo.AccountID, c Cipher, lines [][]byte) error {
	if c != nil {
		// The account may have been deleted (and re-created) since c was
		// taken: a line of the previous account must not remove the new
		// one's files.
		if cur, err := s.cfg.Keys(acct); err != nil || cur.ID() != c.ID() {
			return silo.Errorf(silo.CodeNotFound, "logs: account %s was deleted while its lines were written; they are dropped", acct)
		}
	}
	lf, err := s.fileLocked(acct, c)
	if err != nil {
		return err
	}
	for rotated := false; len(lines) > 0; rotated = true {
		// The lines that fit before the next rotation; after a rotation,
		// at least one.
		n, size := 0, lf.size
		for ; n < len(lines); n++ {
			if size > 0 && size+int64(len(lines[n])) > s.cfg.MaxBytes && (n > 0 || !rotated) {
				break
			}
			size += int64(len(lines[n]))
		}
		if n > 0 {
			if err := s.writeFile(acct, lf, lines[:n]); err != nil {
				return err
			}
			lines = lines[n:]
		}
		if len(lines) > 0 {
			if err := s.rotateLocked(acct, lf); err != nil {
				return err
			}
			if lf, err = s.fileLocked(acct, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile writes lines at the end of lf with one write.
func (s *Store) writeFile(acct silo.AccountID, lf *logFile, lines [][]byte) error {
	b := lines[0]
	if len(lines) > 1 {
		s.buf = s.buf[:0]
		for _, l := range lines {
			s.buf = append(s.buf, l...)
		}
		b = s.buf
		if cap(s.buf) > 1<<20 {
			s.buf = nil // do not keep a rare large batch's buffer
		}
	}
	n, err := lf.f.Write(b)
	lf.size += int64(n)
	s.writes++
	if err != nil {
		return fmt.Errorf("append log of %s: %w", acct, err)
	}
	return nil
}

// fileLocked returns the open log file of acct. Sealing under c, it first
// removes the files whose records are sealed under another key: those of a
// previous account with the same ID.
func (s *Store) fileLocked(acct silo.AccountID, c Cipher) (*logFile, error) {
	id := ""
	if c != nil {
		id = c.ID()
	}
	if lf := s.files[acct]; lf != nil {
		if lf.keyID == id {
			return lf, nil
		}
		lf.f.Close()
		delete(s.files, acct)
	}
	if c != nil {
		if err := s.dropForeignLocked(acct, id); err != nil {
			return nil, err
		}
	}
	if len(s.files) >= maxOpen {
		for id, lf := range s.files { // evict any one
			lf.f.Close()
			delete(s.files, id)
			break
		}
	}
	f, err := os.OpenFile(Path(s.cfg.Dir, acct), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", acct, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log of %s: %w", acct, err)
	}
	lf := &logFile{f: f, size: st.Size(), keyID: id}
	s.files[acct] = lf
	return lf, nil
}

func (s *Store) rotateLocked(acct silo.AccountID, lf *logFile) error {
	lf.f.Close()
	delete(s.files, acct)
	p := Path(s.cfg.Dir, acct)
	if err := os.Rename(p, p+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate log of %s: %w", acct, err)
	}
	return nil
}

// Remove deletes every log of an account (when the account is deleted).
func (s *Store) Remove(acct silo.AccountID) error {
	if _, err := silo.ParseID(string(acct)); err != nil {
		return err
	}
	s.queue.Flush() // or a line queued before would bring a file back
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(acct)
}

func (s *Store) removeLocked(acct silo.AccountID) error {
	if lf := s.files[acct]; lf != nil {
		lf.f.Close()
		delete(s.files, acct)
	}
	var errs []error
	for _, f := range paths(s.cfg.Dir, acct) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close writes the Handler's queued lines and closes the open files.
// Append fails after Close; the Handler's later lines are dropped.
func (s *Store) Close() error {
	s.queue.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for id, lf := range s.files {
		errs = append(errs, lf.f.Close())
		delete(s.files, id)
	}
	return errors.Join(errs...)
}
