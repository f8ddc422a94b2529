// Package local is silo's embedded default provider: every account is a
// directory on the local disk, holding its own key-value store file, its own
// blob roots, its config and its secrets encrypted under its own data key.
// Physical separation mirrors the account boundary; blob paths are resolved
// through os.Root so that no key can reach outside its bucket, and no level
// of an account's tree is followed through a symbolic link. Table values,
// blobs and log records are encrypted at rest under keys that deleting the
// account destroys (seal.go).
//
// Layout under Config.Dir:
//
//	master.key                   master key (0600), wraps every data key
//	accounts/<id>/data.key       the account's key ring (wrapped data keys, see keyring.go); its presence makes the account exist; a new account's also holds its first storage.key, config.json and resources.json until they are written as files (keyring.go, held.go)
//	accounts/<id>/storage.key    the storage key, sealed under the data key; table values, blobs and logs are sealed under keys derived from it (seal.go)
//	accounts/<id>/data.db        bbolt store, one bucket per table (created with the first table), values sealed
//	accounts/<id>/data.wal       the store's write-ahead log: each commit group's writes (keys as in data.db, values sealed), synced once, until a checkpoint writes them into data.db (wal.go)
//	accounts/<id>/blobs/<bucket>/ one directory per bucket, each blob sealed
//	accounts/<id>/config.json    resolved config values
//	accounts/<id>/secrets.json   secret values, each an envelope in base64
//	accounts/<id>/resources.json the manifest: resource key → resource with the hash it was applied with
//	trash/                       accounts and buckets being deleted (renamed here first, then removed)
//	locks/<id>.lock, master.lock serialize control-plane changes across processes (lock.go)
//
// A table write is durable when it returns: its commit group's record in
// data.wal is synced (one fdatasync per group, commit.go); data.db is
// written only at checkpoints, so a crash or a power loss leaves it a state
// bbolt synced, and every opener replays the log first (wal.go).
//
// The data plane serves config.json, secrets.json and data.key from memory
// (cache.go): writes through the Provider are seen by the next read, those
// of another process on the same directory within Config.CacheRecheck.
//
// It imports the root silo package, provider, internal/envelope and bbolt; it
// must not import the engine, stores, runtime or any other provider.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/provider"
)

// File names inside an account directory.
const (
	fileDataKey   = "data.key"
	fileDB        = "data.db"
	fileConfig    = "config.json"
	fileSecrets   = "secrets.json"
	fileResources = "resources.json"
	dirBlobs      = "blobs"
)

// Defaults for Config.
const (
	DefaultIdleTimeout = 30 * time.Second
	DefaultMaxOpen     = 256
	// DefaultCacheRecheck is one second: the platform's own bound on
	// seeing changes to an account (platform.Config.Refresh) and quick
	// enough for a person who runs a CLI command and then tries it, while
	// a stat per cached file per second costs nothing on the request path.
	DefaultCacheRecheck = time.Second
)

// Limits.
const (
	// MaxKeySize is the longest table or blob key, in bytes.
	MaxKeySize = provider.MaxKeySize
	// DefaultScanLimit is the limit used by Scan and ListBlobs when given
	// limit <= 0; MaxScanLimit caps larger limits.
	DefaultScanLimit = 100
	MaxScanLimit     = 1000
)

