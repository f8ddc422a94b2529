package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// migrations are applied in order; silo_schema holds how many have been
// applied. Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE accounts (
	id         text COLLATE "C" PRIMARY KEY,
	kind       text        NOT NULL,
	name       text        NOT NULL DEFAULT '',
	params     json,
	state      text        NOT NULL,
	release    text        NOT NULL DEFAULT '',
	stack_hash text        NOT NULL DEFAULT '',
	created    timestamptz NOT NULL,
	updated    timestamptz NOT NULL,
	expires    timestamptz,
	version    bigint      NOT NULL
);
CREATE UNIQUE INDEX accounts_one_production ON accounts (kind) WHERE kind = 'production';
CREATE INDEX accounts_state ON accounts (state, kind);

CREATE TABLE resources (
	account text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	type    text COLLATE "C" NOT NULL,
	name    text COLLATE "C" NOT NULL,
	spec    bytea,
	hash    text NOT NULL,
	PRIMARY KEY (account, type, name)
);

CREATE TABLE intents (
	seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key     text COLLATE "C" NOT NULL UNIQUE,
	account text        NOT NULL,
	action  text        NOT NULL,
	change  json,
	state   text        NOT NULL,
	error   text        NOT NULL DEFAULT '',
	created timestamptz NOT NULL,
	updated timestamptz NOT NULL
);
CREATE INDEX intents_pending ON intents (seq) WHERE state = 'pending';

CREATE TABLE api_keys (
	id      text COLLATE "C" PRIMARY KEY,
	account text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	hash    bytea       NOT NULL,
	name    text        NOT NULL DEFAULT '',
	created timestamptz NOT NULL,
	revoked timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account, created);

CREATE TABLE releases (
	id        text COLLATE "C" PRIMARY KEY,
	stack     bytea,
	artifacts json,
	created   timestamptz NOT NULL,
	note      text NOT NULL DEFAULT ''
);
CREATE INDEX releases_created ON releases (created, id);

