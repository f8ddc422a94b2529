package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

var metricsTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"PublishMetrics", testPublishMetrics},
	{"DropMetrics", testDropMetrics},
}

type publication struct {
	incarnation string
	at          time.Time
	ms          []store.ReleaseMetrics
}

// publications are FillEveryTable's published metrics: two incarnations,
// one of which published twice and then only its heartbeat (five rows).
func publications() []publication {
	return []publication{
		{"inc-a", at(1), []store.ReleaseMetrics{{Account: "acme", Release: "rel-0", Requests: 9, Errors: 1, Latency: map[int]uint64{40: 9}}}},
		{"inc-a", at(2), []store.ReleaseMetrics{{Account: "acme", Release: "rel-1", Requests: 5, Latency: map[int]uint64{40: 4, 41: 1}}}},
		{"inc-b", at(2), []store.ReleaseMetrics{{Account: "acme", Release: "rel-1", Requests: 3, Errors: 3, Latency: map[int]uint64{90: 3}}}},
		{"inc-a", at(3), nil},
	}
}

func publish(s store.Store, p publication) error {
	return s.Update(context.Background(), func(tx store.Tx) error { return tx.PublishMetrics(p.incarnation, p.at, p.ms) })
}

func releaseMetrics(t *testing.T, s store.Store, acct silo.AccountID, release string) []store.ReleaseMetrics {
	t.Helper()
	var out []store.ReleaseMetrics
	view(t, s, func(tx store.Tx) (err error) {
		out, err = tx.ReleaseMetrics(acct, release)
		return err
	})
	return out
}

// testPublishMetrics: each incarnation's latest publication of an account
// and release replaces its previous one and leaves the others' alone;
// what a publication cannot be is refused and writes nothing.
func testPublishMetrics(t *testing.T, s store.Store) {
	if got := releaseMetrics(t, s, "acme", "rel-1"); len(got) != 0 {
		t.Fatalf("an empty store: got %+v, want no metrics", got)
	}
	for _, p := range publications() {
		if err := publish(s, p); err != nil {
			t.Fatalf("publish %s at %s: %v", p.incarnation, p.at, err)
		}
	}
	a := store.ReleaseMetrics{Incarnation: "inc-a", Account: "acme", Release: "rel-1", Requests: 5, Latency: map[int]uint64{40: 4, 41: 1}, Published: at(2)}
	b := store.ReleaseMetrics{Incarnation: "inc-b", Account: "acme", Release: "rel-1", Requests: 3, Errors: 3, Latency: map[int]uint64{90: 3}, Published: at(2)}
	if d := cmp.Diff([]store.ReleaseMetrics{a, b}, releaseMetrics(t, s, "acme", "rel-1"), cmpOpts...); d != "" {
		t.Fatalf("acme under rel-1 (-want +got):\n%s", d)
	}
	// A later publication of inc-b replaces its row, not inc-a's.
	b.Requests, b.Errors, b.Latency, b.Published = 10, 4, map[int]uint64{90: 3, 50: 7}, at(4)
	if err := publish(s, publication{"inc-b", at(4), []store.ReleaseMetrics{b}}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]store.ReleaseMetrics{a, b}, releaseMetrics(t, s, "acme", "rel-1"), cmpOpts...); d != "" {
		t.Fatalf("acme under rel-1 after inc-b published again (-want +got):\n%s", d)
	}
	if got := releaseMetrics(t, s, "acme", "rel-2"); len(got) != 0 {
		t.Fatalf("another release: got %+v, want none", got)
	}
	var rows int
	view(t, s, func(tx store.Tx) error {
		ms, err := tx.(store.Lister).PublishedMetrics()
		rows = len(ms)
		return err
	})
	if rows != 5 { // 3 rows of metrics, 2 heartbeats
		t.Fatalf("PublishedMetrics: %d rows, want 5", rows)
	}

	bad := []struct {
		name string
		p    publication
	}{
		{"no incarnation", publication{"", at(5), nil}},
		{"no account", publication{"inc-c", at(5), []store.ReleaseMetrics{{Release: "rel-1", Requests: 1}}}},
		{"no release", publication{"inc-c", at(5), []store.ReleaseMetrics{{Account: "acme", Requests: 1}}}},
		{"a bucket out of range", publication{"inc-c", at(5), []store.ReleaseMetrics{{Account: "acme", Release: "rel-1", Requests: 1, Latency: map[int]uint64{silo.LatencyBuckets: 1}}}}},
		{"a counter over int64", publication{"inc-c", at(5), []store.ReleaseMetrics{{Account: "acme", Release: "rel-1", Requests: 1 << 63}}}},
	}
	for _, tc := range bad {
		wantCode(t, "publish with "+tc.name, publish(s, tc.p), silo.CodeInvalid)
	}
	if d := cmp.Diff([]store.ReleaseMetrics{a, b}, releaseMetrics(t, s, "acme", "rel-1"), cmpOpts...); d != "" {
		t.Fatalf("acme under rel-1 after refused publications (-want +got):\n%s", d)
	}
	err := s.View(context.Background(), func(tx store.Tx) error { return tx.PublishMetrics("inc-c", at(5), nil) })
	wantCode(t, "PublishMetrics in a View", err, silo.CodeInternal)
	err = s.View(context.Background(), func(tx store.Tx) error { _, err := tx.ReleaseMetrics("", "rel-1"); return err })
	wantCode(t, "ReleaseMetrics without an account", err, silo.CodeInvalid)
}

