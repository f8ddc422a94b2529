package platform

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/silo-run/silo/internal/durable"

	silo "github.com/silo-run/silo"
)

// StoreMovedFile, in the data dir, records that silo store migrate copied
// the data dir's SQLite control plane (state.db) into PostgreSQL. From then
// on the SQLite state is out of date, and a platform opened on it (no
// Config.Store) is refused rather than serving and changing a stale copy
// beside the servers on PostgreSQL.
const StoreMovedFile = "store-moved.json"

// StoreMoved is what StoreMovedFile holds.
type StoreMoved struct {
	To string    `json:"to"` // the database URL, its password replaced by xxxxx
	At time.Time `json:"at"`
}

// MarkStoreMoved writes StoreMovedFile in dataDir.
func MarkStoreMoved(dataDir string, m StoreMoved) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dataDir, StoreMovedFile), b, durable.Options{})
}

// stateMoved refuses the data dir's SQLite state once StoreMovedFile is
// there. There is no way back that keeps the changes made on PostgreSQL:
// the refusal says what removing the file would do.
func stateMoved(dataDir string) error {
	m, moved := ReadStoreMoved(dataDir)
	if !moved {
		return nil
	}
	path := filepath.Join(dataDir, StoreMovedFile)
	return silo.Errorf(silo.CodeFailedCheck, "the control plane of %s was copied to %s by silo store migrate%s, so its SQLite state is out of date: every change since is only in that database; pass --store or set SILO_STORE to that database (silo cannot move the state back to SQLite: removing %s would make silo use the SQLite state as it was then, undoing every change since in the registry, and silo apply would then roll the accounts back to it; see docs/operations.md)", dataDir, m.To, m.When(), path)
}

// ReadStoreMoved reports whether dataDir holds StoreMovedFile, and what it
// records. A file that is there but cannot be read or parsed still says
// the data dir moved: m then names "a PostgreSQL database" and no time.
func ReadStoreMoved(dataDir string) (m StoreMoved, moved bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, StoreMovedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return StoreMoved{}, false
	}
	if err != nil || json.Unmarshal(b, &m) != nil || m.To == "" {
		m = StoreMoved{To: "a PostgreSQL database"}
	}
	return m, true
}

// When is " on <date and time, UTC>" of the move, or "" when m records
// none.
func (m StoreMoved) When() string {
	if m.At.IsZero() {
		return ""
	}
	return " on " + m.At.UTC().Format("2006-01-02 15:04 UTC")
}

// StoreFile, in the data dir, records that the installation's control
// plane is in PostgreSQL: it is written the first time a platform opens on
// a data dir without state.db with a PostgreSQL store (Config.Store) and
// passes CheckRegistry. It names no database (a URL could carry a password), only
// the kind of store.
const StoreFile = "store.json"

// storeRecord is what StoreFile holds.
type storeRecord struct {
	Store string `json:"store"` // "postgres"
}

// recordStore writes StoreFile in dataDir unless it is there already, or
// the data dir has a state.db: an installation moved from SQLite, which
// StoreMovedFile covers (removing that file on purpose makes silo use the
// SQLite state again).
func recordStore(dataDir string) error {
	path := filepath.Join(dataDir, StoreFile)
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(dataDir, "state.db")); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	b, err := json.Marshal(storeRecord{Store: "postgres"})
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, durable.Options{})
}

// stateElsewhere refuses to open the data dir's SQLite state (and so to
// create an empty state.db) when StoreFile says the installation's control
// plane is in PostgreSQL.
func stateElsewhere(dataDir, dataDirName string) error {
	if _, err := os.Lstat(filepath.Join(dataDir, StoreFile)); err != nil {
		return nil
	}
	return silo.Errorf(silo.CodeFailedCheck, "this installation's control plane is in PostgreSQL (the data dir %s records it in %s); pass --store or set $SILO_STORE to its database (see docs/operations.md)", dataDirName, StoreFile)
}
