// Package store defines the control-plane state: the registry of accounts,
// recorded resource state, the intent journal, API keys, releases (and which
// is current), rollouts with their steps, and the tamper-evident audit log.
// Implementations live in store/sqlite (the default) and store/postgres;
// both pass the suite in store/storetest.
//
// It imports only the root silo package and the standard library.
package store

import (
	"context"
	"encoding/json"
	"time"

	silo "github.com/silo-run/silo"
)

// Store is the control-plane state. All reads and writes go through a
// transaction, so a change and its audit event commit together or not at all.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction (BEGIN IMMEDIATE on SQLite)
	// and commits if fn returns nil. fn may be retried on serialization
	// failure, so it must not have side effects outside tx.
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction. Errors: silo.ErrNotFound for a missing row,
// silo.ErrConflict for a duplicate or a stale Version.
type Tx interface {
	// Account returns one account, including deleted ones.
	Account(id silo.AccountID) (silo.Account, error)
	// Accounts lists accounts matching f, sorted by ID.
	Accounts(f Filter) ([]silo.Account, error)
	// CountAccounts counts accounts matching f.
	CountAccounts(f Filter) (int, error)
	// CreateAccount inserts a new account with Version 1. A second account of
	// kind production, or an ID already used (even by a deleted account that
	// has not been purged), is silo.ErrConflict.
	CreateAccount(a silo.Account) error
	// UpdateAccount writes a, which must carry the Version it was read with;
	// the stored Version is incremented. A stale Version is silo.ErrConflict.
	UpdateAccount(a silo.Account) error
	// PurgeAccount removes a deleted account's row, recorded resources,
	// keys, limit override, schedule claims and published request metrics
	// (ReleaseMetrics), so that a new account can take its ID and none of
	// the old one's requests count in a gate of the new one. What was metered for it (usage, stored bytes) is kept,
	// under its creation time, for billing the days before its deletion;
	// the account is listed by PurgedAccounts until its usage is pruned.
	PurgeAccount(id silo.AccountID) error
	// PurgedAccounts lists the purged accounts that had the ID id (every
	// ID when empty) as they were when purged (state deleted, Updated
	// their deletion), by ID and creation time.
	PurgedAccounts(id silo.AccountID) ([]silo.Account, error)

	// Resources returns the recorded resources of an account, sorted by key.
	Resources(id silo.AccountID) ([]silo.Resource, error)
	// PutResource records r as applied to the account (insert or replace).
	PutResource(id silo.AccountID, r silo.Resource) error
	// DeleteResource forgets one recorded resource; missing is not an error.
	DeleteResource(id silo.AccountID, t silo.ResourceType, name string) error

	// AddIntent journals an intent before a provider call and returns its
	// sequence number. A second intent with the same Key is silo.ErrConflict.
	AddIntent(in Intent) (int64, error)
	// FinishIntent marks an intent done or failed.
	FinishIntent(seq int64, state IntentState, errText string) error
	// TouchIntents sets Updated to at on those of the intents seqs that
	// are still pending (the others, and unknown ones, are left alone):
	// the heartbeat of a process still working on them (see engine's
	// Recover).
	TouchIntents(seqs []int64, at time.Time) error
	// PendingIntents returns intents not yet finished, oldest first.
	PendingIntents() ([]Intent, error)
	// IntentByKey returns the intent with key k.
	IntentByKey(k string) (Intent, error)

	// PutKey stores an API key (hash only) or updates its revocation.
	PutKey(k APIKey) error
	// Key returns the key with the given ID (the public prefix).
	Key(id string) (APIKey, error)
	// Keys lists an account's keys, including revoked ones, newest first.
	Keys(account silo.AccountID) ([]APIKey, error)
	// DeleteKey removes the record of key id; silo.ErrNotFound if there is
	// none. Keys are revoked, not deleted: only a record the isolation
	// verifier flags (a key bound to an account it does not name, to the
	// production account, or live on a deleted account) is removed.
	DeleteKey(id string) error

	// PutRelease stores a release; storing the same ID again changes
	// nothing but its origin, when the new one ranks higher
	// (Origin.Replaces).
	PutRelease(r Release) error
	Release(id string) (Release, error)
	// Releases lists up to limit releases (all when limit <= 0), newest
	// first; the live probe's (Release.Probe) only when probes is set.
	Releases(limit int, probes bool) ([]Release, error)
	// CurrentRelease returns the ID of the current release: the one new
	// accounts get and rollouts start from. silo.ErrNotFound if none is.
	CurrentRelease() (string, error)
	// SetCurrentRelease makes the stored release id current and returns the
	// one it replaces ("" if none). It is the only way the current release
	// changes. A release that is not stored is silo.ErrNotFound; a probe
	// release, or one only silo dev stored, is refused (CheckShip).
	SetCurrentRelease(id string) (previous string, err error)

	// CreateRollout stores a new rollout with Version 1. An ID already used,
	// or an Active rollout while another is active, is silo.ErrConflict; a
	// rollout of a stored probe release, or of one only silo dev stored,
	// is refused (CheckShip).
	CreateRollout(r Rollout) error
	// UpdateRollout writes r, which must carry the Version it was read with;
	// the stored Version is incremented. A stale Version, or making r
	// Active while another rollout is, is silo.ErrConflict.
	UpdateRollout(r Rollout) error
	// Rollout returns one rollout.
	Rollout(id string) (Rollout, error)
	// ActiveRollout returns the active rollout (silo.ErrNotFound if none).
	ActiveRollout() (Rollout, error)
	// Rollouts lists up to limit rollouts (all when limit <= 0), newest
	// first: in the reverse order of their creation.
	Rollouts(limit int) ([]Rollout, error)
	// CountRollouts counts the rollouts ever created.
	CountRollouts() (int, error)
	// ClaimStep records a step of a stored rollout as claimed (State
	// pending; a copy gives the state it had). A second claim of the same
	// step is silo.ErrConflict.
	ClaimStep(s RolloutStep) error
	// FinishStep marks a claimed step done or failed (errText says why).
	FinishStep(k StepKey, state IntentState, errText string) error
	// Step returns one claimed step (silo.ErrNotFound if never claimed).
	Step(k StepKey) (RolloutStep, error)
	// Steps lists the claimed steps of a rollout, sorted by ring, account
	// and step.
	Steps(rollout string) ([]RolloutStep, error)

	// AppendAudit appends an event to the audit log, chaining its hash to the
	// previous entry, and returns the stored entry. An actor carried by the
	// transaction's context (WithActor) replaces e.Actor.
	AppendAudit(e AuditEvent) (AuditEntry, error)
	// Audit returns entries with Seq > after, up to limit, in order.
	Audit(after int64, limit int) ([]AuditEntry, error)

	// Setting reads an installation setting ("" and silo.ErrNotFound if unset).
	Setting(name string) (string, error)
	PutSetting(name, value string) error

	// LimitOverride returns the operator's override of an account's
	// limits (silo.ErrNotFound if it has none or the account is missing).
	LimitOverride(id silo.AccountID) (silo.Limits, error)
	// PutLimitOverride sets an account's override; a zero Limits removes
	// it. A missing account is silo.ErrNotFound, limits out of range
	// CodeInvalid (silo.Limits.Check). PurgeAccount removes it.
	PutLimitOverride(id silo.AccountID, l silo.Limits) error

	// AddUsage adds each delta to the hour holding at (UTC) of its account
	// (ID and creation time) and function. The account need not be in the
	// registry (metering does not wait for it); PurgeAccount keeps its
	// usage apart from a new account's with the same ID.
	AddUsage(at time.Time, ds []UsageDelta) error
	// Usage lists stored usage days matching q (see UsageQuery).
	Usage(q UsageQuery) ([]UsageDay, error)
	// PruneUsage rolls the hours of each day before hourlyBefore up into
	// the day's total and deletes the days before dailyBefore. It reports
	// how many days it rolled up and how many it deleted.
	// It applies the same retention to the stored-bytes days, and counts
	// those too, and forgets the purged accounts deleted before
	// dailyBefore (their usage is gone by then).
	PruneUsage(hourlyBefore, dailyBefore time.Time) (rolled, deleted int64, err error)

	// ClaimScheduleRun claims the run of c.Schedule in c.Account due at
	// c.Due for c.Owner, held until c.Until unless finished before. Of
	// several servers claiming one due time, one wins; the others get
	// silo.ErrConflict and claim nothing. A claim is also silo.ErrConflict
	// when a later due time of the schedule was claimed already, or when
	// the run of an earlier one is still claimed: not finished, and held
	// after now. A missing account is silo.ErrNotFound; PurgeAccount
	// removes its claims.
	ClaimScheduleRun(c ScheduleClaim, now time.Time) error
	// FinishScheduleRun marks the run c claimed as finished, so that the
	// next due time of the schedule can be claimed before c.Until. A claim
	// no longer held (a later due time claimed since) is left as it is.
	FinishScheduleRun(c ScheduleClaim) error

	// SetStored records each sample as the bytes its account stores in
	// its table or bucket during the hour holding at (UTC); a second
	// sample of the same hour replaces the first, so sampling twice in an
	// hour never counts it twice. Like AddUsage, the account need not be
	// in the registry; PurgeAccount keeps its rows, as it keeps usage.
	SetStored(at time.Time, ss []StoredSample) error
	// Stored lists stored-bytes days matching q, oldest first, then by
	// account, its creation time, kind and name (q.After.Function is
	// StoredResource's form).
	Stored(q UsageQuery) ([]StoredDay, error)

	// PublishMetrics records ms as what incarnation last counted for each
	// of their accounts and releases (their own Incarnation and Published
	// are ignored: incarnation and at are), replacing what it published
	// for them before, and records that incarnation was heard from at at
	// (its heartbeat; ms may be empty). An empty incarnation, account or
	// release is CodeInvalid (CheckMetrics).
	PublishMetrics(incarnation string, at time.Time, ms []ReleaseMetrics) error
	// ReleaseMetrics lists what every incarnation published for acct under
	// release, by incarnation.
	ReleaseMetrics(acct silo.AccountID, release string) ([]ReleaseMetrics, error)
	// DropMetrics deletes what the incarnations not heard from since
	// before published, and their heartbeats, and, whoever published
	// them, the metrics of accounts deleted (or gone) and of releases no
	// account that is not deleted runs; except the metrics of an active
	// rollout's release: a gate of that rollout may be measuring a window
	// over them, and a row taken away would make the sum it reads go
	// backwards. Those go once the rollout is no longer active. A gate
	// reads nothing else: its baseline is what the accounts served under
	// the release they run when the rollout starts. It reports how many
	// rows it deleted.
	DropMetrics(before time.Time) (int64, error)
}

