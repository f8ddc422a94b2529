package probe

import (
	"strings"
	"testing"
)

// The text of a probe run says what an "ok" answer is wherever it lists
// how attempts were answered (an "ok" beside "0 succeeded" read as a
// breach), and says nothing of it when no answers are listed.
func TestTextSaysWhatOKIs(t *testing.T) {
	const says = `"ok" is an answer without an error; an attempt counts as succeeded only when`
	for _, tc := range []struct {
		name     string
		outcomes map[string]int
		want     bool
	}{
		{"answers listed", map[string]int{"ok": 160, "denied": 4}, true},
		{"none listed", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Report{Surfaces: []SurfaceResult{{Name: "host-calls", Attempts: 164, Controls: 2, Outcomes: tc.outcomes}}}
			var b strings.Builder
			if err := r.Text(&b); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(b.String(), says); got != tc.want {
				t.Errorf("text says what ok is: %v, want %v:\n%s", got, tc.want, b.String())
			}
		})
	}
}
