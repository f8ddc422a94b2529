package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"go.etcd.io/bbolt"
)

// The write-ahead log of a store (data.wal next to data.db).
//
// A bbolt commit syncs twice (its pages, then its meta page). A commit group
// (commit.go) instead appends the after-images of its writes (table, key,
// sealed value or deletion) to the account's log as one record, syncs the
// log once (fdatasync), and only then puts them in the store's overlay, an
// in-memory map that every read and write of the store consults before
// bbolt, and answers its writers. bbolt is not written between checkpoints,
// so the store file on disk is always a whole bbolt state that bbolt itself
// synced: a power loss cannot leave it torn.
//
// A checkpoint applies the overlay to bbolt in one ordinary (synced)
// transaction that also records the log's generation in the store
// (metaBucket), then restarts the log under the next generation. It runs
// every checkpointGroups groups or checkpointBytes of log, and before
// anything that ends or bypasses the commit groups: closing the store (idle
// close, eviction, Provider.Close, deleting the account) and a write
// transaction outside the groups (a table created or removed by apply). A
// store that faulted is closed without one (its log is replayed by the
// next opener), and so is one whose file was found replaced at its path
// (its writes go where they went before the log: to the file it has open).
//
// Every opener of the store (openStore, once bbolt has opened the file and
// checkStore checked it: the file is a state bbolt synced, whatever the
// log holds) reads the log before anything reads the store: records of a
// generation newer than the store's are applied to it in a checkpoint, so a crash at any point (between a
// group's sync and its answer, between a checkpoint's commit and the log's
// restart, in the middle of a replay) leaves either the log to replay again
// or a store that already holds it. A record whose checksum does not match
// (a torn write at the tail), or whose generation is not the header's (a
// record of an earlier cycle of the file), ends the log.
//
// The log holds what bbolt holds and nothing more: table names and keys as
// they are, values sealed (seal.go), deletions as the key alone.
//
// The file is overwritten in place from its start after each checkpoint,
// so once it has reached its usual size its syncs write no inode; it stays
// at most about checkpointBytes plus one group's record, rounded up to
// logChunk. While it grows (a new log's first cycle), a record that would
// go past its end extends it by zeros to the next multiple of logChunk in
// the same sync, so that the syncs of the records after it, until that
// chunk is full, write no inode either. A record's length of zero ends the
// log (readLog), as a torn record does, so zeros past the last record
// read as the log's end.

const (
	fileLog = "data.wal"

	logMagic      = "silo-wal"
	logHeaderSize = 24 // magic, generation, CRC-32C of the 16 bytes before, 4 bytes zero
	recHeaderSize = 16 // payload length, CRC-32C of generation and payload, generation

	// metaLogGen, in metaBucket, is the generation of the last log
	// whose records the store holds.
	metaLogGen = "log"

	opPut = 1
	opDel = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logChunk is how far a growing log is extended at once (by zeros).
const logChunk = 16 << 10

var zeroChunk [logChunk]byte

// A checkpoint costs one bbolt commit (two syncs) and a sync of the log:
// every few hundred groups it adds a hundredth of a sync or so to each. It
// bounds the overlay's memory (about the log's size per open store, so
// 256 KiB of log is at most 64 MiB at DefaultMaxOpen stores, all written
// to) and the work of a replay. Variables so that tests can checkpoint
// often.
var (
	checkpointGroups       = 512
	checkpointBytes  int64 = 256 << 10
)

// logFile is the log's file: an *os.File whose Sync is fdatasync. It is an
// interface so that a test can put a layer between the log and the real
// file, one that forgets what was written after the last sync (a power
// loss).
type logFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

type osLogFile struct{ *os.File }

func (f osLogFile) Sync() error { return datasync(f.File) }

// openLogFile opens the log at path, creating it if missing (created says
// so: the caller syncs the directory before trusting the file with a write).
var openLogFile = func(path string) (f logFile, created bool, err error) {
	of, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		of, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, fileMode)
		created = true
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, false, errLink(path)
	}
	if err != nil {
		return nil, false, err
	}
	if st, err := of.Stat(); err != nil || !st.Mode().IsRegular() {
		of.Close()
		if err == nil {
			err = damagedf("%s is not a regular file (%s)", fileLog, kindOf(st))
		}
		return nil, false, err
	}
	return osLogFile{of}, created, nil
}

