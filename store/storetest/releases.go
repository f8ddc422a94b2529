package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

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
		all, err := tx.Releases(0, false)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]store.Release{r3, r2, r1}, all, cmpOpts...); d != "" {
			t.Errorf("Releases(0) (-want +got):\n%s", d)
		}
		two, err := tx.Releases(2, false)
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

// rollout returns a rollout record of release rel created at minute m.
func rollout(id, rel string, active bool, m int) store.Rollout {
	state := "succeeded"
	if active {
		state = "running"
	}
	return store.Rollout{ID: id, Release: rel, State: state, Active: active, Created: at(m), Updated: at(m),
		Status: json.RawMessage(`{"rings":[{"name":"canary","phase":"waiting"}]}`)}
}

func stepKey(ro string, acct silo.AccountID, step string) store.StepKey {
	return store.StepKey{Rollout: ro, Ring: "canary", Account: acct, Step: step}
}

func testCurrentRelease(t *testing.T, s store.Store) {
	view(t, s, func(tx store.Tx) error {
		_, err := tx.CurrentRelease()
		wantCode(t, "CurrentRelease before any", err, silo.CodeNotFound)
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		for _, id := range []string{"rel-1", "rel-2"} {
			if err := tx.PutRelease(store.Release{ID: id, Created: at(1)}); err != nil {
				return err
			}
		}
		return nil
	})
	// A release that is not stored never becomes current, and the
	// current one stays.
	err := s.Update(context.Background(), func(tx store.Tx) error { _, err := tx.SetCurrentRelease("rel-404"); return err })
	wantCode(t, "SetCurrentRelease(missing)", err, silo.CodeNotFound)
	for _, c := range []struct{ set, prev string }{{"rel-1", ""}, {"rel-2", "rel-1"}, {"rel-2", "rel-2"}} {
		update(t, s, func(tx store.Tx) error {
			prev, err := tx.SetCurrentRelease(c.set)
			if err != nil {
				return err
			}
			if prev != c.prev {
				t.Errorf("SetCurrentRelease(%s) replaced %q, want %q", c.set, prev, c.prev)
			}
			return nil
		})
	}
	err = s.Update(context.Background(), func(tx store.Tx) error { _, err := tx.SetCurrentRelease("rel-404"); return err })
	wantCode(t, "SetCurrentRelease(missing) after one", err, silo.CodeNotFound)
	view(t, s, func(tx store.Tx) error {
		if cur, err := tx.CurrentRelease(); err != nil || cur != "rel-2" {
			t.Errorf("CurrentRelease = %q, %v; want rel-2", cur, err)
		}
		return nil
	})
}