// Config configures a local provider.
type Config struct {
	// Dir holds everything the provider stores. Required.
	Dir string
	// Logger receives account lifecycle events. Nil discards them.
	Logger *slog.Logger
	// IdleTimeout is how long an account's store file stays open after its
	// last use. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxOpen bounds how many account store files are open at once; the
	// least recently used idle ones are closed first. Zero means
	// DefaultMaxOpen.
	MaxOpen int
	// CacheRecheck bounds how long the data plane serves an account's
	// config.json, secrets.json and key ring (data.key, whose presence
	// makes the account exist) from memory without looking at the files:
	// within it a warm Config, Secret, Get or Scan makes no system call.
	// Writes through this Provider are seen by the next read regardless; a
	// change by another process on the same directory (the CLI while silo
	// up serves: config, secrets, key rotation, account deletion) is seen
	// within CacheRecheck. Zero means DefaultCacheRecheck; negative means
	// the files are checked (stat) at every call, Get and Scan included.
	CacheRecheck time.Duration
	// OnRotateStep, if set, is called after each durable step of a key
	// rotation (the Step* constants) with the account concerned ("" for
	// the master key). A non-nil error stops the rotation there, as a
	// crash would. Tests use it to fail or crash at step boundaries.
	OnRotateStep func(step string, account silo.AccountID) error
	// OnDeleteAccount, if set, is called by DeleteAccount after the
	// account's keys are shredded and its directory removed, also when the
	// account was already gone; its error is DeleteAccount's, so a retry
	// calls it again. The platform removes the account's logs with it, so
	// every path that deletes an account deletes them.
	OnDeleteAccount func(account silo.AccountID) error
	// MasterKeyFile is where the master key is kept; empty means
	// Dir/master.key. Keeping it outside Dir (another disk, a secrets
	// mount) means a copy of the data directory alone, such as a backup,
	// opens nothing.
	MasterKeyFile string
}

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return silo.Errorf(silo.CodeInvalid, "local provider: no data directory given; set Dir")
	}
	if c.IdleTimeout < 0 || c.MaxOpen < 0 {
		return silo.Errorf(silo.CodeInvalid, "local provider: IdleTimeout and MaxOpen must not be negative")
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxOpen == 0 {
		c.MaxOpen = DefaultMaxOpen
	}
	if c.CacheRecheck == 0 {
		c.CacheRecheck = DefaultCacheRecheck
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Provider is the local provider. It implements provider.Provider; all
// methods are safe for concurrent use. Call Close when done.
type Provider struct {
	cfg Config
	log *slog.Logger
	// masters are the master keys in master.key, the current one first
	// (more than one only during a master-key rotation).
	masters    atomic.Pointer[[]*envelope.Master]
	masterPath string
	// rotateMu is held by a master-key rotation, and shared by whoever
	// wraps a data key under the current master (create, data-key
	// rotation), so no key is wrapped under a master being dropped. Taken
	// before any account's mu.
	rotateMu sync.RWMutex
	loadMu   sync.Mutex // serializes reads of master.key into masters with its changes
	accounts string     // Dir/accounts
	trash    string     // Dir/trash

	// committed counts the table-write transactions (commit.go).
	committed commitCount

	mu     sync.Mutex // guards accts, open and every account's db, users, lastUsed, refs
	accts  map[silo.AccountID]*account
	open   int
	closed bool

	// cache holds data.key, config.json and secrets.json of recently used
	// accounts (silo.AccountID → *acctCache; see cache.go); epoch counts
	// janitor ticks, to drop the entries that went unused. A cached file is
	// used without a stat for recheck nanoseconds (0: never) of now(), the
	// monotonic time since born.
	cache sync.Map
	// damaged holds the damaged files found in use (silo.AccountID →
	// *acctDamage; see damage.go).
	damaged sync.Map
	epoch   atomic.Int64
	recheck int64
	born    time.Time
	// afterOpen, if not nil, runs in load between opening a cached file
	// and reading it: tests write there (nil in production).
	afterOpen func(path string)

	// images holds the empty table stores built so far, by their tables
	// (see storeImage); imageCount bounds them.
	images     sync.Map
	imageCount atomic.Int64

	stop chan struct{}
	done chan struct{}
}

var _ provider.Provider = (*Provider)(nil)

// New opens (creating if needed) a local provider rooted at cfg.Dir. It
// creates the master key on first run and removes leftovers of interrupted
// deletions.
//
// # Errors
//
// CodeInvalid for a bad config; CodeFailedCheck if the master key file is
// accessible to group or others or is malformed.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("local provider dir %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	p := &Provider{
		cfg:      cfg,
		log:      cfg.Logger,
		accounts: filepath.Join(dir, "accounts"),
		trash:    filepath.Join(dir, "trash"),
		accts:    map[silo.AccountID]*account{},
		recheck:  int64(max(cfg.CacheRecheck, 0)),
		born:     time.Now(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, d := range []string{dir, p.accounts, p.trash, filepath.Join(dir, dirLocks)} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("local provider: create %s: %w", d, err)
		}
	}
	if err := checkPrivate(dir, p.log); err != nil {
		return nil, err
	}
	p.masterPath = filepath.Join(dir, "master.key")
	if cfg.MasterKeyFile != "" {
		p.masterPath = cfg.MasterKeyFile
	}
	if err := p.loadMasters(); err != nil {
		return nil, err
	}
	if err := p.emptyTrash(); err != nil {
		return nil, err
	}
	if err := p.migrateAll(); err != nil {
		return nil, err
	}
	go p.janitor()
	return p, nil
}

