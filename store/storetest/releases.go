package storetest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func testReleases(t *testing.T, s store.Store) {
	r1 := store.Release{ID: "rel-1", Stack: json.RawMessage(`{"functions":{"ingest":{}}}`), Artifacts: map[string]string{"ingest": "sha256:aa"}, Created: at(1), Note: "first"}
	r2 := store.Release{ID: "rel-2", Stack: json.RawMessage(`{}`), Created: at(2)}
	r3 := store.Release{ID: "rel-3", Stack: json.RawMessage(`{"v":3}`), Artifacts: map[string]string{"a": "1", "b": "2"}, Created: at(3)}
	update(t, s, func(tx store.Tx) error {
		for _, r := range []store.Release{r2, r1, r3} {
			if err := tx.PutRelease(r); err != nil {
				return err
			}
		}
		return nil
	})
	// Storing the same ID again is a no-op, not an error and not an overwrite.
	again := r1
	again.Note = "changed"
	update(t, s, func(tx store.Tx) error { return tx.PutRelease(again) })

	view(t, s, func(tx store.Tx) error {
		got, err := tx.Release("rel-1")
		if err != nil {
			return err
		}
		if d := cmp.Diff(r1, got, cmpOpts...); d != "" {
			t.Errorf("Release(rel-1) (-want +got):\n%s", d)
		}
		all, err := tx.Releases(0)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]store.Release{r3, r2, r1}, all, cmpOpts...); d != "" {
			t.Errorf("Releases(0) (-want +got):\n%s", d)
		}
		two, err := tx.Releases(2)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]store.Release{r3, r2}, two, cmpOpts...); d != "" {
			t.Errorf("Releases(2) (-want +got):\n%s", d)
		}
		_, err = tx.Release("rel-404")
		wantCode(t, "Release(missing)", err, silo.CodeNotFound)
		return nil
	})
}
