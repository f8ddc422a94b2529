package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// controlAPI is what the registry, key, secret, audit, plan, drift,
// verify, report, env and logs commands call. It is satisfied by the local
// installation (localAPI) and by the server's client (remoteAPI), so each
// of those commands works on a local data dir and against --server alike.
type controlAPI interface {
	CreateAccount(ctx context.Context, req control.CreateRequest) (control.Created, error)
	Accounts(ctx context.Context, f store.Filter) ([]silo.Account, error)
	Show(ctx context.Context, id silo.AccountID) (control.Detail, error)
	UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (silo.Plan, error)
	Suspend(ctx context.Context, id silo.AccountID) (silo.Account, error)
	Resume(ctx context.Context, id silo.AccountID) (silo.Account, error)
	DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) // a tenant's; see control.Plane.DeleteTenant
	DestroyOrphan(ctx context.Context, id silo.AccountID) (provider.Deletion, error)
	IssueKey(ctx context.Context, id silo.AccountID, name string) (string, store.APIKey, error)
	Keys(ctx context.Context, id silo.AccountID) ([]store.APIKey, error)
	RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error
	RevokeKeyAfter(ctx context.Context, id silo.AccountID, keyID string, grace time.Duration) error
	RemoveKey(ctx context.Context, keyID string) (control.RemovedKey, error)
	SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error
	DeleteSecret(ctx context.Context, id silo.AccountID, name string) (bool, error)
	Secrets(ctx context.Context, id silo.AccountID) ([]control.SecretState, error)
	VerifyAudit(ctx context.Context) (int, error)
	AuditLog(ctx context.Context, after int64, limit int, acct silo.AccountID) ([]store.AuditEntry, error)

	// PlanSpec plans, for one account (one != "") or the fleet, the
	// release plan targets: the one built from the spec file when it
	// exists, else the current one. Locally the built release is stored
	// (silo apply --plan applies it); against a server it is built here,
	// its artifacts uploaded, and planned there without being stored.
	PlanSpec(ctx context.Context, one silo.AccountID) (server.PlanSummary, error)
	Drift(ctx context.Context, one silo.AccountID) (server.DriftReport, error)
	Verify(ctx context.Context) (isolation.Result, error)
	Report(ctx context.Context, id silo.AccountID, format string) ([]byte, error)
	CreateEnv(ctx context.Context, req server.EnvRequest) (server.Env, error)
	Envs(ctx context.Context) ([]silo.Account, error)
	DeleteEnv(ctx context.Context, id silo.AccountID) error
	Logs(ctx context.Context, id silo.AccountID, q logs.Query) ([]logs.Entry, error)
	FollowLogs(ctx context.Context, id silo.AccountID, q logs.Query, fn func(logs.Entry) error) error
}

var (
	_ controlAPI = remoteAPI{}
	_ controlAPI = localAPI{}
)

// remoteAPI is controlAPI against a server: its client, plus what must
// happen on this machine first (building the release to plan).
type remoteAPI struct {
	*server.Client
	g *globals
}

// PlanSpec builds the spec file's release here, uploads its artifacts and
// has the server plan the release without storing it; without a spec file
// the server plans its current release.
func (r remoteAPI) PlanSpec(ctx context.Context, one silo.AccountID) (server.PlanSummary, error) {
	if _, err := os.Stat(r.g.file); errors.Is(err, os.ErrNotExist) {
		return r.Client.Plan(ctx, "", one)
	}
	req, err := uploadArtifacts(ctx, r.g, r.Client)
	if err != nil {
		return server.PlanSummary{}, err
	}
	return r.Client.PlanUpload(ctx, req, one)
}

// uploadArtifacts builds the spec file into a release here, without
// opening the local installation (a machine that only talks to a server, a
// CI runner say, needs no data dir, and a data dir whose control plane
// moved is not read), uploads its artifacts (content-addressed, so a
// repeat upload is cheap) and returns the release to send with the
// silo.yaml it was built from: silo deploy sends it with the rollout's
// start, which stores it only if the rollout starts; silo plan has it
// planned, which stores nothing.
func uploadArtifacts(ctx context.Context, g *globals, c *server.Client) (server.ReleaseRequest, error) {
	cache, done, err := remoteBuildCache(g)
	if err != nil {
		return server.ReleaseRequest{}, err
	}
	defer done()
	rel, err := platform.BuildRelease(ctx, g.file, cache, g.stderr)
	if err != nil {
		return server.ReleaseRequest{}, err
	}
	spec, err := os.ReadFile(g.file)
	if err != nil {
		return server.ReleaseRequest{}, err
	}
	for name, d := range rel.Artifacts {
		b, err := os.ReadFile(platform.BuiltArtifact(cache, d))
		if err != nil {
			return server.ReleaseRequest{}, fmt.Errorf("read artifact of %s: %w", name, err)
		}
		if _, err := c.PutArtifact(ctx, b); err != nil {
			return server.ReleaseRequest{}, silo.Errorf(silo.ErrorCode(err), "upload function %q: %w", name, err)
		}
	}
	return server.ReleaseRequest{Spec: string(spec), Artifacts: rel.Artifacts}, nil
}

