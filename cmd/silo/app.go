package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store/sqlite"
)

// app is an opened local installation: the control-plane store, the local
// provider and the control plane on top.
type app struct {
	dir      string
	store    *sqlite.Store
	provider *local.Provider
	plane    *control.Plane
	log      *slog.Logger
}

// openApp opens (creating on first use) the installation in g.dataDir and
// recovers any intents a crash left pending.
func openApp(ctx context.Context, g *globals) (*app, error) {
	dir, err := filepath.Abs(g.dataDir)
	if err != nil {
		return nil, err
	}
	if err := control.DataDirWritable(dir); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: logLevel()}))
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		return nil, err
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts"), Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &app{dir: dir, store: st, provider: prov, log: log}
	a.plane = control.New(control.Config{
		Store: st, Provider: prov, Logger: log, Actor: actor(),
		Builder: &builder{outDir: filepath.Join(dir, "artifacts")},
	})
	rep, err := a.plane.Engine.Recover(ctx)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("recover journal: %w", err)
	}
	if rep.Pending > 0 {
		log.Info("recovered interrupted work", "pending", rep.Pending, "confirmed", rep.Confirmed, "abandoned", rep.Abandoned, "resumed", rep.Resumed)
	}
	return a, nil
}

func (a *app) Close() error {
	var errs []error
	if c, ok := any(a.provider).(interface{ Close() error }); ok {
		errs = append(errs, c.Close())
	}
	errs = append(errs, a.store.Close())
	return errors.Join(errs...)
}

// release returns the release that plan and apply target: the one built
// from the spec file when it exists, else the current one.
func (a *app) release(ctx context.Context, g *globals, makeCurrent bool) (engine.Release, error) {
	if _, err := os.Stat(g.file); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return engine.Release{}, err
		}
		rel, cerr := a.plane.CurrentRelease(ctx)
		if cerr != nil {
			return rel, silo.Errorf(silo.CodeNotFound, "no %s here and no release yet; run silo init, or pass --file", g.file)
		}
		return rel, nil
	}
	rel, err := a.plane.BuildRelease(ctx, g.file)
	if err != nil {
		return rel, err
	}
	if makeCurrent {
		if err := a.plane.SetCurrent(ctx, rel); err != nil {
			return rel, err
		}
	}
	return rel, nil
}

// currentOrBootstrap returns the current release, making the spec file's
// release current when there is none yet (the first tenant of a new
// installation).
func (a *app) currentOrBootstrap(ctx context.Context, g *globals) error {
	_, err := a.plane.CurrentRelease(ctx)
	if !errors.Is(err, silo.ErrNotFound) {
		return err
	}
	_, err = a.release(ctx, g, true)
	return err
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

// builder builds functions into content-addressed artifacts.
type builder struct{ outDir string }

func (b *builder) Build(ctx context.Context, source string) (string, error) {
	art, err := build.Function(ctx, source, b.outDir)
	if err != nil {
		return "", err
	}
	return art.Digest, nil
}
