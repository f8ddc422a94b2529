package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
)

// TestErrorsAreJSON: a path no endpoint serves, a method the path is not
// served with, and a body that does not decode each get the documented
// error object, with one sentence that names the JSON field and type (never
// a Go type), and for 405 the Allow header. The twins: the same paths with
// the right method and body reach their endpoint.
func TestErrorsAreJSON(t *testing.T) {
	f := start(t)
	do := func(t *testing.T, method, path, body string) (*http.Response, []byte) {
		t.Helper()
		return send(t, f, method, path, body, true)
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     silo.Code
		message, allow           string
	}{
		{"unknown path", "GET", "/v1/nosuch", "", 404, silo.CodeNotFound, "no such endpoint: GET /v1/nosuch; see docs/api.md", ""},
		{"unknown path outside /v1", "GET", "/nosuch", "", 404, silo.CodeNotFound, "no such endpoint: GET /nosuch; see docs/api.md", ""},
		{"wrong method, one allowed", "POST", "/v1/rollouts/ro-000001/rollback/preview", "", 405, silo.CodeNotAllowed, "POST is not allowed on /v1/rollouts/ro-000001/rollback/preview; use GET or HEAD (see docs/api.md)", "GET, HEAD"},
		{"wrong method, several allowed", "DELETE", "/v1/accounts", "", 405, silo.CodeNotAllowed, "DELETE is not allowed on /v1/accounts; use GET, HEAD or POST (see docs/api.md)", "GET, HEAD, POST"},
		{"boolean as a string", "POST", "/v1/rollouts/ro-000001/rollback", `{"allow_data_loss":"yes"}`, 400, silo.CodeInvalid, "allow_data_loss must be a boolean, not a string (see docs/api.md)", ""},
		{"string as a number, nested", "POST", "/v1/accounts", `{"id":"acme","params":{"plan":1}}`, 400, silo.CodeInvalid, "each value of params must be a string, not a number (see docs/api.md)", ""},
		{"object as an array", "POST", "/v1/accounts", `[]`, 400, silo.CodeInvalid, "the request body must be an object, not an array (see docs/api.md)", ""},
		{"unknown field", "POST", "/v1/accounts", `{"id":"acme","plann":"pro"}`, 400, silo.CodeInvalid, `the request body has the unknown field "plann"; docs/api.md lists the endpoint's fields`, ""},
		{"empty body", "POST", "/v1/accounts", ``, 400, silo.CodeInvalid, "the request body is empty; send a JSON object (see docs/api.md)", ""},
		{"cut short", "POST", "/v1/accounts", `{"id":`, 400, silo.CodeInvalid, "the request body is not valid JSON: it ends before the value does", ""},
		{"not JSON", "POST", "/v1/accounts", `{id: acme}`, 400, silo.CodeInvalid, "the request body is not valid JSON: it breaks at byte 2; send a JSON object (see docs/api.md)", ""},
		{"neither release nor upload", "POST", "/v1/rollouts", `{"allow_data_loss":true}`, 400, silo.CodeInvalid, "give either release (the ID of a stored release) or upload (a release to store if its rollout starts), not both or neither", ""},
		{"both release and upload", "POST", "/v1/rollouts", `{"release":"r-x","upload":{"spec":"version: 1"}}`, 400, silo.CodeInvalid, "give either release (the ID of a stored release) or upload (a release to store if its rollout starts), not both or neither", ""},
		{"not JSON at all", "POST", "/v1/rollouts", `not json`, 400, silo.CodeInvalid, "the request body is not valid JSON: it breaks at byte 2; send a JSON object (see docs/api.md)", ""},
		{"too large", "PUT", "/v1/accounts/acme/limits", `{"rate":` + strings.Repeat(" ", 5<<20) + `1}`, 413, silo.CodeTooLarge, "the request body is over 4 MiB; send less", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, tc.method, tc.path, tc.body)
			var got server.ErrorBody
			if err := json.Unmarshal(b, &got); err != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s: %d %s %q is not the JSON error object (%v)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, err)
			}
			if resp.StatusCode != tc.status || got.Error.Code != tc.code || got.Error.Message != tc.message {
				t.Errorf("%s %s: got %d %s %q, want %d %s %q", tc.method, tc.path, resp.StatusCode, got.Error.Code, got.Error.Message, tc.status, tc.code, tc.message)
			}
			if a := resp.Header.Get("Allow"); a != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, a, tc.allow)
			}
		})
	}

	// The twins: the right method and body reach the endpoint.
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     silo.Code // of the endpoint's own error, if any
	}{
		{"known path", "GET", "/v1/accounts", "", 200, ""},
		{"right method", "GET", "/v1/rollouts/preview?release=r-x", "", 404, silo.CodeNotFound},
		{"release alone", "POST", "/v1/rollouts", `{"release":"r-x","allow_data_loss":true}`, 404, silo.CodeNotFound},
		{"boolean", "POST", "/v1/rollouts/ro-000001/rollback", `{"allow_data_loss":true}`, 404, silo.CodeNotFound},
		{"string parameter", "POST", "/v1/accounts", `{"id":"acme","params":{"plan":"pro"}}`, 404, silo.CodeNotFound},
	} {
		t.Run("twin "+tc.name, func(t *testing.T) {
			resp, b := do(t, tc.method, tc.path, tc.body)
			var got server.ErrorBody
			json.Unmarshal(b, &got)
			if resp.StatusCode != tc.status || got.Error.Code != tc.code || resp.Header.Get("Allow") != "" {
				t.Errorf("%s %s: got %d %s (Allow %q), want %d %s from the endpoint", tc.method, tc.path, resp.StatusCode, b, resp.Header.Get("Allow"), tc.status, tc.code)
			}
			if strings.Contains(got.Error.Message, "no such endpoint") || strings.Contains(got.Error.Message, "request body") {
				t.Errorf("%s %s: %q, want the endpoint's own answer", tc.method, tc.path, got.Error.Message)
			}
		})
	}
}

// TestClientSaysWhenTheAnswerIsNotSilos: a --server whose answers do not
// decode (another program, another version) is one sentence in silo's
// words, never the decoder's; the twin, a well-formed answer, decodes.
func TestClientSaysWhenTheAnswerIsNotSilos(t *testing.T) {
	answer := `[1,2]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	c := server.NewClient(srv.URL, "token", srv.Client())
	_, err := c.Show(context.Background(), "acme")
	want := "the server's answer is not what this silo understands (it must be an object, not an array); check that --server names a silo server of the same version"
	if silo.ErrorCode(err) != silo.CodeUnavailable || silo.UserMessage(err) != want {
		t.Fatalf("an answer that is not an account: got %v (%s), want %q", err, silo.ErrorCode(err), want)
	}
	answer = `{"account":{"id":"acme","kind":"tenant","state":"active"}}`
	if d, err := c.Show(context.Background(), "acme"); err != nil || d.Account.ID != "acme" {
		t.Errorf("a well-formed answer: got %+v, %v", d, err)
	}
}
