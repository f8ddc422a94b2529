package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
)

// gatedRing is a rollout section whose only ring is gated on traffic that a
// test never sends: every rollout that changes a tenant pauses there.
const gatedRing = `
rollout:
  rings:
    - name: canary
      select: {kind: tenant}
      bake: 0s
      gates: {max_error_rate: 5%, min_requests: 10}
`

// A rollout that stops short of success makes status --follow exit 1 (the
// twin: a succeeded one exits 0); pause, abort and the rest default to the
// active rollout; rollout list lists; an aborted ring says stopped, and a
// ring without gates says nothing was measured.
func TestRolloutCommands(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	if err := os.WriteFile(file, append(src, gatedRing...), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	c.fails("no rollout is active", "rollout", "pause")

	// A new release: acme changes, the gate has no traffic, the rollout pauses.
	changed := strings.Replace(string(src)+gatedRing, "Hello, ", "Hi, ", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails("is paused", "deploy")
	c.fails("is paused", "rollout", "status", "--follow")
	// A second deploy of yet another edit is refused and leaves nothing behind.
	if err := os.WriteFile(file, []byte(strings.Replace(string(src)+gatedRing, "Hello, ", "Hey, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, c)
	c.fails("rollout ro-000001 of release", "deploy")
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused deploy changed the state:\n%s", cmp.Diff(before, after))
	}
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.ok("rollout", "list")
	if !strings.Contains(out, "ro-000001") || !strings.Contains(out, "paused") {
		t.Errorf("rollout list: %s", out)
	}
	out = c.ok("rollout", "status")
	if !strings.Contains(out, "inconclusive: 0 request(s)") || strings.Contains(out, "error rate 0.0%") {
		t.Errorf("status of an inconclusive ring: %s; want the request count and no error rate", out)
	}
	if !strings.Contains(out, "ring production") || !strings.Contains(out, "nothing measured") {
		t.Errorf("status of a ring without gates: %s; want nothing measured", out)
	}

	out = c.ok("rollout", "abort") // no ID: the active rollout
	if !strings.Contains(out, "ro-000001") || !strings.Contains(out, "aborted") || !strings.Contains(out, "stopped") || strings.Contains(out, "baking") {
		t.Errorf("abort: %s; want ro-000001 aborted, its canary ring stopped", out)
	}
	if !strings.Contains(out, "accounts: 1 on ") || !strings.Contains(out, "(target)") {
		t.Errorf("abort: %s; want where the accounts are", out)
	}
	// The abort says where it left the accounts and how to converge.
	for _, want := range []string{"The abort leaves 2 account(s) on release r-", " (acme, production)", "is not current: an account created now gets r-",
		"silo rollout rollback ro-000001 ", "silo deploy --release r-"} {
		if !strings.Contains(out, want) {
			t.Errorf("abort: %s; want %q", out, want)
		}
	}
	c.fails("aborted", "rollout", "status", "--follow")

	// Twin: the same release again changes nothing and succeeds.
	c.ok("deploy")
	if out := c.ok("rollout", "status", "--follow"); !strings.Contains(out, "ro-000002") || !strings.Contains(out, "succeeded") {
		t.Errorf("status --follow of a succeeded rollout: %s", out)
	}
	c.fails("no rollout is active", "rollout", "abort")
	c.fails("no rollout \"ro-000009\"; silo rollout list", "rollout", "resume", "ro-000009")
	// rollback, with nothing active, undoes the latest rollout (ro-000002).
	if out := c.ok("rollout", "rollback"); !strings.Contains(out, "ro-000003") {
		t.Errorf("rollback of the latest, succeeded rollout: %s; want a rollback rollout ro-000003", out)
	}
	// rollout list marks the rollback rollout as such, and no other.
	for _, line := range strings.Split(strings.TrimSpace(c.ok("rollout", "list")), "\n") {
		if marked, want := strings.Contains(line, "(rollback of ro-000002)"), strings.HasPrefix(line, "ro-000003 "); marked != want || strings.Count(line, "rollback of") > 1 || (!want && strings.Contains(line, "rollback of")) {
			t.Errorf("rollout list line %q: marked as a rollback %v, want %v (only ro-000003, of ro-000002)", line, marked, want)
		}
	}
}

func TestVerdictText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		v    rollout.Verdict
		want string
	}{
		{"no gates", rollout.Verdict{Result: rollout.Pass, Reason: "no gates"}, "pass: no gates, nothing measured"},
		{"measured", rollout.Verdict{Result: rollout.Pass, Reason: "gates passed", Judged: []string{"min_requests", "max_error_rate", "max_p99_increase"},
			Requests: 812, ErrorRate: 0.001, PrevErrorRate: 0.002, P99: 50331648 * time.Nanosecond, PrevP99: 41943040 * time.Nanosecond},
			"pass: 812 requests, error rate 0.1% (previous 0.2%), p99 50.3ms (previous 41.9ms)"},
		{"error rate only", rollout.Verdict{Result: rollout.Pass, Judged: []string{"min_requests", "max_error_rate"}, Requests: 10},
			"pass: 10 requests, error rate 0.0% (previous 0.0%)"},
		{"against one release", rollout.Verdict{Result: rollout.Pass, Judged: []string{"min_requests", "max_error_rate"}, Requests: 10, PrevRelease: "r-1"},
			"pass: 10 requests, error rate 0.0% (previous 0.0%); previous = release r-1"},
		{"against the release each lagging account ran", rollout.Verdict{Result: rollout.Pass, Judged: []string{"min_requests", "max_error_rate"}, Requests: 10, PrevReleases: []string{"r-0", "r-1"}},
			"pass: 10 requests, error rate 0.0% (previous 0.0%); previous = the release each account ran (r-0, r-1)"},
		{"failed", rollout.Verdict{Result: rollout.Fail, Reason: "error rate 20.0% exceeds ...", Judged: []string{"min_requests", "max_error_rate"}},
			"fail: error rate 20.0% exceeds ..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdictText(tc.v); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A ring a stopped rollout never reached says so; while the rollout runs,
// a ring ahead is waiting.
func TestRingNotReached(t *testing.T) {
	t.Parallel()
	rings := []rollout.RingStatus{{Name: "production", Phase: rollout.PhasePromoted}, {Name: "canary", Phase: rollout.PhaseRolledBack}, {Name: "everyone", Phase: rollout.PhaseWaiting}}
	for _, tc := range []struct {
		state rollout.State
		want  string
	}{
		{rollout.StateFailed, "not reached"},
		{rollout.StateAborted, "not reached"},
		{rollout.StateRunning, "waiting"},
	} {
		var out strings.Builder
		r := rollout.Rollout{ID: "ro-000002", Release: "r-2", Previous: "r-1", State: tc.state, Ring: 1, Rings: rings}
		if err := printRollout(&globals{stdout: &out}, r); err != nil {
			t.Fatal(err)
		}
		var line string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "ring everyone") {
				line = l
			}
		}
		if !strings.Contains(line, tc.want) {
			t.Errorf("%s rollout: the ring ahead reads %q, want %q", tc.state, line, tc.want)
		}
	}
}

// Against a server, rollout list answers like the local one, and an
// operation without an ID names the active rollout ("active"), which is a
// clear error when there is none.
func TestRolloutCommandsAgainstAServer(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme") // makes the app's release current
	})
	if out := f.same("rollout", "list"); !strings.Contains(out, "no rollout yet") {
		t.Errorf("rollout list: %s", out)
	}
	for _, op := range []string{"pause", "resume", "abort"} {
		code, _, errOut := f.remoteRun("rollout", op)
		if code != 1 || !strings.Contains(errOut, "no rollout is active") {
			t.Errorf("remote rollout %s without an active rollout: exit %d, %s", op, code, errOut)
		}
	}
	// rollback defaults to the latest rollout, active or not: none yet.
	if code, _, errOut := f.remoteRun("rollout", "rollback"); code != 1 || !strings.Contains(errOut, "no rollout yet") {
		t.Errorf("remote rollout rollback before any rollout: exit %d, %s", code, errOut)
	}
	// The release the server runs already: nothing to roll out, exit 0.
	if out := f.remote("deploy", "--detach"); !strings.Contains(out, "nothing to roll out") {
		t.Errorf("deploy --detach of the unchanged app: %s", out)
	}
	// Twin: a rollout started on the server is the active one.
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "Hello, ", "Hi, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := f.remote("deploy", "--detach")
	if !strings.Contains(out, "ro-000001") {
		t.Fatalf("deploy --detach: %s", out)
	}
	if out := f.remote("rollout", "abort"); !strings.Contains(out, "ro-000001") || !strings.Contains(out, "aborted") {
		t.Errorf("remote rollout abort of the active rollout: %s", out)
	} else if strings.Contains(out, "The abort leaves") || strings.Contains(out, "To bring every account") {
		// This fixture's server runs no rollout: the abort moved no account.
		t.Errorf("remote rollout abort of a rollout that moved no account: %s; want no split", out)
	}
	// With nothing active, rollback undoes the latest rollout (--detach:
	// this fixture's server runs no rollout, so there is nothing to follow).
	if out := f.remote("rollout", "rollback", "--detach"); !strings.Contains(out, "ro-000002") {
		t.Errorf("remote rollout rollback after an aborted rollout: %s; want a rollback rollout ro-000002", out)
	}
	if out := f.remote("rollout", "list"); !strings.Contains(out, "(rollback of ro-000001)") {
		t.Errorf("remote rollout list: %s; want ro-000002 marked as the rollback of ro-000001", out)
	}
}

// writeSplit names the accounts on the aborted rollout's release (at most
// maxNamed), counts those elsewhere, and offers the ways to converge: a
// rollback of an ordinary rollout, a deploy of either release for a
// rollback rollout (which cannot be rolled back). Nothing when no account
// runs the rollout's release.
func TestWriteSplit(t *testing.T) {
	t.Parallel()
	var many []silo.AccountID
	for i := range 12 {
		many = append(many, silo.AccountID(fmt.Sprintf("t%02d", i)))
	}
	rings := func(counts ...map[string]int) []rollout.RingStatus {
		var rs []rollout.RingStatus
		for _, c := range counts {
			rs = append(rs, rollout.RingStatus{Releases: c})
		}
		return rs
	}
	for _, tc := range []struct {
		name      string
		r         rollout.Rollout
		moved     []silo.AccountID
		want, not []string
	}{
		{"split", rollout.Rollout{ID: "ro-000004", Release: "r-2", Previous: "r-1", Rings: rings(map[string]int{"r-2": 1}, map[string]int{"r-2": 1, "r-1": 5})}, []silo.AccountID{"acme", "production"},
			[]string{"split between releases: 2 account(s) on release r-2 (acme, production), 5 on release r-1 (previous).", "silo rollout rollback ro-000004 ", "silo deploy --release r-2 "}, []string{"silo deploy --release r-1"}},
		{"more than maxNamed", rollout.Rollout{ID: "ro-000004", Release: "r-2", Previous: "r-1", Rings: rings(map[string]int{"r-2": 12})}, many,
			[]string{"(t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, 2 more)", "every account its rings reached"}, []string{"t10", "split"}},
		{"a rollback rollout", rollout.Rollout{ID: "ro-000005", RollbackOf: "ro-000004", Release: "r-1", Previous: "r-2", Rings: rings(map[string]int{"r-1": 2, "r-2": 3})}, nil,
			[]string{"silo deploy --release r-1 ", "silo deploy --release r-2 "}, []string{"silo rollout rollback", "is not current"}},
		{"nothing moved", rollout.Rollout{ID: "ro-000004", Release: "r-2", Previous: "r-1", Rings: rings(map[string]int{"r-1": 5})}, nil,
			nil, []string{"r-2", "silo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			writeSplit(&out, tc.r, tc.moved)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("got %q, want %q in it", out.String(), w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("got %q, want no %q in it", out.String(), w)
				}
			}
		})
	}
}

