package sqlite

import (
	"context"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// migrations are applied in order; PRAGMA user_version holds how many have
// been applied. Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE accounts (
	id         TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	name       TEXT    NOT NULL DEFAULT '',
	params     TEXT    NOT NULL DEFAULT '',  -- JSON object, '' when empty
	state      TEXT    NOT NULL,
	release    TEXT    NOT NULL DEFAULT '',
	stack_hash TEXT    NOT NULL DEFAULT '',
	created    INTEGER NOT NULL,             -- Unix microseconds
	updated    INTEGER NOT NULL,
	expires    INTEGER,
	version    INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_one_production ON accounts (kind) WHERE kind = 'production';
CREATE INDEX accounts_state ON accounts (state, kind);

CREATE TABLE resources (
	account TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	type    TEXT NOT NULL,
	name    TEXT NOT NULL,
	spec    BLOB,
	hash    TEXT NOT NULL,
	PRIMARY KEY (account, type, name)
) WITHOUT ROWID;

CREATE TABLE intents (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	key     TEXT    NOT NULL UNIQUE,
	account TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	change  TEXT,                            -- JSON silo.Change
	state   TEXT    NOT NULL,
	error   TEXT    NOT NULL DEFAULT '',
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL
);
CREATE INDEX intents_pending ON intents (seq) WHERE state = 'pending';

CREATE TABLE api_keys (
	id      TEXT    NOT NULL PRIMARY KEY,
	account TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	hash    BLOB    NOT NULL,
	name    TEXT    NOT NULL DEFAULT '',
	created INTEGER NOT NULL,
	revoked INTEGER
);
CREATE INDEX api_keys_account ON api_keys (account, created);

CREATE TABLE releases (
	id        TEXT    NOT NULL PRIMARY KEY,
	stack     BLOB,
	artifacts TEXT    NOT NULL DEFAULT '',   -- JSON object
	created   INTEGER NOT NULL,
	note      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX releases_created ON releases (created, id);

CREATE TABLE audit (
	seq     INTEGER PRIMARY KEY,
	time    INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	account TEXT    NOT NULL DEFAULT '',
	detail  TEXT,                            -- canonical JSON
	prev    TEXT    NOT NULL,
	hash    TEXT    NOT NULL
);

CREATE TABLE settings (
	name  TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
`,
	// 2: limit overrides and usage. A usage row is one UTC day of one
	// function of one account; data is store.EncodeUsage's compact form
	// (24 hourly roll-ups, or the daily total once rolled up).
	`
CREATE TABLE limit_overrides (
	account TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	limits  TEXT NOT NULL                    -- JSON silo.Limits
) WITHOUT ROWID;

CREATE TABLE usage (
	day      INTEGER NOT NULL,               -- days since the Unix epoch, UTC
	account  TEXT    NOT NULL,
	function TEXT    NOT NULL,
	rolled   INTEGER NOT NULL,               -- 1 once the hours are rolled up
	data     BLOB    NOT NULL,
	PRIMARY KEY (day, account, function)
) WITHOUT ROWID;
CREATE INDEX usage_account ON usage (account, day);
`,
	// 3: the current release, rollouts and their steps as records of their
	// own (before, settings and journal claims: see store.UpgradeLegacy,
	// which moves them after this runs).
	`
CREATE TABLE current_release (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	release TEXT    NOT NULL REFERENCES releases (id)
);

CREATE TABLE rollouts (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- creation order
	id          TEXT    NOT NULL UNIQUE,
	release     TEXT    NOT NULL,
	previous    TEXT    NOT NULL DEFAULT '',
	rollback_of TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL,
	active      INTEGER NOT NULL,                  -- 1 while running or paused
	owner       TEXT    NOT NULL DEFAULT '',
	lease       INTEGER,                           -- Unix microseconds
	version     INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL,
	status      TEXT                               -- JSON, package rollout's
);
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (active) WHERE active = 1;

CREATE TABLE rollout_steps (
	rollout      TEXT    NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	ring         TEXT    NOT NULL,
	account      TEXT    NOT NULL,
	step         TEXT    NOT NULL,
	from_release TEXT    NOT NULL DEFAULT '',
	state        TEXT    NOT NULL,
	error        TEXT    NOT NULL DEFAULT '',
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL,
	PRIMARY KEY (rollout, ring, account, step)
) WITHOUT ROWID;
`,
	// 4: stored bytes. A row is one UTC day of one account; data is
	// store.EncodeStored's form, holding each of its tables and buckets
	// (each hour's sampled bytes, or the day's byte-hours once rolled up).
	`
CREATE TABLE stored_usage (
	day      INTEGER NOT NULL,               -- days since the Unix epoch, UTC
	account  TEXT    NOT NULL,
	rolled   INTEGER NOT NULL,               -- 1 once every hour is rolled up
	data     BLOB    NOT NULL,
	PRIMARY KEY (day, account)
) WITHOUT ROWID;
CREATE INDEX stored_usage_account ON stored_usage (account, day);
`,
	// 5: scheduled-run claims: the last due time of each schedule of each
	// account that a server claimed (store.ScheduleClaim), so that a run
	// happens once across the servers sharing the store.
	`
CREATE TABLE schedule_runs (
	account  TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	schedule TEXT    NOT NULL,
	due      INTEGER NOT NULL,               -- Unix microseconds
	owner    TEXT    NOT NULL,
	until    INTEGER NOT NULL,               -- Unix microseconds
	finished INTEGER NOT NULL,               -- 1 once the run ended
	PRIMARY KEY (account, schedule)
) WITHOUT ROWID;
`,
	// 6: the mark of a release silo verify --probe built for its throwaway
	// accounts (store.Release.Probe), set on the ones built before it
	// (store.LegacyProbes).
	`
ALTER TABLE releases ADD COLUMN probe INTEGER NOT NULL DEFAULT 0;
`,
	// 7: usage and stored bytes kept per account, not per ID: each row
	// carries the creation time of its account, so that a deleted
	// account's usage outlives the reuse of its ID (for billing the days
	// before its deletion) and the new account starts from nothing; and
	// the purged accounts whose usage is kept (store.Tx.PurgedAccounts).
	// Rows stored before go to the account registered under their ID (0
	// when none is).
	`
CREATE TABLE usage_v7 (
	day      INTEGER NOT NULL,               -- days since the Unix epoch, UTC
	account  TEXT    NOT NULL,
	created  INTEGER NOT NULL,               -- the account's creation, Unix microseconds (0: none)
	function TEXT    NOT NULL,
	rolled   INTEGER NOT NULL,               -- 1 once the hours are rolled up
	data     BLOB    NOT NULL,
	PRIMARY KEY (day, account, created, function)
) WITHOUT ROWID;
INSERT INTO usage_v7 (day, account, created, function, rolled, data)
	SELECT u.day, u.account, COALESCE(a.created, 0), u.function, u.rolled, u.data
	FROM usage u LEFT JOIN accounts a ON a.id = u.account;
DROP TABLE usage;
ALTER TABLE usage_v7 RENAME TO usage;
CREATE INDEX usage_account ON usage (account, day);

CREATE TABLE stored_usage_v7 (
	day      INTEGER NOT NULL,
	account  TEXT    NOT NULL,
	created  INTEGER NOT NULL,               -- as in usage
	rolled   INTEGER NOT NULL,
	data     BLOB    NOT NULL,
	PRIMARY KEY (day, account, created)
) WITHOUT ROWID;
INSERT INTO stored_usage_v7 (day, account, created, rolled, data)
	SELECT u.day, u.account, COALESCE(a.created, 0), u.rolled, u.data
	FROM stored_usage u LEFT JOIN accounts a ON a.id = u.account;
DROP TABLE stored_usage;
ALTER TABLE stored_usage_v7 RENAME TO stored_usage;
CREATE INDEX stored_usage_account ON stored_usage (account, day);

CREATE TABLE purged_accounts (
	id      TEXT    NOT NULL,
	created INTEGER NOT NULL,                -- Unix microseconds
	deleted INTEGER NOT NULL,                -- its last update: its deletion
	kind    TEXT    NOT NULL,
	name    TEXT    NOT NULL DEFAULT '',
	params  TEXT    NOT NULL DEFAULT '',     -- JSON object, '' when empty
	PRIMARY KEY (id, created)
) WITHOUT ROWID;
`,
	// 8: the request metrics each server process (an incarnation) last
	// published for an account under a release, cumulative since it
	// started, so that a rollout's gates sum the requests of every server
	// (store.ReleaseMetrics); account and release '' is the incarnation's
	// heartbeat.
	`
CREATE TABLE release_metrics (
	account     TEXT    NOT NULL,
	release     TEXT    NOT NULL,
	incarnation TEXT    NOT NULL,
	requests    INTEGER NOT NULL,
	errors      INTEGER NOT NULL,
	latency     TEXT    NOT NULL,            -- JSON: bucket → count, '' when empty
	published   INTEGER NOT NULL,            -- Unix microseconds
	PRIMARY KEY (account, release, incarnation)
) WITHOUT ROWID;
`,
	// 9: the origin of a release (store.Release.Origin): the kind of
	// command that stored it (deploy, build, dev) and what from (the spec
	// file of a build, the developer account of a dev build); '' for the
	// releases stored before.
	`
ALTER TABLE releases ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN origin_from TEXT NOT NULL DEFAULT '';
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
	for _, name := range moved {
		if _, err := t.exec("delete setting "+name, `DELETE FROM settings WHERE name = ?`, name); err != nil {
			return err
		}
	}
	return nil
}

// markLegacyProbes marks the releases the live probe built before releases
// carried the mark (store.LegacyProbes).
func markLegacyProbes(t *tx) error {
	ids, err := store.LegacyProbes(t)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := t.exec("mark release "+id+" as a probe build", `UPDATE releases SET probe = 1 WHERE id = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies the migrations the database lacks, all in one write
// transaction, so a crash leaves the schema at a version it had.
func (s *Store) migrate(ctx context.Context) error {
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.openErr("begin migration", err)
	}
	defer sqlTx.Rollback()
	var have int
	if err := sqlTx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return s.openErr("read schema version", err)
	}
	if have > len(migrations) {
		return silo.Errorf(silo.CodeUnavailable, "state file %s has schema version %d but this silo knows only up to %d; run a newer silo", s.path, have, len(migrations))
	}
	if have == len(migrations) {
		return nil
	}
	for i := have; i < len(migrations); i++ {
		if _, err := sqlTx.ExecContext(ctx, migrations[i]); err != nil {
			return s.openErr(fmt.Sprintf("apply schema migration %d", i+1), err)
		}
	}
	for i := have; i < len(migrations); i++ {
		if up := upgrades[i+1]; up != nil {
			if err := up(&tx{s: s, ctx: ctx, tx: sqlTx}); err != nil {
				return fmt.Errorf("upgrade the state file %s to schema version %d: %w", s.path, i+1, err)
			}
		}
	}
	// PRAGMA takes no parameters; the value is a trusted integer.
	if _, err := sqlTx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return s.openErr("set schema version", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return s.openErr("commit schema migration", err)
	}
	// The log outlives the process (wal.go); a new or upgraded schema goes
	// into the database file at once.
	if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return s.openErr("checkpoint schema migration", err)
	}
	return nil
}
