package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

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
//
// A wait for any of these locks ends with the caller's context: a change or
// a function's first read of an account that another change holds (in this
// process or another) gives up at its deadline, saying so, instead of
// waiting for as long as the holder takes.

const dirLocks = "locks"

// accountMu serializes control-plane changes to one account in this
// process; unlike a sync.Mutex, a wait for it ends with its context.
type accountMu struct {
	once sync.Once
	ch   chan struct{}
}

func (m *accountMu) slot() chan struct{} {
	m.once.Do(func() { m.ch = make(chan struct{}, 1) })
	return m.ch
}

// lock takes m, or returns ctx's error once ctx ends first.
func (m *accountMu) lock(ctx context.Context) error {
	select {
	case m.slot() <- struct{}{}:
		return nil
	default:
	}
	select {
	case m.slot() <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *accountMu) unlock() { <-m.slot() }

// errBusy is the error of a lock wait that ctx ended: what is held, and
// that trying again is the thing to do.
func errBusy(what string, err error) error {
	return silo.Errorf(silo.CodeUnavailable, "%s (%v); try again once it is done", what, err)
}

// lockAccount takes a's in-process mutex, then its lock file, waiting at
// most until ctx ends.
func (p *Provider) lockAccount(ctx context.Context, a *account) (unlock func(), err error) {
	if err := a.lockMu(ctx); err != nil {
		return nil, err
	}
	release, err := p.flock(ctx, string(a.id), syscall.LOCK_EX)
	if err != nil {
		a.mu.unlock()
		if ctx.Err() != nil {
			return nil, errBusy(fmt.Sprintf("another process is changing account %s", a.id), err)
		}
		return nil, err
	}
	return func() { release(); a.mu.unlock() }, nil
}

// lockMu takes a's in-process mutex, waiting at most until ctx ends.
func (a *account) lockMu(ctx context.Context) error {
	if err := a.mu.lock(ctx); err != nil {
		return errBusy(fmt.Sprintf("another change to account %s is under way", a.id), err)
	}
	return nil
}

// lockMaster takes rotateMu and master.lock, exclusively for a master-key
// rotation, shared otherwise. Shared, it then reads master.key again: the
// caller is about to wrap a data key under the current master key, and
// another process may have rotated it since this one read it (a key
// wrapped under a dropped master would never open again).
func (p *Provider) lockMaster(ctx context.Context, exclusive bool) (unlock func(), err error) {
	unlockMu, how := p.rotateMu.RUnlock, syscall.LOCK_SH
	if exclusive {
		// Shared holders wrap one data key each: a short wait, and
		// blocking new ones keeps a rotation from starving.
		p.rotateMu.Lock()
		unlockMu, how = p.rotateMu.Unlock, syscall.LOCK_EX
	} else if err := poll(ctx, func() (bool, error) { return p.rotateMu.TryRLock(), nil }); err != nil {
		return nil, errBusy("a master-key rotation is under way", err)
	}
	release, err := p.flock(ctx, "master", how)
	if err != nil {
		unlockMu()
		if ctx.Err() != nil {
			return nil, errBusy("another process is rotating the master key", err)
		}
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
// other processes' locks until ctx ends. An exclusive lock's file is removed when it is
// released (removeExclusive), so the lock files of accounts do not pile up:
// the holder unlinks it while it still holds the lock, and whoever then gets
// the lock on the unlinked file sees that the path no longer names the file
// it locked and tries again on a new one. A shared lock's file is never
// removed (another holder may share it).
func (p *Provider) flock(ctx context.Context, name string, how int) (release func(), err error) {
	path := filepath.Join(p.cfg.Dir, dirLocks, name+".lock")
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, fileMode)
		if err != nil {
			return nil, fmt.Errorf("open lock file %s: %w", path, err)
		}
		err = poll(ctx, func() (bool, error) {
			err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
				return false, nil
			}
			return false, silo.Errorf(silo.CodeUnavailable, "lock %s for a change: %v; try again", path, err)
		})
		if err != nil {
			f.Close()
			return nil, err
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

// poll calls try until it succeeds or fails, sleeping between tries from
// 50 µs up to pollMax, and returns ctx's error once ctx ends first. A lock
// another process holds cannot be waited for otherwise without giving up
// the deadline (flock blocks until it is granted).
func poll(ctx context.Context, try func() (bool, error)) error {
	wait := 50 * time.Microsecond
	for {
		ok, err := try()
		if ok || err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(2*wait, pollMax)
	}
}

// pollMax bounds the sleep between two tries of a held lock: a lock
// released is taken at most this long after.
const pollMax = 20 * time.Millisecond

// removeExclusive makes flock remove an exclusive lock's file on release.
// It is a variable for the test that shows the lock files would otherwise
// pile up.
var removeExclusive = true
