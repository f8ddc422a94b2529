package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecondServerOnPostgres: while a server serves a data dir, a second
// silo server on it is refused with the SQLite default and starts with a
// PostgreSQL store, serving its own API.
func TestSecondServerOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Fresh(t)
	c := newCLI(t)
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The first server: an API that answers, named in the server file.
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer first.Close()
	b, _ := json.Marshal(platform.RunningServer{URL: first.URL, PID: os.Getpid()})
	if err := os.WriteFile(filepath.Join(c.dataDir, platform.ServerFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails("is serving the data dir", "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--data-dir", c.dataDir, "--file", c.file, "--store", dsn, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	api := regexp.MustCompile(`API on (http://\S+)`)
	deadline := time.Now().Add(time.Minute)
	var url string
	for url == "" {
		select {
		case code := <-done:
			t.Fatalf("the second server exited %d: %s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if m := api.FindStringSubmatch(errOut.String()); m != nil {
			url = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second server did not start: %s", errOut.String())
		}
	}
	// Health reads the store within 2 s; on a loaded machine the first
	// reads may miss that, which is the 503 a load balancer should see.
	// The server must answer 200 once the store answers in time.
	for {
		resp, err := http.Get(url + "/v1/health")
		if err != nil {
			t.Fatalf("the second server's API: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("the second server's health: %d %s", resp.StatusCode, body)
		}
		t.Logf("the second server's health: %d %s; asking again", resp.StatusCode, body)
		time.Sleep(time.Second)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("the second server exited %d after Ctrl-C: %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "state.db")); !os.IsNotExist(err) {
		t.Errorf("a server on PostgreSQL made state.db: %v", err)
	}
}
