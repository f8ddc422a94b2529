// Package postgres implements store.Store on PostgreSQL, for installations
// where several silo servers share one control-plane state.
//
// It owns the schema and every SQL statement that touches it; no other
// package sees SQL or the driver. It imports the silo root package, package
// store and github.com/jackc/pgx/v5, and must not import any other silo
// package.
//
// # Concurrency
//
// Update runs fn in a SERIALIZABLE transaction and retries it, with jittered
// backoff, when PostgreSQL reports a serialization failure or a deadlock; fn
// must therefore have no side effects outside the Tx. The audit log has a
// single head row that AppendAudit locks (SELECT ... FOR UPDATE), so appends
// from any number of transactions and servers form one chain.
//
// View runs on a pool of its own (readers), apart from the pool that
// Update, schema changes and Announce use (writers): a write that waits
// for a lock (the audit head row, say) holds a writer connection while it
// waits, and enough of them would otherwise leave a request that only reads
// waiting for a connection. Each pool has the DSN's pool_max_conns
// connections (pgx's default: the greater of 4 and the number of CPUs), at
// least max(4, GOMAXPROCS); Listen adds one. A View
// that begins after an Update has returned sees what it wrote, whichever
// connection either runs on: PostgreSQL makes a commit visible to every
// snapshot taken after it.
//
// Expected conflicts (a duplicate ID, a stale Version, a duplicate intent key)
// are detected without raising an SQL error, so the transaction stays usable
// after the caller handles them.
//
// # Notes
//
// Times are stored with microsecond precision (truncated) and returned in
// UTC. Text keys use the "C" collation, so listings are in byte order
// whatever the database's locale.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use, and several Stores (in one process or many) may share one
// database.
type Store struct {
	// pool runs Update, schema changes and Announce; readers runs View.
	pool, readers *pgxpool.Pool
	// schema is the schema the store lives in (current_schema() at Open);
	// it names the channel of the change feed.
	schema string
	// maxAttempts bounds how often Update runs fn when transactions keep
	// failing to serialize.
	maxAttempts int
	// ready is set once silo's tables exist at this silo's version; until
	// then the database holds none of them (see Open).
	ready atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a PostgreSQL URL or key=value
// string; a search_path parameter selects the schema) and brings silo's
// tables there up to date. Schema changes are applied in one transaction
// under an advisory lock, so servers starting together do not race.
//
// A schema that holds no silo tables yet is left untouched by Open: the
// tables are created in the transaction of the first Update, so they are
// there only once something is written, and a command that fails before
// (or whose write fails) leaves the schema as empty as it found it. A View
// before that sees an empty store.
//
// # Errors
//
//   - CodeInvalid if dsn cannot be parsed.
//   - CodeUnavailable if the server cannot be reached or refuses the
//     connection, or the schema was written by a newer silo.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "the PostgreSQL DSN cannot be parsed: %w; write it as postgres://user@host:5432/db?sslmode=disable", err)
	}
	cfg.MaxConns = max(cfg.MaxConns, int32(max(4, runtime.GOMAXPROCS(0))))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "the PostgreSQL DSN is not usable: %w", err)
	}
	readers, err := pgxpool.NewWithConfig(ctx, cfg.Copy())
	if err != nil {
		pool.Close()
		return nil, silo.Errorf(silo.CodeInvalid, "the PostgreSQL DSN is not usable: %w", err)
	}
	s := &Store{pool: pool, readers: readers, maxAttempts: 60}
	if err := pool.Ping(ctx); err != nil {
		s.Close()
		return nil, silo.Errorf(silo.CodeUnavailable, "cannot connect to PostgreSQL at %s:%d/%s: %w; check that it is running and that the DSN is right", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// DatabaseID identifies the schema the store lives in as PostgreSQL itself
// knows it: a hash of the cluster's system identifier (made by initdb, read
// with pg_control_system), the database's name and the schema's. It is the
// same whatever host name, port, proxy or credentials the database is
// reached through, so a client and a server that reach one database
// differently agree on it, while two databases (or two schemas of one
// database, or a restored copy in another cluster) differ even when both
// are empty; a physical replica shares its primary's. Being a hash, it
// names neither the database nor where it is. It writes nothing.
//
// # Errors
//
// CodeUnavailable when the database cannot be read (as View).
func (s *Store) DatabaseID(ctx context.Context) (string, error) {
	var system int64
	var database string
	err := s.readers.QueryRow(ctx, `SELECT (SELECT system_identifier FROM pg_control_system()), current_database()`).Scan(&system, &database)
	if err != nil {
		return "", dbErr("read the database identity", err)
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%s\x00%s", system, database, s.schema)))
	return hex.EncodeToString(sum[:16]), nil
}

// View runs fn in a read-only REPEATABLE READ transaction, on a reader
// connection: fn sees one consistent snapshot, which includes every Update
// that returned before View began. Write methods of the Tx return an error.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if !s.ready.Load() {
		return s.viewEmpty(ctx, fn)
	}
	pgTx, err := s.readers.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbErr("begin view", err)
	}
	defer pgTx.Rollback(context.WithoutCancel(ctx))
	return fn(&tx{ctx: ctx, tx: pgTx, readOnly: true})
}

