package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/jsonstr"
)

// errorBody is the shape of every error response:
// {"error":{"code":"...","message":"...","request_id":"..."}}; the request
// ID is the one in the X-Request-Id response header, which names the
// request in the gateway's and the function's logs. fail writes it by hand (no
// reflection, one allocation); TestErrorBodyMatchesJSON checks that the bytes
// are those encoding/json would write for this type.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      silo.Code `json:"code"`
	Message   string    `json:"message"`
	RequestID string    `json:"request_id,omitempty"`
}

// appendErrorBody appends the JSON of errorBody{code, msg, rid} and a
// newline.
func appendErrorBody(b []byte, code silo.Code, msg, rid string) []byte {
	b = append(b, `{"error":{"code":`...)
	b = jsonstr.Append(b, string(code))
	b = append(b, `,"message":`...)
	b = jsonstr.Append(b, msg)
	if rid != "" {
		b = append(b, `,"request_id":`...)
		b = jsonstr.Append(b, rid)
	}
	return append(b, "}}\n"...)
}

// Header values of every error response, shared: net/http only reads them.
var (
	hdrJSON    = []string{"application/json"}
	hdrNosniff = []string{"nosniff"}
	hdrNoStore = []string{"no-store"}
)

// fail writes a JSON error with the status of code and the request's ID
// (from the X-Request-Id response header) and returns the number of body
// bytes written. msg must be safe to show to anyone.
func (g *Gateway) fail(w http.ResponseWriter, code silo.Code, msg string) int {
	h := w.Header()
	var rid string
	if v := h["X-Request-Id"]; len(v) == 1 {
		rid = v[0]
	}
	b := appendErrorBody(make([]byte, 0, 60+len(code)+len(msg)+len(msg)/8+len(rid)), code, msg, rid)
	h["Content-Type"] = hdrJSON
	h["X-Content-Type-Options"] = hdrNosniff
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(Status(code))
	n, _ := w.Write(b)
	return n
}

// msgFunctionFailed is what a client sees when a function fails in a way
// only its owner can fix; the request ID in the body and the X-Request-Id
// header finds the details in the function's and the operator's logs.
const msgFunctionFailed = "the function failed (it could not be loaded, crashed, ran out of memory or returned a bad response); its owner can find the details in its logs under this request's ID"

// invokeError returns what the client sees for an Invoker error: the
// error's code and message if it is a *silo.Error of another code than
// CodeInternal, msgFunctionFailed for internal errors, and the gateway's
// own timeout (not the function's) when the gateway's deadline ended the
// call.
func invokeError(err error, gatewayTimeout bool, timeout time.Duration) (silo.Code, string) {
	var se *silo.Error
	switch {
	case gatewayTimeout:
		return silo.CodeUnavailable, fmt.Sprintf("the function did not answer within %s; try again or make it faster", timeout)
	case errors.As(err, &se) && se.Code != silo.CodeInternal && se.Message != "":
		return se.Code, se.Message
	case errors.Is(err, context.DeadlineExceeded):
		// A shorter deadline inside the invocation (a store that stayed
		// locked, say), not the function's own nor the gateway's.
		return silo.CodeUnavailable, "the function could not run: something it needs did not answer in time; try again"
	}
	return silo.CodeInternal, msgFunctionFailed
}

// logDetail is err's message and its cause, for the operator's log: a
// *silo.Error's Error method gives its message only.
func logDetail(err error) string {
	var se *silo.Error
	if errors.As(err, &se) && se.Err != nil && se.Message != "" {
		return err.Error() + ": " + se.Err.Error()
	}
	return err.Error()
}
