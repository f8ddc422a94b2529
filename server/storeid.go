package server

import (
	"context"
	"net/http"

	"github.com/silo-run/silo/control"
)

// StoreIdentity says which control-plane store a server serves: the
// installation's ID (empty while the store has none: no account was ever
// created), the kind of store ("sqlite" or "postgres") and, for PostgreSQL,
// the database's identity (postgres.Store.DatabaseID: a hash of the
// cluster, database and schema), never where the store is or its
// credentials. A client that names a store of its own compares the
// database identity with its store's before going through the server: the
// installation ID alone does not tell two new (empty) databases apart, nor
// a database from a restored copy of it.
type StoreIdentity struct {
	Installation string `json:"installation"`
	Store        string `json:"store"`
	Database     string `json:"database,omitempty"`
}

// storeRoutes serves GET /v1/store.
func (s *Server) storeRoutes() {
	s.handle("GET /v1/store", func(r *http.Request) (int, any, error) {
		id, err := control.InstallationID(s.cfg.Store)(r.Context(), false)
		if err != nil {
			return 0, nil, err
		}
		si := StoreIdentity{Installation: id, Store: s.cfg.StoreKind}
		if s.cfg.StoreDatabase != nil {
			if si.Database, err = s.cfg.StoreDatabase(r.Context()); err != nil {
				return 0, nil, err
			}
		}
		return http.StatusOK, si, nil
	})
}

// StoreIdentity returns the identity of the store the server serves.
func (c *Client) StoreIdentity(ctx context.Context) (StoreIdentity, error) {
	var si StoreIdentity
	err := c.call(ctx, http.MethodGet, "/v1/store", nil, &si)
	return si, err
}
