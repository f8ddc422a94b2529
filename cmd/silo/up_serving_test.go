package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/isolation/report"
)

// TestUpPrintsURLsOnlyWhileServing reads silo up's output line by line
// through a pipe that blocks it at each write until read, and requests
// every URL the moment its line appears: each answers (the gateway and the
// API serve before anything is printed). The twin: with the gateway's or
// the API's address taken, silo up prints no URL and fails naming the
// address and what to do.
func TestUpPrintsURLsOnlyWhileServing(t *testing.T) {
	t.Setenv("USER", "tester")

	t.Run("serving", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		var errOut syncBuffer
		done := make(chan error, 1)
		go func() {
			err := runCmd(ctx, []string{"up", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}, pw, &errOut)
			pw.Close()
			done <- err
		}()
		// A client that gives up, so that a URL nobody serves fails the
		// test instead of hanging it (the listening socket accepts).
		// *.localhost is the loopback, as curl and browsers take it.
		dial := (&net.Dialer{}).DialContext
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err == nil && strings.HasSuffix(host, ".localhost") {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return dial(ctx, network, addr)
			},
		}}
		url := regexp.MustCompile(`http://[^\s)']+`)
		br := bufio.NewReader(pr)
		answered := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("silo up ended before it said Ctrl-C stops: %v; stderr: %s", err, errOut.String())
			}
			if strings.HasPrefix(line, "Try:") {
				break // commands, not URLs silo up serves
			}
			for _, u := range url.FindAllString(line, -1) {
				resp, err := client.Get(u)
				if err != nil {
					t.Fatalf("GET %s the moment silo up printed %q: %v", u, strings.TrimSpace(line), err)
				}
				resp.Body.Close()
				answered++
			}
		}
		if answered < 5 { // gateway, its health, API, console, an account's two URLs at least
			t.Fatalf("silo up printed %d URLs before Try:, want the gateway's, the API's and the accounts'", answered)
		}
		go io.Copy(io.Discard, br)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("silo up after Ctrl-C: %v (stderr %s)", err, errOut.String())
		}
	})

	// The API fails as it starts to serve (its retired report keys are
	// damaged): silo up prints no URL and fails with the API's error.
	t.Run("API fails to start", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, report.RetiredFile), []byte("-----BEGIN GARBAGE-----\nAAAA\n-----END GARBAGE-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- runCmd(ctx, []string{"up", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, &out, &errOut)
		}()
		var err error
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-time.After(20 * time.Millisecond):
				if strings.Contains(out.String(), "Ctrl-C stops") { // it serves: stop it
					cancel()
					err = <-done
					t.Fatalf("silo up with damaged report keys served (%v):\n%s", err, out.String())
				}
			}
		}
		if err == nil || !strings.Contains(err.Error(), "is damaged") {
			t.Fatalf("silo up with damaged report keys: %v, want the API's error (damaged); printed:\n%s", err, out.String())
		}
		if strings.Contains(out.String(), "http://") {
			t.Errorf("silo up whose API failed to start printed a URL:\n%s", out.String())
		}
	})

	for _, flag := range []string{"--listen", "--api"} {
		t.Run(flag+" taken", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			args := []string{"up", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}
			args = append(args, flag, ln.Addr().String())
			var out, errOut syncBuffer
			err = runCmd(context.Background(), args, &out, &errOut)
			if err == nil {
				t.Fatalf("silo up %s %s (taken) succeeded; printed:\n%s", flag, ln.Addr(), out.String())
			}
			if strings.Contains(out.String(), "http://") {
				t.Errorf("silo up on a taken address printed a URL:\n%s", out.String())
			}
			if msg := err.Error(); !strings.Contains(msg, "cannot listen on "+ln.Addr().String()) || !strings.Contains(msg, "stop what uses it or choose another") || !strings.Contains(msg, "silo up "+flag+" ADDR") {
				t.Errorf("silo up %s on a taken address: %v; want the address, and to stop what uses it or pass another with %s", flag, err, flag)
			}
		})
	}
}
