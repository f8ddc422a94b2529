package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// The purposes of an environment account.
const (
	EnvTest = "test"
	EnvDemo = "demo"
)

// EnvRequest asks for an environment account.
type EnvRequest struct {
	Name    string            // the account ID, a DNS label
	Purpose string            // EnvTest or EnvDemo
	TTL     time.Duration     // required, at most control.MaxEnvTTL (control.CheckTTL)
	Params  map[string]string // tenant parameters
	Seed    string            // optional fixture directory (see Seed)
}

// Env is a created environment: its account and its first API key (shown
// once).
type Env struct {
	Account silo.Account `json:"account"`
	Key     string       `json:"key,omitempty"`
}

// CreateEnv creates an account of kind environment on the current release,
// seeds it from req.Seed if given, and issues a first API key. The reaper
// tears it down once Now passes its expiry. If seeding fails the account is
// deleted again.
//
// # Errors
//
// CodeInvalid for a bad purpose or TTL or parameters that do not fit the
// stack, or a seed directory that holds nothing silo loads (see
// server.ScanSeed) or a table or bucket the stack does not declare
// (CheckSeed), all before anything is created; CodeConflict when the name is taken; CodeNotFound when
// there is no release yet or no seed directory.
func (p *Platform) CreateEnv(ctx context.Context, req EnvRequest) (Env, error) {
	if err := CheckEnv(req); err != nil {
		return Env{}, err
	}
	if req.Seed != "" {
		rel, err := p.Plane.ReleaseFor(ctx, silo.Account{ID: silo.AccountID(req.Name), Kind: silo.KindEnvironment, Params: req.Params})
		if err != nil {
			return Env{}, err
		}
		if err := CheckSeed(rel.Stack, fmt.Sprintf("the current release %s (what a new environment runs)", rel.ID), false, req.Seed); err != nil {
			return Env{}, err
		}
	}
	c, err := p.CreateAccount(ctx, req.account())
	if err != nil {
		if ctx.Err() != nil && silo.ErrorCode(err) != silo.CodeConflict {
			return Env{}, p.undoInterruptedEnv(ctx, silo.AccountID(req.Name), err)
		}
		return Env{Account: c.Account}, err
	}
	if req.Seed != "" {
		if err := p.Seed(ctx, c.Account.ID, req.Seed); err != nil {
			if ctx.Err() != nil {
				return Env{}, p.undoInterruptedEnv(ctx, c.Account.ID, err)
			}
			id := c.Account.ID
			if derr := p.DeleteAccount(ctx, id); derr != nil {
				return Env{}, &silo.Error{Code: silo.ErrorCode(err), Err: errors.Join(err, derr),
					Message: fmt.Sprintf("%s; the environment %s was created but could not be deleted again (%s): delete it with silo env delete %s", silo.UserMessage(err), id, silo.UserMessage(derr), id)}
			}
			return Env{}, &silo.Error{Code: silo.ErrorCode(err), Err: err,
				Message: fmt.Sprintf("%s; the environment %s was deleted again, so nothing is left of it: fix the seed and run silo env create again", silo.UserMessage(err), id)}
		}
	}
	return Env{Account: c.Account, Key: c.Key}, nil
}

