package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func testResources(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("other", 0))
	mk := func(typ silo.ResourceType, name string, spec any) silo.Resource {
		r, err := silo.NewResource(typ, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	fn := mk(silo.TypeFunction, "ingest", map[string]any{"memory": "64MiB"})
	route := mk(silo.TypeRoute, "/findings", map[string]any{"fn": "ingest"})
	table := mk(silo.TypeTable, "findings", nil)
	bucket := mk(silo.TypeBucket, "raw", map[string]any{})
	update(t, s, func(tx store.Tx) error {
		for _, r := range []silo.Resource{route, fn, table, bucket} {
			if err := tx.PutResource("acme", r); err != nil {
				return err
			}
		}
		return tx.PutResource("other", table)
	})
	list := func(id silo.AccountID) []silo.Resource {
		t.Helper()
		var rs []silo.Resource
		view(t, s, func(tx store.Tx) error {
			var err error
			rs, err = tx.Resources(id)
			return err
		})
		return rs
	}
	want := []silo.Resource{bucket, fn, route, table} // sorted by "type/name"
	if d := cmp.Diff(want, list("acme"), cmpOpts...); d != "" {
		t.Errorf("Resources (-want +got):\n%s", d)
	}

	// Put replaces; delete forgets; deleting a missing one is fine.
	fn2 := mk(silo.TypeFunction, "ingest", map[string]any{"memory": "128MiB"})
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutResource("acme", fn2); err != nil {
			return err
		}
		if err := tx.DeleteResource("acme", silo.TypeRoute, "/findings"); err != nil {
			return err
		}
		return tx.DeleteResource("acme", silo.TypeRoute, "/never-there")
	})
	want = []silo.Resource{bucket, fn2, table}
	if d := cmp.Diff(want, list("acme"), cmpOpts...); d != "" {
		t.Errorf("after replace and delete (-want +got):\n%s", d)
	}
	// The other account is untouched.
	if d := cmp.Diff([]silo.Resource{table}, list("other"), cmpOpts...); d != "" {
		t.Errorf("other account (-want +got):\n%s", d)
	}

	err := s.View(context.Background(), func(tx store.Tx) error { _, err := tx.Resources("nobody"); return err })
	wantCode(t, "Resources(nobody)", err, silo.CodeNotFound)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.PutResource("nobody", fn) })
	wantCode(t, "PutResource(nobody)", err, silo.CodeNotFound)
}

func testIntents(t *testing.T, s store.Store) {
	ch := &silo.Change{Op: silo.OpCreate, Type: silo.TypeTable, Name: "findings"}
	var seqs []int64
	update(t, s, func(tx store.Tx) error {
		for i, k := range []string{"apply/acme/table/findings/h1", "create-account/beta", "apply/acme/function/ingest/h2"} {
			in := store.Intent{Key: k, Account: "acme", Action: "apply", Created: at(i), Updated: at(i)}
			if i == 0 {
				in.Change = ch
			}
			seq, err := tx.AddIntent(in)
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return nil
	})
	if !(seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Fatalf("intent sequence numbers %v are not increasing", seqs)
	}

	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.AddIntent(store.Intent{Key: "create-account/beta", Account: "beta", Action: "create-account"})
		return err
	})
	wantCode(t, "duplicate intent key", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error { _, err := tx.AddIntent(store.Intent{Action: "apply"}); return err })
	wantCode(t, "intent without key", err, silo.CodeInvalid)

	pending := func() []string {
		t.Helper()
		var keys []string
		view(t, s, func(tx store.Tx) error {
			ins, err := tx.PendingIntents()
			for _, in := range ins {
				keys = append(keys, in.Key)
			}
			return err
		})
		return keys
	}
	want := []string{"apply/acme/table/findings/h1", "create-account/beta", "apply/acme/function/ingest/h2"}
	if d := cmp.Diff(want, pending()); d != "" {
		t.Errorf("PendingIntents (-want +got):\n%s", d)
	}

	update(t, s, func(tx store.Tx) error {
		if err := tx.FinishIntent(seqs[1], store.IntentDone, ""); err != nil {
			return err
		}
		return tx.FinishIntent(seqs[0], store.IntentFailed, "provider said no")
	})
	if d := cmp.Diff([]string{"apply/acme/function/ingest/h2"}, pending()); d != "" {
		t.Errorf("PendingIntents after finishing (-want +got):\n%s", d)
	}

	view(t, s, func(tx store.Tx) error {
		in, err := tx.IntentByKey("apply/acme/table/findings/h1")
		if err != nil {
			return err
		}
		if in.Seq != seqs[0] || in.State != store.IntentFailed || in.Error != "provider said no" || in.Account != "acme" || in.Action != "apply" || !in.Created.Equal(at(0)) {
			t.Errorf("IntentByKey: got %+v", in)
		}
		if d := cmp.Diff(ch, in.Change); d != "" {
			t.Errorf("intent change (-want +got):\n%s", d)
		}
		if in.Updated.Before(in.Created) {
			t.Errorf("Updated %v before Created %v", in.Updated, in.Created)
		}
		_, err = tx.IntentByKey("no/such/key")
		wantCode(t, "IntentByKey(missing)", err, silo.CodeNotFound)
		return nil
	})
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.FinishIntent(seqs[2]+100, store.IntentDone, "") })
	wantCode(t, "FinishIntent(missing)", err, silo.CodeNotFound)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.FinishIntent(seqs[2], "maybe", "") })
	wantCode(t, "FinishIntent(bad state)", err, silo.CodeInvalid)

	// TouchIntents moves the pending intent's Updated only: the finished
	// ones keep theirs, an unknown seq is no error.
	updated := func() map[string]time.Time {
		t.Helper()
		out := map[string]time.Time{}
		view(t, s, func(tx store.Tx) error {
			for _, k := range []string{"apply/acme/table/findings/h1", "create-account/beta", "apply/acme/function/ingest/h2"} {
				in, err := tx.IntentByKey(k)
				if err != nil {
					return err
				}
				out[k] = in.Updated
			}
			return nil
		})
		return out
	}
	before := updated()
	update(t, s, func(tx store.Tx) error { return tx.TouchIntents(append(seqs, seqs[2]+100), at(30)) })
	after := updated()
	for k, u := range after {
		want := before[k]
		if k == "apply/acme/function/ingest/h2" {
			want = at(30)
		}
		if !u.Equal(want) {
			t.Errorf("after TouchIntents, %s was updated %v, want %v", k, u, want)
		}
	}
}
