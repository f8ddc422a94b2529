package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	silo "github.com/silo-run/silo"
)

// Rollout is the record of one rollout: which release it takes across the
// fleet, who drives it and where it is. Package rollout owns what the
// states mean; the store keeps the columns it is asked to and enforces that
// at most one rollout is Active.
type Rollout struct {
	ID string `json:"id"`
	// Release is the target; Previous the release that was current when
	// the rollout started ("" for a first deploy).
	Release  string `json:"release"`
	Previous string `json:"previous,omitempty"`
	// RollbackOf is set on a rollback rollout: the rollout it undoes.
	RollbackOf string `json:"rollback_of,omitempty"`
	State      string `json:"state"`
	// Active says the rollout holds the deploy slot (it is running or
	// paused). At most one rollout is active.
	Active bool `json:"active"`
	// Owner and Lease say which runner drives the rollout, until when.
	Owner   string    `json:"owner,omitempty"`
	Lease   time.Time `json:"lease,omitzero"`
	Version int64     `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Status is the rest of the rollout's status (rings, phases, verdicts)
	// as package rollout encodes it, kept as given.
	Status json.RawMessage `json:"status,omitempty"`
}

// StepKey names one step of a rollout on one account: Step is "apply" or
// "rollback".
type StepKey struct {
	Rollout string         `json:"rollout"`
	Ring    string         `json:"ring"`
	Account silo.AccountID `json:"account"`
	Step    string         `json:"step"`
}

func (k StepKey) String() string {
	return fmt.Sprintf("%s/%s/%s/%s", k.Rollout, k.Ring, k.Account, k.Step)
}

// RolloutStep is a step of a rollout, claimed before it runs: a step is
// claimed once, so live runners take it at most once, and a claim left
// pending by a dead runner is taken over by the next.
type RolloutStep struct {
	StepKey
	// From is the release the account ran before an apply step, when it
	// was not the rollout's Previous (a developer's own build, say): a
	// rollback returns the account there.
	From    string      `json:"from,omitempty"`
	State   IntentState `json:"state"`
	Error   string      `json:"error,omitempty"`
	Created time.Time   `json:"created"`
	Updated time.Time   `json:"updated"`
}

// PrepareRollout checks a rollout record (an ID, a release, a state and a
// Version of at least 1; a silo.CodeInvalid error otherwise) and fills in a
// missing Created with now and a missing Updated with Created.
func PrepareRollout(r *Rollout, now time.Time) error {
	if r.ID == "" || r.Release == "" || r.State == "" {
		return silo.Errorf(silo.CodeInvalid, "a rollout needs an ID, a release and a state (got %q, %q, %q)", r.ID, r.Release, r.State)
	}
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.Updated.IsZero() {
		r.Updated = r.Created
	}
	return nil
}

// NotFoundRollout is the silo.CodeNotFound error for a missing rollout.
func NotFoundRollout(id string) error {
	return silo.Errorf(silo.CodeNotFound, "no rollout %q; silo rollout list shows the rollouts", id)
}

// ConflictActive is the silo.CodeConflict error for a second active
// rollout.
func ConflictActive(id, active string) error {
	return silo.Errorf(silo.CodeConflict, "rollout %s cannot be active while rollout %s is; wait for it, or stop it with silo rollout abort %s", id, active, active)
}

// CheckActive refuses to make r active while another rollout is: active
// reads the store's active rollout (Tx.ActiveRollout). Both stores call it
// before writing a rollout.
func CheckActive(r Rollout, active func() (Rollout, error)) error {
	if !r.Active {
		return nil
	}
	a, err := active()
	switch {
	case errors.Is(err, silo.ErrNotFound):
		return nil
	case err != nil:
		return err
	case a.ID != r.ID:
		return ConflictActive(r.ID, a.ID)
	}
	return nil
}

// ConflictRolloutVersion is the silo.CodeConflict error for a stale
// rollout Version.
func ConflictRolloutVersion(id string, stored, yours int64) error {
	return silo.Errorf(silo.CodeConflict, "rollout %s was changed concurrently (stored version %d, yours %d); read it again and retry", id, stored, yours)
}

// PrepareStep checks a new step (a complete key, Step apply or rollback)
// and fills in its defaults: State IntentPending, Created now, Updated
// Created. A bad step is a silo.CodeInvalid error.
func PrepareStep(s *RolloutStep, now time.Time) error {
	k := s.StepKey
	if k.Rollout == "" || k.Ring == "" || k.Account == "" {
		return silo.Errorf(silo.CodeInvalid, "a rollout step needs a rollout, a ring and an account (got %s)", k)
	}
	if k.Step != "apply" && k.Step != "rollback" {
		return silo.Errorf(silo.CodeInvalid, "rollout step %s: the step must be apply or rollback", k)
	}
	if s.State == "" {
		s.State = IntentPending
	}
	if !s.State.Valid() {
		return silo.Errorf(silo.CodeInvalid, "rollout step %s has unknown state %q; use pending, done or failed", k, s.State)
	}
	if s.Created.IsZero() {
		s.Created = now
	}
	if s.Updated.IsZero() {
		s.Updated = s.Created
	}
	return nil
}

// CheckFinishStep reports, as a silo.CodeInvalid error, that step k cannot
// finish in state, which must be IntentDone or IntentFailed.
func CheckFinishStep(k StepKey, state IntentState) error {
	if state != IntentDone && state != IntentFailed {
		return silo.Errorf(silo.CodeInvalid, "rollout step %s cannot finish as %q; use done or failed", k, state)
	}
	return nil
}

// NotFoundStep is the silo.CodeNotFound error for a step never claimed.
func NotFoundStep(k StepKey) error {
	return silo.Errorf(silo.CodeNotFound, "rollout step %s was never claimed", k)
}

// ConflictStep is the silo.CodeConflict error for a second claim.
func ConflictStep(k StepKey) error {
	return silo.Errorf(silo.CodeConflict, "rollout step %s is claimed already", k)
}

// ErrNoRelease is in the chain of every error that says no release is
// current yet (NoCurrentRelease, and the control plane's), so that a
// server can name the command that makes one through it.
var ErrNoRelease = errors.New("no release is current yet")

// NoCurrentRelease is the silo.CodeNotFound error when no release is
// current yet; ErrNoRelease is its cause.
func NoCurrentRelease() error {
	return &silo.Error{Code: silo.CodeNotFound, Message: "no release is current yet; run silo apply in the directory holding silo.yaml", Err: ErrNoRelease}
}