// A follow prints a rollout's summary when what it says changes, not at
// every change of the record (a bake renews the lease every few
// seconds): the must-not, a renewal prints nothing; the must, a new phase
// and the end print again. JSON lines carry every state.
func TestFollowPrintsChangesOnly(t *testing.T) {
	t.Parallel()
	baking := rollout.Rollout{ID: "ro-000001", Release: "r-2", Previous: "r-1", State: rollout.StateRunning, Ring: 1, Version: 5,
		Rings: []rollout.RingStatus{{Name: "production", Phase: rollout.PhasePromoted}, {Name: "canary", Phase: rollout.PhaseBaking}}}
	renewed := baking
	renewed.Version, renewed.Lease = 6, time.Unix(100, 0)
	done := baking
	done.Version, done.State, done.Rings = 7, rollout.StateSucceeded, []rollout.RingStatus{{Name: "production", Phase: rollout.PhasePromoted}, {Name: "canary", Phase: rollout.PhasePromoted}}
	for _, tc := range []struct {
		output string
		blocks int // how many times "rollout ro-000001" (or its JSON) is printed
	}{{"text", 2}, {"json", 4}} {
		var out strings.Builder
		show := followPrinter(&globals{stdout: &out, output: tc.output})
		for _, r := range []rollout.Rollout{baking, renewed, renewed, done} {
			if err := show(r); err != nil {
				t.Fatal(err)
			}
		}
		want := "rollout ro-000001"
		if tc.output == "json" {
			want = `"id":"ro-000001"`
		}
		if got := strings.Count(out.String(), want); got != tc.blocks {
			t.Errorf("%s: printed %d states, want %d:\n%s", tc.output, got, tc.blocks, out.String())
		}
	}
}
