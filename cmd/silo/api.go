package main

import (
	"context"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// controlAPI is what the registry, key, secret and audit commands call. It
// is satisfied by the local installation (localAPI) and by the server's
// client, so each of those commands works on a local data dir and against
// --server alike.
type controlAPI interface {
	CreateAccount(ctx context.Context, req control.CreateRequest) (control.Created, error)
	Accounts(ctx context.Context, f store.Filter) ([]silo.Account, error)
	Show(ctx context.Context, id silo.AccountID) (control.Detail, error)
	UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (engine.Plan, error)
	Suspend(ctx context.Context, id silo.AccountID) (silo.Account, error)
	Resume(ctx context.Context, id silo.AccountID) (silo.Account, error)
	DeleteAccount(ctx context.Context, id silo.AccountID) error
	IssueKey(ctx context.Context, id silo.AccountID, name string) (string, store.APIKey, error)
	Keys(ctx context.Context, id silo.AccountID) ([]store.APIKey, error)
	RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error
	SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error
	VerifyAudit(ctx context.Context) (int, error)
}

var (
	_ controlAPI = (*server.Client)(nil)
	_ controlAPI = localAPI{}
)

// openAPI returns the server's client with --server (or $SILO_SERVER), else
// the local installation. close releases it.
func openAPI(ctx context.Context, g *globals) (api controlAPI, close func(), err error) {
	c, err := remote(g)
	if err != nil {
		return nil, nil, err
	}
	if c != nil {
		return c, func() {}, nil
	}
	a, err := openApp(ctx, g)
	if err != nil {
		return nil, nil, err
	}
	return localAPI{a: a, g: g}, func() { a.Close() }, nil
}

// localAPI is controlAPI on the local installation.
type localAPI struct {
	a *app
	g *globals
}

// CreateAccount onboards on the current release; the first account of a new
// installation makes the release built from the spec file current.
func (l localAPI) CreateAccount(ctx context.Context, req control.CreateRequest) (control.Created, error) {
	if _, err := silo.ParseTenantID(req.ID); err != nil {
		return control.Created{}, err
	}
	if err := l.a.currentOrBootstrap(ctx, l.g); err != nil {
		return control.Created{}, err
	}
	return l.a.plane.CreateAccount(ctx, req)
}

func (l localAPI) Accounts(ctx context.Context, f store.Filter) ([]silo.Account, error) {
	return l.a.plane.Accounts(ctx, f)
}

func (l localAPI) Show(ctx context.Context, id silo.AccountID) (control.Detail, error) {
	return l.a.plane.Show(ctx, id)
}

func (l localAPI) UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (engine.Plan, error) {
	return l.a.plane.UpdateParams(ctx, id, set, name)
}

func (l localAPI) Suspend(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	return l.a.plane.Engine.SetState(ctx, id, silo.StateSuspended, "account.suspend")
}

func (l localAPI) Resume(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	return l.a.plane.Engine.SetState(ctx, id, silo.StateActive, "account.resume")
}

func (l localAPI) DeleteAccount(ctx context.Context, id silo.AccountID) error {
	return l.a.plane.Engine.DeleteAccount(ctx, id)
}

func (l localAPI) IssueKey(ctx context.Context, id silo.AccountID, name string) (string, store.APIKey, error) {
	return l.a.plane.IssueKey(ctx, id, name)
}

func (l localAPI) Keys(ctx context.Context, id silo.AccountID) ([]store.APIKey, error) {
	return l.a.plane.Keys(ctx, id)
}

func (l localAPI) RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error {
	return l.a.plane.RevokeKey(ctx, id, keyID)
}

func (l localAPI) SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	return l.a.plane.SetSecret(ctx, id, name, value)
}

func (l localAPI) VerifyAudit(ctx context.Context) (int, error) {
	return l.a.plane.VerifyAudit(ctx)
}

// localOnly refuses --server for a command that works on the local data dir
// only, saying what to use instead.
func localOnly(g *globals, instead string) error {
	c, err := remote(g)
	if err != nil || c == nil {
		return err
	}
	return silo.Errorf(silo.CodeInvalid, "this command works on the local data dir only; against a server use %s", instead)
}

// withAPI makes a command body that runs against the control API (local or
// --server) and releases it afterwards.
func withAPI(g *globals, fn func(ctx context.Context, api controlAPI, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		api, done, err := openAPI(cmd.Context(), g)
		if err != nil {
			return err
		}
		defer done()
		return fn(cmd.Context(), api, args)
	}
}
