// Package sqlite implements store.Store on an embedded SQLite database: the
// default control-plane store of a single silo server.
//
// It owns the state file, its schema and every SQL statement that touches it;
// no other package sees SQL or the driver. It imports the silo root package,
// package store, internal/durable (for a file error's reason) and the
// modernc.org/sqlite driver, and must not import any other silo package.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL, so a transaction that
// Update reports as committed survives a process crash or power loss. The
// log is not checkpointed when the store closes (wal.go): state.db-wal is
// part of the state between processes. Writers
// go through a single connection that begins with BEGIN IMMEDIATE; readers
// (View) use a separate pool of query-only connections and run concurrently
// with the writer. Every connection keeps the statements it ran, prepared,
// and runs them again (stmtcache.go). Open reads the settings back and refuses to start if the
// database does not honour them. Open checks the file's header and schema,
// not every page (that would make every command cost as much as the whole
// fleet): a damaged page is reported as a corrupted state file by the
// statement that meets it, and Check reads the whole file (silo doctor and
// silo audit verify run it).
//
// # Notes
//
// Times are stored as microseconds since the Unix epoch and returned in UTC;
// sub-microsecond precision is dropped.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/store"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use: Update calls are serialized on one writer connection, View
// calls run concurrently on reader connections.
type Store struct {
	path string
	w    *sql.DB // one connection; BEGIN IMMEDIATE
	r    *sql.DB // query-only readers
}

var _ store.Store = (*Store)(nil)

// options are the knobs tests turn; production code always uses the zero
// value through Open.
type options struct {
	// synchronous overrides the synchronous setting asked for (default FULL),
	// so that tests can prove that a wrong setting refuses to start.
	synchronous string
}

// sqliteHeader is the magic string every SQLite database file starts with.
var sqliteHeader = []byte("SQLite format 3\x00")

// Open opens (creating if needed) the state database at path, checks its
// integrity and durability settings and brings its schema up to date.
//
// # Errors
//
//   - CodeUnavailable "cannot write to <dir>: ...; choose a writable
//     --data-dir" if the directory of path cannot be created or written.
//   - CodeUnavailable "state file <path> is corrupted: ..." if the file is not
//     a SQLite database or its header or schema is damaged; the file is left
//     as it was. Damage elsewhere is reported the same way by the statement
//     that meets it, or by Check.
//   - CodeUnavailable if the database does not run with journal_mode=wal and
//     synchronous=FULL after opening, or was written by a newer silo.
//   - CodeInvalid for an empty path or one containing '?'.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, options{})
}

func open(ctx context.Context, path string, o options) (*Store, error) {
	if path == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "no state file given; set --data-dir")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, silo.Errorf(silo.CodeInvalid, "state file path %q contains '?' or '#'; choose a --data-dir without them", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "state file path %q cannot be resolved: %w; choose another --data-dir", path, err)
	}
	if err := checkDir(filepath.Dir(abs)); err != nil {
		return nil, err
	}
	if err := checkHeader(abs); err != nil {
		return nil, err
	}
	privateFiles(abs)
	s := &Store{path: abs}
	sync := "FULL"
	if o.synchronous != "" {
		sync = o.synchronous
	}
	base := abs + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(" + sync + ")"

	s.w = openDB(base + "&_txlock=immediate")
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := s.prepare(ctx); err != nil {
		s.w.Close()
		return nil, err
	}

	// Readers keep a small page cache each and close when idle, so a
	// control plane that read the whole fleet once does not hold several
	// caches for the rest of its life. 64 KiB (about 14 pages) is below
	// SQLite's first bulk allocation of a cache (20 pages), so a reader's
	// cache is one allocation, released whole when the reader closes,
	// rather than pages scattered over the libc allocator's shared 64 KiB
	// slabs (a 4 KiB page and its header take an 8 KiB slot): those pinned
	// slabs, and the allocator keeps freed slabs committed (up to 4 MiB per
	// size class). Point reads (the gateway's directory) and full scans
	// run as fast as with 512 KiB, the OS page cache holding the file:
	// BenchmarkDirectoryRead10k 45-51 µs at 512 KiB, 43 µs at 64 KiB;
	// Accounts10k/list 48-56 ms and 48-52 ms. Idle memory after 1,000
	// tenants were served once (go run ./bench -scenario idle-memory
	// -tenants 1000): SQLite's residue +4.1 MiB -> +0.6 MiB.
	s.r = openDB(base + "&_pragma=query_only(1)&_pragma=cache_size(-64)")
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.r.SetConnMaxIdleTime(30 * time.Second)
	if err := s.checkSettings(ctx, s.r, "reader"); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// prepare runs on the writer: a cheap check first (read-only, so a damaged
