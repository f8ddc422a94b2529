package server

// This file holds the helpers of the release, artifact and rollout routes
// (routes, server.go).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/wasmfile"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// rolloutID resolves "active" and "latest" to a rollout's ID.
func (s *Server) rolloutID(r *http.Request) (string, error) {
	id := r.PathValue("rid")
	if id != "active" && id != "latest" {
		return id, nil
	}
	if id == "active" {
		ro, err := s.cfg.Runner.Active(r.Context())
		return ro.ID, err
	}
	rs, err := s.cfg.Runner.List(r.Context(), 1)
	if err != nil {
		return "", err
	}
	if len(rs) == 0 {
		return "", silo.Errorf(silo.CodeNotFound, "no rollout yet; silo deploy starts one")
	}
	return rs[0].ID, nil
}

// rollout answers GET /v1/rollouts/{rid}: the rollout, marked
// can_roll_back as the list marks it.
func (s *Server) rollout(r *http.Request) (rollout.Rollout, error) {
	id, err := s.rolloutID(r)
	if err != nil {
		return rollout.Rollout{}, err
	}
	ro, err := s.cfg.Runner.Get(r.Context(), id)
	if err != nil {
		return ro, err
	}
	one := []rollout.Rollout{ro}
	err = s.cfg.Runner.MarkRollback(r.Context(), one)
	return one[0], err
}

