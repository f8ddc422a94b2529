package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// State is where a rollout is.
type State string

// The rollout states. Running and Paused rollouts are active: at most one
// rollout is active at a time.
const (
	StateRunning    State = "running"
	StatePaused     State = "paused"      // by an operator or an inconclusive gate; Resume continues
	StateSucceeded  State = "succeeded"   // every ring promoted and verified live
	StateFailed     State = "failed"      // a ring failed its gate or budget and was rolled back
	StateAborted    State = "aborted"     // stopped by an operator; accounts stay where they are
	StateRolledBack State = "rolled_back" // superseded by a rollback rollout (RolledBackBy)
)

// Active reports whether the rollout still holds the deploy slot.
func (s State) Active() bool { return s == StateRunning || s == StatePaused }

// Phase is where a ring is.
type Phase string

// The ring phases, in order.
const (
	PhaseWaiting     Phase = "waiting"
	PhaseApplying    Phase = "applying"
	PhaseBaking      Phase = "baking"
	PhaseVerifying   Phase = "verifying"
	PhasePromoted    Phase = "promoted"
	PhaseRollingBack Phase = "rolling_back"
	PhaseRolledBack  Phase = "rolled_back"
	// PhaseStopped is the ring in progress when an operator aborted the
	// rollout or superseded it by a rollback, or when it failed with
	// nothing to return to (a first deploy, or a rollback rollout): its
	// accounts stay where they are (RingStatus.Releases says where).
	PhaseStopped Phase = "stopped"
)

// stopRing marks the ring in progress of a rollout that stops without
// finishing it.
func stopRing(r *Rollout) {
	if r.Ring >= len(r.Rings) {
		return
	}
	switch rs := &r.Rings[r.Ring]; rs.Phase {
	case PhaseApplying, PhaseBaking, PhaseVerifying, PhaseRollingBack:
		rs.Phase = PhaseStopped
	}
}

