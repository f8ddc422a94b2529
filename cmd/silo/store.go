package main

import (
	"context"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
)

// openStore opens the control-plane store that --store (or $SILO_STORE)
// names: nil for "" (the platform then opens SQLite in the data dir), a
// PostgreSQL store for a postgres:// or postgresql:// URL. Opening a
// PostgreSQL store brings its schema up to date; it refuses a schema
// written by a newer silo.
//
// # Errors
//
// CodeInvalid for anything else; CodeUnavailable when PostgreSQL cannot
// be reached or its schema is newer than this silo.
func openStore(ctx context.Context, url string) (store.Store, error) {
	switch {
	case url == "":
		return nil, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, silo.Errorf(silo.CodeInvalid, "--store must be empty (SQLite in the data dir) or a PostgreSQL URL such as postgres://silo@db:5432/silo?sslmode=require, not %q", redact(url))
	}
}

// redact hides what could be a password in a store URL shown in an error.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at >= 0 {
		return "…" + url[at:]
	}
	return url
}
