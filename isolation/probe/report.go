package probe

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of a probe run: how many attempts (accesses that
// must fail) were made and how many succeeded, how many controls (accesses
// that must succeed) were made and how many failed, per surface, and for
// every failure exactly what happened.
type Report struct {
	Attempts          int `json:"attempts"`
	AttemptsSucceeded int `json:"attempts_succeeded"`
	Controls          int `json:"controls"`
	ControlsFailed    int `json:"controls_failed"`
	// NotApplicable counts controls that do not apply to the app under
	// test (for example reads of production exports when production
	// exports nothing): neither run nor failed.
	NotApplicable int             `json:"not_applicable"`
	Surfaces      []SurfaceResult `json:"surfaces"`
	// Failures lists every attempt that succeeded and every control that
	// failed, each prefixed with its surface.
	Failures []string `json:"failures,omitempty"`
}

// SurfaceResult is the outcome on one attack surface.
type SurfaceResult struct {
	Name              string `json:"name"`
	Description       string `json:"description"`
	Attempts          int    `json:"attempts"`
	AttemptsSucceeded int    `json:"attempts_succeeded"`
	Controls          int    `json:"controls"`
	ControlsFailed    int    `json:"controls_failed"`
	// NotApplicable lists the controls that do not apply to the app, each
	// with why.
	NotApplicable []string `json:"not_applicable,omitempty"`
	// Outcomes counts how the target answered the attempts: host-call
	// statuses ("denied", "invalid", "not found", "ok" for a call confined
	// to the caller's own account) or gateway HTTP statuses ("HTTP 401").
	Outcomes map[string]int `json:"outcomes,omitempty"`
	Failures []string       `json:"failures,omitempty"`
}

// OK reports whether the run proved what it set out to: at least one attempt
// and one control on every surface (or, where the app offers nothing a
// control could read, a control found not applicable), no attempt succeeded
// and every control succeeded. A run whose controls fail is a failure even
// when no attempt succeeded: the probes may not have been able to see a
// breach.
func (r Report) OK() bool {
	if r.AttemptsSucceeded != 0 || r.ControlsFailed != 0 || len(r.Failures) != 0 {
		return false
	}
	seen := map[string]bool{}
	for _, s := range r.Surfaces {
		if s.Attempts == 0 || s.Controls == 0 && len(s.NotApplicable) == 0 {
			return false
		}
		seen[s.Name] = true
	}
	for _, name := range Surfaces {
		if !seen[name] {
			return false
		}
	}
	return true
}

// The outcomes of a run (Outcome).
const (
	// OutcomePassed: no attempt succeeded and every control succeeded, on
	// every surface.
	OutcomePassed = "passed"
	// OutcomeBreached: at least one attempt to cross accounts succeeded.
	OutcomeBreached = "breached"
	// OutcomeInconclusive: no attempt succeeded, but a control failed, a
	// surface did not run, or the run did not complete: the probes could
	// not check everything. It is not a breach.
	OutcomeInconclusive = "inconclusive"
)

// Outcome says what the run found: OutcomeBreached if any attempt
// succeeded, OutcomePassed if OK, else OutcomeInconclusive.
func (r Report) Outcome() string {
	switch {
	case r.AttemptsSucceeded > 0:
		return OutcomeBreached
	case r.OK():
		return OutcomePassed
	}
	return OutcomeInconclusive
}

// Surfaces names every surface a complete run reports, in order.
var Surfaces = []string{"host-calls", "tenant-to-production", "production-to-tenants", "residue", "gateway", "hostile-modules", "deletion", "report", "teardown"}

// Summary is the one-line result, e.g. "412 attempts, 0 succeeded; 37
// controls, all succeeded".
func (r Report) Summary() string {
	ctl := "all succeeded"
	if r.ControlsFailed > 0 {
		ctl = fmt.Sprintf("%d failed", r.ControlsFailed)
	}
	na := ""
	if r.NotApplicable > 0 {
		na = fmt.Sprintf("; %d not applicable to this app", r.NotApplicable)
	}
	return fmt.Sprintf("%d attempts, %d succeeded; %d controls, %s%s", r.Attempts, r.AttemptsSucceeded, r.Controls, ctl, na)
}

// Text writes the report for people: the summary, a table per surface and
// every failure.
func (r Report) Text(w io.Writer) error {
	var b strings.Builder
	verdict := "PASS"
	switch r.Outcome() {
	case OutcomeBreached:
		verdict = "BREACH"
	case OutcomeInconclusive:
		verdict = "INCONCLUSIVE (no attempt succeeded, but the probes could not check everything)"
	}
	fmt.Fprintf(&b, "%s: %s\n\n", verdict, r.Summary())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SURFACE\tATTEMPTS\tSUCCEEDED\tCONTROLS\tFAILED\tWHAT IS ATTACKED")
	for _, s := range r.Surfaces {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Attempts, s.AttemptsSucceeded, s.Controls, s.ControlsFailed, s.Description)
	}
	tw.Flush()
	answered := false
	for _, s := range r.Surfaces {
		if len(s.Outcomes) == 0 {
			continue
		}
		answered = true
		keys := make([]string, 0, len(s.Outcomes))
		for k := range s.Outcomes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, s.Outcomes[k])
		}
		fmt.Fprintf(&b, "\n%s attempts were answered: %s", s.Name, strings.Join(parts, ", "))
	}
	if answered {
		b.WriteString("\n(how each attempt was answered: \"ok\" is an answer without an error; an attempt counts as succeeded only when what it got or changed belongs to another account)")
	}
	b.WriteString("\n")
	for _, name := range Surfaces {
		found := false
		for _, s := range r.Surfaces {
			found = found || s.Name == name
		}
		if !found {
			fmt.Fprintf(&b, "\nsurface %s did not run\n", name)
		}
	}
	for _, s := range r.Surfaces {
		if s.Attempts == 0 || s.Controls == 0 && len(s.NotApplicable) == 0 {
			fmt.Fprintf(&b, "\nsurface %s ran %d attempts and %d controls; every surface needs both\n", s.Name, s.Attempts, s.Controls)
		}
		for _, na := range s.NotApplicable {
			fmt.Fprintf(&b, "\n%s: not applicable: %s", s.Name, na)
		}
	}
	if r.NotApplicable > 0 {
		b.WriteString("\n")
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(&b, "\n%d failure(s):\n", len(r.Failures))
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tally collects the outcomes of one surface.
type tally struct {
	s SurfaceResult
}

func newTally(name, desc string) *tally {
	return &tally{s: SurfaceResult{Name: name, Description: desc}}
}

// attempt records an access that must fail; breach says what succeeded
// ("" if nothing did).
func (t *tally) attempt(what, outcome, breach string) {
	t.s.Attempts++
	if outcome != "" {
		if t.s.Outcomes == nil {
			t.s.Outcomes = map[string]int{}
		}
		t.s.Outcomes[outcome]++
	}
	if breach != "" {
		t.s.AttemptsSucceeded++
		t.s.Failures = append(t.s.Failures, "attempt succeeded: "+what+": "+breach)
	}
}

// control records an access that must succeed; problem says why it did not
// ("" if it did).
func (t *tally) control(what, problem string) {
	t.s.Controls++
	if problem != "" {
		t.s.ControlsFailed++
		t.s.Failures = append(t.s.Failures, "control failed: "+what+": "+problem)
	}
}

// notApplicable records a control that does not apply to the app under
// test, saying why: it is neither run nor failed.
func (t *tally) notApplicable(what, why string) {
	t.s.NotApplicable = append(t.s.NotApplicable, what+": "+why)
}

func (r *Report) add(t *tally) {
	r.Surfaces = append(r.Surfaces, t.s)
	r.NotApplicable += len(t.s.NotApplicable)
	r.Attempts += t.s.Attempts
	r.AttemptsSucceeded += t.s.AttemptsSucceeded
	r.Controls += t.s.Controls
	r.ControlsFailed += t.s.ControlsFailed
	for _, f := range t.s.Failures {
		r.Failures = append(r.Failures, t.s.Name+": "+f)
	}
}
