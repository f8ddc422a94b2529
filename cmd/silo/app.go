package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/user"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// app is the local installation opened for one command: the platform
// (store, provider, control plane, runtime) without serving anything.
type app struct {
	*platform.Platform
	dir      string
	store    store.Store
	provider provider.Provider
	plane    *control.Plane
	log      *slog.Logger
}

// openApp opens (creating on first use) the installation in g.dataDir. The
// platform recovers any intents a crash left pending.
func openApp(ctx context.Context, g *globals) (*app, error) {
	p, err := openPlatform(ctx, g, "", "")
	if err != nil {
		return nil, err
	}
	return &app{Platform: p, dir: p.Config().DataDir, store: p.Store, provider: p.Provider, plane: p.Plane, log: p.Config().Logger}, nil
}

// release returns the release that plan and build target: the one built
// from the spec file when it exists (stored with the origin of a build of
// it), else the current one.
func (a *app) release(ctx context.Context, g *globals, makeCurrent bool) (engine.Release, error) {
	rel, keep, err := a.prepare(ctx, g, store.Origin{Kind: store.OriginBuild, From: g.file})
	if err != nil {
		return rel, err
	}
	if err := keep(ctx); err != nil {
		return rel, err
	}
	if makeCurrent {
		if err := a.plane.SetCurrent(ctx, rel); err != nil {
			return rel, err
		}
	}
	return rel, nil
}

// prepare is release without storing anything yet: it returns the release
// and keep, which stores it with origin (a no-op for the current release).
// A command that may still refuse calls keep only once it goes ahead.
func (a *app) prepare(ctx context.Context, g *globals, origin store.Origin) (rel engine.Release, keep func(context.Context) error, err error) {
	keep = func(context.Context) error { return nil }
	if _, err := os.Stat(g.file); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return engine.Release{}, keep, err
		}
		rel, cerr := a.plane.CurrentRelease(ctx)
		if cerr != nil {
			return rel, keep, silo.Errorf(silo.CodeNotFound, "no %s here and no release yet; run silo init, or pass --file", g.file)
		}
		return rel, keep, nil
	}
	rel, stored, err := a.plane.PrepareRelease(ctx, g.file, origin)
	if err != nil {
		return rel, keep, err
	}
	return rel, func(ctx context.Context) error { return a.plane.PutRelease(ctx, stored) }, nil
}

// currentOrBootstrap makes the spec file's release current when there is no
// current release yet (the first tenant of a new installation), once check
// accepts it: a request the release refuses (a parameter it does not know)
// stores neither the release nor anything else.
func (a *app) currentOrBootstrap(ctx context.Context, g *globals, check func(engine.Release) error) error {
	_, err := a.plane.CurrentRelease(ctx)
	if !errors.Is(err, silo.ErrNotFound) {
		return err
	}
	rel, keep, err := a.prepare(ctx, g, store.Origin{Kind: store.OriginDeploy})
	if err != nil {
		return err
	}
	if err := check(rel); err != nil {
		return err
	}
	if err := keep(ctx); err != nil {
		return err
	}
	return a.plane.SetCurrent(ctx, rel)
}

func logLevel() slog.Level {
	if os.Getenv("SILO_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

func actor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}