// ScheduleClaim is a server's claim of one scheduled run: the run of a
// schedule in an account for one due time. Claims are what make a run
// happen once across the servers sharing a store.
type ScheduleClaim struct {
	Account  silo.AccountID
	Schedule string
	Due      time.Time
	Owner    string    // the server that claimed it
	Until    time.Time // the claim holds until then unless finished before
}

// Filter selects accounts. Zero fields match everything; deleted accounts are
// excluded unless IncludeDeleted.
type Filter struct {
	Kind           silo.Kind
	State          silo.State
	IncludeDeleted bool
	After          silo.AccountID // for paging: IDs strictly greater
	Limit          int            // 0 means no limit
}

// IntentState is the state of a journal intent.
type IntentState string

// The intent states.
const (
	IntentPending IntentState = "pending"
	IntentDone    IntentState = "done"
	IntentFailed  IntentState = "failed"
)

// Intent is a journal record written before a provider call.
type Intent struct {
	Seq     int64          `json:"seq"`
	Key     string         `json:"key"` // deterministic: e.g. "<operation>/<account>/<type>/<name>/<hash>"
	Account silo.AccountID `json:"account"`
	Action  string         `json:"action"` // "create-account", "apply", "delete-account", ...
	Change  *silo.Change   `json:"change,omitempty"`
	State   IntentState    `json:"state"`
	Error   string         `json:"error,omitempty"`
	Created time.Time      `json:"created"`
	Updated time.Time      `json:"updated"`
}

