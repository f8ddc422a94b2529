package control

import (
	"context"
	"slices"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// SecretState is one secret of an account as silo secret list shows it:
// declared by the release applied to the account, holding a value, or
// both. It never carries the value.
type SecretState struct {
	Name string `json:"name"`
	// Declared: the account's applied resources declare it (silo.yaml's
	// secrets: of its release).
	Declared bool `json:"declared"`
	// Set: the account holds a value for it. A value set and not declared
	// is left from a declaration since removed; no function reads it.
	Set bool `json:"set"`
}

// SetSecret stores a secret value in an account, encrypted under the
// account's data key. The value is never stored in the control plane, never
// logged and never returned.
//
// # Errors
//
// CodeNotFound for an unknown or deleted account, or a secret not
// declared in it; CodeInvalid for an account being deleted, a bad name or
// a value too large.
func (p *Plane) SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	if err := p.secretsWritable(ctx, id); err != nil {
		return err
	}
	if err := p.cfg.Provider.PutSecret(ctx, id, name, value); err != nil {
		return p.announceAfter(ctx, err, store.Change{Account: id, What: "secret"})
	}
	err := p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Time: p.cfg.Now(), Actor: p.cfg.Actor, Action: "secret.set", Account: id, Detail: jsonDetail(map[string]any{"name": name, "bytes": len(value)})})
		return err
	})
	return p.announceAfter(ctx, err, store.Change{Account: id, What: "secret"})
}

// DeleteSecret removes the value of a secret from an account: its
// functions then read it as never set. The declaration stays, so it can be
// set again; a value left under a name no longer declared is deleted too.
// It reports whether there was a value: deleting a secret without one
// changes nothing and is no error. Either way it is audited (secret.delete,
// with the name and whether a value was there), so a repeat after a
// failure between the deletion and the audit event is recorded too.
//
// # Errors
//
// CodeNotFound for an unknown or deleted account, or a name the account
// neither declares nor holds a value under (nothing is audited then);
// CodeInvalid for an account being deleted or a bad name.
func (p *Plane) DeleteSecret(ctx context.Context, id silo.AccountID, name string) (deleted bool, err error) {
	if err := p.secretsWritable(ctx, id); err != nil {
		return false, err
	}
	if err := p.secretKnown(ctx, id, name); err != nil {
		return false, err
	}
	deleted, err = p.cfg.Provider.DeleteSecret(ctx, id, name)
	if err != nil {
		return false, p.announceAfter(ctx, err, store.Change{Account: id, What: "secret"})
	}
	err = p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Time: p.cfg.Now(), Actor: p.cfg.Actor, Action: "secret.delete", Account: id, Detail: jsonDetail(map[string]any{"name": name, "was_set": deleted})})
		return err
	})
	return deleted, p.announceAfter(ctx, err, store.Change{Account: id, What: "secret"})
}

// secretKnown refuses a secret name that account id neither declares nor
// holds a value under: a typo, not a repeated deletion.
func (p *Plane) secretKnown(ctx context.Context, id silo.AccountID, name string) error {
	declared, err := p.declaredSecrets(ctx, id)
	if err != nil || slices.Contains(declared, name) {
		return err
	}
	set, err := p.cfg.Provider.SecretNames(ctx, id)
	if err != nil || slices.Contains(set, name) {
		return err
	}
	return silo.Errorf(silo.CodeNotFound, "secret %s is not declared in account %s and holds no value there%s; silo secret list %s shows its secrets", name, id, spec.Suggest(name, append(declared, set...)), id)
}

// declaredSecrets returns the names of the secrets account id's applied
// resources declare.
func (p *Plane) declaredSecrets(ctx context.Context, id silo.AccountID) ([]string, error) {
	var declared []string
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		rs, err := tx.Resources(id)
		for _, r := range rs {
			if r.Type == silo.TypeSecret {
				declared = append(declared, r.Name)
			}
		}
		return err
	})
	return declared, err
}

// secretsWritable refuses a change of the secrets of an account that is
// unknown, deleted or being deleted.
func (p *Plane) secretsWritable(ctx context.Context, id silo.AccountID) error {
	if err := p.Engine.Refusing(); err != nil {
		return err // the provider is not the installation's: see engine.Engine.Refuse
	}
	a, err := p.LiveAccount(ctx, id)
	if err != nil {
		return err
	}
	if a.State == silo.StateDeleting {
		return silo.Errorf(silo.CodeInvalid, "account %s is being deleted; its secrets are going with it", id)
	}
	return nil
}

// Secrets lists an account's secrets, sorted by name: each one its applied
// resources declare, and each one that holds a value (the provider's
// SecretNames, names only), with whether it is declared and whether it is
// set. It never reads a value (I3).
//
// # Errors
//
// CodeNotFound for an unknown or deleted account; the provider's error if
// it cannot list the account's secrets.
func (p *Plane) Secrets(ctx context.Context, id silo.AccountID) ([]SecretState, error) {
	if _, err := p.LiveAccount(ctx, id); err != nil {
		return nil, err
	}
	declared, err := p.declaredSecrets(ctx, id)
	if err != nil {
		return nil, err
	}
	set, err := p.cfg.Provider.SecretNames(ctx, id)
	if err != nil {
		return nil, err
	}
	byName := map[string]*SecretState{}
	for _, n := range declared {
		byName[n] = &SecretState{Name: n, Declared: true}
	}
	for _, n := range set {
		if byName[n] == nil {
			byName[n] = &SecretState{Name: n}
		}
		byName[n].Set = true
	}
	out := make([]SecretState, 0, len(byName))
	for _, n := range sortedKeys(byName) {
		out = append(out, *byName[n])
	}
	return out, nil
}
