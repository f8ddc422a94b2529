package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile, in the data dir, is the file whose lock (flock) says which
// process uses the data dir as a whole: silo up and silo server take it
// before they open anything (so from before their build until they exit),
// and silo store migrate takes it for its whole copy. The kernel releases
// the lock when its process dies, so a crash leaves nothing stale;
// ServerFile only says where a server is found.
//
// Several silo server processes on one PostgreSQL store share the data dir
// (a shared lock each); silo up, a server on the SQLite state and silo
// store migrate hold it alone (an exclusive lock).
const LockFile = "datadir.lock"

// Holder says which process holds the data dir's lock, and what it is
// doing: it is written into LockFile by the process that takes the lock.
type Holder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"` // "silo up", "silo server", "silo store migrate"
	Phase   string `json:"phase"`   // "starting", "serving", "copying the state"
}

// HeldError is the error of LockDataDir when another process holds the
// lock. Holder is the zero Holder when the lock file does not say who (a
// holder that has not written it yet).
type HeldError struct{ Holder Holder }

func (e *HeldError) Error() string {
	if e.Holder.PID == 0 {
		return "another silo process holds the data dir"
	}
	return fmt.Sprintf("%s (pid %d) is %s on the data dir", e.Holder.Command, e.Holder.PID, e.Holder.Phase)
}

// DataDirLock is a lock on the data dir held by this process (LockDataDir).
// Its methods are not safe for concurrent use.
type DataDirLock struct {
	f         *os.File
	h         Holder
	exclusive bool
}

// LockDataDir takes the data dir's lock (LockFile) without waiting:
// exclusive for a process that must be the data dir's only user, shared
// for a server that may run beside others on one PostgreSQL store. It
// records h (with this process's PID) in the lock file. A data dir that
// does not exist has no user: LockDataDir then returns a nil lock (whose
// methods do nothing) and no error.
//
// # Errors
//
// *HeldError when another process holds the lock in a way that excludes
// this one; the open's error when the lock file cannot be opened.
func LockDataDir(dataDir string, exclusive bool, h Holder) (*DataDirLock, error) {
	f, err := os.OpenFile(filepath.Join(dataDir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dataDir); errors.Is(serr, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open the data dir's lock file: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Holder: readHolder(f)}
		}
		return nil, fmt.Errorf("lock the data dir: %w", err)
	}
	h.PID = os.Getpid()
	l := &DataDirLock{f: f, h: h, exclusive: exclusive}
	l.write()
	return l, nil
}

// DataDirHeld reports which process holds the data dir's lock, if one
// does: it takes the lock exclusively for a moment and lets it go.
func DataDirHeld(dataDir string) (Holder, bool) {
	l, err := LockDataDir(dataDir, true, Holder{})
	var held *HeldError
	if errors.As(err, &held) {
		return held.Holder, true
	}
	if l != nil {
		l.unlockOnly()
	}
	return Holder{}, false
}

// SetPhase records what the holder does now ("serving").
func (l *DataDirLock) SetPhase(phase string) {
	if l == nil {
		return
	}
	l.h.Phase = phase
	l.write()
}

// Release lets the lock go, and its record with an exclusive lock (a
// shared one may name another holder by now). The lock file stays: another
// process may have it open.
func (l *DataDirLock) Release() {
	if l == nil {
		return
	}
	if l.exclusive {
		l.f.Truncate(0)
	}
	l.f.Close() // releases the lock
}

// unlockOnly lets the lock go leaving the record as it was (DataDirHeld's
// look must not erase what a holder about to lock again wrote).
func (l *DataDirLock) unlockOnly() { l.f.Close() }

// write replaces the lock file's record with l.h. Holders sharing the lock
// may write over each other: the record names the last one.
func (l *DataDirLock) write() {
	if l.h.Command == "" {
		return
	}
	b, err := json.Marshal(l.h)
	if err != nil {
		return
	}
	l.f.Truncate(0)
	l.f.WriteAt(b, 0)
}

// readHolder reads the record of the lock file f; the zero Holder when it
// holds none.
func readHolder(f *os.File) Holder {
	b := make([]byte, 512)
	n, _ := f.ReadAt(b, 0)
	var h Holder
	if json.Unmarshal(b[:n], &h) != nil || h.PID <= 0 {
		return Holder{}
	}
	return h
}
