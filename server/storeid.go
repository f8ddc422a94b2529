package server

import (
	"context"
	"net/http"

	"github.com/silo-run/silo/control"
)

// StoreIdentity says which control-plane store a server serves: the
// installation's ID (empty while the store has none: no account was ever
// created) and the kind of store ("sqlite" or "postgres"), never where the
// store is or its credentials. A client that names a store of its own
// compares it with the server's before going through the server.
type StoreIdentity struct {
	Installation string `json:"installation"`
	Store        string `json:"store"`
}

// storeRoutes serves GET /v1/store.
func (s *Server) storeRoutes() {
	s.handle("GET /v1/store", func(r *http.Request) (int, any, error) {
		id, err := control.InstallationID(s.cfg.Store)(r.Context(), false)
		return http.StatusOK, StoreIdentity{Installation: id, Store: s.cfg.StoreKind}, err
	})
}

// StoreIdentity returns the identity of the store the server serves.
func (c *Client) StoreIdentity(ctx context.Context) (StoreIdentity, error) {
	var si StoreIdentity
	err := c.call(ctx, http.MethodGet, "/v1/store", nil, &si)
	return si, err
}
