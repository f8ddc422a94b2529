package store

import (
	"encoding/json"
	"time"

	silo "github.com/silo-run/silo"
)

// This file holds the checks and defaults every Store applies to what it is
// asked to write, so that implementations keep only their SQL and all of them
// refuse the same input with the same error. Each Prepare function takes the
// time to use for a missing timestamp from its caller, which passes its own
// clock in the precision it stores (UTC, microseconds).

// CheckAccount reports why a cannot be stored: an invalid ID (see
// silo.ParseID), an unknown kind or no state, each a silo.CodeInvalid error.
func CheckAccount(a silo.Account) error {
	if _, err := silo.ParseID(string(a.ID)); err != nil {
		return err
	}
	if !a.Kind.Valid() {
		return silo.Errorf(silo.CodeInvalid, "account %q has unknown kind %q; use one of production, tenant, developer, environment", a.ID, a.Kind)
	}
	if a.State == "" {
		return silo.Errorf(silo.CodeInvalid, "account %q has no state", a.ID)
	}
	return nil
}

// PrepareAccount checks a new account with CheckAccount and fills in a
// missing Created with now and a missing Updated with Created.
func PrepareAccount(a *silo.Account, now time.Time) error {
	if err := CheckAccount(*a); err != nil {
		return err
	}
	if a.Created.IsZero() {
		a.Created = now
	}
	if a.Updated.IsZero() {
		a.Updated = a.Created
	}
	return nil
}

// CheckPurge reports, as a silo.CodeConflict error, that account a cannot be
// purged because it is not deleted.
func CheckPurge(a silo.Account) error {
	if a.State != silo.StateDeleted {
		return silo.Errorf(silo.CodeConflict, "cannot purge account %q: it is %s, not deleted; delete it first", a.ID, a.State)
	}
	return nil
}

// NotFoundAccount is the silo.CodeNotFound error for a missing account, in
// the words every command uses for an account that does not exist.
func NotFoundAccount(id silo.AccountID) error {
	return silo.Errorf(silo.CodeNotFound, "no account %q; silo tenant list shows the accounts", id)
}

// ExcludesDeleted reports whether f leaves out deleted accounts: an explicit
// State wins over IncludeDeleted, so State: deleted lists deleted accounts.
func (f Filter) ExcludesDeleted() bool {
	return f.State == "" && !f.IncludeDeleted
}

// PrepareResource checks that r, recorded for account id, has a type and a
// name (a silo.CodeInvalid error if not) and fills in a missing Hash with
// r.ComputeHash().
func PrepareResource(id silo.AccountID, r *silo.Resource) error {
	if r.Type == "" || r.Name == "" {
		return silo.Errorf(silo.CodeInvalid, "resource %q of account %q needs a type and a name", r.Key(), id)
	}
	if r.Hash == "" {
		r.Hash = r.ComputeHash()
	}
	return nil
}

// Valid reports whether s is one of the intent states.
func (s IntentState) Valid() bool {
	return s == IntentPending || s == IntentDone || s == IntentFailed
}

// PrepareIntent checks a new intent and fills in its defaults: State
// IntentPending, Created now and Updated Created. A missing Key or an unknown
// State is a silo.CodeInvalid error.
func PrepareIntent(in *Intent, now time.Time) error {
	if in.Key == "" {
		return silo.Errorf(silo.CodeInvalid, "an intent needs a key")
	}
	if in.State == "" {
		in.State = IntentPending
	}
	if !in.State.Valid() {
		return silo.Errorf(silo.CodeInvalid, "intent %q has unknown state %q; use pending, done or failed", in.Key, in.State)
	}
	if in.Created.IsZero() {
		in.Created = now
	}
	if in.Updated.IsZero() {
		in.Updated = in.Created
	}
	return nil
}

// CheckFinish reports, as a silo.CodeInvalid error, that intent seq cannot
// finish in state, which must be IntentDone or IntentFailed.
func CheckFinish(seq int64, state IntentState) error {
	if state != IntentDone && state != IntentFailed {
		return silo.Errorf(silo.CodeInvalid, "intent %d cannot finish as %q; use done or failed", seq, state)
	}
	return nil
}

// PrepareKey checks that k has an ID and a hash (a silo.CodeInvalid error if
// not) and fills in a missing Created with now.
func PrepareKey(k *APIKey, now time.Time) error {
	if k.ID == "" || len(k.Hash) == 0 {
		return silo.Errorf(silo.CodeInvalid, "an API key needs an ID and a hash")
	}
	if k.Created.IsZero() {
		k.Created = now
	}
	return nil
}

// PrepareRelease checks that r has an ID and an origin of a known kind
// (CheckOrigin), each a silo.CodeInvalid error if not, and fills in a
// missing Created with now.
func PrepareRelease(r *Release, now time.Time) error {
	if r.ID == "" {
		return silo.Errorf(silo.CodeInvalid, "a release needs an ID")
	}
	if err := CheckOrigin(r.Origin); err != nil {
		return err
	}
	if r.Created.IsZero() {
		r.Created = now
	}
	return nil
}

// PrepareAuditEvent checks e, fills in a missing Time with now and returns
// it in the canonical form (see CanonicalEvent) that a store persists and
// hashes. A missing Action or a Detail that is not JSON is a silo.CodeInvalid
// error.
func PrepareAuditEvent(e AuditEvent, now time.Time) (AuditEvent, error) {
	if e.Action == "" {
		return AuditEvent{}, silo.Errorf(silo.CodeInvalid, "an audit event needs an action")
	}
	if len(e.Detail) > 0 && !json.Valid(e.Detail) {
		return AuditEvent{}, silo.Errorf(silo.CodeInvalid, "audit event %q: detail is not valid JSON", e.Action)
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	return CanonicalEvent(e), nil
}

// CheckSetting reports, as a silo.CodeInvalid error, a setting without a name.
func CheckSetting(name string) error {
	if name == "" {
		return silo.Errorf(silo.CodeInvalid, "a setting needs a name")
	}
	return nil
}