func testRollouts(t *testing.T, s store.Store) {
	ro1, ro2, ro3 := rollout("ro-000001", "rel-1", false, 1), rollout("ro-000002", "rel-2", false, 2), rollout("ro-000003", "rel-3", true, 3)
	ro3.Previous, ro3.Owner, ro3.Lease = "rel-2", "server-a", at(4)
	update(t, s, func(tx store.Tx) error {
		for _, r := range []store.Rollout{ro1, ro2, ro3} {
			if err := tx.CreateRollout(r); err != nil {
				return err
			}
		}
		return nil
	})
	for _, r := range []*store.Rollout{&ro1, &ro2, &ro3} {
		r.Version = 1
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.Rollout("ro-000003")
		if err != nil {
			return err
		}
		if d := cmp.Diff(ro3, got, cmpOpts...); d != "" {
			t.Errorf("Rollout(ro-000003) (-want +got):\n%s", d)
		}
		active, err := tx.ActiveRollout()
		if err != nil || active.ID != "ro-000003" {
			t.Errorf("ActiveRollout = %s, %v; want ro-000003", active.ID, err)
		}
		all, err := tx.Rollouts(0)
		if err != nil {
			return err
		}
		if d := cmp.Diff([]store.Rollout{ro3, ro2, ro1}, all, cmpOpts...); d != "" {
			t.Errorf("Rollouts(0), newest first (-want +got):\n%s", d)
		}
		two, err := tx.Rollouts(2)
		if err != nil {
			return err
		}
		if len(two) != 2 || two[0].ID != "ro-000003" || two[1].ID != "ro-000002" {
			t.Errorf("Rollouts(2) = %v, want ro-000003 and ro-000002", two)
		}
		if n, err := tx.CountRollouts(); err != nil || n != 3 {
			t.Errorf("CountRollouts = %d, %v; want 3", n, err)
		}
		_, err = tx.Rollout("ro-404")
		wantCode(t, "Rollout(missing)", err, silo.CodeNotFound)
		return nil
	})

	// One active rollout at a time, whether created or made active.
	err := s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000004", "rel-4", true, 5)) })
	wantCode(t, "CreateRollout(second active)", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error { r := ro1; r.Active = true; return tx.UpdateRollout(r) })
	wantCode(t, "UpdateRollout(second active)", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000001", "rel-9", false, 5)) })
	wantCode(t, "CreateRollout(ID used)", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateRollout(store.Rollout{ID: "ro-000005", State: "running"}) })
	wantCode(t, "CreateRollout(no release)", err, silo.CodeInvalid)

	// Must twins: the active one finishes, then another may be active; a
	// write with the Version read succeeds once, and again is stale.
	upd := ro3
	upd.State, upd.Active, upd.Owner, upd.Lease, upd.Updated = "succeeded", false, "", time.Time{}, at(6)
	upd.Status = json.RawMessage(`{"rings":[{"name":"canary","phase":"promoted"}]}`)
	update(t, s, func(tx store.Tx) error { return tx.UpdateRollout(upd) })
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.UpdateRollout(upd) })
	wantCode(t, "UpdateRollout(stale version)", err, silo.CodeConflict)
	update(t, s, func(tx store.Tx) error { r := ro1; r.Active, r.State = true, "paused"; return tx.UpdateRollout(r) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.Rollout("ro-000003")
		if err != nil {
			return err
		}
		upd.Version = 2
		if d := cmp.Diff(upd, got, cmpOpts...); d != "" {
			t.Errorf("Rollout after UpdateRollout (-want +got):\n%s", d)
		}
		active, err := tx.ActiveRollout()
		if err != nil || active.ID != "ro-000001" || active.State != "paused" {
			t.Errorf("ActiveRollout = %+v, %v; want ro-000001 paused", active, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		r, err := tx.Rollout("ro-000001")
		if err != nil {
			return err
		}
		r.Active, r.State = false, "aborted"
		return tx.UpdateRollout(r)
	})
	view(t, s, func(tx store.Tx) error {
		_, err := tx.ActiveRollout()
		wantCode(t, "ActiveRollout when none is", err, silo.CodeNotFound)
		return nil
	})
}

func testSteps(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-1", "rel-1", true, 0)) })
	a := store.RolloutStep{StepKey: stepKey("ro-1", "acme", "apply"), From: "dev-build", Created: at(1)}
	b := store.RolloutStep{StepKey: stepKey("ro-1", "beta", "apply"), Created: at(2)}
	c := store.RolloutStep{StepKey: stepKey("ro-1", "acme", "rollback"), Created: at(3)}
	update(t, s, func(tx store.Tx) error {
		for _, st := range []store.RolloutStep{b, c, a} {
			if err := tx.ClaimStep(st); err != nil {
				return err
			}
		}
		return nil
	})
	// A second claim is refused, even in another transaction, and keeps
	// the first; so is a claim of a rollout that does not exist, and a
	// step that is neither apply nor rollback.
	again := a
	again.From = "other"
	err := s.Update(context.Background(), func(tx store.Tx) error { return tx.ClaimStep(again) })
	wantCode(t, "ClaimStep(twice)", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.ClaimStep(store.RolloutStep{StepKey: stepKey("ro-404", "acme", "apply")})
	})
	wantCode(t, "ClaimStep(missing rollout)", err, silo.CodeNotFound)
	err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.ClaimStep(store.RolloutStep{StepKey: stepKey("ro-1", "acme", "dance")})
	})
	wantCode(t, "ClaimStep(unknown step)", err, silo.CodeInvalid)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.FinishStep(b.StepKey, store.IntentPending, "") })
	wantCode(t, "FinishStep(pending)", err, silo.CodeInvalid)
	err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.FinishStep(stepKey("ro-1", "gamma", "apply"), store.IntentDone, "")
	})
	wantCode(t, "FinishStep(never claimed)", err, silo.CodeNotFound)

	update(t, s, func(tx store.Tx) error {
		if err := tx.FinishStep(a.StepKey, store.IntentDone, ""); err != nil {
			return err
		}
		return tx.FinishStep(b.StepKey, store.IntentFailed, "smoke function failed")
	})
	view(t, s, func(tx store.Tx) error {
		all, err := tx.Steps("ro-1")
		if err != nil {
			return err
		}
		type row struct {
			Key   store.StepKey
			From  string
			State store.IntentState
			Error string
		}
		var got []row
		for _, st := range all {
			got = append(got, row{st.StepKey, st.From, st.State, st.Error})
		}
		want := []row{
			{a.StepKey, "dev-build", store.IntentDone, ""},
			{c.StepKey, "", store.IntentPending, ""},
			{b.StepKey, "", store.IntentFailed, "smoke function failed"},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Steps(ro-1) (-want +got):\n%s", d)
		}
		one, err := tx.Step(c.StepKey)
		if err != nil || !one.Created.Equal(at(3)) || one.State != store.IntentPending {
			t.Errorf("Step(%s) = %+v, %v", c.StepKey, one, err)
		}
		_, err = tx.Step(stepKey("ro-1", "gamma", "apply"))
		wantCode(t, "Step(never claimed)", err, silo.CodeNotFound)
		none, err := tx.Steps("ro-404")
		if err != nil || len(none) != 0 {
			t.Errorf("Steps(missing rollout) = %v, %v; want none", none, err)
		}
		return nil
	})
}

