package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/silo-run/silo/rollout"
)

// A pause stops the bake clock: a ring paused two minutes into a
// five-minute bake and resumed ten minutes later bakes three more
// minutes before it is judged (the must-not: it is not judged at once on
// the traffic seen before the pause); then it is judged and the rollout
// succeeds (the must).
func TestPauseStopsTheBakeClock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), opts{})
	src := fmtStack("", "0")
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222")
	seed(t, e, v1, 6, 2)
	traffic(t, e, 200, map[string]profile{v1.ID: good})
	var id string
	bakes := 0
	e.onBake = func(ring string) {
		bakes++
		r := get(t, e, id)
		rs := r.Rings[r.Ring]
		switch bakes {
		case 1: // two minutes in, paused for ten
			e.clock.Advance(2 * time.Minute)
			if _, err := e.run.Pause(ctx, id); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(10 * time.Minute)
		case 2: // resumed: three minutes left, not judged yet
			if left := rs.BakeUntil.Sub(e.clock.Now()); left != 3*time.Minute || rs.Verdict != nil {
				t.Errorf("resumed %s ring: %s of bake left, verdict %v; want 3m0s left and no verdict", ring, left, rs.Verdict)
			}
			traffic(t, e, 100, map[string]profile{v1.ID: good, v2.ID: good})
			e.clock.Advance(3 * time.Minute)
		default:
			t.Errorf("bake %d of ring %s, want two", bakes, ring)
			e.clock.Advance(time.Hour)
		}
	}
	r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id = r.ID
	if r = drive(t, e, id); r.State != rollout.StatePaused || r.Rings[r.Ring].BakeLeft != 3*time.Minute {
		t.Fatalf("after the pause: %s, ring %s with %s of bake left; want paused with 3m0s", r.State, r.Rings[r.Ring].Name, r.Rings[r.Ring].BakeLeft)
	}
	if _, err := e.run.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r = drive(t, e, id); r.State != rollout.StateSucceeded {
		t.Fatalf("after the resumed bake: %s (%s), want succeeded", r.State, r.Reason)
	}
}