// undoInterruptedEnv deletes what an environment create interrupted by
// ctx (Ctrl-C) left of account id, so that an interrupted create leaves
// nothing behind: an environment is throwaway, and one without its seed
// data or its key is of no use. The deletion runs past ctx's end, for at
// most a minute. It returns err, the create's own error, joined with the
// deletion's if that fails: the command reading the account's state then
// says what is left and how to remove it.
func (p *Platform) undoInterruptedEnv(ctx context.Context, id silo.AccountID, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, gerr := p.Plane.Account(ctx, id); gerr != nil {
		return err // not registered: nothing to undo
	}
	if derr := p.DeleteAccount(ctx, id); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// CheckEnv returns the error CreateEnv refuses req with before anything is
// created: a purpose or a TTL out of range, a seed directory that would
// load nothing. The account request itself is checked as CreateAccount's
// (control.CheckCreate with req.account()).
func CheckEnv(req EnvRequest) error {
	if req.Purpose != EnvTest && req.Purpose != EnvDemo {
		return silo.Errorf(silo.CodeInvalid, "environment kind %q is not test or demo", req.Purpose)
	}
	if err := control.CheckTTL(silo.KindEnvironment, req.TTL); err != nil {
		return err
	}
	if req.Seed != "" {
		if _, err := server.ScanSeed(req.Seed); err != nil {
			return err
		}
	}
	return nil
}

// account is the account CreateEnv creates for req.
func (req EnvRequest) account() control.CreateRequest {
	return control.CreateRequest{
		ID: req.Name, Kind: silo.KindEnvironment, Name: req.Purpose + " environment",
		Params: req.Params, TTL: req.TTL, WithKey: true,
	}
}

// Envs lists the environment accounts that are not deleted.
func (p *Platform) Envs(ctx context.Context) ([]silo.Account, error) {
	return p.Plane.Accounts(ctx, store.Filter{Kind: silo.KindEnvironment})
}

// DeleteAccount destroys an account through the engine (its data key is
// shredded, its resources removed) and removes its logs.
func (p *Platform) DeleteAccount(ctx context.Context, id silo.AccountID) error {
	if _, err := p.Plane.DeleteAccount(ctx, id); err != nil {
		return err
	}
	return p.Logs.Remove(id)
}

// Reap deletes every environment whose expiry is not after Now, and
// verifies each teardown: afterwards the provider must hold nothing of the
// account. It returns the accounts torn down.
//
// # Errors
//
// The first failure; Reap goes on with the other accounts past it.
// CodeFailedCheck when the provider still holds a deleted account.
func (p *Platform) Reap(ctx context.Context) ([]silo.AccountID, error) {
	ctx = store.WithActor(ctx, ActorReaper)
	accts, err := p.Envs(ctx)
	if err != nil {
		return nil, err
	}
	now := p.cfg.Now()
	var done []silo.AccountID
	var errs []error
	for _, a := range accts {
		if a.Expires == nil || now.Before(*a.Expires) {
			continue
		}
		if err := p.DeleteAccount(ctx, a.ID); err != nil {
			errs = append(errs, fmt.Errorf("reap %s: %w", a.ID, err))
			continue
		}
		if err := p.VerifyGone(ctx, a.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		p.cfg.Logger.Info("environment expired and torn down", "account", a.ID, "expired", a.Expires)
		done = append(done, a.ID)
	}
	return done, errors.Join(errs...)
}

// VerifyGone checks that nothing of a deleted account is left: the
// provider does not list it, its data directory and its logs are gone.
//
// # Errors
//
// CodeFailedCheck naming what is left.
func (p *Platform) VerifyGone(ctx context.Context, id silo.AccountID) error {
	ids, err := p.Provider.Accounts(ctx)
	if err != nil {
		return err
	}
	for _, x := range ids {
		if x == id {
			return silo.Errorf(silo.CodeFailedCheck, "teardown of %s incomplete: the provider still lists the account", id)
		}
	}
	if d, ok := p.Provider.(accountDirs); ok {
		if _, err := os.Stat(filepath.Join(d.Dir(), "accounts", string(id))); err == nil {
			return silo.Errorf(silo.CodeFailedCheck, "teardown of %s incomplete: its directory is still on disk", id)
		}
	}
	if rs, err := p.Provider.Resources(ctx, id); err == nil && len(rs) > 0 {
		return silo.Errorf(silo.CodeFailedCheck, "teardown of %s incomplete: the provider still holds %d resource(s)", id, len(rs))
	}
	if es, _ := p.Logs.Read(id, logs.Query{}); len(es) > 0 {
		return silo.Errorf(silo.CodeFailedCheck, "teardown of %s incomplete: %d log line(s) remain", id, len(es))
	}
	// Lines sealed under the destroyed key read as nothing: the files
	// themselves must be gone too.
	if fs := p.Logs.Files(id); len(fs) > 0 {
		return silo.Errorf(silo.CodeFailedCheck, "teardown of %s incomplete: its log file %s is still on disk", id, filepath.Base(fs[0]))
	}
	return nil
}

func (p *Platform) reapLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.ReapEvery)
	defer t.Stop()
	for {
		if _, err := p.Reap(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("reaper", "error", silo.ForLog(err))
		}
		if _, err := p.Recover(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("recover interrupted work", "error", silo.ForLog(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
