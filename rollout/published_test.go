package rollout_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/sqlite"
)

// metricsStores opens the stores Published runs on: PostgreSQL, which
// several servers share, and SQLite, which one server owns.
func metricsStores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.Fresh(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// server is one server process as Published sees it: its own counters and
// its publications.
type server struct {
	rec *rollout.Recorder
	pub *rollout.Published
}

func newServer(st store.Store, now func() time.Time) server {
	rec := &rollout.Recorder{}
	return server{rec: rec, pub: rollout.NewPublished(rec, st, now)}
}

// serve counts n requests of acme under rel, failed ones first.
func (s server) serve(n, failed int) {
	for i := 0; i < n; i++ {
		s.rec.Record("acme", "rel", 5*time.Millisecond, i < failed)
		s.pub.Touch("acme", "rel")
	}
}

func (s server) publish(t *testing.T) {
	t.Helper()
	if err := s.pub.Publish(context.Background()); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func snapshot(t *testing.T, s server) rollout.Stats {
	t.Helper()
	got, err := s.pub.Snapshot("acme", "rel")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return got
}

// runsRel records the account acme, running the release rel: published
// metrics of a release no account runs are dropped.
func runsRel(t *testing.T, st store.Store, now time.Time) {
	t.Helper()
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.CreateAccount(silo.Account{ID: "acme", Kind: silo.KindTenant, State: silo.StateActive, Release: "rel", Created: now, Updated: now})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPublishedSum: the gate's figures are the runner's own live counters
// plus what every other server published; a window across another
// server's restart or death counts what it served in the window, and the
// sum never goes backwards.
func TestPublishedSum(t *testing.T) {
	for name, open := range metricsStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			runner, other := newServer(st, clock), newServer(st, clock)
			runsRel(t, st, now)
			count := func(s rollout.Stats) [2]uint64 { return [2]uint64{s.Requests, s.Errors} }

			runner.serve(10, 0)
			other.serve(20, 5)
			if got := count(snapshot(t, runner)); got != [2]uint64{10, 0} {
				t.Fatalf("before the other server publishes: got %v, want the runner's own [10 0]", got)
			}
			other.publish(t)
			runner.publish(t)
			start := snapshot(t, runner)
			if got := count(start); got != [2]uint64{30, 5} {
				t.Fatalf("after both published: got %v, want [30 5]", got)
			}
			if got := start.Latency[silo.LatencyBucket(5*time.Millisecond)]; got != 30 {
				t.Errorf("latency bucket of 5ms: got %d, want 30", got)
			}
			// The runner's own publication is not counted twice: its
			// live counters are.
			runner.serve(1, 0)
			if got := count(snapshot(t, runner)); got != [2]uint64{31, 5} {
				t.Fatalf("the runner served one more: got %v, want [31 5]", got)
			}

			// The other server restarts: a new incarnation counting from
			// zero; its old incarnation's last publication stays.
			other.serve(4, 4) // served, published at its shutdown
			other.publish(t)
			restarted := newServer(st, clock)
			restarted.serve(6, 6)
			restarted.publish(t)
			end := snapshot(t, runner)
			if got := count(end); got != [2]uint64{31 + 4 + 6, 5 + 4 + 6} {
				t.Fatalf("after the other server restarted: got %v, want [41 15]", got)
			}
			win := end.Sub(start)
			if got := count(win); got != [2]uint64{11, 10} {
				t.Fatalf("the window across the restart: got %v, want [11 10] (1 by the runner, 4+6 failed by the other server)", got)
			}

			// The restarted server dies without publishing again: what it
			// served after its last publication never counts, and the sum
			// stays where it was.
			restarted.serve(50, 50)
			if got := count(snapshot(t, runner)); got != count(end) {
				t.Fatalf("after the other server died: got %v, want %v", got, count(end))
			}

			// A day later its rows are dropped, but not while a rollout of
			// their release is active (a gate may be measuring them).
			now = now.Add(rollout.DropAfter + time.Minute)
			runner.publish(t) // the runner is alive
			if err := st.Update(context.Background(), func(tx store.Tx) error {
				if err := tx.PutRelease(store.Release{ID: "rel", Created: now}); err != nil {
					return err
				}
				return tx.CreateRollout(store.Rollout{ID: "ro-1", Release: "rel", State: "running", Active: true, Version: 1})
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := runner.pub.Drop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := count(snapshot(t, runner)); got != count(end) {
				t.Fatalf("after a drop during a rollout of the release: got %v, want %v", got, count(end))
			}
			if err := st.Update(context.Background(), func(tx store.Tx) error {
				r, err := tx.Rollout("ro-1")
				if err != nil {
					return err
				}
				r.Active, r.State = false, "succeeded"
				return tx.UpdateRollout(r)
			}); err != nil {
				t.Fatal(err)
			}
			// Their heartbeats went with the first drop; now their rows go.
			if n, err := runner.pub.Drop(context.Background()); err != nil || n != 2 {
				t.Fatalf("Drop after the rollout: %d rows, %v; want 2 (the two dead incarnations' rows)", n, err)
			}
			if got := count(snapshot(t, runner)); got != [2]uint64{11, 0} {
				t.Fatalf("after the drop: got %v, want the runner's own [11 0]", got)
			}
		})
	}
}

// TestPublishedWritesOnlyAfterTraffic: a server that served nothing
// writes nothing (a command that only reads leaves an empty database
// empty); once it published, its heartbeat goes on without traffic, every
// HeartbeatEvery, not at every Publish.
func TestPublishedWritesOnlyAfterTraffic(t *testing.T) {
	for name, open := range metricsStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s := newServer(st, func() time.Time { return now })
			rows := func() []store.ReleaseMetrics {
				var ms []store.ReleaseMetrics
				if err := st.View(context.Background(), func(tx store.Tx) (err error) {
					ms, err = tx.(store.Lister).PublishedMetrics()
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return ms
			}
			s.publish(t)
			if n, err := s.pub.Drop(context.Background()); err != nil || n != 0 {
				t.Fatalf("Drop before any traffic: %d, %v", n, err)
			}
			if got := rows(); len(got) != 0 {
				t.Fatalf("published without traffic: %+v", got)
			}
			s.serve(2, 1)
			s.publish(t)
			served := now
			want := func(heartbeat time.Time) []store.ReleaseMetrics {
				return []store.ReleaseMetrics{
					{Incarnation: s.pub.Incarnation(), Published: heartbeat},
					{Incarnation: s.pub.Incarnation(), Account: "acme", Release: "rel", Requests: 2, Errors: 1, Latency: map[int]uint64{silo.LatencyBucket(5 * time.Millisecond): 2}, Published: served},
				}
			}
			now = now.Add(rollout.HeartbeatEvery - time.Second)
			s.publish(t) // no traffic since, and the heartbeat is not due: nothing
			if d := cmp.Diff(want(served), rows()); d != "" {
				t.Fatalf("published rows before the heartbeat is due (-want +got):\n%s", d)
			}
			now = now.Add(time.Second)
			s.publish(t) // no traffic since: the heartbeat only
			if d := cmp.Diff(want(now), rows()); d != "" {
				t.Fatalf("published rows once the heartbeat is due (-want +got):\n%s", d)
			}
		})
	}
}

// TestPublishedStoreError: when the published metrics cannot be read, the
// snapshot is an error, never the runner's own figures alone, and a
// publication fails.
func TestPublishedStoreError(t *testing.T) {
	for name, open := range metricsStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			s := newServer(st, nil)
			s.serve(3, 0)
			if _, err := s.pub.Snapshot("acme", "rel"); err != nil {
				t.Fatalf("Snapshot with the store open: %v", err)
			}
			st.Close()
			got, err := s.pub.Snapshot("acme", "rel")
			if err == nil {
				t.Fatalf("Snapshot with the store closed: got %+v and no error, want an error", got)
			}
			if silo.ErrorCode(err) != silo.CodeUnavailable {
				t.Errorf("Snapshot with the store closed: code %s (%v), want %s", silo.ErrorCode(err), err, silo.CodeUnavailable)
			}
			if err := s.pub.Publish(context.Background()); err == nil {
				t.Fatal("Publish with the store closed: no error")
			}
		})
	}
}