// Name returns "local".
func (p *Provider) Name() string { return "local" }

// Dir returns the provider's data directory.
func (p *Provider) Dir() string { return p.cfg.Dir }

// Close closes every open store file and stops the idle janitor. Calls after
// the first return nil; other methods must not be called after Close.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var dbs []*store
	for _, a := range p.accts {
		if db := p.detachLocked(a); db != nil {
			dbs = append(dbs, db)
		}
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	var errs []error
	for _, db := range dbs {
		errs = append(errs, db.close())
	}
	return errors.Join(errs...)
}

func (p *Provider) emptyTrash() error {
	ents, err := os.ReadDir(p.trash)
	if err != nil {
		return fmt.Errorf("local provider: read trash: %w", err)
	}
	for _, e := range ents {
		path := filepath.Join(p.trash, e.Name())
		if err := shredKeys(path); err != nil {
			return err
		}
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("local provider: empty trash: %w", err)
		}
	}
	return nil
}

// toTrash atomically moves path out of the way into the trash and removes
// it there; a crash in between leaves it to the next New.
func (p *Provider) toTrash(path, label string) error {
	dst := filepath.Join(p.trash, label+"-"+randomSuffix())
	if err := os.Rename(path, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("move %s to trash: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("remove %s: %w", dst, err)
	}
	return nil
}

func errNoAccount(id silo.AccountID) error {
	return silo.Errorf(silo.CodeNotFound, "account %s does not exist; create it first", id)
}

// checkExists returns CodeNotFound unless the account exists: its data key
// file is in place.
func (p *Provider) checkExists(a *account) error {
	_, err := os.Stat(filepath.Join(a.dir, fileDataKey))
	if errors.Is(err, fs.ErrNotExist) {
		return errNoAccount(a.id)
	}
	if err != nil {
		return p.damageErr(a.id, fmt.Errorf("account %s: %w", a.id, err))
	}
	return nil
}

// Holds reports whether the account's files are in the data dir (its
// data.key), looking at the disk afresh: a server asks at each reaper
// pass, so that an accounts directory removed or replaced under it is
// found (see package platform). A missing accounts directory, or a file
// in its place, holds no account.
//
// # Errors
//
// CodeInvalid for a malformed ID; the file system's error when the
// account's data key cannot be looked at (unknown is neither held nor
// lost).
func (p *Provider) Holds(ctx context.Context, id silo.AccountID) (bool, error) {
	if err := parseID(id); err != nil {
		return false, err
	}
	_, err := os.Lstat(filepath.Join(p.accounts, string(id), fileDataKey))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return false, nil
	}
	return false, fmt.Errorf("look for account %s: %w", id, err)
}

// Ref returns the account's directory as its reference.
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not
// exist.
func (p *Provider) Ref(ctx context.Context, id silo.AccountID) (provider.AccountRef, error) {
	if err := parseID(id); err != nil {
		return provider.AccountRef{}, err
	}
	a := p.ref(id)
	defer p.unref(a)
	if err := p.checkExists(a); err != nil {
		return provider.AccountRef{}, err
	}
	return provider.AccountRef{Provider: p.Name(), ID: a.dir}, nil
}

func parseID(id silo.AccountID) error {
	_, err := silo.ParseID(string(id))
	return err
}

// CreateAccount creates the account directory and a fresh data key. An
// account that exists is left untouched. A directory without a data key is
// the remains of an interrupted create or delete: it is removed first.
func (p *Provider) CreateAccount(ctx context.Context, id silo.AccountID, kind silo.Kind) error {
	_, err := p.createAccount(ctx, id, kind, nil)
	return err
}

// CreateAccountWith creates the account with the changes cs applied, as
// CreateAccount followed by ApplyBatch would, and returns how many changes,
// from the first, were applied. A new account is put together whole in its
// staging directory, effects and manifest included, and renamed into place
// (see stageAccount): with the example stack 7 syncs where the two calls
// take 9 (TestOnboardingSyncs). If a change fails, the account is created with the changes
// before it (the count says how many); if the account cannot be created,
// the count is 0 and nothing of it is left. For an account that exists it
// is ApplyBatch.
//
// # Errors
//
// As CreateAccount's and ApplyBatch's.
func (p *Provider) CreateAccountWith(ctx context.Context, id silo.AccountID, kind silo.Kind, cs []silo.Change) (int, error) {
	for _, c := range cs {
		if c.Op == silo.OpNoop {
			continue
		}
		if err := validateName(c.Type, c.Name); err != nil {
			return 0, err
		}
	}
	done, err := p.createAccount(ctx, id, kind, cs)
	if errors.Is(err, errExists) {
		return p.ApplyBatch(ctx, id, cs)
	}
	return done, p.damageErr(id, err)
}

