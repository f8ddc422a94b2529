package platform

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation/probe"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/server/console"
	"github.com/silo-run/silo/store"
)

// API returns the control-plane API server (package server) on this
// platform, with the operator token of DataDir/operator.token (created on
// first use), fully wired: besides the control plane and the rollout
// runner it serves verify, report (signed with the installation's key in
// the data dir), environments, logs and the live probe of this platform's
// own gateway. Serve serves it when Config.APIListen is set; tests may
// mount its Handler themselves.
func (p *Platform) API() (*server.Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.api != nil {
		return p.api, nil
	}
	tok, err := server.LoadOrCreateToken(p.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	key, err := report.LoadOrCreateKey(p.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	published, err := report.PublishedKeys(p.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	kind := "sqlite"
	if p.cfg.Store != nil {
		kind = "postgres"
	}
	var database func(context.Context) (string, error)
	if d, ok := p.cfg.Store.(interface {
		DatabaseID(context.Context) (string, error)
	}); ok {
		database = d.DatabaseID
	}
	p.api, err = server.New(server.Config{
		Plane: p.Plane, Runner: p.Runner, Store: p.Store, StoreKind: kind, StoreDatabase: database, ArtifactDir: p.artifacts,
		Token: tok, Logger: p.cfg.Logger, Now: p.cfg.Now, Prices: p.cfg.Usage.Prices,
		Ops: server.Ops{Provider: p.Provider, Envs: Envs{p}, LogDir: p.Logs.Dir(), LogKeys: p.Logs.Keys(), Logs: p,
			ReportKey: key, ReportKeys: published,
			Probe:  func(ctx context.Context) (any, error) { return p.Probe(ctx) },
			Stored: p.StoredBytes},
		Modules: p,
	})
	if err != nil {
		return nil, err
	}
	con, err := console.New(console.Config{API: p.api.Handler(), Token: tok, Logger: p.cfg.Logger})
	if err != nil {
		return nil, err
	}
	p.api.SetConsole(con)
	return p.api, nil
}

// Envs is server.Envs on a platform: what silo env runs locally and what
// the API serves.
type Envs struct{ P *Platform }

var _ server.Envs = Envs{}

// CreateEnv creates an environment (see Platform.CreateEnv).
func (e Envs) CreateEnv(ctx context.Context, req server.EnvRequest) (server.Env, error) {
	env, err := e.P.CreateEnv(ctx, EnvOf(req))
	return server.Env{Account: env.Account, Key: env.Key}, err
}

// EnvOf is the platform's request for the API's.
func EnvOf(req server.EnvRequest) EnvRequest {
	return EnvRequest{Name: req.Name, Purpose: req.Purpose, TTL: req.TTL, Params: req.Params, Seed: req.SeedDir}
}

// Envs lists the environments that are not deleted (never nil).
func (e Envs) Envs(ctx context.Context) ([]silo.Account, error) {
	envs, err := e.P.Envs(ctx)
	if envs == nil {
		envs = []silo.Account{}
	}
	return envs, err
}

// DeleteEnv tears an environment or a developer account down and verifies
// the provider holds nothing of it. Tenants are deleted with silo tenant
// delete (control.Plane.DeleteTenant); the engine refuses the production
// account. A deleted one whose data the provider still holds is destroyed
// (engine.DeleteAccount); any other deleted account is refused.
//
// # Errors
//
// CodeInvalid for a tenant, CodeForbidden for the production account,
// CodeNotFound for an unknown account or a deleted one the provider does
// not hold.
func (e Envs) DeleteEnv(ctx context.Context, id silo.AccountID) error {
	a, err := e.P.Plane.Account(ctx, id)
	if err != nil {
		return err
	}
	if a.Kind == silo.KindTenant && a.State == silo.StateDeleted {
		return e.P.Plane.Engine.Answer(ctx, engine.Live(a))
	}
	if a.Kind == silo.KindTenant {
		return silo.Errorf(silo.CodeInvalid, "%s is a tenant, not an environment or a developer account; delete it with silo tenant delete %s", id, id)
	}
	if err := e.P.DeleteAccount(ctx, id); err != nil {
		return err
	}
	return e.P.VerifyGone(ctx, id)
}

// Probe attacks this platform, which must serve its gateway, with the live
// probe suite and records the outcome for isolation reports
// (server.SettingLastProbe).
//
// # Errors
//
// CodeUnavailable when the platform does not serve its gateway.
func (p *Platform) Probe(ctx context.Context) (probe.Report, error) {
	if p.Addr() == "" {
		return probe.Report{}, silo.Errorf(silo.CodeUnavailable, "this process does not serve the gateway, so there is nothing to probe; run silo verify --probe against silo up or silo server")
	}
	guest, err := probe.BuildGuest(ctx, filepath.Join(p.cfg.DataDir, "artifacts"))
	if err != nil {
		return probe.Report{}, err
	}
	key, err := report.LoadOrCreateKey(p.cfg.DataDir)
	if err != nil {
		return probe.Report{}, err
	}
	published, err := report.PublishedKeys(p.cfg.DataDir)
	if err != nil {
		return probe.Report{}, err
	}
	var pinned []string
	for _, k := range published {
		pinned = append(pinned, report.Fingerprint(k))
	}
	rep, err := probe.Run(ctx, probe.Target{
		Gateway: "http://" + dialable(p.Addr()), BaseDomain: p.cfg.BaseDomain,
		Control: p, Store: p.Store, Provider: p.Provider, Runtime: p.Runtime, Logs: p.Logs,
		Report: func(ctx context.Context, id silo.AccountID) ([]byte, error) {
			return server.TenantReport(ctx, p.Store, p.Plane, p.Provider, key, id, "json", time.Now())
		},
		ReportKeys: pinned, Guest: guest,
	})
	if err != nil {
		return rep, err
	}
	now := time.Now().UTC()
	rec := report.Probe{At: &now, Attempts: rep.Attempts, Breaches: rep.AttemptsSucceeded,
		Controls: rep.Controls, ControlsFailed: rep.ControlsFailed, NotApplicable: rep.NotApplicable}
	switch rep.Outcome() {
	case probe.OutcomeBreached:
		rec.Status = report.ProbeBreached
	case probe.OutcomePassed:
		rec.Status = report.ProbePassed
	default:
		rec.Status = report.ProbeInconclusive
	}
	b, _ := json.Marshal(rec)
	err = p.Store.Update(ctx, func(tx store.Tx) error { return tx.PutSetting(server.SettingLastProbe, string(b)) })
	return rep, err
}

// dialable turns a listening address into one to connect to: an
// unspecified host (0.0.0.0, ::) becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port)
}
