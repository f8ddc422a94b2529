package rollout_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
)

// withNotes is the ungated stack with a second table, notes: a release
// without it deletes every account's notes.
func withNotes() string {
	return replaceOnce(ungated(), "tables: {findings: {}}", "tables: {findings: {}, notes: {}}")
}

// A rollout that deletes a table starts only when the data loss is
// allowed; refused, it names what it would destroy and changes nothing.
// The twins: allowed, it runs; a release that only adds starts unasked.
func TestStartNeedsConfirmToDestroy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		allow    bool
		wantCode silo.Code // "" when the rollout starts
	}{
		{"deleting a table is refused", withNotes(), ungated(), false, silo.CodeNeedsConfirm},
		{"deleting a table, allowed", withNotes(), ungated(), true, ""},
		{"adding a table needs nothing", ungated(), withNotes(), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			v1 := release(t, e, tc.from, "sha256:1111")
			v2 := release(t, e, tc.to, "sha256:2222")
			seed(t, e, v1, 5, 1)
			// The preview finds what the refusal finds, and changes nothing.
			pv, err := e.run.PreviewStart(ctx, v2.ID)
			if err != nil {
				t.Fatalf("PreviewStart: %v", err)
			}
			if got, want := len(pv.Losses) > 0, tc.wantCode == silo.CodeNeedsConfirm || tc.allow; got != want {
				t.Errorf("PreviewStart losses %v, want some: %v", pv.Losses, want)
			}
			if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != 0 {
				t.Errorf("rollouts after a preview: %v, %v; want none", rs, err)
			}
			r, err := e.run.Start(ctx, v2.ID, rollout.Options{AllowDataLoss: tc.allow})
			if tc.wantCode != "" {
				if silo.ErrorCode(err) != tc.wantCode {
					t.Fatalf("Start = %v, want %s", err, tc.wantCode)
				}
				msg := silo.UserMessage(err)
				for _, want := range []string{"deletes table/notes in", "t00000", "2 more", "--yes"} {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q does not say %q", msg, want)
					}
				}
				if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != 0 {
					t.Errorf("rollouts after the refusal: %v, %v; want none", rs, err)
				}
				for id, rel := range releases(t, e) {
					if rel != v1.ID {
						t.Errorf("%s on %s after the refusal, want %s", id, rel, v1.ID)
					}
				}
				checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r = drive(t, e, r.ID); r.State != rollout.StateSucceeded {
				t.Fatalf("rollout %s: %s (%s)", r.ID, r.State, r.Reason)
			}
			for id, rel := range releases(t, e) {
				if rel != v2.ID {
					t.Errorf("%s on %s, want %s", id, rel, v2.ID)
				}
			}
			checkFleet(t, e, map[string]engine.Release{v2.ID: v2})
		})
	}
}

// Only the latest rollout can be rolled back, and once: rolling back an
// earlier one would move the accounts a later rollout moved too, two
// releases back. A rollback that deletes what the rollout added needs
// the data loss allowed, like a deploy.
func TestRollbackOnlyLatestOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	v1 := release(t, e, ungated(), "sha256:1111")
	v2 := release(t, e, withNotes(), "sha256:2222") // adds notes
	v3 := release(t, e, withNotes(), "sha256:3333")
	seed(t, e, v1, 5, 1)
	var ros []rollout.Rollout
	for _, v := range []engine.Release{v2, v3} {
		r := succeeds(t, e)(e.run.Start(ctx, v.ID, rollout.Options{}))
		ros = append(ros, r)
	}
	refused := func(id string, opt rollout.Options, code silo.Code, says string, on engine.Release) {
		t.Helper()
		_, err := e.run.Rollback(ctx, id, opt)
		if silo.ErrorCode(err) != code || !strings.Contains(silo.UserMessage(err), says) {
			t.Fatalf("Rollback(%s) = %v, want %s saying %q", id, err, code, says)
		}
		for acct, rel := range releases(t, e) {
			if rel != on.ID {
				t.Fatalf("%s on %s after a refused rollback, want %s", acct, rel, on.ID)
			}
		}
	}
	refused(ros[0].ID, rollout.Options{AllowDataLoss: true}, silo.CodeConflict, "not the latest: "+ros[1].ID, v3)

	// The latest one goes back to v2, which also has notes: nothing lost.
	back := succeeds(t, e)(e.run.Rollback(ctx, ros[1].ID, rollout.Options{}))
	for acct, rel := range releases(t, e) {
		if rel != v2.ID {
			t.Errorf("%s on %s after the rollback, want %s", acct, rel, v2.ID)
		}
	}
	refused(ros[1].ID, rollout.Options{}, silo.CodeConflict, "rolled back already, by "+back.ID, v2)

	// From v2 a deploy of v1 drops notes: refused unless allowed.
	if _, err := e.run.Start(ctx, v1.ID, rollout.Options{}); silo.ErrorCode(err) != silo.CodeNeedsConfirm {
		t.Fatalf("Start(v1) from v2 = %v, want %s", err, silo.CodeNeedsConfirm)
	}
	succeeds(t, e)(e.run.Start(ctx, v1.ID, rollout.Options{AllowDataLoss: true}))
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
}