// header or schema is never modified), then WAL mode, settings read back
// and migrations. It reads the schema, not the whole file: opening costs
// the same at 50 accounts as at 5,000, and a page damaged elsewhere is
// reported by the statement that reads it (SQLITE_CORRUPT, mapped by dbErr
// to the same "state file is corrupted" error) or found by Check, which
// silo doctor and silo audit verify run.
func (s *Store) prepare(ctx context.Context) error {
	var n int
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return s.openErr("read schema", err)
	}

	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return s.openErr("set journal mode", err)
	}
	if err := s.checkSettings(ctx, s.w, "writer"); err != nil {
		return err
	}
	return s.migrate(ctx)
}

// Check reads the whole state file and verifies its structure (PRAGMA
// quick_check: every page, record and index entry). It takes time
// proportional to the file, so Open does not run it; silo doctor and silo
// audit verify do. It only reads, on a reader connection, and may run
// while the store is in use.
//
// # Errors
//
// CodeUnavailable "state file <path> is corrupted: ..." naming up to three
// findings, with what to do.
func (s *Store) Check(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return s.openErr("check integrity", err)
	}
	defer rows.Close()
	var res []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.openErr("check integrity", err)
		}
		res = append(res, line)
	}
	if err := rows.Err(); err != nil {
		return s.openErr("check integrity", err)
	}
	if len(res) != 1 || res[0] != "ok" {
		if len(res) > 3 {
			res = append(res[:3], "...")
		}
		return s.corrupted(errors.New(strings.Join(res, "; ")))
	}
	return nil
}

// checkSettings reads the durability settings back from a connection of db
// and refuses anything but WAL with synchronous=FULL.
func (s *Store) checkSettings(ctx context.Context, db *sql.DB, which string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return s.openErr("connect", err)
	}
	defer conn.Close()
	var mode string
	var sync, fk int
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return s.openErr("read journal_mode", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return s.openErr("read synchronous", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return s.openErr("read foreign_keys", err)
	}
	if err := verifySettings(mode, sync, fk); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "state file %s: the %s connection %s; refusing to start because committed changes could be lost (is the file on a filesystem that supports WAL, such as a local disk?)", s.path, which, err.Error())
	}
	return nil
}

// verifySettings checks settings as read back from SQLite.
func verifySettings(journalMode string, synchronous, foreignKeys int) error {
	var bad []string
	if !strings.EqualFold(journalMode, "wal") {
		bad = append(bad, fmt.Sprintf("runs journal_mode=%s, not wal", journalMode))
	}
	if synchronous != 2 {
		bad = append(bad, fmt.Sprintf("runs synchronous=%d, not 2 (FULL)", synchronous))
	}
	if foreignKeys != 1 {
		bad = append(bad, "runs without foreign keys")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, " and "))
	}
	return nil
}

// checkDir makes sure dir exists and a file can be created in it.
func checkDir(dir string) error {
	unwritable := func(err error) error {
		return silo.Errorf(silo.CodeUnavailable, "cannot write to %s: %s; choose a writable --data-dir", dir, durable.Cause(err))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return unwritable(err)
	}
	f, err := os.CreateTemp(dir, ".silo-write-check-*")
	if err != nil {
		return unwritable(err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return unwritable(err)
	}
	return nil
}

// privateFiles makes the state file and its WAL and shared-memory files
// readable by the owner only (0600); SQLite creates the latter with the
// mode of the state file, so creating it 0600 first covers them too.
func privateFiles(path string) {
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		f.Close()
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o600)
	}
}

