package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// testProbeReleases: a release marked as a probe build round-trips, is left
// out of Releases unless asked for, and never becomes current or the
// release of a rollout (store.CheckShip); an unmarked release listed,
// made current and rolled out alongside it is the must twin.
func testProbeReleases(t *testing.T, s store.Store) {
	app := store.Release{ID: "rel-app", Stack: json.RawMessage(`{"name":"notes"}`), Created: at(1)}
	pr := store.Release{ID: "rel-probe", Stack: json.RawMessage(`{"name":"silo-probe"}`), Created: at(2), Probe: true}
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutRelease(app); err != nil {
			return err
		}
		return tx.PutRelease(pr)
	})
	view(t, s, func(tx store.Tx) error {
		got, err := tx.Release(pr.ID)
		if err != nil || !got.Probe {
			t.Errorf("Release(%s) = %+v, %v; want it marked as a probe build", pr.ID, got, err)
		}
		listed := func(probes bool) []string {
			rs, err := tx.Releases(0, probes)
			if err != nil {
				t.Fatalf("Releases(0, %v): %v", probes, err)
			}
			var ids []string
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			return ids
		}
		if got := listed(false); !slices.Equal(got, []string{app.ID}) {
			t.Errorf("Releases without probes: %v, want [%s]", got, app.ID)
		}
		if got := listed(true); !slices.Equal(got, []string{pr.ID, app.ID}) {
			t.Errorf("Releases with probes: %v, want [%s %s]", got, pr.ID, app.ID)
		}
		return nil
	})

	update(t, s, func(tx store.Tx) error { _, err := tx.SetCurrentRelease(app.ID); return err })
	err := s.Update(context.Background(), func(tx store.Tx) error { _, err := tx.SetCurrentRelease(pr.ID); return err })
	wantProbeRefusal(t, "SetCurrentRelease(probe)", err, pr.ID)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000001", pr.ID, true, 3)) })
	wantProbeRefusal(t, "CreateRollout(probe)", err, pr.ID)
	update(t, s, func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000002", app.ID, true, 4)) })
	view(t, s, func(tx store.Tx) error {
		if cur, err := tx.CurrentRelease(); err != nil || cur != app.ID {
			t.Errorf("CurrentRelease = %q, %v; want %s, left as it was", cur, err, app.ID)
		}
		ro, err := tx.ActiveRollout()
		if err != nil || ro.Release != app.ID {
			t.Errorf("ActiveRollout = %+v, %v; want the rollout of %s", ro, err, app.ID)
		}
		return nil
	})
}

// wantProbeRefusal fails t unless err is CheckShip's refusal of release id.
func wantProbeRefusal(t *testing.T, what string, err error, id string) {
	t.Helper()
	wantCode(t, what, err, silo.CodeInvalid)
	if msg := silo.UserMessage(err); !strings.Contains(msg, "release "+id+" is a probe build made by silo verify --probe") {
		t.Errorf("%s: %q does not say the release is a probe build", what, msg)
	}
}

// The releases LegacyProbeData stores and whether the upgrade that marks
// probe builds must mark each.
var legacyProbes = []struct {
	release store.Release
	marked  bool
}{
	// Built by the probe and applied only to its throwaway accounts.
	{store.Release{ID: "r-probe-app", Stack: json.RawMessage(`{"name":"silo-probe","functions":{"probe":{}}}`), Created: at(1)}, true},
	// Built by the probe's hostile-modules surface, applied nowhere.
	{store.Release{ID: "r-probe-module", Stack: json.RawMessage(`{"name":"silo-probe-module","functions":{"module":{}}}`), Created: at(2)}, true},
	// An app of the operator's, current.
	{store.Release{ID: "r-notes", Stack: json.RawMessage(`{"name":"notes","functions":{"api":{}}}`), Created: at(3)}, false},
	// Shaped like the probe's app but run by a tenant.
	{store.Release{ID: "r-run-by-tenant", Stack: json.RawMessage(`{"name":"silo-probe","functions":{"probe":{"memory":1}}}`), Created: at(4)}, false},
	// Shaped like the probe's app but named by a rollout.
	{store.Release{ID: "r-rolled-out", Stack: json.RawMessage(`{"name":"silo-probe","functions":{"probe":{"memory":2}}}`), Created: at(5)}, false},
	// Named like the probe's app, with another function.
	{store.Release{ID: "r-other-function", Stack: json.RawMessage(`{"name":"silo-probe","functions":{"api":{}}}`), Created: at(6)}, false},
}

// LegacyProbeData stores, in s, releases as a silo that did not mark probe
// builds left them (none marked), with the current release, a rollout and
// the accounts that tell the probe's from the others; CheckLegacyProbes
// checks a store upgraded from it. A store's upgrade test writes it, takes
// the probe column away and the schema version back, and opens the store
// again.
func LegacyProbeData(t *testing.T, s store.Store) {
	t.Helper()
	probeAcct := silo.Account{ID: store.ProbeAccountID("0123abcd", "a"), Kind: silo.KindEnvironment, State: silo.StateDeleted, Release: "r-probe-app", Created: at(1), Updated: at(2)}
	acme := tenant("acme", 1)
	acme.Release = "r-run-by-tenant"
	update(t, s, func(tx store.Tx) error {
		for _, l := range legacyProbes {
			if err := tx.PutRelease(l.release); err != nil {
				return err
			}
		}
		if _, err := tx.SetCurrentRelease("r-notes"); err != nil {
			return err
		}
		if err := tx.CreateRollout(rollout("ro-000001", "r-rolled-out", false, 5)); err != nil {
			return err
		}
		if err := tx.CreateAccount(probeAcct); err != nil {
			return err
		}
		return tx.CreateAccount(acme)
	})
}

// CheckLegacyProbes checks that the store upgraded from LegacyProbeData
// marked exactly the probe's releases: the rest are listed as before.
func CheckLegacyProbes(t *testing.T, s store.Store) {
	t.Helper()
	view(t, s, func(tx store.Tx) error {
		for _, l := range legacyProbes {
			r, err := tx.Release(l.release.ID)
			if err != nil {
				t.Fatalf("Release(%s) after the upgrade: %v", l.release.ID, err)
			}
			if r.Probe != l.marked {
				t.Errorf("release %s marked as a probe build: %v, want %v", r.ID, r.Probe, l.marked)
			}
		}
		rs, err := tx.Releases(0, false)
		if err != nil {
			return err
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.ID)
		}
		want := []string{"r-other-function", "r-rolled-out", "r-run-by-tenant", "r-notes"}
		if !slices.Equal(got, want) {
			t.Errorf("Releases after the upgrade: %v, want %v", got, want)
		}
		return nil
	})
}