// APIKey is a tenant API key. Only a hash of the secret part is stored.
type APIKey struct {
	ID      string         `json:"id"` // public prefix, e.g. "sk_acme_3f9a..."
	Account silo.AccountID `json:"account"`
	Hash    []byte         `json:"-"` // SHA-256 of the full key
	Name    string         `json:"name,omitempty"`
	Created time.Time      `json:"created"`
	Revoked *time.Time     `json:"revoked,omitempty"`
}

// Release is an immutable, content-addressed snapshot of a stack and its
// built artifacts.
type Release struct {
	ID        string            `json:"id"`
	Stack     json.RawMessage   `json:"stack"`     // the spec, as JSON
	Artifacts map[string]string `json:"artifacts"` // function name → artifact digest
	Created   time.Time         `json:"created"`
	Note      string            `json:"note,omitempty"`
	// Probe marks a release silo verify --probe built for its throwaway
	// accounts: it is listed only when asked for and never shipped
	// (CheckShip).
	Probe bool `json:"probe,omitempty"`
	// Origin says how the release came to be stored; storing it again
	// with an origin of a higher rank upgrades it (Origin.Replaces). One
	// only silo dev stored is never shipped (CheckShip).
	Origin Origin `json:"origin,omitzero"`
}

// AuditEvent is a control-plane mutation to record. It never holds a secret
// value.
type AuditEvent struct {
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`  // "operator:<name>", "server", "cli:<user>"
	Action  string          `json:"action"` // "tenant.create", "key.issue", "secret.set", ...
	Account silo.AccountID  `json:"account,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// AuditEntry is a stored AuditEvent with its place in the hash chain:
// Hash = SHA-256(Prev || canonical JSON of the event || Seq).
type AuditEntry struct {
	Seq   int64      `json:"seq"`
	Event AuditEvent `json:"event"`
	Prev  string     `json:"prev"` // hex hash of the previous entry, "" for the first
	Hash  string     `json:"hash"` // hex
}

// Change names one committed change of the control-plane state that a
// cache of it (the gateway's view of an account and its keys) must drop.
// It carries no data: a receiver reads the store again.
type Change struct {
	// Account is the account that changed; "" means every account (a new
	// current release, say).
	Account silo.AccountID `json:"account,omitempty"`
	// What says what changed: "state", "key", "secret", "params",
	// "release", "create", "delete".
	What string `json:"what"`
}

// Feed carries changes between processes that share one store. A store
// that several servers may share (store/postgres) implements it; a store
// that one process owns (store/sqlite) need not.
type Feed interface {
	// Announce tells every listener of the store, in this process and
	// others, about c. It returns once the announcement is committed:
	// listeners that are connected receive it.
	Announce(ctx context.Context, c Change) error
	// Listen calls fn for every change announced (by any process), in
	// order, until ctx is done, and then returns ctx's error. Before the
	// first change, and again after a lost connection is re-established,
	// it calls fn with a Change whose What is "resync": announcements may
	// have been missed, so a receiver drops everything it caches.
	Listen(ctx context.Context, fn func(Change)) error
}

// ChangeResync is the What of the Change Listen delivers when
// announcements may have been missed.
const ChangeResync = "resync"

// Lister is implemented by the Tx of stores that can be copied whole (silo
// store migrate): it lists what Tx reads one at a time or not at all, and
// writes the rows of days as they are stored. store/sqlite and
// store/postgres implement it.
type Lister interface {
	// Journal returns up to limit intents with Seq > after, in order,
	// whatever their state (0 means no limit).
	Journal(after int64, limit int) ([]Intent, error)
	// Settings returns every installation setting by name.
	Settings() (map[string]string, error)
	// ScheduleRuns returns every schedule's last claimed run, by account
	// and schedule.
	ScheduleRuns() ([]ScheduleRun, error)
	// DayRows returns up to limit rows (0: all) of the table of days dt in
	// their stored form, by day and key.
	DayRows(dt DayTable, limit int) ([]DayRow, error)
	// PutDayRow inserts r into the table of days dt as it is (for a copy
	// into an empty store); a row of the same day and key is an error.
	PutDayRow(dt DayTable, r DayRow) error
	// PutPurgedAccount records a as a purged account (see PurgedAccounts)
	// as it is, for a copy into an empty store.
	PutPurgedAccount(a silo.Account) error
	// PublishedMetrics returns every row of published metrics, heartbeats
	// included, by incarnation, account and release.
	PublishedMetrics() ([]ReleaseMetrics, error)
}

// ScheduleRun is a stored schedule claim and whether its run finished.
type ScheduleRun struct {
	ScheduleClaim
	Finished bool
}

// DayRow is one stored row of a table of days (DayTable): its day number,
// the other columns of its key in DayTable.Key's order, whether its hours
// are rolled up, and its stored form.
type DayRow struct {
	Day    int64
	Key    []string
	Rolled bool
	Data   []byte
}
