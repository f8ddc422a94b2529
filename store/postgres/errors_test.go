package postgres

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	silo "github.com/silo-run/silo"
)

// dbErr makes every error that means the database cannot serve
// unavailable, with a message that says so and no driver text; the twins:
// an error of the statement itself (a syntax error, a check violation)
// stays internal.
func TestDBErrUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code silo.Code
		msg  string
	}{
		{"connection failure (08006)", &pgconn.PgError{Code: "08006"}, silo.CodeUnavailable, unreachable},
		{"cannot connect now (08001)", &pgconn.PgError{Code: "08001"}, silo.CodeUnavailable, unreachable},
		{"database does not exist (3D000)", &pgconn.PgError{Code: "3D000"}, silo.CodeUnavailable, unreachable},
		{"admin shutdown (57P01)", &pgconn.PgError{Code: "57P01"}, silo.CodeUnavailable, unreachable},
		{"crash shutdown (57P02)", &pgconn.PgError{Code: "57P02"}, silo.CodeUnavailable, unreachable},
		{"cannot connect now (57P03)", &pgconn.PgError{Code: "57P03"}, silo.CodeUnavailable, unreachable},
		{"too many connections (53300)", &pgconn.PgError{Code: "53300"}, silo.CodeUnavailable, exhausted},
		{"disk full (53100)", &pgconn.PgError{Code: "53100"}, silo.CodeUnavailable, exhausted},
		{"tables gone (42P01)", &pgconn.PgError{Code: "42P01", Message: `relation "accounts" does not exist`}, silo.CodeUnavailable, vanished},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, silo.CodeUnavailable, unreachable},
		{"syntax error (42601)", &pgconn.PgError{Code: "42601"}, silo.CodeInternal, ""},
		{"check violation (23514)", &pgconn.PgError{Code: "23514"}, silo.CodeInternal, ""},
		{"query canceled (57014)", &pgconn.PgError{Code: "57014"}, silo.CodeInternal, ""},
		{"not a driver error", errors.New("boom"), silo.CodeInternal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dbErr("list accounts", tc.err)
			if got := silo.ErrorCode(err); got != tc.code {
				t.Fatalf("code %s (%v), want %s", got, err, tc.code)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not keep the driver error in its chain", err)
			}
			if tc.msg == "" {
				return
			}
			if got := silo.UserMessage(err); got != tc.msg {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
			if strings.Contains(silo.UserMessage(err), "SQLSTATE") || strings.Contains(silo.UserMessage(err), "relation") {
				t.Errorf("message %q shows the driver's text", silo.UserMessage(err))
			}
		})
	}
}
