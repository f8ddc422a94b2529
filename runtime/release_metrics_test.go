package runtime

import (
	"context"
	"fmt"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

func (e *env) invokeRelease(t testing.TB, acct silo.AccountID, release string, path string) {
	t.Helper()
	if _, err := e.rt.Invoke(context.Background(), Invocation{
		Account: acct, Function: "api", Digest: e.guest, Release: release,
		Host: e.hosts[acct], Request: Request{Path: path},
	}); err != nil {
		t.Fatalf("invoke %s %s under %s: %v", acct, path, release, err)
	}
}

// Metrics are attributed to the release that served them: a broken
// release's errors are never counted as another release's, the account's
// totals still count everything, and the split survives the idle drop.
func TestReleaseMetrics(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour})
	for range 3 {
		e.invokeRelease(t, "acme", "good", "/echo")
	}
	for range 2 {
		e.invokeRelease(t, "acme", "broken", "/panic")
	}
	e.invokeRelease(t, "acme", "", "/echo") // no release: account-wide only
	e.invokeRelease(t, "globex", "good", "/panic")

	check := func(when string) {
		t.Helper()
		for _, tc := range []struct {
			acct                silo.AccountID
			release             string
			invocations, status uint64
		}{
			{"acme", "good", 3, 0},   // must: the good release's own requests
			{"acme", "broken", 2, 2}, // must: the broken release's 5xx
			{"acme", "other", 0, 0},  // must not: a release that never served
			{"globex", "good", 1, 1}, // must not: acme's good requests
			{"globex", "broken", 0, 0},
		} {
			m := e.rt.ReleaseMetrics(tc.acct, tc.release)
			if m.Invocations != tc.invocations || m.Status5xx != tc.status {
				t.Errorf("%s: %s under %q: got %d invocations, %d 5xx; want %d, %d", when, tc.acct, tc.release, m.Invocations, m.Status5xx, tc.invocations, tc.status)
			}
		}
		if m := e.rt.Metrics("acme"); m.Invocations != 6 || m.Status5xx != 2 {
			t.Errorf("%s: acme in all: %d invocations, %d 5xx; want 6, 2", when, m.Invocations, m.Status5xx)
		}
	}
	check("live")
	e.rt.sweep(time.Now().Add(2 * time.Hour))
	if s := e.rt.Stats(); s.Accounts != 0 {
		t.Fatalf("after the idle timeout: %d accounts, want 0", s.Accounts)
	}
	check("dropped")
	e.invokeRelease(t, "acme", "good", "/echo")
	if m := e.rt.ReleaseMetrics("acme", "good"); m.Invocations != 4 {
		t.Errorf("back from the drop: acme under good: %d invocations, want 4", m.Invocations)
	}
}

// An account keeps the metrics of its last maxReleases releases.
func TestReleaseMetricsBounded(t *testing.T) {
	e := newEnv(t, Config{})
	for i := range maxReleases + 1 {
		e.invokeRelease(t, "acme", fmt.Sprintf("r%d", i), "/echo")
	}
	if m := e.rt.ReleaseMetrics("acme", "r0"); m.Invocations != 0 {
		t.Errorf("oldest release: %d invocations, want 0 (dropped)", m.Invocations)
	}
	for i := 1; i <= maxReleases; i++ {
		if m := e.rt.ReleaseMetrics("acme", fmt.Sprintf("r%d", i)); m.Invocations != 1 {
			t.Errorf("release r%d: %d invocations, want 1", i, m.Invocations)
		}
	}
}

// BenchmarkRecord measures what per-release attribution adds to recording
// one invocation: "account" is the account-wide count alone (no release),
// "release" also counts it under its release. Compare the two in one run.
func BenchmarkRecord(b *testing.B) {
	for _, release := range []string{"", "r-0123456789abcdef"} {
		name := "account"
		if release != "" {
			name = "release"
		}
		b.Run(name, func(b *testing.B) {
			var m metrics
			m.record("r-older", time.Millisecond, 0, 0, 200, nil) // another release kept too
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.record(release, time.Millisecond, 10, 20, 200, nil)
				}
			})
		})
	}
}
