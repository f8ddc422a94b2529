package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Legacy is what a store of schema 2 held about releases and rollouts:
// the current release and rollouts as settings, rollout steps as claims in
// the journal. A store's own test writes it at schema 2 with its SQL, opens
// the store (which upgrades it) and calls CheckUpgraded.
type Legacy struct {
	Releases []store.Release
	Settings map[string]string
	Intents  []store.Intent
}

// LegacyData returns the legacy state CheckUpgraded expects upgraded: two
// rollouts (one finished, one running with a lease), the from release of
// a developer's account, and claims done, failed by their step and
// abandoned by recovery, next to a setting and an intent of their own.
func LegacyData() Legacy {
	ro1 := `{"id":"ro-000001","release":"rel-a","state":"succeeded","ring":1,"rings":[{"name":"canary","phase":"promoted"}],"version":7,"created":"2025-03-14T15:10:26.535897Z","updated":"2025-03-14T15:11:26.535897Z"}`
	ro2 := `{"id":"ro-000002","release":"rel-b","previous":"rel-a","state":"running","ring":0,"rings":[{"name":"canary","phase":"applying"}],"owner":"server-a","lease":"2025-03-14T15:18:26.535897Z","version":3,"created":"2025-03-14T15:12:26.535897Z","updated":"2025-03-14T15:13:26.535897Z"}`
	return Legacy{
		Releases: []store.Release{{ID: "rel-a", Created: at(1)}, {ID: "rel-b", Created: at(2)}},
		Settings: map[string]string{
			"current_release":                    "rel-b",
			"rollout/index":                      `["ro-000001","ro-000002"]`,
			"rollout/active":                     "ro-000002",
			"rollout/ro-000001":                  ro1,
			"rollout/ro-000002":                  ro2,
			"rollout/ro-000002/canary/acme/from": "dev-build",
			"base-domain":                        "silo.test",
		},
		Intents: []store.Intent{
			{Key: "apply/acme/table/findings/1", Account: "acme", Action: "apply", State: store.IntentDone, Created: at(3), Updated: at(3)},
			{Key: "rollout/ro-000002/canary/acme/apply", Account: "acme", Action: "rollout.apply", State: store.IntentDone, Created: at(4), Updated: at(5)},
			{Key: "rollout/ro-000002/canary/beta/apply", Account: "beta", Action: "rollout.apply", State: store.IntentFailed, Error: "step failed: smoke function failed", Created: at(4), Updated: at(5)},
			{Key: "rollout/ro-000002/canary/gamma/apply", Account: "gamma", Action: "rollout.apply", State: store.IntentFailed, Error: "interrupted; the provider had not completed it, so the next plan redoes it", Created: at(4), Updated: at(5)},
		},
	}
}