// store is an open table store: its bbolt file, its log and its overlay.
type store struct {
	db *bbolt.DB
	p  *Provider
	a  *account

	// mu is held by the commit group running on the store, by a
	// checkpoint and by a write transaction outside the groups; it
	// guards the fields below.
	mu     sync.Mutex
	log    logFile
	gen    uint64 // the generation of the log's records
	end    int64  // where the next record goes
	size   int64  // how far the file is known to reach: a record past it extends it
	groups int    // records since the log's start
	err    error  // the log takes no more records (a restart, or the clearing of a failed record, failed)
	closed bool

	// ov is the overlay; a checkpoint replaces it with an empty one once
	// bbolt holds it. A reader loads it before it begins its bbolt
	// transaction, so it sees each write in one or the other.
	ov atomic.Pointer[overlay]
}

// openStore reads the log of the store db (account a's, just opened) and
// applies any record the store does not hold yet, before the store is read.
func (p *Provider) openStore(a *account, db *bbolt.DB) (*store, error) {
	path := filepath.Join(a.dir, fileLog)
	f, created, err := openLogFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", fileLog, err)
	}
	if created {
		if err := syncDir(a.dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	s := &store{db: db, p: p, a: a, log: f, size: logSize(f)}
	s.ov.Store(newOverlay())
	if err := s.replay(); err != nil {
		f.Close()
		return nil, fmt.Errorf("replay %s: %w", fileLog, err)
	}
	return s, nil
}

func (s *store) replay() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, err := storeLogGen(s.db)
	if err != nil {
		return err
	}
	gen, ov, n, end, err := readLog(s.log)
	if err != nil {
		return err
	}
	switch {
	case gen > stored && n > 0:
		s.gen, s.groups, s.end = gen, n, end
		s.ov.Store(ov)
		if beforeReplay != nil {
			beforeReplay()
		}
		if err := s.checkpointLocked(); err != nil {
			s.openedFailing(err)
		}
		return nil
	case gen > stored:
		s.gen, s.end = gen, logHeaderSize
		return nil
	default: // a new log, or one the store holds already
		s.gen = max(gen, stored)
		if err := s.restart(); err != nil {
			s.openedFailing(err)
		}
		return nil
	}
}

// openedFailing notes that the checkpoint or the log's restart at an open
// failed (a full disk, say). The store opens all the same: the overlay and
// the store serve reads as they are, and a write fails with its own error
// (after a failed restart the log takes no records until the store is
// opened again; after a failed checkpoint the log keeps the replayed
// writes and the next checkpoint tries again).
func (s *store) openedFailing(err error) {
	s.p.log.Warn("account store opened without its checkpoint or log restart; reads are served, writes fail until it succeeds", "account", s.a.id, "err", err)
}

// logSize returns the length of the log's file, or 0 when it cannot say (a
// test's layer over the file): its first record then extends it again.
func logSize(f logFile) int64 {
	if sf, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if st, err := sf.Stat(); err == nil {
			return st.Size()
		}
	}
	return 0
}