// remoteBuildCache returns the build cache a release uploaded to a server
// is built in: $SILO_CACHE_DIR's, else the data dir's when the data dir
// exists (the cache local commands use), else a temporary one that done
// removes, so that a machine with no data dir gets none.
func remoteBuildCache(g *globals) (dir string, done func(), err error) {
	if c := os.Getenv("SILO_CACHE_DIR"); c != "" {
		return filepath.Join(c, "builds"), func() {}, nil
	}
	if fi, err := os.Stat(g.dataDir); err == nil && fi.IsDir() {
		return filepath.Join(g.dataDir, "cache", "builds"), func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "silo-build-*")
	if err != nil {
		return "", nil, fmt.Errorf("make a build directory: %w", err)
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// openAPI returns the server's client with --server (or $SILO_SERVER), else
// the local installation. close releases it.
func openAPI(ctx context.Context, g *globals) (api controlAPI, close func(), err error) {
	c, err := remote(g)
	if err != nil {
		return nil, nil, err
	}
	if c != nil {
		return remoteAPI{Client: c, g: g}, func() {}, nil
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
	check := func(rel engine.Release) error { return control.CheckCreate(rel, req) }
	if err := l.a.currentOrBootstrap(ctx, l.g, check); err != nil {
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

func (l localAPI) UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (silo.Plan, error) {
	return l.a.plane.UpdateParams(ctx, id, set, name)
}

func (l localAPI) Suspend(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	return l.a.plane.SetState(ctx, id, silo.StateSuspended, "account.suspend")
}

func (l localAPI) Resume(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	return l.a.plane.SetState(ctx, id, silo.StateActive, "account.resume")
}

func (l localAPI) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	return l.a.plane.DeleteTenant(ctx, id)
}

func (l localAPI) DestroyOrphan(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	return l.a.plane.DestroyOrphan(ctx, id)
}

func (l localAPI) IssueKey(ctx context.Context, id silo.AccountID, name string) (string, store.APIKey, error) {
	return l.a.plane.IssueKey(ctx, id, name)
}

func (l localAPI) Keys(ctx context.Context, id silo.AccountID) ([]store.APIKey, error) {
	return l.a.plane.Keys(ctx, id)
}

func (l localAPI) RevokeKeyAfter(ctx context.Context, id silo.AccountID, keyID string, grace time.Duration) error {
	return l.a.plane.RevokeKeyAfter(ctx, id, keyID, grace)
}

func (l localAPI) RemoveKey(ctx context.Context, keyID string) (control.RemovedKey, error) {
	return l.a.plane.RemoveKey(ctx, keyID)
}

func (l localAPI) RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error {
	return l.a.plane.RevokeKey(ctx, id, keyID)
}

func (l localAPI) SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	return l.a.plane.SetSecret(ctx, id, name, value)
}

func (l localAPI) DeleteSecret(ctx context.Context, id silo.AccountID, name string) (bool, error) {
	return l.a.plane.DeleteSecret(ctx, id, name)
}

func (l localAPI) Secrets(ctx context.Context, id silo.AccountID) ([]control.SecretState, error) {
	return l.a.plane.Secrets(ctx, id)
}

func (l localAPI) VerifyAudit(ctx context.Context) (int, error) {
	return l.a.plane.VerifyAudit(ctx)
}

func (l localAPI) AuditLog(ctx context.Context, after int64, limit int, acct silo.AccountID) ([]store.AuditEntry, error) {
	return l.a.plane.AuditLog(ctx, after, limit, acct)
}

func (l localAPI) PlanSpec(ctx context.Context, one silo.AccountID) (server.PlanSummary, error) {
	rel, err := l.a.release(ctx, l.g, false)
	if err != nil {
		return server.PlanSummary{}, err
	}
	return server.PlanRelease(ctx, l.a.plane, rel, one)
}

func (l localAPI) Drift(ctx context.Context, one silo.AccountID) (server.DriftReport, error) {
	return server.FleetDrift(ctx, l.a.plane, one)
}

func (l localAPI) Verify(ctx context.Context) (isolation.Result, error) {
	_, res, err := server.ProveFleet(ctx, l.a.store, l.a.provider)
	return res, err
}

// Report signs with this installation's key (created on first use in the
// data dir).
func (l localAPI) Report(ctx context.Context, id silo.AccountID, format string) ([]byte, error) {
	key, err := report.LoadOrCreateKey(l.a.dir)
	if err != nil {
		return nil, err
	}
	return server.TenantReport(ctx, l.a.store, l.a.plane, l.a.provider, key, id, format, time.Now())
}

// CreateEnv makes the spec file's release current first when there is none
// yet (the first account of a new installation), once the request is
// checked against it: a refused request stores nothing.
func (l localAPI) CreateEnv(ctx context.Context, req server.EnvRequest) (server.Env, error) {
	env := platform.EnvOf(req)
	check := func(rel engine.Release) error {
		if err := platform.CheckEnv(env); err != nil {
			return err
		}

		return control.CheckCreate(rel, control.CreateRequest{ID: env.Name, Kind: silo.KindEnvironment, Params: env.Params, TTL: env.TTL})
	}
	if err := l.a.currentOrBootstrap(ctx, l.g, check); err != nil {
		return server.Env{}, err
	}
	return platform.Envs{P: l.a.Platform}.CreateEnv(ctx, req)
}

func (l localAPI) Envs(ctx context.Context) ([]silo.Account, error) {
	return platform.Envs{P: l.a.Platform}.Envs(ctx)
}

func (l localAPI) DeleteEnv(ctx context.Context, id silo.AccountID) error {
	return platform.Envs{P: l.a.Platform}.DeleteEnv(ctx, id)
}

// Logs reads the data dir's log files, or the provider's logs when it runs
// the functions itself (platform.Platform.ReadLogs).
func (l localAPI) Logs(ctx context.Context, id silo.AccountID, q logs.Query) ([]logs.Entry, error) {
	return l.a.Platform.ReadLogs(ctx, id, q)
}

func (l localAPI) FollowLogs(ctx context.Context, id silo.AccountID, q logs.Query, fn func(logs.Entry) error) error {
	return l.a.Platform.FollowLogs(ctx, id, q, fn)
}

// localOnly refuses --server (or $SILO_SERVER) for a command that works on
// the local data dir only, saying what to run instead: instead against the
// server, or the same command without the setting that names the server.
// (A server found serving the data dir does not count: such commands are
// safe beside it, except those that refuse with notServed.)
func localOnly(g *globals, instead string) error {
	url, named, drop := g.server, "--server", "drop --server"
	if url == "" {
		url, named, drop = os.Getenv("SILO_SERVER"), "$SILO_SERVER", "unset SILO_SERVER"
	}
	if url == "" {
		return nil
	}
	return silo.Errorf(silo.CodeInvalid, "this command works on a local data dir, not through a server, and %s names one (%s); %s, or %s to run it on the local data dir", named, url, instead, drop)
}

// notServed refuses a command that would open the data dir's account stores
// beside a silo up or silo server serving it (an account's table store can
// be open in one process at a time), or beside one still starting (before
// it writes platform.ServerFile it already holds platform.LockFile), or
// beside a silo store migrate copying the data dir's state, saying what to
// do instead (a whole sentence after the semicolon).
func notServed(g *globals, instead string) error {
	if rs, ok := runningServer(g.dataDir); ok {
		return silo.Errorf(silo.CodeUnavailable, "silo up or silo server (pid %d) is serving the data dir %s at %s; %s", rs.PID, g.dataDir, rs.URL, instead)
	}
	if h, held := platform.DataDirHeld(g.dataDir); held {
		return heldError(g, h, instead)
	}
	return nil
}

// holdDataDir takes the data dir's lock (platform.LockDataDir) for command
// (silo up, silo server, silo store migrate), or refuses as notServed does
// when another process holds it. The caller releases the lock it returns
// when it is done with the data dir.
func holdDataDir(g *globals, command string, exclusive bool, instead string) (*platform.DataDirLock, error) {
	phase := "starting"
	if command == migrateCommand {
		phase = "copying the state" // on a data dir that exists: the copy needs its state.db
	} else {
		os.MkdirAll(g.dataDir, 0o700) // a server's first start makes the data dir; forgetNewDataDir takes it back if it fails
	}
	l, err := platform.LockDataDir(g.dataDir, exclusive, platform.Holder{Command: command, Phase: phase})
	var held *platform.HeldError
	switch {
	case errors.As(err, &held):
		return nil, heldError(g, held.Holder, instead)
	case err != nil:
		return nil, silo.Errorf(silo.CodeUnavailable, "cannot lock the data dir %s: %v; make the data dir writable by the user running silo", g.dataDir, durable.Cause(err))
	}
	return l, nil
}

// migrateCommand is how the data dir's lock names silo store migrate.
const migrateCommand = "silo store migrate"

// heldError is the refusal of a command on a data dir whose lock h holds.
func heldError(g *globals, h platform.Holder, instead string) error {
	switch {
	case h.Command == migrateCommand:
		return silo.Errorf(silo.CodeUnavailable, "silo store migrate (pid %d) is copying the control-plane state of the data dir %s into PostgreSQL; wait for it to finish, then pass --store (or set $SILO_STORE) to the database it copies into", h.PID, g.dataDir)
	case h.PID == 0:
		return silo.Errorf(silo.CodeUnavailable, "another silo process is starting on the data dir %s; %s", g.dataDir, instead)
	}
	return silo.Errorf(silo.CodeUnavailable, "%s (pid %d) is %s on the data dir %s; %s", h.Command, h.PID, h.Phase, g.dataDir, instead)
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
