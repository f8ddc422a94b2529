package control

import (
	"context"
	"errors"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/store"
)

// IssueKey issues a new API key for an account and returns it in plain
// text; only its hash is stored. With an Ingress, the key's record is
// written into the account first, so a key the caller receives works
// there; a failure there issues nothing.
func (p *Plane) IssueKey(ctx context.Context, id silo.AccountID, name string) (string, store.APIKey, error) {
	if id == silo.ProductionID {
		return "", store.APIKey{}, silo.Errorf(silo.CodeInvalid, "the production account takes no API keys: tenants read its exports with their own keys")
	}
	plain, k, err := p.newKey(id, name)
	if err != nil {
		return "", k, err
	}
	check := func(a silo.Account) error {
		if err := engine.Live(a); err != nil {
			return err
		}
		if a.Kind == silo.KindProduction || a.State == silo.StateDeleted || a.State == silo.StateDeleting {
			return silo.Errorf(silo.CodeInvalid, "account %s cannot have API keys (it is %s %s)", id, a.State, a.Kind)
		}
		return nil
	}
	if p.cfg.Ingress != nil {
		a, err := p.Account(ctx, id)
		if err != nil {
			return "", k, err
		}
		if err := check(a); err != nil {
			return "", k, p.Engine.Answer(ctx, err)
		}
		if err := p.putKeyRecord(ctx, a, k); err != nil {
			return "", k, err
		}
	}
	err = p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		if err := check(a); err != nil {
			return err
		}
		return p.putKey(tx, k)
	})
	if err = p.announceAfter(ctx, err, store.Change{Account: id, What: "key"}); err != nil {
		return "", k, p.Engine.Answer(ctx, err)
	}
	return plain, k, nil
}

// newKey makes a key for account id named name: its plain text and its
// record, not yet stored.
func (p *Plane) newKey(id silo.AccountID, name string) (string, store.APIKey, error) {
	plain, k, err := apikey.New(id)
	if err != nil {
		return "", k, err
	}
	k.Name, k.Created = name, p.cfg.Now().UTC()
	return plain, k, nil
}

// putKey stores key k with its audit event in tx.
func (p *Plane) putKey(tx store.Tx, k store.APIKey) error {
	if err := tx.PutKey(k); err != nil {
		return err
	}
	_, err := tx.AppendAudit(store.AuditEvent{Time: k.Created, Actor: p.cfg.Actor, Action: "key.issue", Account: k.Account, Detail: jsonDetail(map[string]string{"key_id": k.ID, "name": k.Name})})
	return err
}

// Keys lists an account's keys (never their secrets).
func (p *Plane) Keys(ctx context.Context, id silo.AccountID) ([]store.APIKey, error) {
	var out []store.APIKey
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Account(id); err != nil {
			return err
		}
		var err error
		out, err = tx.Keys(id)
		return err
	})
	return out, err
}

// RevokeKey revokes one key of an account now.
func (p *Plane) RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error {
	return p.RevokeKeyAfter(ctx, id, keyID, 0)
}

// RevokeKeyAfter revokes one key of an account once grace has passed (now,
// for 0): until then the key keeps working, so that clients can move to a
// new one. A key already due to be revoked earlier keeps its earlier time.
// With an Ingress, the revocation is written into the account first, and
// again on every call, so a call repeated after a failure there completes
// it.
//
// # Errors
//
// CodeNotFound when the account has no such key; CodeInvalid for a
// negative grace or one over 30 days.
func (p *Plane) RevokeKeyAfter(ctx context.Context, id silo.AccountID, keyID string, grace time.Duration) error {
	if grace < 0 || grace > MaxKeyGrace {
		return silo.Errorf(silo.CodeInvalid, "a key's grace period must be between 0 and %s, not %s", MaxKeyGrace, grace)
	}
	now := p.cfg.Now().UTC()
	at := now.Add(grace)
	key := func(tx store.Tx) (store.APIKey, error) {
		k, err := tx.Key(keyID)
		if errors.Is(err, silo.ErrNotFound) || (err == nil && k.Account != id) {
			return k, silo.Errorf(silo.CodeNotFound, "account %s has no key %q; silo keys list %s shows its keys", id, keyID, id)
		}
		return k, err
	}
	if p.cfg.Ingress != nil {
		var k store.APIKey
		var a silo.Account
		if err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			if k, err = key(tx); err != nil {
				return err
			}
			a, err = tx.Account(id)
			return err
		}); err != nil {
			return err
		}
		if k.Revoked == nil || k.Revoked.After(at) {
			k.Revoked = &at
		}
		if err := p.putKeyRecord(ctx, a, k); err != nil {
			return err
		}
	}
	err := p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		k, err := key(tx)
		if err != nil {
			return err
		}
		if k.Revoked != nil && !k.Revoked.After(at) {
			return nil
		}
		k.Revoked = &at
		if err := tx.PutKey(k); err != nil {
			return err
		}
		detail := map[string]string{"key_id": keyID}
		if grace > 0 {
			detail["revoked_at"] = at.Format(time.RFC3339)
		}
		_, err = tx.AppendAudit(store.AuditEvent{Time: now, Actor: p.cfg.Actor, Action: "key.revoke", Account: id, Detail: jsonDetail(detail)})
		return err
	})
	return p.announceAfter(ctx, err, store.Change{Account: id, What: "key"})
}

// MaxKeyGrace is the longest a revoked key may keep working.
const MaxKeyGrace = 30 * 24 * time.Hour
