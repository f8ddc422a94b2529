package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// TestErrorMessagesSafeForClients: what a failed invocation says to a
// client names the function and what happened in one sentence, with no
// wasm error text or stack trace; the wasm detail stays in the cause, for
// the operator's log.
func TestErrorMessagesSafeForClients(t *testing.T) {
	if inSubprocess(t) {
		return
	}
	e := newEnv(t, Config{})
	trap := e.compile(t, hostileSpec{handle: opUnreachable}.build())
	deep := e.compile(t, recursionModule(60))
	tests := []struct {
		name      string
		invoke    func() error
		code      silo.Code
		want      string // in the message
		wantCause string // in the cause's text
	}{
		{"loop stopped at its timeout", func() error {
			_, err := e.invokeLim(t, "acme", Limits{Timeout: 200 * time.Millisecond}, Request{Path: "/loop"})
			return err
		}, silo.CodeUnavailable, "timed out (limit 200ms)", ""},
		{"recursion stopped at its timeout", func() error {
			_, err := e.invokeDigest("acme", deep, Limits{Timeout: 200 * time.Millisecond}, "/")
			return err
		}, silo.CodeUnavailable, "timed out (limit 200ms)", ""},
		{"trap", func() error {
			_, err := e.invokeDigest("acme", trap, Limits{}, "/")
			return err
		}, silo.CodeInternal, "crashed", "unreachable"},
		{"exit", func() error {
			_, err := e.invokeLim(t, "acme", Limits{}, Request{Path: "/exit"})
			return err
		}, silo.CodeInternal, "exited with code 3", "exit_code(3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.invoke()
			wantCode(t, err, tt.code)
			msg := silo.UserMessage(err)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("got message %q, want it to say %q", msg, tt.want)
			}
			for _, bad := range []string{"wasm", "unreachable", "stack", "\n", "0x"} {
				if strings.Contains(msg, bad) {
					t.Errorf("got message %q, want no %q in what a client sees", msg, bad)
				}
			}
			// Twin: the detail is kept as the cause.
			cause := errors.Unwrap(err)
			if cause == nil || !strings.Contains(cause.Error(), tt.wantCause) {
				t.Errorf("got cause %v, want one mentioning %q", cause, tt.wantCause)
			}
		})
	}
}

// TestTrapDetailInFunctionLog: what the client does not see, the wasm
// error and the guest's stack, is in the function's log under the request
// ID the client got.
func TestTrapDetailInFunctionLog(t *testing.T) {
	e := newEnv(t, Config{})
	trap := e.compile(t, hostileSpec{handle: opUnreachable}.build())
	_, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "api", Digest: trap, Host: e.hosts["acme"], Request: Request{ID: "rid-trap"}})
	wantCode(t, err, silo.CodeInternal)
	var line string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "request_id=rid-trap") {
			line = l
		}
	}
	if !strings.Contains(line, "wasm error: unreachable") || !strings.Contains(line, "account=acme") {
		t.Errorf("got log line %q, want the wasm error of request rid-trap in acme's log", line)
	}
	// Twin: an invocation that succeeds logs no failure.
	e.must(t, "acme", Request{Path: "/echo", ID: "rid-ok"}, 200)
	if strings.Contains(e.logs.String(), "request_id=rid-ok") {
		t.Errorf("a successful invocation logged a failure: %s", e.logs.String())
	}
}
