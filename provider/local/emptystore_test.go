package local

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// TestEmptyStoreIsBboltsOwn: emptyStore's bytes are those bbolt writes
// when it sets up a new file, for the machine's page size and another, and
// bbolt opens them and takes a table. A change of bbolt's format that
// emptyStore does not follow fails here rather than at an onboarding.
func TestEmptyStoreIsBboltsOwn(t *testing.T) {
	for _, size := range []int{os.Getpagesize(), 16384} {
		path := filepath.Join(t.TempDir(), "bbolt.db")
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{PageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := emptyStore(size)
		if !bytes.Equal(got, want[:min(len(want), 4*size)]) || len(want) < len(got) {
			t.Fatalf("page size %d: emptyStore differs from the file bbolt set up (%d bytes, bbolt's %d)", size, len(got), len(want))
		}

		mine := filepath.Join(t.TempDir(), "mine.db")
		if err := os.WriteFile(mine, got, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err = bbolt.Open(mine, 0o600, &bbolt.Options{NoSync: true, NoGrowSync: true, NoFreelistSync: true})
		if err != nil {
			t.Fatalf("page size %d: bbolt does not open emptyStore's bytes: %v", size, err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("findings"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		})
		if err == nil {
			err = db.View(func(tx *bbolt.Tx) error {
				if v := tx.Bucket([]byte("findings")).Get([]byte("k")); string(v) != "v" {
					t.Errorf("page size %d: read %q back, want v", size, v)
				}
				return nil
			})
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