// Rolling back a rollout that added a table deletes it in every account
// the rollout moved: refused unless allowed, then done when allowed.
func TestRollbackNeedsConfirmToDestroy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	v1 := release(t, e, ungated(), "sha256:1111")
	v2 := release(t, e, withNotes(), "sha256:2222")
	seed(t, e, v1, 5, 1)
	r := succeeds(t, e)(e.run.Start(ctx, v2.ID, rollout.Options{}))
	_, err := e.run.Rollback(ctx, r.ID, rollout.Options{})
	if silo.ErrorCode(err) != silo.CodeNeedsConfirm || !strings.Contains(silo.UserMessage(err), "deletes table/notes in") {
		t.Fatalf("Rollback = %v, want %s naming table/notes", err, silo.CodeNeedsConfirm)
	}
	if got := get(t, e, r.ID); got.State != rollout.StateSucceeded || got.RolledBackBy != "" {
		t.Fatalf("rollout after a refused rollback: %s, rolled back by %q", got.State, got.RolledBackBy)
	}
	checkFleet(t, e, map[string]engine.Release{v2.ID: v2})
	succeeds(t, e)(e.run.Rollback(ctx, r.ID, rollout.Options{AllowDataLoss: true}))
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
}

// The previews list every table a rollout or rollback would delete, with
// every account where, and the number of accounts planned; the twins: a
// release that only adds lists nothing, and a rollback that cannot run is
// refused by its preview as by Rollback.
func TestPreviewListsWhatIsDestroyed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	v1 := release(t, e, ungated(), "sha256:1111")
	v2 := release(t, e, withNotes(), "sha256:2222")
	seed(t, e, v1, 5, 1)
	notes := func(rel string, accts ...silo.AccountID) rollout.Preview {
		return rollout.Preview{Release: rel, Accounts: 6, Losses: []silo.Loss{{Op: silo.OpDelete, Type: silo.TypeTable, Name: "notes", Accounts: accts}}}
	}
	// Production is planned too, but its section declares no tables.
	all := []silo.AccountID{tenant(0), tenant(1), tenant(2), tenant(3), tenant(4)}

	pv, err := e.run.PreviewStart(ctx, v2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rollout.Preview{Release: v2.ID, Accounts: 6, Losses: []silo.Loss{}}, pv); diff != "" {
		t.Errorf("PreviewStart of a release that adds a table (-want +got):\n%s", diff)
	}
	r := succeeds(t, e)(e.run.Start(ctx, v2.ID, rollout.Options{}))

	pv, err = e.run.PreviewStart(ctx, v1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(notes(v1.ID, all...), pv); diff != "" {
		t.Errorf("PreviewStart of a release without notes (-want +got):\n%s", diff)
	}
	pv, err = e.run.PreviewRollback(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(notes(v1.ID, all...), pv); diff != "" {
		t.Errorf("PreviewRollback (-want +got):\n%s", diff)
	}
	if got := get(t, e, r.ID); got.RolledBackBy != "" {
		t.Errorf("rollout %s rolled back by %s after a preview, want not", r.ID, got.RolledBackBy)
	}
	checkFleet(t, e, map[string]engine.Release{v2.ID: v2})

	if _, err := e.run.PreviewStart(ctx, "r-doesnotexist"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("PreviewStart of an unknown release = %v, want %s", err, silo.CodeNotFound)
	}
	succeeds(t, e)(e.run.Rollback(ctx, r.ID, rollout.Options{AllowDataLoss: true}))
	if _, err := e.run.PreviewRollback(ctx, r.ID); silo.ErrorCode(err) != silo.CodeConflict {
		t.Errorf("PreviewRollback of a rolled-back rollout = %v, want %s", err, silo.CodeConflict)
	}
}

// succeeds drives the rollout that start returned to its end and fails the
// test unless it succeeded.
func succeeds(t *testing.T, e *env) func(rollout.Rollout, error) rollout.Rollout {
	return func(r rollout.Rollout, err error) rollout.Rollout {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r = drive(t, e, r.ID); r.State != rollout.StateSucceeded {
			t.Fatalf("rollout %s: %s (%s)", r.ID, r.State, r.Reason)
		}
		return r
	}
}
