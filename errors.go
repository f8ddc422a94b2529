package silo

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error for callers and for the mapping to HTTP status and
// exit codes, which lives in one table in the server and CLI.
type Code string

// The error codes.
const (
	CodeInvalid         Code = "invalid"            // bad input; the message says how to fix it
	CodeNotFound        Code = "not_found"          // no such thing
	CodeConflict        Code = "conflict"           // exists already, or a concurrent change won
	CodeForbidden       Code = "forbidden"          // the decision point denied it
	CodeUnauthenticated Code = "unauthenticated"    // no or bad credential
	CodeUnavailable     Code = "unavailable"        // try again later (busy, shutting down)
	CodeTooMany         Code = "too_many"           // rate or concurrency limit
	CodeFailedCheck     Code = "failed_check"       // a gate or verification refused it
	CodeInternal        Code = "internal"           // a bug or a broken environment
	CodeTooLarge        Code = "too_large"          // a request body over the limit
	CodeNotAllowed      Code = "method_not_allowed" // an HTTP method the route does not serve
	CodeNeedsConfirm    Code = "needs_confirmation" // it destroys data; repeat it confirmed to go ahead
)

// httpStatus maps every error code to its HTTP status: the one table, used
// by the gateway and the control-plane API alike.
var httpStatus = map[Code]int{
	CodeInvalid:         http.StatusBadRequest,
	CodeUnauthenticated: http.StatusUnauthorized,
	CodeForbidden:       http.StatusForbidden,
	CodeNotFound:        http.StatusNotFound,
	CodeNotAllowed:      http.StatusMethodNotAllowed,
	CodeConflict:        http.StatusConflict,
	CodeTooLarge:        http.StatusRequestEntityTooLarge,
	CodeFailedCheck:     http.StatusUnprocessableEntity,
	CodeNeedsConfirm:    http.StatusConflict,
	CodeTooMany:         http.StatusTooManyRequests,
	CodeInternal:        http.StatusInternalServerError,
	CodeUnavailable:     http.StatusServiceUnavailable,
}

// HTTPStatus returns the HTTP status of the code; unknown codes are 500.
func (c Code) HTTPStatus() int {
	if s, ok := httpStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an error a user may see: one clear sentence that says what went
// wrong and what to do, plus the internal cause for logs.
type Error struct {
	Code    Code
	Message string
	Err     error // internal cause; never shown to end users
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// Errorf returns an *Error with code c and a formatted message. A %w verb in
// format sets the cause.
func Errorf(c Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: c, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Sentinels for errors.Is. Match by code: errors.Is(err, silo.ErrNotFound).
var (
	ErrNotFound     = &Error{Code: CodeNotFound}
	ErrConflict     = &Error{Code: CodeConflict}
	ErrInvalid      = &Error{Code: CodeInvalid}
	ErrForbidden    = &Error{Code: CodeForbidden}
	ErrUnauthorized = &Error{Code: CodeUnauthenticated}
)

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Cause returns the internal cause of err: the Err of the innermost *Error
// in its chain that has both a message and a cause (the AWS call and its
// error under "AWS failed to ...", say), or nil. It is for logs and for a
// CLI run with SILO_DEBUG set, never for a client.
func Cause(err error) error {
	var cause error
	for e := err; e != nil; e = errors.Unwrap(e) {
		if se, ok := e.(*Error); ok && se.Message != "" && se.Err != nil {
			cause = se.Err
		}
	}
	return cause
}

// ForLog returns err's text for a log line: err's own text and, if it has
// one, its Cause ("...; cause: ..."), which err's text leaves out.
func ForLog(err error) string {
	if cause := Cause(err); cause != nil {
		return err.Error() + "; cause: " + cause.Error()
	}
	return err.Error()
}

// UserMessage returns the message a user should see for err: the message of
// the first *Error in the chain, or a generic sentence for internal errors.
func UserMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error; see the server log for details"
}
