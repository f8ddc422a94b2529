package local

// The files a new account's data.key holds (keyring.go): storage.key,
// config.json and resources.json are put together in memory while the
// account is staged (account.held) and written into data.key with its
// ring, one file and one sync; each is read from its own file once that
// is written, else from data.key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// readJSON decodes the account's file name (config.json or resources.json)
// into v: the file, else its copy in data.key, else v is left untouched.
// While the account is staged it reads the copy being put together.
func (a *account) readJSON(name string, v any) error {
	if a.held != nil {
		if b, ok := a.held[name]; ok {
			return decodeHeld(name, b, v)
		}
		return nil
	}
	found, err := readJSONFound(a.dir, name, v)
	if found || err != nil {
		return err
	}
	held, err := readHeld(a.dir)
	if err != nil {
		return err
	}
	if b, ok := held[name]; ok {
		return decodeHeld(name, b, v)
	}
	return nil
}

// readHeld returns the files data.key in dir holds (none for a ring alone
// or a missing data.key).
func readHeld(dir string) (map[string][]byte, error) {
	b, err := readNoFollow(filepath.Join(dir, fileDataKey))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", fileDataKey, err)
	}
	_, held, err := decodeAccount(b)
	if err != nil {
		return nil, &fileDamage{name: fileDataKey, reason: err.Error()}
	}
	return held, nil
}

// decodeHeld decodes the copy b of file name held in data.key.
func decodeHeld(name string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return &fileDamage{name: fileDataKey, reason: "its copy of " + name + " is not valid JSON: " + err.Error()}
	}
	return nil
}

// putFile replaces the account's file name with data (replaceFile: the
// caller syncs the directory), or, while the account is staged, keeps data
// for data.key.
func (a *account) putFile(name string, data []byte) error {
	if a.held != nil {
		a.held[name] = data
		return nil
	}
	return replaceFile(a.dir, name, data)
}
