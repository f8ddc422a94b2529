package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestStateFilesArePrivate: the state file and its WAL are 0600, whether
// the file is new or was left 0644 by an older silo. Twin: the store works.
func TestStateFilesArePrivate(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(path string)
	}{
		{"new", func(string) {}},
		{"left 0644", func(path string) {
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			os.Chmod(path, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tc.prep(path)
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.w.Exec(`CREATE TABLE IF NOT EXISTS mode_check (x)`); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal"} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v (the store is not in WAL mode?)", filepath.Base(p), err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), st.Mode().Perm())
				}
			}
		})
	}
}
