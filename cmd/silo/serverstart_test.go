package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/silo-run/silo/server"
)

// silo server says it is starting before the slow part of its start, and
// the operator token is in the data dir, with the value the API accepts,
// before the current release is compiled: a script that starts the server
// in the background and reads the token as it starts gets the right one.
// The twin: the API refuses any other token. Not parallel: it sets
// serverCompiling.
func TestServerWritesTheTokenBeforeCompiling(t *testing.T) {
	file, _ := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme") // a current release to compile at start
	var srvErr lockedBuffer
	var atCompile, errAtCompile string
	var readErr error
	serverCompiling = func() {
		var b []byte
		b, readErr = os.ReadFile(filepath.Join(c.dataDir, server.TokenFile))
		atCompile, errAtCompile = string(b), srvErr.String()
	}
	defer func() { serverCompiling = func() {} }()
	startServerTo(t, c, &srvErr)
	api := regexp.MustCompile(`API on (http://\S+)`)
	if readErr != nil || atCompile == "" {
		t.Fatalf("as the server compiles the current release, the operator token file: %q, %v; want it written", atCompile, readErr)
	}
	if !strings.HasPrefix(errAtCompile, "silo server: starting") || api.MatchString(errAtCompile) {
		t.Fatalf("as the server compiles, it printed %q; want the starting line only", errAtCompile)
	}
	base := api.FindStringSubmatch(srvErr.String())[1]
	for _, tc := range []struct {
		token string
		want  int
	}{
		{strings.TrimSpace(atCompile), http.StatusOK},
		{strings.TrimSpace(atCompile) + "x", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, base+"/v1/rollouts", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /v1/rollouts with the token read as the server compiled (+%q): %s; want %d", strings.TrimPrefix(tc.token, strings.TrimSpace(atCompile)), resp.Status, tc.want)
		}
	}
}
