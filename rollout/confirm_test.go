package rollout_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
	if diff := cmp.Diff(rollout.Preview{Release: v2.ID, Accounts: 6, Losses: []silo.Loss{}}, pv, noDigest); diff != "" {
		t.Errorf("PreviewStart of a release that adds a table (-want +got):\n%s", diff)
	}
	r := succeeds(t, e)(e.run.Start(ctx, v2.ID, rollout.Options{}))

	pv, err = e.run.PreviewStart(ctx, v1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(notes(v1.ID, all...), pv, noDigest); diff != "" {
		t.Errorf("PreviewStart of a release without notes (-want +got):\n%s", diff)
	}
	pv, err = e.run.PreviewRollback(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(notes(v1.ID, all...), pv, noDigest); diff != "" {
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

// A start or rollback given the digest of the preview the operator
// confirmed goes ahead only for exactly what was previewed: a tenant
// created in between (on the release whose table the start deletes)
// changes what would be lost, and the confirmed start is refused with
// conflict, naming what it would destroy now, and starts and deletes
// nothing. The twin: confirmed for a preview taken after the change, it
// runs. A digest alone confirms no loss, and one no preview gives is
// refused as invalid.
func TestConfirmedLossesMustStillHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		preview func(e *env, r rollout.Rollout, v1 engine.Release) (rollout.Preview, error)
		start   func(e *env, r rollout.Rollout, v1 engine.Release, opt rollout.Options) (rollout.Rollout, error)
		again   func(r rollout.Rollout, v1 engine.Release) string
	}{
		{
			name: "rollout",
			preview: func(e *env, _ rollout.Rollout, v1 engine.Release) (rollout.Preview, error) {
				return e.run.PreviewStart(context.Background(), v1.ID)
			},
			start: func(e *env, _ rollout.Rollout, v1 engine.Release, opt rollout.Options) (rollout.Rollout, error) {
				return e.run.Start(context.Background(), v1.ID, opt)
			},
			again: func(_ rollout.Rollout, v1 engine.Release) string { return "GET /v1/rollouts/preview?release=" + v1.ID },
		},
		{
			name: "rollback",
			preview: func(e *env, r rollout.Rollout, _ engine.Release) (rollout.Preview, error) {
				return e.run.PreviewRollback(context.Background(), r.ID)
			},
			start: func(e *env, r rollout.Rollout, _ engine.Release, opt rollout.Options) (rollout.Rollout, error) {
				return e.run.Rollback(context.Background(), r.ID, opt)
			},
			again: func(r rollout.Rollout, _ engine.Release) string {
				return "GET /v1/rollouts/" + r.ID + "/rollback/preview"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, t.TempDir(), opts{})
			v1 := release(t, e, ungated(), "sha256:1111")
			v2 := release(t, e, withNotes(), "sha256:2222") // adds notes
			seed(t, e, v1, 5, 1)
			r := succeeds(t, e)(e.run.Start(ctx, v2.ID, rollout.Options{}))

			shown, err := tc.preview(e, r, v1)
			if err != nil {
				t.Fatal(err)
			}
			if len(shown.Losses) != 1 || len(shown.Losses[0].Accounts) != 5 || shown.Digest == "" {
				t.Fatalf("preview: %+v; want table/notes in the 5 tenants, with a digest", shown)
			}
			unchanged := func(when string) {
				t.Helper()
				if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != 1 {
					t.Errorf("%s: %d rollouts (%v), want only the first", when, len(rs), err)
				}
				if got := get(t, e, r.ID); got.RolledBackBy != "" {
					t.Errorf("%s: rollout %s rolled back by %s", when, r.ID, got.RolledBackBy)
				}
				for id, rel := range releases(t, e) {
					if rel != v2.ID {
						t.Errorf("%s: %s on %s, want %s", when, id, rel, v2.ID)
					}
				}
				checkFleet(t, e, map[string]engine.Release{v2.ID: v2}) // notes still held everywhere
			}

			// The digest alone confirms nothing; one no preview gives is
			// refused before anything is planned.
			for _, bad := range []struct {
				opt  rollout.Options
				code silo.Code
				says string
			}{
				{rollout.Options{LossesDigest: shown.Digest}, silo.CodeNeedsConfirm, "deletes table/notes in"},
				{rollout.Options{AllowDataLoss: true, LossesDigest: "yes"}, silo.CodeInvalid, "is not one a preview gives"},
			} {
				if _, err := tc.start(e, r, v1, bad.opt); silo.ErrorCode(err) != bad.code || !strings.Contains(silo.UserMessage(err), bad.says) {
					t.Errorf("with %+v: %v, want %s saying %q", bad.opt, err, bad.code, bad.says)
				}
			}
			unchanged("after the refusals")

			// A tenant arrives on v2 between the preview and the start.
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "t09999", Kind: silo.KindTenant}, v2); err != nil {
				t.Fatal(err)
			}
			_, err = tc.start(e, r, v1, rollout.Options{AllowDataLoss: true, LossesDigest: shown.Digest})
			want := "what would be lost changed since you confirmed: it now deletes table/notes in t00000, t00001, t00002, 3 more; nothing was started. Look again (" + tc.again(r, v1) + ") and confirm what it lists"
			if silo.ErrorCode(err) != silo.CodeConflict || silo.UserMessage(err) != want {
				t.Fatalf("confirmed for the stale preview: %v, want %s %q", err, silo.CodeConflict, want)
			}
			unchanged("after the stale confirmation")

			// Confirmed for what it would destroy now, it runs.
			now, err := tc.preview(e, r, v1)
			if err != nil {
				t.Fatal(err)
			}
			if now.Digest == shown.Digest || len(now.Losses[0].Accounts) != 6 {
				t.Fatalf("preview after the new tenant: %+v; want the 6 tenants, under another digest", now)
			}
			succeeds(t, e)(tc.start(e, r, v1, rollout.Options{AllowDataLoss: true, LossesDigest: now.Digest}))
			for id, rel := range releases(t, e) {
				if rel != v1.ID {
					t.Errorf("%s on %s after the confirmed start, want %s", id, rel, v1.ID)
				}
			}
			checkFleet(t, e, map[string]engine.Release{v1.ID: v1})
		})
	}
}

