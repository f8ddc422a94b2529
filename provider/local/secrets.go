package local

import (
	"context"
	"fmt"
	"slices"

	silo "github.com/silo-run/silo"
)

// DeleteSecret removes the value of the secret name from secrets.json; the
// account's functions then read it as never set. It reports whether there
// was a value. The name need not be declared.
//
// # Errors
//
// CodeInvalid for a malformed ID or name; CodeNotFound if the account does
// not exist; a damaged secrets.json is reported as damage of the account.
func (p *Provider) DeleteSecret(ctx context.Context, id silo.AccountID, name string) (deleted bool, err error) {
	if err := parseID(id); err != nil {
		return false, err
	}
	defer func() { err = p.damageErr(id, err) }()
	if err := validateName(silo.TypeSecret, name); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a := p.ref(id)
	defer p.unref(a)
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return false, err
	}
	defer unlock()
	if err := p.checkExists(a); err != nil {
		return false, err
	}
	deleted, err = p.dropSecret(a, name)
	if err != nil {
		return false, fmt.Errorf("delete secret %s in %s: %w", name, id, err)
	}
	return deleted, nil
}

// dropSecret removes the value of secret name from secrets.json, if it is
// there, and reports whether it was. The caller holds the account's lock.
func (p *Provider) dropSecret(a *account, name string) (bool, error) {
	sec := map[string]string{}
	if err := readJSON(a.dir, fileSecrets, &sec); err != nil {
		return false, err
	}
	if _, ok := sec[name]; !ok {
		return false, nil
	}
	delete(sec, name)
	return true, p.writeCached(a, fileSecrets, sec)
}

// SecretNames returns the names in secrets.json, sorted: the secrets that
// hold a value. No value is opened.
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not
// exist; a damaged secrets.json is reported as damage of the account.
func (p *Provider) SecretNames(ctx context.Context, id silo.AccountID) (_ []string, err error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	defer func() { err = p.damageErr(id, err) }()
	a := p.ref(id)
	defer p.unref(a)
	if err := a.lockMu(ctx); err != nil {
		return nil, err
	}
	defer a.mu.unlock()
	if err := p.checkExists(a); err != nil {
		return nil, err
	}
	sec := map[string]string{}
	if err := readJSON(a.dir, fileSecrets, &sec); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(sec))
	for name := range sec {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