// Rollout is the persisted state of one rollout. It is what status and
// follow show.
type Rollout struct {
	ID string `json:"id"`
	// Release is the target; Previous is the release that was current when
	// the rollout started, which a failing ring returns to.
	Release  string `json:"release"`
	Previous string `json:"previous,omitempty"`
	// RollbackOf is set on a rollback rollout: the rollout it undoes.
	RollbackOf string `json:"rollback_of,omitempty"`
	// RolledBackBy is set when a rollback rollout superseded this one.
	RolledBackBy string `json:"rolled_back_by,omitempty"`
	State        State  `json:"state"`
	Reason       string `json:"reason,omitempty"`
	// Ring is the index in Rings of the ring in progress.
	Ring  int          `json:"ring"`
	Rings []RingStatus `json:"rings"`
	// Unselected counts accounts that no ring selects; they are not touched.
	Unselected int `json:"unselected"`
	// Owner and Lease say which runner drives the rollout, until when.
	Owner   string    `json:"owner,omitempty"`
	Lease   time.Time `json:"lease,omitzero"`
	Version int64     `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// CanRollBack is set, by List and MarkRollback, on the one rollout a
	// rollback may undo now (Rollback would not refuse it for its place
	// among the rollouts); it is not stored.
	CanRollBack bool `json:"can_roll_back,omitempty"`
}

// RingStatus is the state of one ring of a rollout.
type RingStatus struct {
	Name        string        `json:"name"`
	Select      spec.Selector `json:"select"`
	Concurrency int           `json:"concurrency"`
	Bake        time.Duration `json:"bake"`
	Gates       spec.Gates    `json:"gates"`
	Budget      spec.Budget   `json:"failure_budget"`
	// OnRollback is the ring's policy when a later ring fails
	// (spec.Ring.OnRollback): "" returns its accounts, "keep" keeps them.
	OnRollback string `json:"on_rollback,omitempty"`
	Phase      Phase  `json:"phase"`
	// Counts of the last pass over the ring's accounts.
	Members    int `json:"members"`
	Unchanged  int `json:"unchanged"`
	Applied    int `json:"applied"`
	Failed     int `json:"failed"`
	RolledBack int `json:"rolled_back"`
	// Failures holds the first few failures, "account: message".
	Failures []string `json:"failures,omitempty"`
	// Baseline is the touched accounts' cumulative metrics before the ring
	// was updated (the previous release); WindowStart is the snapshot when
	// the bake began.
	Baseline *Stats `json:"baseline,omitempty"`
	// BaselineReleases are the releases Baseline was served by, sorted:
	// the rollout's Previous, or, for a rollout of the release that was
	// current already, the release each lagging account ran. Never the
	// rollout's Release.
	BaselineReleases []string  `json:"baseline_releases,omitempty"`
	WindowStart      *Stats    `json:"window_start,omitempty"`
	BakeStart        time.Time `json:"bake_start,omitzero"`
	BakeUntil        time.Time `json:"bake_until,omitzero"`
	// BakeLeft is the bake time a ring paused while baking has left; the
	// bake resumes with it (BakeUntil moves) when the rollout resumes.
	BakeLeft time.Duration `json:"bake_left,omitempty"`
	Verdict  *Verdict      `json:"verdict,omitempty"`
	// Releases counts the ring's accounts by the release they run,
	// recorded in the transaction that stopped the rollout (succeeded,
	// failed, paused, aborted, rolled back) and cleared when it resumes:
	// after a rollback, what is where.
	Releases map[string]int `json:"releases,omitempty"`
}

// Verdict is the outcome of a ring's gates.
type Verdict struct {
	Result string `json:"result"` // "pass", "fail", "inconclusive"
	Reason string `json:"reason"`
	// Judged names the gates that were read, in order: "min_requests",
	// "max_error_rate", "max_p99_increase". Empty when the ring has no
	// gates or no account changed: the figures below are then not
	// measurements.
	Judged []string `json:"judged,omitempty"`
	// PrevRelease is the release the Prev figures were served by; when
	// they were served by several (a rollout of the current release to the
	// accounts that lag, each measured under the release it ran),
	// PrevReleases lists them and PrevRelease is empty. Neither is ever
	// the rollout's own release.
	PrevRelease   string        `json:"prev_release,omitempty"`
	PrevReleases  []string      `json:"prev_releases,omitempty"`
	Requests      uint64        `json:"requests"`
	ErrorRate     float64       `json:"error_rate"`
	PrevErrorRate float64       `json:"prev_error_rate"`
	P99           time.Duration `json:"p99"`
	PrevP99       time.Duration `json:"prev_p99"`
}

// The verdict results.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// prevReleases returns what a verdict of ring names as the release its
// Prev figures were served by: the one release, or the several.
func prevReleases(ring RingStatus) (string, []string) {
	switch from := ring.BaselineReleases; {
	case len(from) == 1:
		return from[0], nil
	case len(from) > 1:
		return "", from
	}
	return "", nil
}

// budget returns how many account failures the ring tolerates.
func (r RingStatus) budget() int {
	n := r.Budget.Count
	if p := int(r.Budget.Percent * float64(r.Members) / 100); p > n {
		n = p
	}
	return n
}

const maxFailures = 10

// stepKey names the step of rollout id on one account of one ring.
func stepKey(id, ring string, acct silo.AccountID, step string) store.StepKey {
	return store.StepKey{Rollout: id, Ring: ring, Account: acct, Step: step}
}

// status is what a rollout's store record keeps beyond its columns.
type status struct {
	RolledBackBy string       `json:"rolled_back_by,omitempty"`
	Reason       string       `json:"reason,omitempty"`
	Ring         int          `json:"ring"`
	Rings        []RingStatus `json:"rings"`
	Unselected   int          `json:"unselected"`
}

func toRecord(r Rollout) (store.Rollout, error) {
	b, err := json.Marshal(status{RolledBackBy: r.RolledBackBy, Reason: r.Reason, Ring: r.Ring, Rings: r.Rings, Unselected: r.Unselected})
	if err != nil {
		return store.Rollout{}, fmt.Errorf("encode rollout %s: %w", r.ID, err)
	}
	return store.Rollout{
		ID: r.ID, Release: r.Release, Previous: r.Previous, RollbackOf: r.RollbackOf,
		State: string(r.State), Active: r.State.Active(), Owner: r.Owner, Lease: r.Lease,
		Version: r.Version, Created: r.Created, Updated: r.Updated, Status: b,
	}, nil
}

func fromRecord(rec store.Rollout) (Rollout, error) {
	var st status
	if len(rec.Status) > 0 {
		if err := json.Unmarshal(rec.Status, &st); err != nil {
			return Rollout{}, fmt.Errorf("decode rollout %s: %w", rec.ID, err)
		}
	}
	return Rollout{
		ID: rec.ID, Release: rec.Release, Previous: rec.Previous, RollbackOf: rec.RollbackOf,
		RolledBackBy: st.RolledBackBy, State: State(rec.State), Reason: st.Reason,
		Ring: st.Ring, Rings: st.Rings, Unselected: st.Unselected,
		Owner: rec.Owner, Lease: rec.Lease, Version: rec.Version, Created: rec.Created, Updated: rec.Updated,
	}, nil
}

func load(tx store.Tx, id string) (Rollout, error) {
	rec, err := tx.Rollout(id)
	if err != nil {
		return Rollout{}, err
	}
	return fromRecord(rec)
}

// insert stores a new rollout with Version 1.
func insert(tx store.Tx, r *Rollout) error {
	rec, err := toRecord(*r)
	if err != nil {
		return err
	}
	if err := tx.CreateRollout(rec); err != nil {
		return err
	}
	r.Version = 1
	return nil
}

// save writes r, read in tx, back with the time of the change.
func save(tx store.Tx, r *Rollout, now time.Time) error {
	r.Updated = now.UTC()
	rec, err := toRecord(*r)
	if err != nil {
		return err
	}
	if err := tx.UpdateRollout(rec); err != nil {
		return err
	}
	r.Version++
	return nil
}

// evaluate reads a ring's gates: prev is what the touched accounts served
// under the previous release before the update, win what they served under
// the target in the bake window.
//
// A previous release whose own error rate is over max_error_rate is not a
// healthy baseline: the target is then held to max_error_rate alone, so a
// bad baseline never lets a bad release through.
// metricGates names the gates of g read from the traffic, "max_error_rate
// and max_p99_increase".
func metricGates(g spec.Gates) string {
	var names []string
	if g.MaxErrorRate > 0 {
		names = append(names, "max_error_rate")
	}
	if g.MaxP99Increase > 0 {
		names = append(names, "max_p99_increase")
	}
	if len(names) == 0 {
		return "a metric gate"
	}
	return strings.Join(names, " and ")
}

func evaluate(g spec.Gates, prev *Stats, win Stats, metricsErr error) Verdict {
	if g.MaxErrorRate == 0 && g.MaxP99Increase == 0 && g.MinRequests == 0 {
		if g.Smoke != "" {
			// The smoke ran at each account's apply; an account whose smoke
			// failed is a failure of the ring, against its budget.
			return Verdict{Result: Pass, Reason: "smoke function " + g.Smoke + " ran after each account's apply; no metric gates"}
		}
		return Verdict{Result: Pass, Reason: "no gates"}
	}
	if metricsErr != nil {
		return Verdict{Result: Inconclusive, Reason: "metrics are unavailable (" + silo.UserMessage(metricsErr) + "); a gate never passes without them"}
	}
	v := Verdict{Requests: win.Requests, ErrorRate: win.ErrorRate(), P99: win.Quantile(0.99), Judged: []string{"min_requests"}}
	minReq := uint64(max(g.MinRequests, 1))
	havePrev := prev != nil && prev.Requests >= minReq
	if prev != nil {
		v.PrevErrorRate, v.PrevP99 = prev.ErrorRate(), prev.Quantile(0.99)
	}
	if win.Requests < minReq {
		v.Result, v.Reason = Inconclusive, fmt.Sprintf("%d request(s) in the bake window, fewer than min_requests %d: too little traffic to judge", win.Requests, minReq)
		if g.MinRequests == 0 { // the floor of 1, not a min_requests the ring set
			v.Reason = fmt.Sprintf("no request in the bake window: %s needs at least 1 request to judge", metricGates(g))
		}
		return v
	}
	if g.MaxErrorRate > 0 {
		v.Judged = append(v.Judged, "max_error_rate")
		base, note := v.PrevErrorRate, "the previous release's"
		if base > g.MaxErrorRate {
			base, note = 0, fmt.Sprintf("a healthy baseline's 0.0%% (the previous release's own %.1f%% is over max_error_rate)", 100*v.PrevErrorRate)
		} else {
			note = fmt.Sprintf("%s %.1f%%", note, 100*base)
		}
		if v.ErrorRate > base+g.MaxErrorRate {
			v.Result, v.Reason = Fail, fmt.Sprintf("error rate %.1f%% exceeds %s by more than max_error_rate %.1f%%", 100*v.ErrorRate, note, 100*g.MaxErrorRate)
			return v
		}
	}
	if g.MaxP99Increase > 0 {
		v.Judged = append(v.Judged, "max_p99_increase")
		if !havePrev {
			v.Result, v.Reason = Inconclusive, "too little traffic before the update to compare p99 latency with"
			return v
		}
		if float64(v.P99) > float64(v.PrevP99)*(1+g.MaxP99Increase) {
			v.Result, v.Reason = Fail, fmt.Sprintf("p99 latency %s exceeds the previous release's %s by more than max_p99_increase %.0f%%", Round(v.P99), Round(v.PrevP99), 100*g.MaxP99Increase)
			return v
		}
	}
	v.Result, v.Reason = Pass, "gates passed"
	return v
}

// failsEarly reads a ring's gates during its bake: win is what the ring's
// accounts served under the target since the bake began, elapsed ago, and
// left is the bake time still to go. The ring fails before its bake ends
// only when the gates are failed with certainty under one stated
// assumption: min_requests is met by the requests served so far, and the
// window would still fail (evaluate) if the rest of the bake brought as
// many requests per second as the bake so far, every one of them
// successful and in the fastest latency bucket. An error rate or a p99
// that such traffic could still bring under its gate is left to the end of
// the bake, and so is every pass. It returns the verdict on what was
// served so far, its reason saying that it was judged early.
func failsEarly(g spec.Gates, prev *Stats, win Stats, elapsed, left time.Duration) (Verdict, bool) {
	if elapsed <= 0 || left <= 0 || win.Requests < uint64(max(g.MinRequests, 1)) {
		return Verdict{}, false
	}
	more := uint64(math.Ceil(float64(win.Requests) * left.Seconds() / elapsed.Seconds()))
	best := win.Add(Stats{Requests: more, Latency: map[int]uint64{0: more}})
	if evaluate(g, prev, best, nil).Result != Fail {
		return Verdict{}, false
	}
	v := evaluate(g, prev, win, nil)
	if v.Result != Fail { // adding successful, fast requests never makes a window fail
		return Verdict{}, false
	}
	v.Reason = fmt.Sprintf("%s, %s into a %s bake (judged early: it would still fail at the end of the bake if every later request succeeded, at the rate seen so far)", v.Reason, Round(elapsed), Round(elapsed+left))
	return v, true
}

// Round rounds a latency for display: to 0.1 ms from 1 ms, to 1 µs below
// (a histogram bound such as 50.331648ms reads 50.3ms).
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
