package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// failing answers like the runtime does when a function fails.
var failing = InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
	switch strings.TrimPrefix(req.Path, "/files") {
	case "/own-timeout": // the function's own 2s limit, well before the gateway's
		return Response{}, &silo.Error{Code: silo.CodeUnavailable, Message: `function "api" timed out (limit 2s); make it faster or raise its timeout`, Err: context.DeadlineExceeded}
	case "/gateway-timeout":
		<-ctx.Done()
		return Response{}, &silo.Error{Code: silo.CodeUnavailable, Message: `function "api" was cancelled`, Err: ctx.Err()}
	case "/crash":
		return Response{}, &silo.Error{Code: silo.CodeInternal, Message: `function "api" crashed (it trapped); see its logs`, Err: errors.New("wasm error: unreachable\nwasm stack trace:\n\t.$2(i32,i32) i64")}
	case "/plain":
		return Response{}, errors.New("open /var/lib/silo/acme/kv.db: permission denied")
	case "/invalid":
		return Response{}, silo.Errorf(silo.CodeInvalid, "field x is missing; send x")
	}
	return Response{Body: []byte("ok")}, nil
})

// TestFunctionErrorsToClient: a client sees the right sentence and the
// request ID; the cause goes to the operator's log under that ID.
func TestFunctionErrorsToClient(t *testing.T) {
	f := newFixture(t, Config{InvokeTimeout: 300 * time.Millisecond}, failing)
	tests := []struct {
		path      string
		status    int
		want      string // in the message
		notWant   string // neither in the body
		logCause  string // in the operator's log, next to the request ID
		wantNoLog bool
	}{
		{"/own-timeout", 503, "timed out (limit 2s)", "300ms", "context deadline exceeded", false},
		{"/gateway-timeout", 503, "did not answer within 300ms", "cancelled", "context deadline exceeded", false},
		{"/crash", 500, msgFunctionFailed, "wasm", "wasm error: unreachable", false},
		{"/plain", 500, msgFunctionFailed, "/var/lib", "permission denied", false},
		{"/invalid", 400, "field x is missing; send x", "internal", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := f.doPath(t, "/files"+tt.path)
			var body errorBody
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			if r.status != tt.status || !strings.Contains(body.Error.Message, tt.want) {
				t.Errorf("got %d %q, want %d and a message saying %q", r.status, body.Error.Message, tt.status, tt.want)
			}
			if strings.Contains(string(r.body), tt.notWant) {
				t.Errorf("got body %s, want no %q", r.body, tt.notWant)
			}
			rid := r.header.Get("X-Request-Id")
			if body.Error.RequestID == "" || body.Error.RequestID != rid {
				t.Errorf("got request ID %q in the body, want %q (the X-Request-Id header)", body.Error.RequestID, rid)
			}
			logged := logLine(f.logs.String(), rid)
			if tt.wantNoLog {
				if logged != "" {
					t.Errorf("got log line %q for a client error, want none", logged)
				}
				return
			}
			if !strings.Contains(logged, tt.logCause) {
				t.Errorf("got log line %q for request %s, want the cause %q", logged, rid, tt.logCause)
			}
		})
	}
}

// doPath calls path on acme with its key.
func (f *fixture) doPath(t *testing.T, path string) result {
	t.Helper()
	return f.do(call{host: "acme.localhost", path: path, key: f.keys["acme"]})
}

// logLine returns the log line that names request rid, or "".
func logLine(logs, rid string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "request_id="+rid) {
			return l
		}
	}
	return ""
}
