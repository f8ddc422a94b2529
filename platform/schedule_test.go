package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// runs lists the scheduled runs the tick function recorded in tn's account.
func runs(t *testing.T, tn *silotest.Tenant) []string {
	t.Helper()
	resp := tn.GET(t, "/runs")
	if resp.Status != 200 {
		t.Fatalf("GET /runs: %s", resp)
	}
	if len(resp.Body) == 0 {
		return nil
	}
	return strings.Split(string(resp.Body), "\n")
}

func wantRuns(t *testing.T, tn *silotest.Tenant, want ...string) {
	t.Helper()
	got := runs(t, tn)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s's runs: got %q, want %q", tn.ID, got, want)
	}
}

// Schedules run in every active account at their due times (UTC), once per
// due time; not in a suspended account (and again once resumed); a window
// that missed several due times runs once, for the latest; and a client
// cannot pass a request off as a scheduled run.
func TestSchedules(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	p.Deploy(t, filepath.Join("testdata", "sched"))
	acme, globex := p.Tenant(t, "acme"), p.Tenant(t, "globex")
	clock := p.Clock()
	// The platform starts at silotest.Start, 09:00 UTC. Each account's
	// quarter-hour runs start a fixed 0-90 s after their due time (a tenth
	// of the interval; acme's and globex's are above 0, so their 09:00 run
	// comes after the start), nightly ones 0-30 s after.
	q0900, q0915 := "quarter-hour@2026-01-05T09:00:00Z", "quarter-hour@2026-01-05T09:15:00Z"

	clock.Advance(14 * time.Minute) // 09:14
	wantRuns(t, acme, q0900)
	clock.Advance(3 * time.Minute) // 09:17
	wantRuns(t, acme, q0900, q0915)
	wantRuns(t, globex, q0900, q0915)
	clock.Advance(time.Minute) // 09:18: nothing new, nothing twice
	wantRuns(t, acme, q0900, q0915)

	// Must not: a suspended account runs nothing; must: the others do.
	if err := p.Platform().SetState(ctx, "globex", silo.StateSuspended); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * time.Minute) // 09:33
	wantRuns(t, acme, q0900, q0915, "quarter-hour@2026-01-05T09:30:00Z")
	if err := p.Platform().SetState(ctx, "globex", silo.StateActive); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, globex, q0900, q0915)

	// A long window: one run per schedule, for its latest due time.
	clock.Advance(18 * time.Hour) // 03:33 the next day
	wantRuns(t, globex, q0900, q0915, "quarter-hour@2026-01-06T03:30:00Z", "nightly@2026-01-06T03:00:00Z")

	// Must not: the schedule's header fields from a client do not reach
	// the function (it lists runs instead of recording one).
	if resp := acme.GET(t, "/runs", silotest.Header("X-Silo-Schedule", "forged"), silotest.Header("X-Silo-Scheduled-For", "2026-01-06T03:33:00Z")); resp.Status != 200 || strings.Contains(string(resp.Body), "forged") || string(resp.Body) == "ran" {
		t.Fatalf("a client's X-Silo-Schedule: %s", resp)
	}
	if slices.ContainsFunc(runs(t, acme), func(k string) bool { return strings.HasPrefix(k, "forged") }) {
		t.Fatal("a client's request was recorded as a scheduled run")
	}
}

