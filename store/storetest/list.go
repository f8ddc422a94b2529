package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/silo-run/silo/store"
)

// testLister lists the journal (every state, in order, paged) and the
// settings through store.Lister, which a store that can be copied whole
// implements; a store without it skips.
func testLister(t *testing.T, s store.Store) {
	var keys []string
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if _, ok := tx.(store.Lister); !ok {
			t.Skip("the store's Tx does not implement store.Lister")
		}
		for _, k := range []string{"apply/a/1", "apply/b/1", "apply/c/1"} {
			seq, err := tx.AddIntent(store.Intent{Key: k, Account: "a", Action: "apply", State: store.IntentPending})
			if err != nil {
				return err
			}
			if k == "apply/b/1" {
				if err := tx.FinishIntent(seq, store.IntentFailed, "boom"); err != nil {
					return err
				}
			}
			keys = append(keys, k)
		}
		if err := tx.PutSetting("one", "1"); err != nil {
			return err
		}
		return tx.PutSetting("two", "2")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(context.Background(), func(tx store.Tx) error {
		l := tx.(store.Lister)
		all, err := l.Journal(0, 0)
		if err != nil {
			return err
		}
		var got []string
		for _, in := range all {
			got = append(got, in.Key+":"+string(in.State))
		}
		want := []string{keys[0] + ":pending", keys[1] + ":failed", keys[2] + ":pending"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Journal(0, 0) (-want +got):\n%s", diff)
		}
		page, err := l.Journal(all[0].Seq, 1)
		if err != nil {
			return err
		}
		if len(page) != 1 || page[0].Key != keys[1] {
			t.Errorf("Journal(first, 1): got %v, want [%s]", page, keys[1])
		}
		set, err := l.Settings()
		if err != nil {
			return err
		}
		if diff := cmp.Diff(map[string]string{"one": "1", "two": "2"}, set); diff != "" {
			t.Errorf("Settings (-want +got):\n%s", diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