// testCopy: store.Copy carries the current release, the rollouts (in
// order, the active one still active) and their steps into an empty store
// of the same kind, and refuses to copy into it again.
func testCopy(t *testing.T, src store.Store, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	update(t, src, func(tx store.Tx) error {
		for _, id := range []string{"rel-1", "rel-2"} {
			if err := tx.PutRelease(store.Release{ID: id, Created: at(1)}); err != nil {
				return err
			}
		}
		if _, err := tx.SetCurrentRelease("rel-1"); err != nil {
			return err
		}
		ro1, ro2 := rollout("ro-000001", "rel-1", false, 1), rollout("ro-000002", "rel-2", true, 2)
		ro2.Previous, ro2.Owner, ro2.Lease = "rel-1", "server-a", at(3)
		for _, r := range []store.Rollout{ro1, ro2} {
			if err := tx.CreateRollout(r); err != nil {
				return err
			}
		}
		if err := tx.ClaimStep(store.RolloutStep{StepKey: stepKey("ro-000002", "acme", "apply"), From: "dev", Created: at(4)}); err != nil {
			return err
		}
		if err := tx.ClaimStep(store.RolloutStep{StepKey: stepKey("ro-000002", "beta", "apply"), Created: at(4)}); err != nil {
			return err
		}
		return tx.FinishStep(stepKey("ro-000002", "beta", "apply"), store.IntentFailed, "smoke function failed")
	})
	type records struct {
		Current  string
		Rollouts []store.Rollout
		Steps    []store.RolloutStep
	}
	read := func(s store.Store) records {
		var r records
		view(t, s, func(tx store.Tx) error {
			var err error
			if r.Current, err = tx.CurrentRelease(); err != nil {
				return err
			}
			if r.Rollouts, err = tx.Rollouts(0); err != nil {
				return err
			}
			for _, ro := range r.Rollouts {
				st, err := tx.Steps(ro.ID)
				if err != nil {
					return err
				}
				r.Steps = append(r.Steps, st...)
			}
			return nil
		})
		return r
	}
	dst := open(t)
	t.Cleanup(func() { dst.Close() })
	n, err := store.Copy(ctx, dst, src)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if n.Rollouts != 2 || n.Steps != 2 {
		t.Errorf("Copy counted %d rollouts and %d steps, want 2 and 2", n.Rollouts, n.Steps)
	}
	want, got := read(src), read(dst)
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("the copy's releases and rollouts (-source +copy):\n%s", d)
	}
	_, err = store.Copy(ctx, dst, src)
	wantCode(t, "Copy into a store that is not empty", err, silo.CodeConflict)
}