// TestSchedulesPassTheIsolationGate deploys the example app with a
// schedule, onboards tenants, and deploys a change: the isolation gate
// proves the fleet with its schedules (each calls a function of its own
// account) and lets the release through, and silo verify's proof holds.
func TestSchedulesPassTheIsolationGate(t *testing.T) {
	ctx := context.Background()
	app := silotest.CopyExample(t)
	yml := filepath.Join(app, "silo.yaml")
	src, err := os.ReadFile(yml)
	if err != nil {
		t.Fatal(err)
	}
	withSchedule := func(every string) {
		t.Helper()
		y := strings.Replace(string(src), "\nroutes:\n", "\nschedules:\n  ticker: {function: smoke, every: "+every+"}\n\nroutes:\n", 1)
		if y == string(src) {
			t.Fatal("the example has no routes section; update the test")
		}
		if err := os.WriteFile(yml, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withSchedule("1m")
	p := silotest.New(t)
	p.Deploy(t, app)
	p.Tenant(t, "acme")
	p.Tenant(t, "globex")
	withSchedule("2m")
	if _, err := p.Platform().Deploy(ctx, app); err != nil {
		t.Fatalf("deploy a change of an app with a schedule: %v", err)
	}
	pp := p.Platform()
	_, res, err := server.ProveFleet(ctx, pp.Store, pp.Provider)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status == isolation.StatusViolated {
		t.Fatalf("verify: got %s, want no counterexample: %v", res.Status, res.Counterexamples)
	}
	if n := len(isolation.BuildGraph(ctx, mustFleet(t, pp))); n != res.Edges {
		t.Fatalf("graph: %d edges, proof counted %d", n, res.Edges)
	}
}

func mustFleet(t *testing.T, pp *platform.Platform) *isolation.Fleet {
	t.Helper()
	f, err := isolation.LoadFleet(context.Background(), pp.Store)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSchedulesRunOnceAcrossServers runs two platforms (two servers) on one
// PostgreSQL database and one data dir, on one fake clock, each running
// its schedules as its own timer would: every due run happens once per
// account, not once per server. The must twin is TestSchedules: a single
// server runs every due run. A server that dies holding a claim loses that
// one run (at most once); the schedule's next due time runs as usual.
func TestSchedulesRunOnceAcrossServers(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	clock := rollout.NewManualClock(silotest.Start)
	a := openServer(t, dsn, dir, clock)
	b := openServer(t, dsn, dir, clock)
	if _, err := a.p.Deploy(ctx, filepath.Join("testdata", "sched")); err != nil {
		t.Fatal(err)
	}
	keys := map[silo.AccountID]string{}
	for _, id := range []string{"acme", "globex", "initech"} {
		c, err := a.p.CreateAccount(ctx, control.CreateRequest{ID: id, WithKey: true})
		if err != nil {
			t.Fatal(err)
		}
		keys[c.Account.ID] = c.Key
	}
	both := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, s := range []*node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.p.RunSchedules(ctx, clock.Now()); err != nil {
					t.Errorf("run schedules: %v", err)
				}
				s.p.WaitSchedules()
			}()
		}
		wg.Wait()
	}
	both() // 09:00: the schedules count from here on both servers
	q := func(hhmm string) string { return "quarter-hour@2026-01-05T" + hhmm + ":00Z" }
	check := func(want, gone []string) {
		t.Helper()
		for id, key := range keys {
			st, body := b.get(t, id, key, "/runs")
			if st != 200 {
				t.Fatalf("GET /runs of %s: %d %s", id, st, body)
			}
			if strings.Contains(body, "×") {
				t.Fatalf("%s ran a due time more than once: %q", id, body)
			}
			runs := strings.Split(body, "\n")
			for _, w := range want {
				if !slices.Contains(runs, w) {
					t.Errorf("%s's runs %q lack %s", id, runs, w)
				}
			}
			for _, g := range gone {
				if slices.Contains(runs, g) {
					t.Errorf("%s's runs %q hold %s", id, runs, g)
				}
			}
		}
	}
	advance := func(d time.Duration) {
		t.Helper()
		for range int(d / time.Minute) { // minute by minute, as servers scanning every second
			clock.Advance(time.Minute)
			both()
		}
	}
	advance(50 * time.Minute) // 09:50
	check([]string{q("09:15"), q("09:30"), q("09:45")}, nil)

	// A server that died holding the claims of 10:00 (until 10:07): that
	// run is lost, the next ones run.
	for id := range keys {
		c := store.ScheduleClaim{Account: id, Schedule: "quarter-hour", Due: silotest.Start.Add(time.Hour), Owner: "a server that died", Until: silotest.Start.Add(67 * time.Minute)}
		if err := a.p.Store.Update(ctx, func(tx store.Tx) error { return tx.ClaimScheduleRun(c, clock.Now()) }); err != nil {
			t.Fatal(err)
		}
	}
	advance(42 * time.Minute) // 10:32
	check([]string{q("10:15"), q("10:30")}, []string{q("10:00")})
}
