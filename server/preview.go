package server

import (
	"net/http"

	silo "github.com/silo-run/silo"
)

// previewRoutes serves what a rollout or a rollback would destroy, as
// rollout.Runner.PreviewStart, PreviewNew (of a release uploaded, not
// stored) and PreviewRollback find it; nothing
// changes, and nothing is audited.
func (s *Server) previewRoutes() {
	s.handle("GET /v1/rollouts/preview", func(r *http.Request) (int, any, error) {
		rel := r.URL.Query().Get("release")
		if rel == "" {
			return 0, nil, silo.Errorf(silo.CodeInvalid, "release is required: GET /v1/rollouts/preview?release=r-…")
		}
		pv, err := s.cfg.Runner.PreviewStart(r.Context(), rel)
		return http.StatusOK, pv, err
	})
	s.handle("POST /v1/rollouts/preview", func(r *http.Request) (int, any, error) {
		var req ReleaseRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		rel, _, err := s.newRelease(r.Context(), req)
		if err != nil {
			return 0, nil, err
		}
		pv, err := s.cfg.Runner.PreviewNew(r.Context(), rel)
		return http.StatusOK, pv, err
	})
	s.handle("GET /v1/rollouts/{rid}/rollback/preview", func(r *http.Request) (int, any, error) {
		id, err := s.rolloutID(r)
		if err != nil {
			return 0, nil, err
		}
		pv, err := s.cfg.Runner.PreviewRollback(r.Context(), id)
		return http.StatusOK, pv, err
	})
}
