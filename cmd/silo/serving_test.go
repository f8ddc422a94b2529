package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/platform"
)

// TestServedDataDirWhoseAPIIsSlow: a data dir whose server file names a
// live process is served unless its address says no. An API that accepts
// and does not answer within the check's second (a server on a loaded
// machine) still serves it, so silo dev refuses to open its stores beside
// it (must); nothing listening there (a reused PID), or something other
// than silo answering, does not (must not), and silo dev goes ahead past
// the check.
func TestServedDataDirWhoseAPIIsSlow(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	go http.Serve(other, http.NotFoundHandler())

	for _, tc := range []struct {
		name   string
		addr   string
		served bool
	}{
		{"an API too busy to answer", silent.Addr().String(), true},
		{"nothing listening", closedAddr, false},
		{"another program answering", other.Addr().String(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b, _ := json.Marshal(platform.RunningServer{URL: "http://" + tc.addr, PID: os.Getpid()})
			if err := os.WriteFile(filepath.Join(dir, platform.ServerFile), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, ok := runningServer(dir); ok != tc.served {
				t.Errorf("runningServer: %v, want %v", ok, tc.served)
			}
			err := notServed(&globals{dataDir: dir}, "stop it")
			if refused := err != nil && strings.Contains(err.Error(), "is serving the data dir"); refused != tc.served {
				t.Errorf("silo dev's check beside %s: %v; want refused: %v", tc.name, err, tc.served)
			}
		})
	}
}
