package platform

import (
	"reflect"
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

// TestShrink: a map down to a quarter of its peak is replaced by a copy
// with the same entries; one above a quarter, or that never grew large, is
// kept.
func TestShrink(t *testing.T) {
	same := func(a, b map[int]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	m, peak := map[int]string{}, 0
	for i := range 1000 {
		m[i] = "v"
		grew(len(m), &peak)
	}
	for i := range 700 {
		delete(m, i)
	}
	// Must not: 300 of 1,000 is more than a quarter.
	if got := shrink(m, &peak); !same(got, m) || peak != 1000 {
		t.Fatalf("300 of a peak of 1000: replaced %v, peak %d; want kept, 1000", !same(got, m), peak)
	}
	for i := 700; i < 900; i++ {
		delete(m, i)
	}
	// Must: 100 of 1,000 is replaced, with the same entries.
	got := shrink(m, &peak)
	if same(got, m) || peak != 100 || !reflect.DeepEqual(got, m) {
		t.Fatalf("100 of a peak of 1000: replaced %v, peak %d, same entries %v; want replaced, 100, true", !same(got, m), peak, reflect.DeepEqual(got, m))
	}
	// Must not: a small map is left alone even when empty.
	small, sp := map[int]string{1: "a"}, 0
	grew(len(small), &sp)
	delete(small, 1)
	if got := shrink(small, &sp); !same(got, small) {
		t.Error("a map that never held shrinkMin entries was replaced")
	}
}
