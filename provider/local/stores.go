package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	silo "github.com/silo-run/silo"
	"go.etcd.io/bbolt"
)

// account is the in-memory state of one account. It lives in Provider.accts
// while referenced or while its store file is open.
type account struct {
	id  silo.AccountID
	dir string

	// mu serializes control-plane changes to the account (create, delete,
	// apply, put secret) and the opening of its store file.
	mu accountMu

	// commits groups concurrent table writes into shared transactions
	// (commit.go).
	commits committer

	// unsynced says that an effect of the apply under way renamed or
	// created an entry in dir without syncing dir; ApplyBatch syncs it
	// once before it writes the manifest. Guarded by mu.
	unsynced bool
	// held, while the account is staged (stageAccount), holds the files
	// its data.key will hold (held.go); nil otherwise.
	held map[string][]byte
	// fresh names the tables of the store newStore has just built for
	// the apply under way, which ensure need not open the store to find.
	// Guarded by mu; cleared when the apply ends.
	fresh []string

	// Guarded by Provider.mu.
	refs     int
	db       *store
	dbFile   os.FileInfo // the store file db has open
	dbRing   *cachedFile // the key ring copy under which db was last found current
	users    int         // in-flight operations holding db
	lastUsed time.Time
}

// detachLocked takes the account's store out of service and returns it for
// closing (nil if none was open); its close checkpoints it (wal.go).
// Operations still holding it release nothing (releaseDB); a transaction
// they begin after it is closed fails with bbolt.ErrDatabaseNotOpen. The
// caller holds Provider.mu.
func (p *Provider) detachLocked(a *account) *store {
	db := a.db
	if db != nil {
		p.open--
	}
	a.db, a.dbFile, a.dbRing, a.users = nil, nil, nil, 0
	return db
}

func (p *Provider) janitor() {
	defer close(p.done)
	t := time.NewTicker(max(p.cfg.IdleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.closeIdle(now)
			p.sweepCache()
		}
	}
}

// closeIdle closes the store files of accounts idle since before
// now-IdleTimeout.
func (p *Provider) closeIdle(now time.Time) {
	var dbs []*store
	p.mu.Lock()
	for id, a := range p.accts {
		if a.db != nil && a.users == 0 && now.Sub(a.lastUsed) >= p.cfg.IdleTimeout {
			dbs = append(dbs, p.detachLocked(a))
		}
		if a.refs == 0 && a.db == nil {
			delete(p.accts, id)
		}
	}
	p.mu.Unlock()
	for _, db := range dbs {
		if err := db.close(); err != nil {
			p.log.Warn("close idle account store", "path", db.db.Path(), "err", err)
		}
	}
}

// openStores returns how many account store files are open.
func (p *Provider) openStores() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// ref returns the account state of id, creating it if needed, and holds a
// reference to it until unref.
func (p *Provider) ref(id silo.AccountID) *account {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accts[id]
	if a == nil {
		a = &account{id: id, dir: filepath.Join(p.accounts, string(id))}
		p.accts[id] = a
	}
	a.refs++
	return a
}

func (p *Provider) unref(a *account) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a.refs--
	if a.refs == 0 && a.db == nil {
		delete(p.accts, a.id)
	}
}

// storeLockWait is how long opening a store file waits for another process
// that has it open (bbolt locks the file to one process at a time).
var storeLockWait = 5 * time.Second

// errNoStore means the account has no store file yet (it has no tables).
var errNoStore = errors.New("account has no store file")

// acquireDB returns the account's open store, opening it if needed, and
// marks it in use until releaseDB. With create false a missing store file is
// errNoStore rather than created; a missing one while the account's
// manifest records tables is damage (lostStore), with create true too.
// ring is the account's key ring as the caller just loaded it (nil: none):
// the open store is used as it is while the ring is the copy it was last
// found current under; after the ring changed (a write of this process, or data.key replaced by another
// process, which may have deleted and re-created the account) one stat
// checks that the store file at the account's path is still the one open,
// and else the open one (unlinked) is closed and the new one opened.
func (p *Provider) acquireDB(ctx context.Context, a *account, create bool, ring *cachedFile) (*store, error) {
	p.mu.Lock()
	if db := a.db; db != nil && ring != nil && a.dbRing == ring {
		a.users++
		p.mu.Unlock()
		return db, nil
	}
	p.mu.Unlock()
	if err := a.lockMu(ctx); err != nil {
		return nil, err
	}
	defer a.mu.unlock()
	return p.acquireDBLocked(ctx, a, create, ring)
}

