package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// Before rollouts and the current release were records of their own (schema
// 3 of both stores), they were settings, and rollout steps were intents:
//
//	current_release                      the current release's ID
//	rollout/index                        JSON array of rollout IDs, oldest first
//	rollout/active                       the active rollout's ID, or ""
//	rollout/<id>                         the rollout, as JSON
//	rollout/<id>/<ring>/<account>/from   the release an account ran before
//	intent rollout/<id>/<ring>/<account>/<step>   the claim of a step
//
// A failed claim whose error did not start with legacyFailPrefix was marked
// failed by recovery, not by the step: it is to be taken again.
const legacyFailPrefix = "step failed: "

// UpgradeLegacy moves what an older schema kept in settings into the
// records that replace them, in tx (which must implement Lister): the
// current release, each rollout in the order it was created, and each
// claimed step with the release its account ran before. It returns the
// names of the settings it moved, for the store to delete in the same
// transaction; the claims stay in the journal as history. A store calls it
// from the schema migration that adds the records.
//
// # Errors
//
// CodeInternal when tx cannot list its settings and journal; a setting
// that does not decode is an error naming it (the migration then changes
// nothing).
func UpgradeLegacy(tx Tx) ([]string, error) {
	l, ok := tx.(Lister)
	if !ok {
		return nil, silo.Errorf(silo.CodeInternal, "upgrade rollouts: the store cannot list its settings")
	}
	set, err := l.Settings()
	if err != nil {
		return nil, err
	}
	var moved []string
	if id, ok := set["current_release"]; ok {
		moved = append(moved, "current_release")
		if id != "" {
			if _, err := tx.SetCurrentRelease(id); err != nil {
				return nil, fmt.Errorf("upgrade the current release %s: %w", id, err)
			}
		}
	}
	var ids []string
	if v, ok := set["rollout/index"]; ok {
		if err := json.Unmarshal([]byte(v), &ids); err != nil {
			return nil, fmt.Errorf("upgrade rollouts: decode setting rollout/index: %w", err)
		}
	}
	for _, name := range []string{"rollout/index", "rollout/active"} {
		if _, ok := set[name]; ok {
			moved = append(moved, name)
		}
	}
	for _, id := range ids {
		v, ok := set["rollout/"+id]
		if !ok {
			continue
		}
		r, err := legacyRollout(id, v)
		if err != nil {
			return nil, err
		}
		if err := tx.CreateRollout(r); err != nil {
			return nil, fmt.Errorf("upgrade rollout %s: %w", id, err)
		}
		moved = append(moved, "rollout/"+id)
	}
	from := map[StepKey]string{}
	for name, v := range set {
		k, ok := legacyStepKey(name, "from")
		if ok {
			from[k] = v
			moved = append(moved, name)
		}
	}
	for after := int64(0); ; {
		ins, err := l.Journal(after, 1000)
		if err != nil {
			return nil, err
		}
		if len(ins) == 0 {
			break
		}
		after = ins[len(ins)-1].Seq
		for _, in := range ins {
			if !strings.HasPrefix(in.Action, "rollout.") {
				continue
			}
			k, ok := legacyStepKey(in.Key, strings.TrimPrefix(in.Action, "rollout."))
			if !ok {
				continue
			}
			if _, err := tx.Rollout(k.Rollout); err != nil {
				continue // a claim of a rollout whose record is gone
			}
			s := RolloutStep{StepKey: k, State: in.State, Created: in.Created, Updated: in.Updated}
			if k.Step == "apply" {
				ak := k
				ak.Step = "from"
				s.From = from[ak]
			}
			if in.State == IntentFailed {
				if msg, ok := strings.CutPrefix(in.Error, legacyFailPrefix); ok {
					s.Error = msg
				} else {
					s.State = IntentPending // abandoned by recovery: taken again
				}
			}
			if err := tx.ClaimStep(s); err != nil {
				return nil, fmt.Errorf("upgrade rollout step %s: %w", k, err)
			}
		}
	}
	return moved, nil
}

// legacyStepKey parses "rollout/<id>/<ring>/<account>/<last>"; ring names
// may hold slashes, IDs and accounts do not.
func legacyStepKey(name, last string) (StepKey, bool) {
	parts := strings.Split(name, "/")
	if len(parts) < 5 || parts[0] != "rollout" || parts[len(parts)-1] != last {
		return StepKey{}, false
	}
	return StepKey{
		Rollout: parts[1],
		Ring:    strings.Join(parts[2:len(parts)-2], "/"),
		Account: silo.AccountID(parts[len(parts)-2]),
		Step:    last,
	}, true
}

// legacyRollout reads a rollout setting: the columns from its fields, the
// whole value as its status (package rollout reads the rest from it).
func legacyRollout(id, v string) (Rollout, error) {
	var f struct {
		Release    string    `json:"release"`
		Previous   string    `json:"previous"`
		RollbackOf string    `json:"rollback_of"`
		State      string    `json:"state"`
		Owner      string    `json:"owner"`
		Lease      time.Time `json:"lease"`
		Created    time.Time `json:"created"`
		Updated    time.Time `json:"updated"`
	}
	if err := json.Unmarshal([]byte(v), &f); err != nil {
		return Rollout{}, fmt.Errorf("upgrade rollouts: decode setting rollout/%s: %w", id, err)
	}
	return Rollout{
		ID: id, Release: f.Release, Previous: f.Previous, RollbackOf: f.RollbackOf,
		State: f.State, Active: f.State == "running" || f.State == "paused",
		Owner: f.Owner, Lease: f.Lease, Created: f.Created, Updated: f.Updated,
		Status: json.RawMessage(v),
	}, nil
}
