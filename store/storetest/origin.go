package storetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// testReleaseOrigins: a release's origin round-trips; one only silo dev
// stored is never made current nor the release of a rollout
// (store.CheckShip), while a deployed and a built one are (the must
// twins); storing a release again upgrades its origin (a dev build
// deployed is shipped) and never downgrades it (a dev build of a deployed
// release leaves it deployed); an origin of an unknown kind stores
// nothing.
func testReleaseOrigins(t *testing.T, s store.Store) {
	stack := json.RawMessage(`{"name":"notes"}`)
	dev := store.Release{ID: "rel-dev", Stack: stack, Created: at(1), Origin: store.DevOrigin("dev-alice")}
	dep := store.Release{ID: "rel-deploy", Stack: stack, Created: at(2), Origin: store.Origin{Kind: store.OriginDeploy}}
	built := store.Release{ID: "rel-build", Stack: stack, Created: at(3), Origin: store.Origin{Kind: store.OriginBuild, From: "other.yaml"}}
	update(t, s, func(tx store.Tx) error {
		for _, r := range []store.Release{dev, dep, built} {
			if err := tx.PutRelease(r); err != nil {
				return err
			}
		}
		return nil
	})
	wantOrigin := func(what, id string, want store.Origin) {
		t.Helper()
		view(t, s, func(tx store.Tx) error {
			got, err := tx.Release(id)
			if err != nil || got.Origin != want {
				t.Errorf("%s: Release(%s).Origin = %+v, %v; want %+v", what, id, got.Origin, err, want)
			}
			return nil
		})
	}
	wantOrigin("stored", dev.ID, dev.Origin)
	wantOrigin("stored", dep.ID, dep.Origin)
	wantOrigin("stored", built.ID, built.Origin)
	view(t, s, func(tx store.Tx) error {
		rs, err := tx.Releases(0, false)
		if err != nil || len(rs) != 3 || rs[2].Origin != dev.Origin {
			t.Errorf("Releases = %+v, %v; want the three, the dev build last with its origin", rs, err)
		}
		return nil
	})

	err := s.Update(context.Background(), func(tx store.Tx) error { _, err := tx.SetCurrentRelease(dev.ID); return err })
	wantDevRefusal(t, "SetCurrentRelease(dev build)", err, dev.ID)
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000001", dev.ID, false, 3)) })
	wantDevRefusal(t, "CreateRollout(dev build)", err, dev.ID)
	update(t, s, func(tx store.Tx) error { _, err := tx.SetCurrentRelease(dep.ID); return err })
	update(t, s, func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000002", built.ID, false, 4)) })

	// A dev build of what was deployed or built leaves it as it was.
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutRelease(store.Release{ID: dep.ID, Stack: stack, Origin: store.DevOrigin("dev-bob")}); err != nil {
			return err
		}
		return tx.PutRelease(store.Release{ID: built.ID, Stack: stack, Origin: store.DevOrigin("dev-bob")})
	})
	wantOrigin("a dev build of a deployed release", dep.ID, dep.Origin)
	wantOrigin("a dev build of a built release", built.ID, built.Origin)
	// A build of the project's spec file does not replace a build's
	// origin; a deploy does.
	update(t, s, func(tx store.Tx) error {
		return tx.PutRelease(store.Release{ID: built.ID, Stack: stack, Origin: store.Origin{Kind: store.OriginBuild, From: "silo.yaml"}})
	})
	wantOrigin("built again", built.ID, built.Origin)

	// The dev build deployed from the project is a release of it.
	update(t, s, func(tx store.Tx) error {
		return tx.PutRelease(store.Release{ID: dev.ID, Stack: stack, Origin: dep.Origin})
	})
	wantOrigin("a dev build deployed", dev.ID, dep.Origin)
	update(t, s, func(tx store.Tx) error { _, err := tx.SetCurrentRelease(dev.ID); return err })
	update(t, s, func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000003", dev.ID, false, 5)) })

	// A dev build that silo build stored again is shippable too.
	dev2 := store.Release{ID: "rel-dev2", Stack: stack, Created: at(4), Origin: store.DevOrigin("dev-alice")}
	update(t, s, func(tx store.Tx) error { return tx.PutRelease(dev2) })
	update(t, s, func(tx store.Tx) error {
		return tx.PutRelease(store.Release{ID: dev2.ID, Stack: stack, Origin: built.Origin})
	})
	wantOrigin("a dev build built", dev2.ID, built.Origin)

	err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutRelease(store.Release{ID: "rel-odd", Stack: stack, Origin: store.Origin{Kind: "ci"}})
	})
	wantCode(t, "PutRelease(origin ci)", err, silo.CodeInvalid)
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.Release("rel-odd"); !errorsIsNotFound(err) {
			t.Errorf("Release(rel-odd) after a refused PutRelease: %v; want not found", err)
		}
		return nil
	})
}

// wantDevRefusal fails t unless err is CheckShip's refusal of the dev
// build id.
func wantDevRefusal(t *testing.T, what string, err error, id string) {
	t.Helper()
	wantCode(t, what, err, silo.CodeInvalid)
	if msg := silo.UserMessage(err); !strings.Contains(msg, "release "+id+" is a developer's build from silo dev of dev-alice") || !strings.Contains(msg, "silo deploy") {
		t.Errorf("%s: %q does not say the release is a dev build and what to do", what, msg)
	}
}

func errorsIsNotFound(err error) bool { return silo.ErrorCode(err) == silo.CodeNotFound }

// The release LegacyOriginData stores, before origins were recorded.
const legacyOriginRelease = "rel-before-origins"

// LegacyOriginData stores a release, current, in s for an upgrade test: the
// test takes the schema back to before releases had origins, opens the
// store again and calls CheckOriginsUpgraded.
func LegacyOriginData(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutRelease(store.Release{ID: legacyOriginRelease, Stack: json.RawMessage(`{"name":"notes"}`), Created: at(1)}); err != nil {
			return err
		}
		_, err := tx.SetCurrentRelease(legacyOriginRelease)
		return err
	})
}

// CheckOriginsUpgraded fails t unless the release of LegacyOriginData has
// no origin, is shippable, keeps no origin when silo dev stores it again
// and takes a deploy's.
func CheckOriginsUpgraded(t *testing.T, s store.Store) {
	get := func() store.Release {
		var r store.Release
		view(t, s, func(tx store.Tx) error {
			var err error
			r, err = tx.Release(legacyOriginRelease)
			return err
		})
		return r
	}
	if r := get(); r.Origin != (store.Origin{}) {
		t.Errorf("origin after the upgrade: %+v, want none", r.Origin)
	}
	update(t, s, func(tx store.Tx) error { return tx.CreateRollout(rollout("ro-000001", legacyOriginRelease, false, 2)) })
	update(t, s, func(tx store.Tx) error {
		return tx.PutRelease(store.Release{ID: legacyOriginRelease, Stack: json.RawMessage(`{"name":"notes"}`), Origin: store.DevOrigin("dev-alice")})
	})
	if r := get(); r.Origin != (store.Origin{}) {
		t.Errorf("origin after a dev build of it: %+v, want none still", r.Origin)
	}
	update(t, s, func(tx store.Tx) error {
		return tx.PutRelease(store.Release{ID: legacyOriginRelease, Stack: json.RawMessage(`{"name":"notes"}`), Origin: store.Origin{Kind: store.OriginDeploy}})
	})
	if r := get(); r.Origin.Kind != store.OriginDeploy {
		t.Errorf("origin after a deploy of it: %+v, want deploy", r.Origin)
	}
}