// CheckUpgraded checks that s holds LegacyData as records: the current
// release, both rollouts in order with their columns and status, each
// claim as a step (an abandoned one pending again), the settings moved
// gone and the rest of the settings and the journal untouched.
func CheckUpgraded(t *testing.T, s store.Store) {
	t.Helper()
	legacy := LegacyData()
	err := s.View(context.Background(), func(tx store.Tx) error {
		if cur, err := tx.CurrentRelease(); err != nil || cur != "rel-b" {
			t.Errorf("CurrentRelease = %q, %v; want rel-b", cur, err)
		}
		rs, err := tx.Rollouts(0)
		if err != nil {
			return err
		}
		want := []store.Rollout{
			{ID: "ro-000002", Release: "rel-b", Previous: "rel-a", State: "running", Active: true, Owner: "server-a", Lease: at(9), Version: 1, Created: at(3), Updated: at(4), Status: json.RawMessage(legacy.Settings["rollout/ro-000002"])},
			{ID: "ro-000001", Release: "rel-a", State: "succeeded", Version: 1, Created: at(1), Updated: at(2), Status: json.RawMessage(legacy.Settings["rollout/ro-000001"])},
		}
		if d := cmp.Diff(want, rs, cmpOpts...); d != "" {
			t.Errorf("Rollouts after the upgrade (-want +got):\n%s", d)
		}
		if a, err := tx.ActiveRollout(); err != nil || a.ID != "ro-000002" {
			t.Errorf("ActiveRollout = %s, %v; want ro-000002", a.ID, err)
		}
		steps, err := tx.Steps("ro-000002")
		if err != nil {
			return err
		}
		type row struct {
			Account silo.AccountID
			From    string
			State   store.IntentState
			Error   string
		}
		var got []row
		for _, st := range steps {
			if st.Ring != "canary" || st.Step != "apply" {
				t.Errorf("step %s: want ring canary, step apply", st.StepKey)
			}
			got = append(got, row{st.Account, st.From, st.State, st.Error})
		}
		wantSteps := []row{
			{"acme", "dev-build", store.IntentDone, ""},
			{"beta", "", store.IntentFailed, "smoke function failed"},
			{"gamma", "", store.IntentPending, ""},
		}
		if d := cmp.Diff(wantSteps, got); d != "" {
			t.Errorf("Steps after the upgrade (-want +got):\n%s", d)
		}
		l := tx.(store.Lister)
		set, err := l.Settings()
		if err != nil {
			return err
		}
		if d := cmp.Diff(map[string]string{"base-domain": "silo.test"}, set); d != "" {
			t.Errorf("settings after the upgrade (-want +got):\n%s", d)
		}
		ins, err := l.Journal(0, 0)
		if err != nil {
			return err
		}
		if len(ins) != len(legacy.Intents) {
			t.Errorf("journal after the upgrade holds %d intents, want the %d it had", len(ins), len(legacy.Intents))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// UsageByIDData writes, into a store of the newest schema, usage and
// stored bytes of a registered account (acme) and usage metered for an ID
// no account holds (ghost). A store's own test then takes the schema back
// to version 6, which kept usage per ID, opens it (which upgrades it) and
// calls CheckUsageUpgraded.
func UsageByIDData(t *testing.T, s store.Store) {
	t.Helper()
	create(t, s, tenant("acme", 0))
	addUsage(t, s, day0, delta("acme", "f", 1), delta("ghost", "f", 2))
	setStored(t, s, day0, sample("acme", store.StoredTable, "t", 9))
}

// CheckUsageUpgraded checks a store upgraded from schema 6 holding
// UsageByIDData: the rows went to the account registered under their ID
// (ghost's to none), and an account purged afterwards keeps them apart
// from the new one with its ID.
func CheckUsageUpgraded(t *testing.T, s store.Store) {
	t.Helper()
	got := readUsage(t, s, store.UsageQuery{})
	if len(got) != 2 || got[0].Account != "acme" || !got[0].Created.Equal(at(0)) || got[1].Account != "ghost" || !got[1].Created.IsZero() {
		t.Fatalf("upgraded usage: got %+v, want acme's under its creation %s, ghost's under none", got, at(0))
	}
	if st := readStored(t, s, store.UsageQuery{Account: "acme", Created: at(0)}); len(st) != 1 || st[0].ByteHours != 9 {
		t.Errorf("upgraded stored bytes of acme: got %+v, want its 9 byte-hours under its creation", st)
	}
	deleteAndPurge(t, s, "acme", at(2))
	create(t, s, tenant("acme", 4))
	if got := readUsage(t, s, store.UsageQuery{Account: "acme", Created: at(4)}); len(got) != 0 {
		t.Errorf("usage of a new acme after the upgrade: got %+v, want none", got)
	}
	if got := readUsage(t, s, store.UsageQuery{Account: "acme", Created: at(0)}); len(got) != 1 || got[0].Total.Requests != 3 {
		t.Errorf("usage of the purged acme after the upgrade: got %+v, want its 3 requests", got)
	}
}
