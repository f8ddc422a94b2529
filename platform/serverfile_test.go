package platform

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// Two servers on one data dir: the server file names the last one started;
// when it stops, the file names the first again, which still runs; when
// that one stops too, the file is gone. The twin: a server that stops
// while another has replaced its file leaves that file alone.
func TestServerFileHandsBack(t *testing.T) {
	dir := t.TempDir()
	server := func(gw string) *Platform {
		return &Platform{cfg: Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)}, addr: gw}
	}
	names := func() string {
		t.Helper()
		rs, ok := Running(dir)
		if !ok {
			if _, err := os.Stat(filepath.Join(dir, ServerFile)); !os.IsNotExist(err) {
				t.Fatalf("server file there but not running: %v", err)
			}
			return ""
		}
		return rs.URL
	}
	stop1 := server("127.0.0.1:8080").announce("127.0.0.1:7070")
	stop2 := server("127.0.0.1:8081").announce("127.0.0.1:7071")
	if got := names(); got != "http://127.0.0.1:7071" {
		t.Fatalf("after both started the file names %q, want the second", got)
	}
	stop2()
	if got := names(); got != "http://127.0.0.1:7070" {
		t.Fatalf("after the second stopped the file names %q, want the first, which still runs", got)
	}
	stop1()
	if got := names(); got != "" {
		t.Fatalf("after both stopped the file names %q, want no file", got)
	}

	stop1 = server("127.0.0.1:8080").announce("127.0.0.1:7070")
	stop2 = server("127.0.0.1:8081").announce("127.0.0.1:7071")
	stop1() // the file is the second's: left alone
	if got := names(); got != "http://127.0.0.1:7071" {
		t.Fatalf("the first stopping changed the second's file to %q", got)
	}
	stop2()
}