// follow streams the rollout as JSON lines (or server-sent events when the
// client accepts text/event-stream) until it stops running.
func (s *Server) follow(w http.ResponseWriter, r *http.Request) {
	id, err := s.rolloutID(r)
	if err == nil {
		_, err = s.cfg.Runner.Get(r.Context(), id)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	_ = s.cfg.Runner.Watch(r.Context(), id, func(ro rollout.Rollout) error {
		b, err := json.Marshal(ro)
		if err != nil {
			return err
		}
		if sse {
			_, err = fmt.Fprintf(w, "event: rollout\ndata: %s\n\n", b)
		} else {
			_, err = fmt.Fprintf(w, "%s\n", b)
		}
		if fl != nil {
			fl.Flush()
		}
		return err
	})
}

func (s *Server) artifactPath(digest string) (string, error) {
	if len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		return "", silo.Errorf(silo.CodeInvalid, "artifact digest %q is not a lower-case hex SHA-256", clip(digest))
	}
	return filepath.Join(s.cfg.ArtifactDir, digest+".wasm"), nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// putArtifact stores a content-addressed artifact: the body must hash to
// the digest in the path, be framed as a wasm module and, with
// Config.Modules, compile as the runtime runs it. Written as temp + fsync +
// rename + dir fsync. An artifact already stored whose file holds other
// bytes (damaged) is replaced.
func (s *Server) putArtifact(r *http.Request) (int, any, error) {
	digest := r.PathValue("digest")
	p, err := s.artifactPath(digest)
	if err != nil {
		return 0, nil, err
	}
	if _, err := storedModule(p, digest); err == nil {
		io.Copy(io.Discard, io.LimitReader(r.Body, s.cfg.MaxArtifactSize))
		return http.StatusOK, map[string]string{"digest": digest}, nil
	}
	f, err := os.CreateTemp(s.cfg.ArtifactDir, ".upload-*")
	if err != nil {
		return 0, nil, fmt.Errorf("store artifact: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var body bytes.Buffer
	n, err := io.Copy(io.MultiWriter(f, &body), io.LimitReader(r.Body, s.cfg.MaxArtifactSize+1))
	if err != nil {
		return 0, nil, silo.Errorf(silo.CodeInvalid, "reading the artifact failed: %v", err)
	}
	if n > s.cfg.MaxArtifactSize {
		return 0, nil, silo.Errorf(silo.CodeInvalid, "the artifact is larger than %d bytes", s.cfg.MaxArtifactSize)
	}
	if got := sha256Hex(body.Bytes()); got != digest {
		return 0, nil, silo.Errorf(silo.CodeInvalid, "the artifact's SHA-256 is %s, not %s; upload the bytes the digest names", got, digest)
	}
	if err := wasmfile.Check(body.Bytes()); err != nil {
		return 0, nil, silo.Errorf(silo.CodeInvalid, "the artifact is not a wasm module: %v; build the function with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (silo deploy builds it) and upload that", err)
	}
	if err := s.checkRuns(r.Context(), digest, body.Bytes()); err != nil {
		return 0, nil, err
	}
	if err := f.Sync(); err != nil {
		return 0, nil, fmt.Errorf("store artifact: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, nil, fmt.Errorf("store artifact: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return 0, nil, fmt.Errorf("store artifact: %w", err)
	}
	if d, err := os.Open(s.cfg.ArtifactDir); err == nil {
		d.Sync()
		d.Close()
	}
	return http.StatusCreated, map[string]string{"digest": digest}, nil
}

// checkRuns refuses a module the runtime cannot run (Config.Modules; with
// none, every module framed as wasm passes).
//
// # Errors
//
// CodeInvalid saying why the module cannot run and what to do; the
// checker's other errors (CodeUnavailable: the server is shutting down) as
// they are.
func (s *Server) checkRuns(ctx context.Context, digest string, wasm []byte) error {
	if s.cfg.Modules == nil {
		return nil
	}
	err := s.cfg.Modules.CheckModule(ctx, digest, wasm)
	if silo.ErrorCode(err) == silo.CodeInvalid {
		return silo.Errorf(silo.CodeInvalid, "the artifact is a wasm module silo cannot run: %s; fix the function and build it again", silo.UserMessage(err))
	}
	return err
}

// storedModule returns the bytes of the artifact file at path if it holds
// the module whose SHA-256 is digest, framed as wasm (wasmfile.Check), else
// why not: missing, damaged (other bytes), not a module.
func storedModule(path, digest string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if got := sha256Hex(b); got != digest {
		return nil, fmt.Errorf("its file holds other bytes (SHA-256 %.12s), damaged since it was uploaded", got)
	}
	return b, wasmfile.Check(b)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// postRelease validates and stores a release: the spec parses and every
// function has an uploaded artifact that is a wasm module exporting its
// handler (control.CheckHandlers). Nothing changes on refusal; the same
// inputs give the same release ID. The isolation gate is not run here: a
// stored release reaches accounts only through a rollout, whose start runs
// the gate against the fleet as it is then (rollout.Config.Gate), or
// through silo apply, which runs it too (control.Plane.SetCurrent), so a
// deploy runs it once.
func (s *Server) postRelease(r *http.Request) (int, any, error) {
	var req ReleaseRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	rel, stored, err := s.newRelease(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	status, stored, err := s.putRelease(r.Context(), rel, stored)
	if err != nil {
		return 0, nil, err
	}
	return status, ReleaseInfo{ID: rel.ID, Artifacts: stored.Artifacts, Created: stored.Created, Note: stored.Note, Origin: stored.Origin}, nil
}

// newRelease checks req, the release of an upload, and returns it, not
// stored: the spec parses and every function has an uploaded artifact.
//
// # Errors
//
// CodeInvalid saying what is wrong with req.
func (s *Server) newRelease(ctx context.Context, req ReleaseRequest) (engine.Release, store.Release, error) {
	st, err := spec.Parse("silo.yaml", []byte(req.Spec))
	if err != nil {
		return engine.Release{}, store.Release{}, silo.Errorf(silo.CodeInvalid, "the release's silo.yaml is invalid:\n%v", err)
	}
	need := map[string]bool{}
	for name := range st.Functions {
		need[engine.ArtifactKey(false, name)] = true
	}
	for name := range st.Production.Functions {
		need[engine.ArtifactKey(true, name)] = true
	}
	for k := range need {
		d, ok := req.Artifacts[k]
		if !ok {
			return engine.Release{}, store.Release{}, silo.Errorf(silo.CodeInvalid, "function %q has no artifact in the release; build it and upload it", k)
		}
		p, err := s.artifactPath(d)
		if err != nil {
			return engine.Release{}, store.Release{}, err
		}
		if _, err := os.Stat(p); err != nil {
			return engine.Release{}, store.Release{}, silo.Errorf(silo.CodeInvalid, "artifact %s of function %q was not uploaded; PUT /v1/artifacts/%s first", d, k, d)
		}
		b, err := storedModule(p, d)
		if err != nil {
			return engine.Release{}, store.Release{}, silo.Errorf(silo.CodeInvalid, "artifact %.12s of function %q is not a wasm module: %v; build the function again and upload it (silo deploy does both)", d, k, err)
		}
		if err := s.checkRuns(ctx, d, b); err != nil {
			return engine.Release{}, store.Release{}, silo.Errorf(silo.ErrorCode(err), "artifact %.12s of function %q: %w", d, k, err)
		}
	}
	for k := range req.Artifacts {
		if !need[k] {
			return engine.Release{}, store.Release{}, silo.Errorf(silo.CodeInvalid, "artifact %q names no function of the release", k)
		}
	}
	if err := control.CheckHandlers(st, req.Artifacts, s.readArtifact); err != nil {
		return engine.Release{}, store.Release{}, err
	}
	rel, stored, err := engine.NewRelease(st, req.Artifacts, s.cfg.Now())
	stored.Note = req.Note
	stored.Origin = store.Origin{Kind: store.OriginDeploy}
	return rel, stored, err
}

// readArtifact returns the bytes of the uploaded artifact digest.
func (s *Server) readArtifact(digest string) ([]byte, error) {
	p, err := s.artifactPath(digest)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// putRelease stores rel (stored as newRelease made it; one stored already
// only takes its origin, store.Origin.Replaces) and returns it as stored,
// with 201 if this call stored it, else 200.
func (s *Server) putRelease(ctx context.Context, rel engine.Release, stored store.Release) (int, store.Release, error) {
	// The answer is the release as stored. Releases are immutable: the
	// same inputs again answer it as first stored (its note and time),
	// with 200 rather than 201; storing it again upgrades only its origin
	// (a dev build uploaded becomes a release to ship).
	status := http.StatusOK
	err := s.cfg.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Release(rel.ID)
		if errors.Is(err, silo.ErrNotFound) {
			status, err = http.StatusCreated, nil
		}
		if err != nil {
			return err
		}
		if err := tx.PutRelease(stored); err != nil {
			return err
		}
		stored, err = tx.Release(rel.ID)
		return err
	})
	if err != nil {
		return 0, stored, fmt.Errorf("store release %s: %w", rel.ID, err)
	}
	return status, stored, nil
}