// errExists tells CreateAccountWith that the account exists already.
var errExists = errors.New("account exists")

// createAccount creates the account with cs applied (see stageAccount). An
// account that exists is left untouched: nil without changes, errExists
// with changes (the caller applies them as a batch).
func (p *Provider) createAccount(ctx context.Context, id silo.AccountID, kind silo.Kind, cs []silo.Change) (int, error) {
	if err := parseID(id); err != nil {
		return 0, err
	}
	if !kind.Valid() {
		return 0, silo.Errorf(silo.CodeInvalid, "invalid account kind %q; use one of %v", kind, silo.Kinds)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	unlockMaster, err := p.lockMaster(ctx, false)
	if err != nil {
		return 0, err
	}
	defer unlockMaster()
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return 0, err
	}
	defer unlock()
	err = p.checkExists(a)
	if err == nil {
		if len(cs) > 0 {
			return 0, errExists
		}
		return 0, nil
	}
	if silo.ErrorCode(err) != silo.CodeNotFound {
		return 0, err
	}
	// Whatever this process cached of an account of that name (deleted
	// since by another process) is forgotten once the new key is in place.
	defer p.invalidate(id)
	if err := p.toTrash(a.dir, string(id)); err != nil {
		return 0, fmt.Errorf("create account %s: %w", id, err)
	}
	done, err := p.stageAccount(a, cs)
	if errors.Is(err, errNotCreated) {
		return 0, fmt.Errorf("create account %s: %w", id, err)
	}
	p.log.Info("account created", "account", id, "kind", kind)
	return done, err
}

// stagePrefix names the directory in accounts/ where an account is put
// together before it is renamed into place; not an account ID, so never
// listed as an account.
const stagePrefix = ".new-"

// errNotCreated wraps the errors after which stageAccount left no account.
var errNotCreated = errors.New("not created")

// stageAccount creates the account directory with its storage key, its data
// key and the effects and manifest of the changes cs: all of it is written
// into a staging directory (accounts/.new-<id>), each file synced, then the
// staging directory synced once, renamed to accounts/<id> and accounts/
// synced. The storage key, config.json and the manifest are not files of
// their own: data.key holds them with the ring (keyring.go), so the
// account file is one write and one sync, written last. The account
// appears whole or not at all: its name holds the storage key whenever it
// holds the data key, and the manifest and every effect it records, with
// one directory sync for all of them where writing in place needs one per
// key, one before the manifest and one after it.
// A crash leaves either the account or a staging directory, which the next
// creation of that ID moves to the trash.
//
// A change that fails stops the changes; the account is created with those
// before it, as CreateAccount and then ApplyBatch would leave it. An error
// that leaves no account wraps errNotCreated.
func (p *Provider) stageAccount(a *account, cs []silo.Change) (done int, err error) {
	stage := filepath.Join(p.accounts, stagePrefix+string(a.id))
	notCreated := func(err error) (int, error) {
		p.toTrash(stage, stagePrefix+string(a.id))
		return 0, fmt.Errorf("%w: %w", errNotCreated, err)
	}
	if err := p.toTrash(stage, stagePrefix+string(a.id)); err != nil {
		return 0, fmt.Errorf("%w: %w", errNotCreated, err)
	}
	if err := os.Mkdir(stage, dirMode); err != nil {
		return 0, fmt.Errorf("%w: %w", errNotCreated, err)
	}
	m := p.currentMaster()
	dk, wrapped, err := m.NewDataKey(a.id)
	if err != nil {
		return notCreated(err)
	}
	ring := keyRing{{id: envelope.Fingerprint(wrapped), master: m.Fingerprint(), wrapped: wrapped}}
	sk, err := newStorageKey(a.id, dk, ring[0].id)
	if err != nil {
		return notCreated(err)
	}
	sa := &account{id: a.id, dir: stage, held: map[string][]byte{fileStorageKey: sk}}
	var applyErr error
	if len(cs) > 0 {
		if done, applyErr = p.applyStaged(sa, cs); errors.Is(applyErr, errNotCreated) {
			return notCreated(applyErr)
		}
	}
	if err := replaceFile(stage, fileDataKey, encodeAccount(ring, sa.held)); err != nil {
		return notCreated(err)
	}
	if err := syncDir(stage); err != nil {
		return notCreated(err)
	}
	if err := os.Rename(stage, a.dir); err != nil {
		return notCreated(fmt.Errorf("move the new account into place: %w", err))
	}
	if err := syncDir(p.accounts); err != nil {
		return 0, err
	}
	return done, applyErr
}

