package envelope

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	silo "github.com/silo-run/silo"
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
	m, err := loadMaster(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	if err := createKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create master key %s: %w", path, err)
	}
	return loadMaster(path)
}

func loadMaster(path string) (*Master, error) {
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
	key := make([]byte, KeySize+1)
	n, err := io.ReadFull(f, key)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	defer clear(key)
	if n != KeySize {
		return nil, silo.Errorf(silo.CodeFailedCheck, "master key %s is not %d bytes; restore it from backup", path, KeySize)
	}
	return NewMaster(key[:KeySize])
}

func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key := make([]byte, KeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".master.key.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
