package envelope

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
)

// LoadOrCreateMaster returns the master key kept in the file at path,
// creating the file with KeySize random bytes and mode 0600 if it does not
// exist. Creation writes a temporary file, syncs it, links it into place
// (which, unlike rename, never replaces a key another process created in the
// meantime) and syncs the directory.
//
// # Errors
//
// CodeFailedCheck if the file is readable or writable by group or others
// (the message says to chmod 600), or is not a regular file of KeySize bytes.
func LoadOrCreateMaster(path string) (*Master, error) {
	ms, err := LoadOrCreateMasters(path)
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// MaxMasterKeys is how many master keys the master key file may hold: the
// current one first, then the previous ones of an unfinished rotation.
const MaxMasterKeys = 4

// LoadOrCreateMasters is LoadOrCreateMaster returning every key in the file:
// the current one first, then the previous ones still listed because a
// rotation (AddMaster ... DropPreviousMasters) has not finished. A file of
// exactly KeySize bytes (the format before rotation) holds one key.
func LoadOrCreateMasters(path string) ([]*Master, error) {
	ms, err := loadMasters(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return ms, err
	}
	if err := createKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create master key %s: %w", path, err)
	}
	return loadMasters(path)
}

// AddMaster starts a master-key rotation: it generates a new master key and
// replaces the file at path (temp + fsync + rename + directory fsync) with
// the new key first, followed by every key it held. It returns the keys now
// in the file, the new one first. A crash at any point leaves either the old
// file or the new one, and each holds every key that wraps a data key.
func AddMaster(path string) ([]*Master, error) {
	raw, err := readMasterFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	if len(raw)/KeySize >= MaxMasterKeys {
		return nil, silo.Errorf(silo.CodeFailedCheck, "master key %s already holds %d keys from unfinished rotations; finish one with silo rotate master-key before starting another", path, len(raw)/KeySize)
	}
	buf := make([]byte, KeySize, KeySize+len(raw))
	defer clear(buf)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	buf = append(buf, raw...)
	if err := replaceKeyFile(path, buf, false); err != nil {
		return nil, fmt.Errorf("add master key to %s: %w", path, err)
	}
	return loadMasters(path)
}

// DropPreviousMasters finishes a master-key rotation: it replaces the file at
// path with one holding only its current (first) key, then overwrites the
// replaced file's blocks with random bytes and syncs them, so the previous
// keys are destroyed. Call it only once no data key is wrapped by them.
func DropPreviousMasters(path string) error {
	raw, err := readMasterFile(path)
	if err != nil {
		return err
	}
	defer clear(raw)
	if len(raw) == KeySize {
		return nil
	}
	if err := replaceKeyFile(path, raw[:KeySize], true); err != nil {
		return fmt.Errorf("drop previous master keys from %s: %w", path, err)
	}
	return shredStaleTemps(path)
}

// shredStaleTemps overwrites and removes temporary master key files left by
// a write that crashed before its rename (durable.Temps, and the names of
// silo versions before it), once a minute old (younger ones may be in
// flight in another process), and never the key file itself.
func shredStaleTemps(path string) error {
	cur, err := os.Lstat(path)
	if err != nil {
		return err
	}
	older, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, tmp := range append(durable.Temps(path), older...) {
		st, err := os.Lstat(tmp)
		if err != nil || !st.Mode().IsRegular() || os.SameFile(st, cur) || time.Since(st.ModTime()) < time.Minute {
			continue
		}
		f, err := os.OpenFile(tmp, os.O_WRONLY|noFollow, 0)
		if err != nil {
			continue
		}
		junk := make([]byte, st.Size())
		rand.Read(junk)
		_, werr := f.WriteAt(junk, 0)
		if werr == nil {
			werr = f.Sync()
		}
		f.Close()
		if werr != nil {
			return fmt.Errorf("shred %s: %w", tmp, werr)
		}
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("shred %s: %w", tmp, err)
		}
	}
	return durable.SyncDir(filepath.Dir(path))
}

// readMasterFile returns the checked raw content of the master key file.
func readMasterFile(path string) ([]byte, error) {
	if _, err := loadMasters(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxMasterKeys*KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	if len(raw)%KeySize != 0 || len(raw) == 0 || len(raw) > MaxMasterKeys*KeySize {
		clear(raw)
		return nil, silo.Errorf(silo.CodeFailedCheck, "master key %s changed while it was read; run the command again", path)
	}
	return raw, nil
}

// replaceKeyFile replaces path with data (mode 0600) durably, refusing a
// link in its place. With shredOld the file it replaces is overwritten with
// random bytes and synced after the rename (through a descriptor opened
// before it), so its blocks no longer hold the keys left out of data.
func replaceKeyFile(path string, data []byte, shredOld bool) error {
	var old *os.File
	if shredOld {
		f, err := os.OpenFile(path, os.O_RDWR|noFollow, 0)
		if err != nil {
			return err
		}
		old = f
		defer old.Close()
	}
	if err := durable.WriteFile(path, data, durable.Options{NoFollow: true}); err != nil {
		return err
	}
	if old != nil {
		st, err := old.Stat()
		if err != nil {
			return err
		}
		junk := make([]byte, st.Size())
		rand.Read(junk)
		if _, err := old.WriteAt(junk, 0); err != nil {
			return err
		}
		return old.Sync()
	}
	return nil
}

func loadMasters(path string) ([]*Master, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, silo.Errorf(silo.CodeFailedCheck, "cannot open master key %s (it must be a regular file, not a link): %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat master key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, silo.Errorf(silo.CodeFailedCheck, "master key %s is not a regular file; move it away and let silo create a new one only if no account uses it", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, silo.Errorf(silo.CodeFailedCheck, "master key %s is accessible to group or others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	key := make([]byte, MaxMasterKeys*KeySize+1)
	n, err := io.ReadFull(f, key)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	defer clear(key)
	if n == 0 || n%KeySize != 0 || n > MaxMasterKeys*KeySize {
		return nil, silo.Errorf(silo.CodeFailedCheck, "master key %s is not %d bytes (or a multiple, up to %d keys); restore it from backup", path, KeySize, MaxMasterKeys)
	}
	ms := make([]*Master, 0, n/KeySize)
	for off := 0; off < n; off += KeySize {
		m, err := NewMaster(key[off : off+KeySize])
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func createKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	key := make([]byte, KeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	return durable.WriteFile(path, key, durable.Options{Exclusive: true})
}
