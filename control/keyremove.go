package control

import (
	"context"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/store"
)

// RemovedKey is the record RemoveKey removed and why.
type RemovedKey struct {
	Key store.APIKey `json:"key"`
	// Problems are what the isolation verifier found wrong with the
	// record, as silo verify words them.
	Problems []string `json:"problems"`
}

// RemoveKey removes the record of API key keyID when the isolation
// verifier flags it (isolation.KeyProblems): a key bound to an account its
// ID does not name, to the production account, or live on a deleted
// account. No silo command writes such a record, no release can repair
// it, and while it exists the isolation gate refuses every release, so
// removing it is the way out; the removal is audited (key.remove, with
// the problems found). A sound key is never removed: it is revoked (silo
// keys revoke), which keeps its record. With an Ingress, the key is
// first recorded as revoked in the account it is bound to (unless that
// account is deleted, being deleted, or not created yet), so a failure
// there removes nothing.
//
// # Errors
//
// CodeNotFound for an unknown key; CodeInvalid for a key the verifier
// finds nothing wrong with, saying how to revoke it instead.
func (p *Plane) RemoveKey(ctx context.Context, keyID string) (RemovedKey, error) {
	now := p.cfg.Now().UTC()
	check := func(tx store.Tx) (RemovedKey, silo.Account, error) {
		k, err := tx.Key(keyID)
		if silo.ErrorCode(err) == silo.CodeNotFound {
			return RemovedKey{}, silo.Account{}, silo.Errorf(silo.CodeNotFound, "there is no API key %q; silo verify names every key record it flags", keyID)
		}
		if err != nil {
			return RemovedKey{}, silo.Account{}, err
		}
		var acct *silo.Account
		a, err := tx.Account(k.Account)
		switch {
		case err == nil:
			acct = &a
		case silo.ErrorCode(err) != silo.CodeNotFound:
			return RemovedKey{}, a, err
		}
		ik := isolation.Key{ID: k.ID, Account: k.Account, Revoked: k.Revoked != nil && !now.Before(*k.Revoked)}
		out := RemovedKey{Key: k}
		for _, c := range isolation.KeyProblems(ctx, ik, acct) {
			out.Problems = append(out.Problems, c.Invariant+": "+c.Problem)
		}
		if len(out.Problems) == 0 {
			return out, a, silo.Errorf(silo.CodeInvalid, "API key %s is bound to %s, the account it names, and the isolation verifier finds nothing wrong with its record: silo keys remove removes only a key record it flags, and nothing was changed. To stop the key working, revoke it: silo keys revoke %s %s", k.ID, k.Account, k.Account, k.ID)
		}
		return out, a, nil
	}
	if p.cfg.Ingress != nil {
		var out RemovedKey
		var a silo.Account
		if err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			out, a, err = check(tx)
			return err
		}); err != nil {
			return RemovedKey{}, err
		}
		if a.ID != "" && a.State != silo.StateDeleted && a.State != silo.StateDeleting {
			k := out.Key
			if k.Revoked == nil || k.Revoked.After(now) {
				k.Revoked = &now
			}
			if err := p.putKeyRecord(ctx, a, k); err != nil {
				return RemovedKey{}, err
			}
		}
	}
	var out RemovedKey
	err := p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if out, _, err = check(tx); err != nil {
			return err
		}
		if err := tx.DeleteKey(keyID); err != nil {
			return err
		}
		_, err = tx.AppendAudit(store.AuditEvent{Time: now, Actor: p.cfg.Actor, Action: "key.remove", Account: out.Key.Account,
			Detail: jsonDetail(map[string]string{"key_id": keyID, "problems": strings.Join(out.Problems, "; ")})})
		return err
	})
	if err := p.announceAfter(ctx, err, store.Change{Account: out.Key.Account, What: "key"}); err != nil {
		return RemovedKey{}, err
	}
	return out, nil
}
