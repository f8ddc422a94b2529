package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAuthSchemeCaseInsensitive: the Bearer scheme matches in any letter
// case (RFC 7235), and only a well-formed field with the right token is
// accepted.
func TestAuthSchemeCaseInsensitive(t *testing.T) {
	f := start(t)
	tests := []struct {
		name   string
		fields []string
		want   int
	}{
		{"Bearer", []string{"Bearer " + f.token}, http.StatusOK},
		{"bearer", []string{"bearer " + f.token}, http.StatusOK},
		{"BEARER", []string{"BEARER " + f.token}, http.StatusOK},
		{"two spaces", []string{"Bearer  " + f.token}, http.StatusOK},
		{"Basic", []string{"Basic " + f.token}, http.StatusUnauthorized},
		{"Bearerx", []string{"Bearerx " + f.token}, http.StatusUnauthorized},
		{"no space", []string{"Bearer" + f.token}, http.StatusUnauthorized},
		{"trailing junk", []string{"Bearer " + f.token + " x"}, http.StatusUnauthorized},
		{"two fields", []string{"Bearer " + f.token, "Bearer " + f.token}, http.StatusUnauthorized},
		{"wrong token in lower case", []string{"bearer " + strings.Repeat("0", len(f.token))}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/accounts", nil)
			req.Header["Authorization"] = tt.fields
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