// Update runs fn in a SERIALIZABLE transaction and commits it if fn returns
// nil; otherwise, or if fn panics, nothing fn did is kept. When the
// transaction fails to serialize with a concurrent one, Update rolls it back
// and runs fn again, up to a bound, after which it returns a CodeUnavailable
// error.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	var err error
	for attempt := 0; attempt < s.maxAttempts; attempt++ {
		if attempt > 0 {
			// Full jitter, exponential up to 100ms.
			d := time.Duration(rand.Int64N(int64(min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)) + 1))
			select {
			case <-ctx.Done():
				return fmt.Errorf("update: %w (after %v)", ctx.Err(), err)
			case <-time.After(d):
			}
		}
		var retry bool
		retry, err = s.try(ctx, fn)
		if !retry {
			return err
		}
	}
	return userErr(silo.CodeUnavailable, err, "the state database is busy with concurrent changes; try again")
}

// try runs fn once; retry reports a serialization failure, or that
// another process created silo's tables while this one was about to.
func (s *Store) try(ctx context.Context, fn func(store.Tx) error) (retry bool, err error) {
	if err := s.prepare(ctx); err != nil {
		return false, err
	}
	create := !s.ready.Load()
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return retryable(err), dbErr("begin update", err)
	}
	done := false
	defer func() {
		if !done {
			pgTx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if create {
		// The first write creates the tables, in its own transaction.
		if err := s.create(ctx, pgTx); errors.Is(err, errTablesExist) {
			return true, err
		} else if err != nil {
			return false, err
		}
	}
	t := &tx{ctx: ctx, tx: pgTx}
	err = fn(t)
	if t.mustRetry || retryable(err) {
		return true, err
	}
	if err != nil {
		return false, err
	}
	if create && !t.wrote {
		return false, nil // nothing to keep: the tables wait for a write
	}
	done = true
	if err := pgTx.Commit(ctx); err != nil {
		return retryable(err), dbErr("commit", err)
	}
	if create {
		s.ready.Store(true)
	}
	return false, nil
}

// Close closes every connection of both pools; it waits for transactions
// in progress to end.
func (s *Store) Close() error {
	s.readers.Close()
	s.pool.Close()
	return nil
}

// userErr returns an error a user may see: the message, with cause kept for
// logs but not shown.
func userErr(c silo.Code, cause error, format string, args ...any) error {
	return &silo.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: cause}
}

// retryable reports a serialization failure or a deadlock, after which the
// whole transaction may be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// The messages of the errors that mean the control-plane database cannot
// serve: a client sees them (503 unavailable), never the driver's text.
const (
	unreachable = "the control-plane database cannot be reached; try again shortly"
	exhausted   = "the control-plane database is out of resources; try again shortly"
	vanished    = "the control-plane database no longer holds silo's control plane (its tables are gone: was the database dropped and created again?); restore it from a backup and restart the servers"
)

// dbErr maps a driver error to what the caller should see: user errors for
// conditions an operator can act on, a wrapped internal error otherwise.
// The driver error stays in the chain.
//
// A database that cannot serve is CodeUnavailable, never internal: one
// that cannot be reached or refuses connections (SQLSTATE class 08, a
// pgx connect error, a network error), that no longer exists (3D000),
// that is shutting down or starting (57P01 to 57P03), that is out of
// resources (class 53), or whose silo tables are gone (42P01: the
// database was dropped and created again under a running server).
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	cause := fmt.Errorf("%s: %w", op, err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01":
			return userErr(silo.CodeUnavailable, cause, "a concurrent change got in the way; try again")
		case pe.Code == "23505":
			return userErr(silo.CodeConflict, cause, "cannot %s: it already exists", op)
		case pe.Code == "23503":
			return userErr(silo.CodeNotFound, cause, "cannot %s: the account it belongs to does not exist", op)
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "3D000", pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03":
			return userErr(silo.CodeUnavailable, cause, unreachable)
		case strings.HasPrefix(pe.Code, "53"):
			return userErr(silo.CodeUnavailable, cause, exhausted)
		case pe.Code == "42P01":
			return userErr(silo.CodeUnavailable, cause, vanished)
		}
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return userErr(silo.CodeUnavailable, cause, unreachable)
	}
	return cause
}
