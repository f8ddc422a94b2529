package platform

import (
	"context"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
	"github.com/silo-run/silo/provider"
)

// What the platform uses of a provider beyond the provider contract, when
// the provider offers it: small optional interfaces, checked at Open.

// logSealer is a provider that seals an account's function logs under its
// data key (the local provider).
type logSealer interface {
	LogSealer(id silo.AccountID) (*envelope.Sealer, error)
}

// damageReporter is a provider that knows when an account's files are
// damaged (the local provider).
type damageReporter interface {
	Damaged(id silo.AccountID) error
}

// accountDirs is a provider that keeps accounts in a directory (the local
// provider).
type accountDirs interface {
	Dir() string
}

// cacheForgetter is a provider that caches account files the data plane
// reads (config, secrets) and can be told to read them again (the local
// provider).
type cacheForgetter interface {
	Forget(id silo.AccountID)
}

// creations is a provider whose account creations go on after
// CreateAccount returns (the AWS provider): the engine asks it, through
// logsOnDelete, before it registers a new account.
type creations interface {
	CreationInProgress(ctx context.Context, id silo.AccountID) (time.Time, bool, error)
}

// logsOnDelete removes an account's logs once the provider has deleted the
// account, for providers that do not call back as the local one does.
type logsOnDelete struct {
	provider.Provider
	remove func(silo.AccountID) error
}

// CreationInProgress is the provider's, when it has it: the engine
// refuses a new account while a creation under its ID is under way.
func (l logsOnDelete) CreationInProgress(ctx context.Context, id silo.AccountID) (time.Time, bool, error) {
	if c, ok := l.Provider.(creations); ok {
		return c.CreationInProgress(ctx, id)
	}
	return time.Time{}, false, nil
}

func (l logsOnDelete) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	del, err := l.Provider.DeleteAccount(ctx, id)
	if err != nil {
		return del, err
	}
	return del, l.remove(id)
}

// damaged returns the provider's report of damage to an account's files,
// nil if it has none or keeps no files.
func (p *Platform) damaged(id silo.AccountID) error {
	if d, ok := p.Provider.(damageReporter); ok {
		return d.Damaged(id)
	}
	return nil
}

// ReadFailure is the provider's, when it has it (control.Plane.Show);
// else it explains nothing ("").
func (l logsOnDelete) ReadFailure(err error) (why, doc string, down bool) {
	if f, ok := l.Provider.(interface {
		ReadFailure(error) (string, string, bool)
	}); ok {
		return f.ReadFailure(err)
	}
	return "", "", false
}