// testDropMetrics: the metrics of incarnations not heard from since the
// cut-off go, heartbeats included; those of incarnations heard from stay,
// unless no account that is not deleted runs their release or their
// account is deleted; and those of the active rollout's release stay until
// it is no longer active.
func testDropMetrics(t *testing.T, s store.Store) {
	m := func(acct silo.AccountID, rel string, n uint64) store.ReleaseMetrics {
		return store.ReleaseMetrics{Account: acct, Release: rel, Requests: n}
	}
	acme, globex, initech := tenant("acme", 0), tenant("globex", 0), tenant("initech", 0)
	acme.Release, globex.Release, initech.Release = "rel-1", "rel-2", "rel-2"
	create(t, s, acme, globex, initech)
	for _, p := range []publication{
		{"dead", at(0), []store.ReleaseMetrics{m("acme", "rel-1", 1), m("acme", "rel-2", 2), m("globex", "rel-2", 3)}},
		{"quiet", at(0), []store.ReleaseMetrics{m("acme", "rel-1", 4)}},
		{"quiet", at(50), nil}, // heard from (a heartbeat), nothing new counted
		{"live", at(55), []store.ReleaseMetrics{m("acme", "rel-1", 5), m("acme", "rel-2", 6), m("globex", "rel-2", 8), m("acme", "rel-0", 7)}},
	} {
		if err := publish(s, p); err != nil {
			t.Fatal(err)
		}
	}
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutRelease(store.Release{ID: "rel-2", Created: at(0)}); err != nil {
			return err
		}
		return tx.CreateRollout(rollout("ro-1", "rel-2", true, 1))
	})
	incarnations := func(acct silo.AccountID, rel string) []string {
		var out []string
		for _, r := range releaseMetrics(t, s, acct, rel) {
			out = append(out, r.Incarnation)
		}
		return out
	}
	drop := func(before time.Time) int64 {
		var n int64
		update(t, s, func(tx store.Tx) (err error) {
			n, err = tx.DropMetrics(before)
			return err
		})
		return n
	}
	// Cut-off at minute 30: "dead" was last heard from at 0; its rows of
	// rel-1 and its heartbeat go, its rows of rel-2 (the active rollout's)
	// stay; and live's row of rel-0, which no account runs, goes.
	if n := drop(at(30)); n != 3 {
		t.Errorf("DropMetrics(at 30) deleted %d rows, want 3 (dead's rel-1 and heartbeat, live's rel-0)", n)
	}
	for _, c := range []struct {
		acct silo.AccountID
		rel  string
		want []string
	}{
		{"acme", "rel-1", []string{"live", "quiet"}},
		{"acme", "rel-2", []string{"dead", "live"}},
		{"globex", "rel-2", []string{"dead", "live"}},
		{"acme", "rel-0", nil},
	} {
		if d := cmp.Diff(c.want, incarnations(c.acct, c.rel), cmpOpts...); d != "" {
			t.Errorf("incarnations publishing %s under %s after the drop (-want +got):\n%s", c.acct, c.rel, d)
		}
	}
	// The rollout ends: dead's rows of rel-2 go too, with no heartbeat left.
	update(t, s, func(tx store.Tx) error {
		r, err := tx.Rollout("ro-1")
		if err != nil {
			return err
		}
		r.Active, r.State = false, "succeeded"
		return tx.UpdateRollout(r)
	})
	if n := drop(at(30)); n != 2 {
		t.Errorf("DropMetrics(at 30) after the rollout ended deleted %d rows, want 2", n)
	}
	if d := cmp.Diff([]string{"live"}, incarnations("acme", "rel-2"), cmpOpts...); d != "" {
		t.Errorf("incarnations publishing acme under rel-2 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"live"}, incarnations("globex", "rel-2"), cmpOpts...); d != "" {
		t.Errorf("incarnations publishing globex under rel-2 (-want +got):\n%s", d)
	}
	// Nothing else is old enough, and every other release is run.
	if n := drop(at(30)); n != 0 {
		t.Errorf("a second DropMetrics deleted %d rows, want 0", n)
	}
	deleteAccount := func(id silo.AccountID) {
		a, err := getAccount(t, s, id)
		if err != nil {
			t.Fatal(err)
		}
		a.State = silo.StateDeleted
		update(t, s, func(tx store.Tx) error { return tx.UpdateAccount(a) })
	}
	// globex is deleted: its rows go; initech still runs rel-2, so acme's
	// rows of rel-2 stay.
	deleteAccount("globex")
	if n := drop(at(30)); n != 1 {
		t.Errorf("DropMetrics after globex's deletion deleted %d rows, want 1 (live's globex under rel-2)", n)
	}
	if d := cmp.Diff([]string{"live"}, incarnations("acme", "rel-2"), cmpOpts...); d != "" {
		t.Errorf("incarnations publishing acme under rel-2 after globex's deletion (-want +got):\n%s", d)
	}
	// initech, the last account running rel-2, is deleted: acme's rows of
	// rel-2 go; its rows of rel-1 stay.
	deleteAccount("initech")
	if n := drop(at(30)); n != 1 {
		t.Errorf("DropMetrics after initech's deletion deleted %d rows, want 1 (live's acme under rel-2)", n)
	}
	for rel, want := range map[string][]string{"rel-1": {"live", "quiet"}, "rel-2": nil} {
		if d := cmp.Diff(want, incarnations("acme", rel), cmpOpts...); d != "" {
			t.Errorf("incarnations publishing acme under %s after initech's deletion (-want +got):\n%s", rel, d)
		}
	}
}
