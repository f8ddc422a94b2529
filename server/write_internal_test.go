package server

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestWriteJSONNeverEmpty: an answer is encoded before its status is
// written, so a value that cannot be encoded gets 500 with an internal
// error in the body, never the handler's status with an empty body; a
// value that encodes gets its status and itself.
func TestWriteJSONNeverEmpty(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v          any
		wantStatus int
		wantCode   silo.Code // "" for the value itself
	}{
		{"encodes", map[string]float64{"cost_usd": 1.5}, http.StatusOK, ""},
		{"does not encode", map[string]float64{"cost_usd": math.Inf(1)}, http.StatusInternalServerError, silo.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := writeJSON(w, http.StatusOK, tc.v)
			if (err != nil) != (tc.wantCode != "") {
				t.Errorf("writeJSON returned %v, want an error: %v", err, tc.wantCode != "")
			}
			if w.Code != tc.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tc.wantStatus)
			}
			var body struct {
				Error struct{ Code silo.Code }
				Cost  float64 `json:"cost_usd"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", w.Body.String(), err)
			}
			if body.Error.Code != tc.wantCode || tc.wantCode == "" && body.Cost != 1.5 {
				t.Errorf("body %s, want error code %q (or the value)", w.Body.String(), tc.wantCode)
			}
		})
	}
}