CREATE TABLE audit (
	seq     bigint PRIMARY KEY,
	time    timestamptz NOT NULL,
	actor   text NOT NULL,
	action  text NOT NULL,
	account text NOT NULL DEFAULT '',
	detail  text,                     -- canonical JSON, byte for byte
	prev    text NOT NULL,
	hash    text NOT NULL
);
-- The head of the chain: one row, locked by every append.
CREATE TABLE audit_head (
	id   int    PRIMARY KEY CHECK (id = 1),
	seq  bigint NOT NULL,
	hash text   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE settings (
	name  text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);
`,
	// 2: limit overrides and usage (see the SQLite schema).
	`
CREATE TABLE limit_overrides (
	account text COLLATE "C" PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	limits  jsonb NOT NULL
);

CREATE TABLE usage (
	day      bigint  NOT NULL,
	account  text    COLLATE "C" NOT NULL,
	function text    COLLATE "C" NOT NULL,
	rolled   boolean NOT NULL,
	data     bytea   NOT NULL,
	PRIMARY KEY (day, account, function)
);
CREATE INDEX usage_account ON usage (account, day);
`,
	// 3: the current release, rollouts and their steps as records of their
	// own (see the SQLite schema).
	`
CREATE TABLE current_release (
	id      int PRIMARY KEY CHECK (id = 1),
	release text COLLATE "C" NOT NULL REFERENCES releases (id)
);

CREATE TABLE rollouts (
	seq         bigint GENERATED ALWAYS AS IDENTITY,
	id          text COLLATE "C" PRIMARY KEY,
	release     text        NOT NULL,
	previous    text        NOT NULL DEFAULT '',
	rollback_of text        NOT NULL DEFAULT '',
	state       text        NOT NULL,
	active      boolean     NOT NULL,
	owner       text        NOT NULL DEFAULT '',
	lease       timestamptz,
	version     bigint      NOT NULL,
	created     timestamptz NOT NULL,
	updated     timestamptz NOT NULL,
	status      text                 -- JSON, package rollout's
);
CREATE UNIQUE INDEX rollouts_seq ON rollouts (seq);
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (active) WHERE active;

CREATE TABLE rollout_steps (
	rollout      text COLLATE "C" NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	ring         text COLLATE "C" NOT NULL,
	account      text COLLATE "C" NOT NULL,
	step         text COLLATE "C" NOT NULL,
	from_release text        NOT NULL DEFAULT '',
	state        text        NOT NULL,
	error        text        NOT NULL DEFAULT '',
	created      timestamptz NOT NULL,
	updated      timestamptz NOT NULL,
	PRIMARY KEY (rollout, ring, account, step)
);
`,
	// 4: stored bytes (see the SQLite schema).
	`
CREATE TABLE stored_usage (
	day      bigint  NOT NULL,
	account  text    COLLATE "C" NOT NULL,
	rolled   boolean NOT NULL,
	data     bytea   NOT NULL,
	PRIMARY KEY (day, account)
);
CREATE INDEX stored_usage_account ON stored_usage (account, day);
`,
	// 5: scheduled-run claims (see the SQLite schema).
	`
CREATE TABLE schedule_runs (
	account  text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	schedule text COLLATE "C" NOT NULL,
	due      timestamptz NOT NULL,
	owner    text        NOT NULL,
	until    timestamptz NOT NULL,
	finished boolean     NOT NULL,
	PRIMARY KEY (account, schedule)
);
`,
	// 6: the probe-build mark of releases (see the SQLite schema).
	`
ALTER TABLE releases ADD COLUMN probe boolean NOT NULL DEFAULT false;
`,
	// 7: usage and stored bytes kept per account, not per ID, and the
	// purged accounts whose usage is kept (see the SQLite schema).
	`
ALTER TABLE usage ADD COLUMN created bigint NOT NULL DEFAULT 0;
UPDATE usage u SET created = (extract(epoch FROM a.created) * 1000000)::bigint FROM accounts a WHERE a.id = u.account;
ALTER TABLE usage DROP CONSTRAINT usage_pkey;
ALTER TABLE usage ADD PRIMARY KEY (day, account, created, function);
ALTER TABLE usage ALTER COLUMN created DROP DEFAULT;

ALTER TABLE stored_usage ADD COLUMN created bigint NOT NULL DEFAULT 0;
UPDATE stored_usage u SET created = (extract(epoch FROM a.created) * 1000000)::bigint FROM accounts a WHERE a.id = u.account;
ALTER TABLE stored_usage DROP CONSTRAINT stored_usage_pkey;
ALTER TABLE stored_usage ADD PRIMARY KEY (day, account, created);
ALTER TABLE stored_usage ALTER COLUMN created DROP DEFAULT;

CREATE TABLE purged_accounts (
	id      text COLLATE "C" NOT NULL,
	created timestamptz NOT NULL,
	deleted timestamptz NOT NULL,
	kind    text  NOT NULL,
	name    text  NOT NULL DEFAULT '',
	params  jsonb,
	PRIMARY KEY (id, created)
);
`,
	// 8: the request metrics each server publishes for the rollout gates
	// (see the SQLite schema).
	`
CREATE TABLE release_metrics (
	account     text COLLATE "C" NOT NULL,
	release     text COLLATE "C" NOT NULL,
	incarnation text COLLATE "C" NOT NULL,
	requests    bigint      NOT NULL,
	errors      bigint      NOT NULL,
	latency     text        NOT NULL,
	published   timestamptz NOT NULL,
	PRIMARY KEY (account, release, incarnation)
);
`,
	// 9: the origin of a release (see the SQLite schema).
	`
ALTER TABLE releases ADD COLUMN origin text NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN origin_from text NOT NULL DEFAULT '';
`,
}

// upgrades move data for the migration of the same number (1-based), in
// the same transaction. They run in order once every migration ran, as
// they use the tx methods, which read and write the newest schema.
var upgrades = map[int]func(t *tx) error{
	3: upgradeLegacy,
	6: markLegacyProbes,
}

// upgradeLegacy moves the current release, rollouts and their steps out of
// settings and claims (store.UpgradeLegacy) and deletes the settings moved.
func upgradeLegacy(t *tx) error {
	moved, err := store.UpgradeLegacy(t)
	if err != nil {
		return err
	}
	if len(moved) == 0 {
		return nil
	}
	_, err = t.exec("delete the settings moved", `DELETE FROM settings WHERE name = ANY($1)`, moved)
	return err
}

// markLegacyProbes marks the releases the live probe built before releases
// carried the mark (store.LegacyProbes).
func markLegacyProbes(t *tx) error {
	ids, err := store.LegacyProbes(t)
	if err != nil || len(ids) == 0 {
		return err
	}
	_, err = t.exec("mark the probe's releases", `UPDATE releases SET probe = true WHERE id = ANY($1)`, ids)
	return err
}

// errTablesExist says that another process created silo's tables while
// this one was about to.
var errTablesExist = errors.New("silo's tables were created meanwhile")

// prepare finds out, until it is known, whether silo's tables exist in the
// store's schema, and if so brings them up to date (migrate) and marks the
// store ready. Without them it changes nothing: the first Update creates
// them (create).
func (s *Store) prepare(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	if s.schema == "" {
		var schema *string
		if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return dbErr("read current schema", err)
		}
		if schema == nil {
			return silo.Errorf(silo.CodeInvalid, "the PostgreSQL search_path names no existing schema; create the schema or fix search_path in the DSN")
		}
		s.schema = *schema // set by Open, before the Store is shared
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, tablesExist).Scan(&exists); err != nil {
		return dbErr("look for silo's tables", err)
	}
	if !exists {
		return nil
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	s.ready.Store(true)
	return nil
}

// tablesExist reports whether silo's schema version table is in the
// current schema. to_regclass reads the catalog as committed now, not as a
// transaction's snapshot saw it.
const tablesExist = `SELECT to_regclass(quote_ident(current_schema()) || '.silo_schema') IS NOT NULL`

// lockSchema takes the advisory lock that orders schema changes in the
// store's schema, until pgTx ends.
func (s *Store) lockSchema(ctx context.Context, pgTx pgx.Tx) error {
	if _, err := pgTx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('silo-schema:' || $1))`, s.schema); err != nil {
		return dbErr("lock schema", err)
	}
	return nil
}

