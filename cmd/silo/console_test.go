package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/server"
)

// TestUpServesConsole: silo up prints the console's URL, which sends a
// browser without a session to the sign-in page and lets the operator
// token in (and nothing else).
func TestUpServesConsole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sum, stop := startUp(t, dir)
	defer stop()
	if sum.Console == "" || sum.Console != sum.API+"/console/" {
		t.Fatalf("console URL: got %q, want the API's %q + /console/", sum.Console, sum.API)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(sum.Console)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin" {
		t.Errorf("GET %s without a session: got %d to %q, want 303 to /console/signin", sum.Console, resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := os.ReadFile(filepath.Join(dir, server.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{"wrong", http.StatusUnauthorized}, {strings.TrimSpace(string(tok)), http.StatusSeeOther}} {
		resp, err := hc.PostForm(sum.API+"/console/signin", url.Values{"token": {tc.token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("sign in with token %q: got %d, want %d", tc.token[:5], resp.StatusCode, tc.want)
		}
	}
}
