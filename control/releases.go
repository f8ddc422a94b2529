package control

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// BuildRelease loads silo.yaml at path, builds every function and stores the
// release (content-addressed: the same inputs give the same ID) with origin
// (store.Release.Origin; a release stored already takes it only when it
// ranks higher). It does not make the release current.
func (p *Plane) BuildRelease(ctx context.Context, path string, origin store.Origin) (engine.Release, error) {
	rel, stored, err := p.PrepareRelease(ctx, path, origin)
	if err != nil {
		return rel, err
	}
	return rel, p.PutRelease(ctx, stored)
}

// BuildProbeRelease is BuildRelease for silo verify --probe: the release
// is marked as a probe build (engine.NewProbeRelease), so it is left out
// of release lists and runs only in the probe's throwaway accounts.
func (p *Plane) BuildProbeRelease(ctx context.Context, path string) (engine.Release, error) {
	rel, stored, err := p.prepare(ctx, path, engine.NewProbeRelease)
	if err != nil {
		return rel, err
	}
	return rel, p.PutRelease(ctx, stored)
}

// PutRelease stores a release made by PrepareRelease. Storing one that is
// stored already changes nothing (releases are content-addressed) but its
// origin, when the new one ranks higher (store.Origin.Replaces).
func (p *Plane) PutRelease(ctx context.Context, stored store.Release) error {
	err := p.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.PutRelease(stored) })
	if err != nil {
		return fmt.Errorf("store release %s: %w", stored.ID, err)
	}
	return nil
}

// PrepareRelease is BuildRelease without storing the release: a command
// that may still refuse (a plan to confirm, say) stores it with PutRelease
// only once it goes ahead. The release to store records origin.
func (p *Plane) PrepareRelease(ctx context.Context, path string, origin store.Origin) (engine.Release, store.Release, error) {
	rel, stored, err := p.prepare(ctx, path, engine.NewRelease)
	stored.Origin = origin
	return rel, stored, err
}

// Build loads silo.yaml at path and builds every function with b into a
// release, as BuildRelease does, without a Plane and without storing
// anything: what a client of a remote server builds before uploading the
// release's artifacts and spec (the server parses and stores it).
func Build(ctx context.Context, b Builder, path string, now func() time.Time) (engine.Release, error) {
	rel, _, err := build(ctx, b, path, engine.NewRelease, now)
	return rel, err
}

// prepare builds the app at path into a release made by newRelease.
func (p *Plane) prepare(ctx context.Context, path string, newRelease func(*spec.Stack, map[string]string, time.Time) (engine.Release, store.Release, error)) (engine.Release, store.Release, error) {
	return build(ctx, p.cfg.Builder, path, newRelease, p.cfg.Now)
}

// build is the one place an app becomes a release: it loads silo.yaml at
// path, builds each function with b, checks that each module exports its
// handler (CheckHandlers) and makes the release with newRelease.
func build(ctx context.Context, b Builder, path string, newRelease func(*spec.Stack, map[string]string, time.Time) (engine.Release, store.Release, error), now func() time.Time) (engine.Release, store.Release, error) {
	st, err := spec.Load(path)
	if err != nil {
		return engine.Release{}, store.Release{}, err
	}
	arts := map[string]string{}
	build := func(key string, f spec.Function) error {
		src := f.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(st.Dir, src)
		}
		d, err := b.Build(ctx, src)
		if err != nil {
			return silo.Errorf(silo.ErrorCode(err), "build function %q: %w", key, err)
		}
		arts[key] = d
		return nil
	}
	for _, name := range sortedKeys(st.Functions) {
		if err := build(name, st.Functions[name]); err != nil {
			return engine.Release{}, store.Release{}, err
		}
	}
	for _, name := range sortedKeys(st.Production.Functions) {
		if err := build(engine.ArtifactKey(true, name), st.Production.Functions[name]); err != nil {
			return engine.Release{}, store.Release{}, err
		}
	}
	if err := CheckHandlers(st, arts, b.Module); err != nil {
		return engine.Release{}, store.Release{}, err
	}
	return newRelease(st, arts, now())
}

// CurrentRelease returns the release new accounts get and fleet applies
// target. silo.ErrNotFound if none was made current yet.
func (p *Plane) CurrentRelease(ctx context.Context) (engine.Release, error) {
	var r store.Release
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		id, err := tx.CurrentRelease()
		if err != nil {
			return err
		}
		r, err = tx.Release(id)
		return err
	})
	if errors.Is(err, silo.ErrNotFound) {
		return engine.Release{}, &silo.Error{Code: silo.CodeNotFound, Message: "no release yet; run silo apply in the directory holding silo.yaml", Err: store.ErrNoRelease}
	}
	if err != nil {
		return engine.Release{}, err
	}
	return engine.LoadRelease(r)
}

// Release returns a stored release by ID.
func (p *Plane) Release(ctx context.Context, id string) (engine.Release, error) {
	var r store.Release
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.Release(id)
		return err
	})
	if err != nil {
		return engine.Release{}, err
	}
	return engine.LoadRelease(r)
}

// SetCurrent makes rel the current release, with an audit event, after the
// isolation gate passed it.
func (p *Plane) SetCurrent(ctx context.Context, rel engine.Release) error {
	if err := p.Gate(ctx, rel); err != nil {
		return err
	}
	err := p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		old, err := tx.SetCurrentRelease(rel.ID)
		if err != nil || old == rel.ID {
			return err
		}
		_, err = tx.AppendAudit(store.AuditEvent{Time: p.cfg.Now(), Actor: p.cfg.Actor, Action: "release.current", Detail: jsonDetail(map[string]string{"release": rel.ID, "previous": old})})
		return err
	})
	return p.announceAfter(ctx, err, store.Change{What: "release"})
}