// storeLogGen returns the generation of the last log db holds.
func storeLogGen(db *bbolt.DB) (gen uint64, err error) {
	err = db.View(func(tx *bbolt.Tx) error {
		if m := tx.Bucket([]byte(metaBucket)); m != nil {
			if v := m.Get([]byte(metaLogGen)); len(v) == 8 {
				gen = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return gen, err
}

// readLog returns the log's generation (0: no valid header), its records
// applied in order to an overlay, their number and where they end.
func readLog(f io.ReaderAt) (gen uint64, ov *overlay, n int, end int64, err error) {
	ov = newOverlay()
	var hdr [logHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, ov, 0, 0, nil
		}
		return 0, nil, 0, 0, err
	}
	if string(hdr[:8]) != logMagic || crc32.Checksum(hdr[:16], castagnoli) != binary.BigEndian.Uint32(hdr[16:20]) {
		return 0, ov, 0, 0, nil
	}
	gen = binary.BigEndian.Uint64(hdr[8:16])
	end = logHeaderSize
	var rh [recHeaderSize]byte
	for {
		if _, err := f.ReadAt(rh[:], end); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, nil, 0, 0, err
		}
		size := binary.BigEndian.Uint32(rh[0:4])
		if binary.BigEndian.Uint64(rh[8:16]) != gen || size == 0 || size > maxRecord {
			break
		}
		rec := make([]byte, 8+int(size))
		copy(rec, rh[8:16])
		if _, err := f.ReadAt(rec[8:], end+recHeaderSize); err != nil {
			if errors.Is(err, io.EOF) {
				break // torn: the tail of the file
			}
			return 0, nil, 0, 0, err
		}
		if crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(rh[4:8]) {
			break
		}
		ch, ok := decodeChanges(rec[8:])
		if !ok {
			break
		}
		ov.apply(ch)
		n++
		end += recHeaderSize + int64(size)
	}
	return gen, ov, n, end, nil
}

// logPending reports whether the log next to the store db (at path) holds
// writes db does not, without changing either.
func logPending(db *bbolt.DB, path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	stored, err := storeLogGen(db)
	if err != nil {
		return false, err
	}
	gen, _, n, _, err := readLog(f)
	return gen > stored && n > 0, err
}

// maxRecord bounds a record's length as read: a length past it is not a
// record (a group's record is at most maxGroup values of bbolt's maximum
// size, far less in practice).
const maxRecord = 1 << 30

// restart starts the log again under the next generation. The caller holds
// s.mu; on failure the log takes no more records until the store is
// opened again.
func (s *store) restart() error {
	var hdr [logHeaderSize]byte
	copy(hdr[:8], logMagic)
	binary.BigEndian.PutUint64(hdr[8:16], s.gen+1)
	binary.BigEndian.PutUint32(hdr[16:20], crc32.Checksum(hdr[:16], castagnoli))
	_, err := s.log.WriteAt(hdr[:], 0)
	if err == nil {
		err = s.log.Sync()
	}
	if err != nil {
		s.err = fmt.Errorf("restart %s: %w", fileLog, err)
		return s.err
	}
	s.gen++
	s.end, s.groups = logHeaderSize, 0
	return nil
}

// logGroup appends ch as one record and syncs the log. A record whose
// write or sync failed is overwritten with zeros where it starts, so that
// no later read of the file takes it for a logged group (its writers get
// an error; a failed fdatasync can leave it in the page cache).
func (s *store) logGroup(ch *changes) error {
	rec := ch.encode(s.gen)
	_, err := s.log.WriteAt(rec, s.end)
	size := s.size
	if next := s.end + int64(len(rec)); err == nil && next > size {
		size = (next + logChunk - 1) / logChunk * logChunk
		_, err = s.log.WriteAt(zeroChunk[:size-next], next)
	}
	if err == nil {
		err = s.log.Sync()
	}
	if err != nil {
		if _, zerr := s.log.WriteAt(make([]byte, recHeaderSize), s.end); zerr != nil {
			s.err = fmt.Errorf("clear a failed record of %s: %w", fileLog, zerr)
		}
		return fmt.Errorf("write %s: %w", fileLog, err)
	}
	s.end += int64(len(rec))
	s.size = size
	s.groups++
	if afterLogSync != nil {
		afterLogSync()
	}
	return nil
}

// due says that a checkpoint is due.
func (s *store) due() bool {
	return s.groups >= checkpointGroups || s.end >= checkpointBytes
}

// checkpointLocked applies the overlay to bbolt in one transaction, which
// records the log's generation, then restarts the log. The caller holds
// s.mu. On failure the overlay and the log stay as they were (the log is
// replayed by the next opener).
func (s *store) checkpointLocked() error {
	if s.groups == 0 {
		return nil
	}
	ov := s.ov.Load()
	err := s.p.runTx(s.a, s, true, func(tx *bbolt.Tx) error {
		for table, t := range ov.tables {
			b := tx.Bucket([]byte(table))
			if b == nil {
				continue // removed since: a removal checkpoints first, so only by a replay
			}
			for k, v := range t.vals {
				var err error
				if v == nil {
					err = b.Delete([]byte(k))
				} else {
					err = b.Put([]byte(k), v)
				}
				if err != nil {
					return fmt.Errorf("table %s: %w", table, err)
				}
			}
		}
		m, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return err
		}
		return m.Put([]byte(metaLogGen), binary.BigEndian.AppendUint64(nil, s.gen))
	})
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", fileLog, err)
	}
	if afterCheckpoint != nil {
		afterCheckpoint()
	}
	s.ov.Store(newOverlay())
	return s.restart()
}

// update runs fn in a write transaction outside the commit groups (apply's
// tables), after a checkpoint, so that the store holds every logged write
// first and the log is empty.
func (s *store) update(fn func(*bbolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return bbolt.ErrDatabaseNotOpen
	}
	if s.err != nil {
		return s.err
	}
	if err := s.checkpointLocked(); err != nil {
		return err
	}
	return s.p.runTx(s.a, s, true, fn)
}

// close checkpoints the store and closes it and its log (bbolt waits for
// its running transactions). A failed checkpoint leaves the log to the
// next opener.
func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var errs []error
	if s.err == nil {
		if err := s.checkpointLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	s.closed = true
	errs = append(errs, s.db.Close(), s.log.Close())
	return errors.Join(errs...)
}

// abandon closes a store that faulted, without a checkpoint.
func (s *store) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.log.Close()
	s.db.Close()
}

// Test hooks, set by tests only: afterLogSync runs after a group's record
// is synced and before its writers are answered, afterCheckpoint between a checkpoint's
// commit to bbolt and the log's restart, beforeReplay before an opener
// applies the records it found.
var afterLogSync, afterCheckpoint, beforeReplay func()