// applyStaged makes the effects of cs in the staging account sa and writes
// its manifest, without syncing sa's directory (stageAccount does, once).
// A failure of the table store or the manifest wraps errNotCreated; a
// failing change stops the changes and is returned with the count before it.
func (p *Provider) applyStaged(sa *account, cs []silo.Change) (done int, err error) {
	if err := p.newStore(sa, cs); err != nil {
		return 0, fmt.Errorf("%w: %w", errNotCreated, err)
	}
	defer p.closeDBLocked(sa) // if ensure opened it; closed before the rename
	m := manifest{}
	for _, c := range cs {
		if _, err = p.applyLocked(sa, m, c); err != nil {
			break
		}
		done++
	}
	if len(m) > 0 {
		if werr := sa.replaceManifest(m); werr != nil {
			return 0, fmt.Errorf("%w: record the resources of %s: %w", errNotCreated, sa.id, werr)
		}
	}
	return done, err
}

// DeleteAccount crypto-shreds the account's data key (overwrites it with
// random bytes, syncs and removes it; from then on the account does not
// exist and nothing it stored opens), then the sealed storage key likewise,
// then moves the account directory to the trash and removes it, and last
// calls Config.OnDeleteAccount (which removes the account's logs). A crash
// in between leaves a directory without data.key: invisible, and cleared by
// the next CreateAccount of that ID or New. Deleting a missing account only
// calls OnDeleteAccount. It reports the account destroyed when its
// directory was there, and its data key destroyed when data.key was.
func (p *Provider) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	var d provider.Deletion
	if err := parseID(id); err != nil {
		return d, err
	}
	if err := ctx.Err(); err != nil {
		return d, err
	}
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return d, err
	}
	defer unlock()
	defer p.dropCache(id) // after the files are gone, so nothing is cached again
	defer p.damaged.Delete(id)
	if err := p.closeDBLocked(a); err != nil {
		return d, p.damageErr(id, fmt.Errorf("delete account %s: %w", id, err))
	}
	if _, err := os.Lstat(a.dir); err == nil {
		_, keyErr := os.Lstat(filepath.Join(a.dir, fileDataKey))
		if err := shredKeys(a.dir); err != nil { // every key of the ring, and any copy of an interrupted write
			return d, p.damageErr(id, fmt.Errorf("delete account %s: %w", id, err))
		}
		if keyErr == nil {
			d.Key = "data key destroyed"
		}
		if err := p.toTrash(a.dir, string(id)); err != nil {
			return d, p.damageErr(id, fmt.Errorf("delete account %s: %w", id, err))
		}
		d.Destroyed = true
		p.log.Info("account deleted", "account", id)
	}
	if p.cfg.OnDeleteAccount != nil {
		if err := p.cfg.OnDeleteAccount(id); err != nil {
			return d, fmt.Errorf("delete account %s: %w", id, err)
		}
	}
	return d, nil
}

// Accounts lists the accounts that exist, sorted by ID.
func (p *Provider) Accounts(ctx context.Context) ([]silo.AccountID, error) {
	ents, err := os.ReadDir(p.accounts)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	ids := []silo.AccountID{}
	for _, e := range ents {
		if !e.IsDir() || parseID(silo.AccountID(e.Name())) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(p.accounts, e.Name(), fileDataKey)); err == nil {
			ids = append(ids, silo.AccountID(e.Name()))
		}
	}
	return ids, nil // os.ReadDir sorts by name
}

// OpenStores returns how many account store files are open now; idle ones
// are closed after IdleTimeout, and never more than MaxOpen stay open.
func (p *Provider) OpenStores() int { return p.openStores() }