// checkHeader refuses, without writing anything, a file that exists, is not
// empty and does not start with the SQLite header.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return silo.Errorf(silo.CodeUnavailable, "cannot read state file %s: %s; check its permissions or choose another --data-dir", path, durable.Cause(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return silo.Errorf(silo.CodeUnavailable, "cannot read state file %s: %s; check its permissions or choose another --data-dir", path, durable.Cause(err))
	}
	if fi.IsDir() {
		return silo.Errorf(silo.CodeInvalid, "state file %s is a directory; remove it or choose another --data-dir", path)
	}
	if fi.Size() == 0 {
		return nil
	}
	head := make([]byte, 100) // the SQLite file header
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return silo.Errorf(silo.CodeUnavailable, "cannot read state file %s: %s; check the disk", path, durable.Cause(err))
	}
	if n < len(head) || !bytes.HasPrefix(head, sqliteHeader) {
		return corrupted(path, errors.New("it is not a SQLite database"))
	}
	return nil
}

func corrupted(path string, err error) error {
	return userErr(silo.CodeUnavailable, err, "state file %s is corrupted: %s; restore it from a backup of the data dir taken with its accounts (see docs/operations.md) and start again", path, reason(err))
}

// userErr returns an error a user may see: the message, with cause kept for
// logs but not shown.
func userErr(c silo.Code, cause error, format string, args ...any) error {
	return &silo.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: cause}
}

// reason says in plain words what a SQLite error means, without the
// driver's wording.
func reason(err error) string {
	switch code(err) {
	case sqlite3.SQLITE_CORRUPT:
		return "the database image is malformed"
	case sqlite3.SQLITE_NOTADB:
		return "it is not a SQLite database"
	case sqlite3.SQLITE_CANTOPEN:
		return "the file cannot be opened"
	case sqlite3.SQLITE_READONLY:
		return "the file or its directory is read-only"
	case sqlite3.SQLITE_PERM:
		return "permission denied"
	case sqlite3.SQLITE_IOERR:
		return "a disk I/O error occurred"
	case sqlite3.SQLITE_FULL:
		return "the disk is full"
	}
	return err.Error()
}

func (s *Store) corrupted(err error) error { return corrupted(s.path, err) }

// openErr turns an error met while opening into a user error where the cause
// is known.
func (s *Store) openErr(op string, err error) error {
	switch code(err) {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return s.corrupted(err)
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR:
		return userErr(silo.CodeUnavailable, err, "cannot write to %s: %s; choose a writable --data-dir", filepath.Dir(s.path), reason(err))
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return userErr(silo.CodeUnavailable, err, "state file %s is locked by another process; stop the other silo server or choose another --data-dir", s.path)
	}
	return fmt.Errorf("%s %s: %w", op, s.path, err)
}

// dbErr maps an error from a statement to what the caller should see: user
// errors for conditions an operator can act on, a wrapped internal error
// otherwise.
func (s *Store) dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch code(err) {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return s.corrupted(err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return userErr(silo.CodeUnavailable, err, "the state database is busy; try again")
	case sqlite3.SQLITE_FULL:
		return userErr(silo.CodeUnavailable, err, "the disk holding %s is full; free some space and try again", s.path)
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_PERM:
		return userErr(silo.CodeUnavailable, err, "cannot write to %s: %s; check the disk and its permissions", s.path, reason(err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// code returns the primary SQLite result code of err, or 0.
func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() & 0xff
	}
	return 0
}

// Path returns the absolute path of the state file.
func (s *Store) Path() string { return s.path }

// View runs fn in a read-only transaction on a reader connection. It may run
// concurrently with other View calls and with Update. Write methods of the
// Tx return an error.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	sqlTx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.dbErr("begin view", err)
	}
	defer sqlTx.Rollback()
	return fn(&tx{s: s, ctx: ctx, tx: sqlTx, readOnly: true})
}

// Update runs fn in one write transaction (BEGIN IMMEDIATE) and commits it if
// fn returns nil; otherwise, or if fn panics, nothing fn did is kept. Updates
// are serialized; fn must not call Update itself (it would wait forever).
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) (err error) {
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.dbErr("begin update", err)
	}
	done := false
	defer func() {
		if !done {
			sqlTx.Rollback()
		}
	}()
	if err := fn(&tx{s: s, ctx: ctx, tx: sqlTx}); err != nil {
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return s.dbErr("commit", err)
	}
	return nil
}

// Close closes the database. Transactions still running fail.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}