// create creates silo's tables within pgTx, which they then live or die
// with. It returns errTablesExist when another process created them first.
func (s *Store) create(ctx context.Context, pgTx pgx.Tx) error {
	if err := s.lockSchema(ctx, pgTx); err != nil {
		return err
	}
	var exists bool
	if err := pgTx.QueryRow(ctx, tablesExist).Scan(&exists); err != nil {
		return dbErr("look for silo's tables", err)
	}
	if exists {
		return errTablesExist
	}
	if _, err := pgTx.Exec(ctx, `CREATE TABLE silo_schema (version int NOT NULL)`); err != nil {
		// The catalog this transaction reads may not show tables committed
		// while it waited for the lock: CREATE TABLE does.
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P07" {
			return errTablesExist
		}
		return dbErr("create schema version table", err)
	}
	if _, err := pgTx.Exec(ctx, `INSERT INTO silo_schema (version) VALUES (0)`); err != nil {
		return dbErr("init schema version", err)
	}
	return s.apply(ctx, pgTx, 0)
}

// viewEmpty runs a View's fn on a schema that holds no silo tables yet: on
// tables created in a transaction that is rolled back afterwards, so fn
// sees an empty store and the schema stays empty.
func (s *Store) viewEmpty(ctx context.Context, fn func(store.Tx) error) error {
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return dbErr("begin view", err)
	}
	defer pgTx.Rollback(context.WithoutCancel(ctx))
	if err := s.create(ctx, pgTx); errors.Is(err, errTablesExist) {
		pgTx.Rollback(context.WithoutCancel(ctx))
		if err := s.prepare(ctx); err != nil {
			return err
		}
		return s.View(ctx, fn)
	} else if err != nil {
		return err
	}
	return fn(&tx{ctx: ctx, tx: pgTx, readOnly: true})
}

// migrate applies missing migrations in one transaction, holding an
// advisory lock named after the schema so that servers starting together
// apply them once.
func (s *Store) migrate(ctx context.Context) error {
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return dbErr("begin schema migration", err)
	}
	defer pgTx.Rollback(context.WithoutCancel(ctx))
	if err := s.lockSchema(ctx, pgTx); err != nil {
		return err
	}
	var have int
	err = pgTx.QueryRow(ctx, `SELECT version FROM silo_schema`).Scan(&have)
	switch {
	case err == pgx.ErrNoRows:
		if _, err := pgTx.Exec(ctx, `INSERT INTO silo_schema (version) VALUES (0)`); err != nil {
			return dbErr("init schema version", err)
		}
	case err != nil:
		return dbErr("read schema version", err)
	}
	if have > len(migrations) {
		return silo.Errorf(silo.CodeUnavailable, "the PostgreSQL schema %s has version %d but this silo knows only up to %d; run a newer silo", s.schema, have, len(migrations))
	}
	if have == len(migrations) {
		return nil
	}
	if err := s.apply(ctx, pgTx, have); err != nil {
		return err
	}
	if err := pgTx.Commit(ctx); err != nil {
		return dbErr("commit schema migration", err)
	}
	return nil
}

// apply runs the migrations after have, with their upgrades, within pgTx
// and records the new version.
func (s *Store) apply(ctx context.Context, pgTx pgx.Tx, have int) error {
	for i := have; i < len(migrations); i++ {
		if _, err := pgTx.Exec(ctx, migrations[i]); err != nil {
			return dbErr(fmt.Sprintf("apply schema migration %d", i+1), err)
		}
	}
	for i := have; i < len(migrations); i++ {
		if up := upgrades[i+1]; up != nil {
			if err := up(&tx{ctx: ctx, tx: pgTx}); err != nil {
				return fmt.Errorf("upgrade the PostgreSQL schema %s to version %d: %w", s.schema, i+1, err)
			}
		}
	}
	if _, err := pgTx.Exec(ctx, `UPDATE silo_schema SET version = $1`, len(migrations)); err != nil {
		return dbErr("set schema version", err)
	}
	return nil
}
