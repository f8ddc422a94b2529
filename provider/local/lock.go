package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	silo "github.com/silo-run/silo"
)

// Control-plane changes are serialized across processes as well as within
// one: silo up and a CLI command (or two commands) may change the same
// directory at once, and every change is a read-modify-write of a file
// (secrets.json, config.json, resources.json, data.key). Each account has a
// lock file, locks/<id>.lock, held exclusively (flock) by Apply, PutSecret,
// RotateDataKey, CreateAccount, DeleteAccount and a master-key rotation's
// rewrap of that account, inside the account's in-process mutex.
// locks/master.lock mirrors rotateMu: shared by whoever wraps a data key
// under the current master key, exclusive for a master-key rotation. An
// exclusive lock's file is removed by its holder on release, and a waiter
// that then gets the lock on the removed file locks the new one instead
// (see flock), so lock files of deleted accounts do not pile up. Reads take
// no lock: every file is replaced by rename, so a read sees the old or the
// new file whole.

const dirLocks = "locks"

// lockAccount takes a's in-process mutex, then its lock file.
func (p *Provider) lockAccount(a *account) (unlock func(), err error) {
	a.mu.Lock()
	release, err := p.flock(string(a.id), syscall.LOCK_EX)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	return func() { release(); a.mu.Unlock() }, nil
}

// lockMaster takes rotateMu and master.lock, exclusively for a master-key
// rotation, shared otherwise. Shared, it then reads master.key again: the
// caller is about to wrap a data key under the current master key, and
// another process may have rotated it since this one read it (a key
// wrapped under a dropped master would never open again).
func (p *Provider) lockMaster(exclusive bool) (unlock func(), err error) {
	lock, unlockMu, how := p.rotateMu.RLock, p.rotateMu.RUnlock, syscall.LOCK_SH
	if exclusive {
		lock, unlockMu, how = p.rotateMu.Lock, p.rotateMu.Unlock, syscall.LOCK_EX
	}
	lock()
	release, err := p.flock("master", how)
	if err != nil {
		unlockMu()
		return nil, err
	}
	unlock = func() { release(); unlockMu() }
	if !exclusive {
		p.loadMu.Lock()
		err = p.loadMasters()
		p.loadMu.Unlock()
		if err != nil {
			unlock()
			return nil, err
		}
	}
	return unlock, nil
}

// flock locks locks/<name>.lock (how: LOCK_SH or LOCK_EX), waiting for
// other processes' locks. An exclusive lock's file is removed when it is
// released (removeExclusive), so the lock files of accounts do not pile up:
// the holder unlinks it while it still holds the lock, and whoever then gets
// the lock on the unlinked file sees that the path no longer names the file
// it locked and tries again on a new one. A shared lock's file is never
// removed (another holder may share it).
func (p *Provider) flock(name string, how int) (release func(), err error) {
	path := filepath.Join(p.cfg.Dir, dirLocks, name+".lock")
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, fileMode)
		if err != nil {
			return nil, fmt.Errorf("open lock file %s: %w", path, err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), how)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if err != nil {
			f.Close()
			return nil, silo.Errorf(silo.CodeUnavailable, "lock %s for a change: %v; try again", path, err)
		}
		held, herr := f.Stat()
		now, nerr := os.Stat(path)
		if herr != nil || nerr != nil || !os.SameFile(held, now) {
			// The holder before us removed it: lock the new one.
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
			continue
		}
		return func() {
			if how == syscall.LOCK_EX && removeExclusive {
				_ = os.Remove(path) // still held: nobody can lock it in between
			}
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
		}, nil
	}
}

// removeExclusive makes flock remove an exclusive lock's file on release.
// It is a variable for the test that shows the lock files would otherwise
// pile up.
var removeExclusive = true