// A start confirmed for a preview that destroyed nothing is refused with
// conflict, not merely asked to confirm, when by the time it starts it
// would destroy something (a tenant on a release with a table the new one
// lacks); the twin: confirmed for that nothing while nothing changed, it
// starts.
func TestConfirmedNothingToLoseMustStillHold(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	v1 := release(t, e, ungated(), "sha256:1111")
	v2 := release(t, e, ungated(), "sha256:2222")
	extra := release(t, e, replaceOnce(ungated(), "tables: {findings: {}}", "tables: {findings: {}, extra: {}}"), "sha256:3333")
	seed(t, e, v1, 3, 1)

	nothing, err := e.run.PreviewStart(ctx, v2.ID)
	if err != nil || len(nothing.Losses) != 0 || nothing.Digest == "" {
		t.Fatalf("PreviewStart: %+v, %v; want no losses, with a digest", nothing, err)
	}
	if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "t09999", Kind: silo.KindTenant}, extra); err != nil {
		t.Fatal(err)
	}
	_, err = e.run.Start(ctx, v2.ID, rollout.Options{LossesDigest: nothing.Digest})
	if silo.ErrorCode(err) != silo.CodeConflict || !strings.Contains(silo.UserMessage(err), "changed since you confirmed: it now deletes table/extra in t09999") {
		t.Fatalf("Start confirmed for nothing after a change = %v, want %s naming table/extra in t09999", err, silo.CodeConflict)
	}
	if rs, err := e.run.List(ctx, 0); err != nil || len(rs) != 0 {
		t.Fatalf("rollouts after the refusal: %v, %v; want none", rs, err)
	}
	checkFleet(t, e, map[string]engine.Release{v1.ID: v1, extra.ID: extra})

	// The twin, after the tenant is gone again.
	if _, err := e.eng.DeleteAccount(ctx, "t09999"); err != nil {
		t.Fatal(err)
	}
	succeeds(t, e)(e.run.Start(ctx, v2.ID, rollout.Options{LossesDigest: nothing.Digest}))
	checkFleet(t, e, map[string]engine.Release{v2.ID: v2})
}

// noDigest compares previews but for their digest (TestLossDigest).
var noDigest = cmpopts.IgnoreFields(rollout.Preview{}, "Digest")

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