// acquireDBLocked is acquireDB for a caller holding a.mu. A wait for
// another process to close the file ends with ctx.
func (p *Provider) acquireDBLocked(ctx context.Context, a *account, create bool, ring *cachedFile) (*store, error) {
	path := filepath.Join(a.dir, fileDB)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, silo.Errorf(silo.CodeUnavailable, "local provider is closed")
	}
	db, open := a.db, a.dbFile
	p.mu.Unlock()
	if db != nil {
		fi, err := os.Stat(path)
		var stale *store
		p.mu.Lock()
		switch {
		case a.db != db:
			// Closed meanwhile (idle, evicted): open it again below.
		case err == nil && os.SameFile(fi, open):
			a.users++
			a.dbRing = ring
			p.mu.Unlock()
			return db, nil
		default:
			stale = p.detachLocked(a)
		}
		p.mu.Unlock()
		if stale != nil {
			p.log.Info("account store file replaced by another process; reopening", "account", a.id)
			// Without a checkpoint: its writes went to a file no longer
			// at the path (as they did before the log), and its log may no
			// longer be the one at the path either (wal.go).
			go stale.abandon() // waits for the group running on it
		}
	}

	if err := p.checkExists(a); err != nil {
		return nil, err
	}
	if err := p.damagedFile(a.id, fileDB); err != nil {
		return nil, err // the file found damaged is still there
	}
	switch st, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
		// Not there though the account has tables (deleted): bbolt
		// would start a new, empty store, and the tables and their data
		// would be silently gone.
		if err := p.lostStore(a); err != nil {
			return nil, err
		}
		if !create {
			return nil, errNoStore
		}
	case !create && err == nil && st.Mode().IsRegular() && st.Size() == 0:
		// bbolt would start a new, empty store in it: the tables and
		// their data would be silently gone.
		return nil, p.markDamaged(a.id, fileDB, "it is empty (0 bytes) though the account has tables")
	}
	// openBolt checks the file's structure before bbolt maps it: bbolt
	// trusts its file, and a damaged one would panic in a goroutine of its
	// own (see storecheck.go).
	bdb, fi, err := openBolt(ctx, path, bbolt.Options{
		Timeout:        storeLockWait,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, silo.Errorf(silo.CodeUnavailable, "the table store of account %s is open in another silo process on %s (silo up or silo server); stop that process and retry, or run the command through its API (commands on its data dir do so by themselves; from elsewhere pass --server)", a.id, p.cfg.Dir)
	}
	if err != nil {
		return nil, p.storeErr(a, fmt.Errorf("open store of %s: %w", a.id, err))
	}
	// Before anything reads the store: the writes its log holds and it
	// does not (wal.go).
	db, oerr := p.openStore(a, bdb)
	if oerr != nil {
		bdb.Close()
		return nil, p.storeErr(a, fmt.Errorf("open store of %s: %w", a.id, diskErr(filepath.Join(a.dir, fileLog), oerr)))
	}

	p.mu.Lock()
	a.db, a.dbFile, a.dbRing = db, fi, ring
	a.users++
	p.open++
	victims := p.evictLocked()
	p.mu.Unlock()
	for _, v := range victims {
		if err := v.close(); err != nil {
			p.log.Warn("close evicted account store", "path", v.db.Path(), "err", err)
		}
	}
	return db, nil
}

// evictLocked takes the least recently used idle stores out of service while
// more than MaxOpen are open, and returns them for closing.
func (p *Provider) evictLocked() []*store {
	var out []*store
	for p.open > p.cfg.MaxOpen {
		var oldest *account
		for _, a := range p.accts {
			if a.db != nil && a.users == 0 && (oldest == nil || a.lastUsed.Before(oldest.lastUsed)) {
				oldest = a
			}
		}
		if oldest == nil {
			break // everything open is in use
		}
		out = append(out, p.detachLocked(oldest))
		if oldest.refs == 0 {
			delete(p.accts, oldest.id)
		}
	}
	return out
}

// releaseDB ends an operation's use of db, the store acquireDB returned.
func (p *Provider) releaseDB(a *account, db *store) {
	p.mu.Lock()
	if a.db == db {
		a.users--
		a.lastUsed = time.Now()
	}
	p.mu.Unlock()
}

// closeDBLocked checkpoints and closes the account's store (waiting for
// running transactions); the caller holds a.mu.
func (p *Provider) closeDBLocked(a *account) error {
	p.mu.Lock()
	db := p.detachLocked(a)
	p.mu.Unlock()
	if db == nil {
		return nil
	}
	return db.close()
}
