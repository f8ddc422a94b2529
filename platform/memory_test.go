package platform

import (
	"testing"
	"time"
)

// TestReleaserArmsAfterManyDrops: fewer than min drops arm nothing; min
// drops (in several sweeps) run one release, after which the count starts
// again.
func TestReleaserArmsAfterManyDrops(t *testing.T) {
	released := make(chan struct{}, 4)
	r := newReleaser(time.Hour)
	r.settle = time.Millisecond
	r.release = func() { released <- struct{}{} }
	defer r.close()

	// Must not: below the threshold nothing is armed.
	r.dropped(releaseMin - 2)
	r.dropped(0)
	r.mu.Lock()
	armed, pending := r.timer != nil, r.pending
	r.mu.Unlock()
	if armed || pending != releaseMin-2 {
		t.Fatalf("after %d drops: armed %v, pending %d; want not armed, %d pending", releaseMin-2, armed, pending, releaseMin-2)
	}

	// Must: reaching it runs one release.
	r.dropped(2)
	select {
	case <-released:
	case <-time.After(time.Minute):
		t.Fatal("no release after reaching the threshold")
	}
	r.mu.Lock()
	armed, pending = r.timer != nil, r.pending
	r.mu.Unlock()
	if armed || pending != 0 {
		t.Errorf("after the release: armed %v, pending %d; want neither", armed, pending)
	}
}

// TestReleaserRateLimit: a release armed within a sweep interval of the
// last one waits for the rest of the interval; one armed later waits only
// the settle time. A closed releaser arms nothing.
func TestReleaserRateLimit(t *testing.T) {
	r := newReleaser(30 * time.Second)
	now := time.Now()
	if d := r.delay(now); d != releaseSettle {
		t.Errorf("first release waits %s, want %s", d, releaseSettle)
	}
	r.last = now.Add(-10 * time.Second)
	if d := r.delay(now); d != 20*time.Second {
		t.Errorf("10 s after a release: waits %s, want 20s", d)
	}
	r.last = now.Add(-time.Minute)
	if d := r.delay(now); d != releaseSettle {
		t.Errorf("a minute after a release: waits %s, want %s", d, releaseSettle)
	}

	r.close()
	r.dropped(10 * releaseMin)
	r.mu.Lock()
	armed := r.timer != nil
	r.mu.Unlock()
	if armed {
		t.Error("a closed releaser armed a release")
	}
}
