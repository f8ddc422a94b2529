package main

import (
	"context"
	"fmt"
	neturl "net/url"
	"regexp"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
)

// openStore opens the control-plane store that --store (or $SILO_STORE)
// names: nil for "" (the platform then opens SQLite in the data dir), a
// PostgreSQL store for a postgres:// or postgresql:// URL. Opening a
// PostgreSQL store brings silo's tables there up to date (an empty schema
// gets them with the first change written, so a refused command leaves it
// empty); it refuses a schema written by a newer silo.
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
			return nil, storeError(url, err)
		}
		return st, nil
	default:
		return nil, usageError{fmt.Sprintf("--store must be empty (SQLite in the data dir) or a PostgreSQL URL such as postgres://silo@db:5432/silo?sslmode=require, not %q", redact(url))}
	}
}

// redact hides what could be a password in a store URL shown in help or
// in an error: a URL's password and password parameter become xxxxx
// (postgres://silo:xxxxx@db:5432/silo); in anything that does not parse as
// a URL, every password=... and all before the last @.
func redact(s string) string {
	// A URL whose @ is not where its user information ends (a password
	// holding / ? or #) is cut at the last @ below.
	if u, err := neturl.Parse(s); err == nil && u.Scheme != "" && u.Opaque == "" && (u.User != nil || !strings.Contains(s, "@")) {
		if _, ok := u.User.Password(); ok {
			u.User = neturl.UserPassword(u.User.Username(), "xxxxx")
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		s = "…" + s[at:]
	}
	return passwordParam.ReplaceAllString(s, "${1}xxxxx")
}

// passwordParam is a password=... setting of a key=value connection
// string.
var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// storeError is the one sentence for a PostgreSQL store that cannot be
// opened: the driver's own message spans lines and names its internals,
// so a connection that fails is said with its innermost cause only.
func storeError(url string, err error) error {
	if !strings.HasPrefix(silo.UserMessage(err), "cannot connect to PostgreSQL") {
		return err // a DSN that does not parse, a schema a newer silo wrote: already one sentence
	}
	where := redact(url)
	if u, perr := neturl.Parse(url); perr == nil {
		where = u.Host + u.Path
	}
	return silo.Errorf(silo.CodeUnavailable, "cannot connect to PostgreSQL at %s (%s); check that it is running and that --store (or $SILO_STORE) is right", where, rootCause(err))
}

// rootCause is the innermost error of err's chain on one line, without
// the SQLSTATE a PostgreSQL server adds: "connection refused", "password
// authentication failed for user silo".
func rootCause(err error) string {
	for {
		var next error
		switch e := err.(type) {
		case interface{ Unwrap() error }:
			next = e.Unwrap()
		case interface{ Unwrap() []error }:
			if es := e.Unwrap(); len(es) > 0 {
				next = es[len(es)-1]
			}
		}
		if next == nil {
			break
		}
		err = next
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if i := strings.Index(msg, " (SQLSTATE"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimPrefix(msg, "FATAL: ")
}
