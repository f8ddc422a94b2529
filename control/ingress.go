package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Ingress is a provider that serves an account's routes itself, inside the
// account (the AWS provider with functions on Lambda): it knows the URL the
// routes are served at, and keeps the record of each of the account's API
// keys there, where requests are checked. The control plane keeps its own
// record of every key as well; the key itself is never given to the
// provider, only its SHA-256.
type Ingress interface {
	// URL returns the base URL of account id's routes; CodeNotFound before
	// the account has any.
	URL(ctx context.Context, id silo.AccountID) (string, error)
	// PutAPIKey stores, or replaces, the record of key keyID of account id
	// in that account: the SHA-256 of the key and when it is revoked (nil:
	// not revoked).
	PutAPIKey(ctx context.Context, id silo.AccountID, keyID string, hash []byte, revoked *time.Time) error
}

// putKeyRecord writes k's record into its account through the Ingress, if
// the plane has one and the account exists at the provider. An account
// still being created gets its keys when its creation finishes (pushKeys,
// from Resume).
func (p *Plane) putKeyRecord(ctx context.Context, a silo.Account, k store.APIKey) error {
	if p.cfg.Ingress == nil || a.State == silo.StateProvisioning {
		return nil
	}
	if err := p.cfg.Ingress.PutAPIKey(ctx, k.Account, k.ID, k.Hash, k.Revoked); err != nil {
		return keyErr(k.ID, k.Account, err)
	}
	return nil
}

// pushKeys writes the record of every key of account id into the account
// through the Ingress: an account whose creation finished after its first
// key was issued.
func (p *Plane) pushKeys(ctx context.Context, id silo.AccountID) error {
	if p.cfg.Ingress == nil {
		return nil
	}
	var keys []store.APIKey
	if err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		keys, err = tx.Keys(id)
		return err
	}); err != nil {
		return fmt.Errorf("read the keys of %s: %w", id, err)
	}
	var errs []error
	for _, k := range keys {
		if err := p.cfg.Ingress.PutAPIKey(ctx, id, k.ID, k.Hash, k.Revoked); err != nil {
			errs = append(errs, keyErr(k.ID, id, err))
		}
	}
	return errors.Join(errs...)
}

// accountURL returns the URL the provider serves account id's routes at,
// "" when it serves none (no Ingress, no routes yet, or the provider
// cannot say now).
func (p *Plane) accountURL(ctx context.Context, id silo.AccountID) string {
	if p.cfg.Ingress == nil {
		return ""
	}
	u, err := p.cfg.Ingress.URL(ctx, id)
	if err != nil {
		if silo.ErrorCode(err) != silo.CodeNotFound {
			p.cfg.Logger.Warn("read the account's URL", "account", id, "error", err)
		}
		return ""
	}
	return u
}

func keyErr(keyID string, id silo.AccountID, err error) error {
	return &silo.Error{Code: silo.ErrorCode(err), Message: fmt.Sprintf("store API key %s in account %s: %s", keyID, id, silo.UserMessage(err)), Err: err}
}
