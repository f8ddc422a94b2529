package probe

import "testing"

// TestOutcome: a failed control makes a run inconclusive, never breached; a
// succeeded attempt makes it breached; a control that does not apply stands
// in for a surface's controls only when the surface has none, and never
// hides a failed one.
func TestOutcome(t *testing.T) {
	all := func(mod func(s *SurfaceResult)) Report {
		var r Report
		for _, name := range Surfaces {
			t := &tally{s: SurfaceResult{Name: name, Attempts: 3, Controls: 2}}
			mod(&t.s)
			r.add(t)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		rep  Report
		want string
	}{
		{"every surface clean", all(func(*SurfaceResult) {}), OutcomePassed},
		{"a control failed, nothing breached", all(func(s *SurfaceResult) {
			if s.Name == "host-calls" {
				s.ControlsFailed, s.Failures = 1, []string{"control failed: x"}
			}
		}), OutcomeInconclusive},
		{"an attempt succeeded", all(func(s *SurfaceResult) {
			if s.Name == "gateway" {
				s.AttemptsSucceeded, s.Failures = 1, []string{"attempt succeeded: x"}
			}
		}), OutcomeBreached},
		{"an attempt succeeded and a control failed", all(func(s *SurfaceResult) {
			if s.Name == "gateway" {
				s.AttemptsSucceeded, s.ControlsFailed, s.Failures = 1, 1, []string{"a", "b"}
			}
		}), OutcomeBreached},
		{"a surface with no control but one not applicable", all(func(s *SurfaceResult) {
			if s.Name == "tenant-to-production" {
				s.Controls, s.NotApplicable = 0, []string{"A reads a production export: production exports nothing"}
			}
		}), OutcomePassed},
		{"a surface with no control and none not applicable", all(func(s *SurfaceResult) {
			if s.Name == "tenant-to-production" {
				s.Controls = 0
			}
		}), OutcomeInconclusive},
		{"not applicable beside a failed control", all(func(s *SurfaceResult) {
			if s.Name == "production-to-tenants" {
				s.NotApplicable, s.ControlsFailed, s.Failures = []string{"x: y"}, 1, []string{"control failed: z"}
			}
		}), OutcomeInconclusive},
		{"a surface without attempts", all(func(s *SurfaceResult) {
			if s.Name == "residue" {
				s.Attempts = 0
			}
		}), OutcomeInconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rep.Outcome(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if got := tc.rep.OK(); got != (tc.want == OutcomePassed) {
				t.Errorf("OK() = %v for outcome %s", got, tc.want)
			}
		})
	}
}
