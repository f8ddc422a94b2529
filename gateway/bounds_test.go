package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

func TestBodyLimit(t *testing.T) {
	const max = 1 << 10
	var invoked sync.Map
	inv := InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
		invoked.Store(len(req.Body), true)
		return Response{Body: req.Body}, nil
	})
	f := newFixture(t, Config{MaxBodyBytes: max}, inv)
	key := f.keys["acme"]

	t.Run("at the limit", func(t *testing.T) {
		body := strings.Repeat("x", max)
		r := f.do(call{method: "POST", host: "acme.localhost", path: "/echo", key: key, body: body})
		if r.status != 200 || string(r.body) != body {
			t.Fatalf("got %d with %d bytes, want 200 echoing %d bytes", r.status, len(r.body), max)
		}
	})

	t.Run("chunked over the limit", func(t *testing.T) {
		req, _ := http.NewRequest("POST", f.srv.URL+"/echo", io.MultiReader(strings.NewReader(strings.Repeat("x", max)), strings.NewReader("y")))
		req.Host = "acme.localhost"
		req.Header.Set("Authorization", "Bearer "+key)
		req.ContentLength = -1
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
		if _, ok := invoked.Load(max + 1); ok {
			t.Fatal("function invoked with an oversized body")
		}
	})

	// A client that announces 10 MB and then stalls gets 413 at once: the
	// gateway does not wait for the body. The read deadline only bounds a
	// broken test.
	for _, auth := range []string{"", "Authorization: Bearer " + key + "\r\n"} {
		t.Run(fmt.Sprintf("announced and stalled (auth %v)", auth != ""), func(t *testing.T) {
			conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: acme.localhost\r\n%sContent-Length: %d\r\n\r\nxxxx", auth, 10<<20)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response while the body stalls: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 413 {
				t.Fatalf("got %d, want 413", resp.StatusCode)
			}
		})
	}
}

func TestHeaderLimit(t *testing.T) {
	f := newFixture(t, Config{MaxHeaderBytes: 4 << 10}, nil)
	key := f.keys["acme"]
	// net/http allows 4 KiB of slack beyond MaxHeaderBytes.
	if r := f.do(call{host: "acme.localhost", path: "/echo", key: key, header: map[string]string{"X-Big": strings.Repeat("a", 2<<10)}}); r.status != 200 {
		t.Fatalf("control: got %d, want 200", r.status)
	}
	if r := f.do(call{host: "acme.localhost", path: "/echo", key: key, header: map[string]string{"X-Big": strings.Repeat("a", 16<<10)}}); r.status != 431 {
		t.Fatalf("got %d, want 431", r.status)
	}
}

func TestSlowHeaders(t *testing.T) {
	f := newFixture(t, Config{ReadHeaderTimeout: 200 * time.Millisecond}, nil)
	addr := f.srv.Listener.Addr().String()
	// Control: a prompt client is served.
	if r := f.do(call{host: "localhost", path: "/healthz"}); r.status != 200 {
		t.Fatalf("control: got %d", r.status)
	}
	f.srv.Client().Transport.(*http.Transport).CloseIdleConnections()
	base := settledGoroutines()

	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
		conns[i] = c
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("conn %d: not cut by the server", i)
		}
		if bytes.Contains(b, []byte("200 OK")) {
			t.Fatalf("conn %d: served a request whose header never ended", i)
		}
		c.Close()
	}
	// Goroutines return to the baseline: poll, bounded.
	var got int
	for range 200 {
		if got = runtime.NumGoroutine(); got <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines: got %d, want ≤ %d (baseline)", got, base)
}

func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(5 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func TestRateLimitFairness(t *testing.T) {
	f := newFixture(t, Config{RatePerSecond: 1, Burst: 5}, nil)
	var noisy, quiet [2]int // [ok, limited]
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for range 10 {
				r := f.do(call{host: "acme.localhost", path: "/findings", key: f.keys["acme"]})
				mu.Lock()
				switch r.status {
				case 200:
					noisy[0]++
				case 429:
					noisy[1]++
					if r.header.Get("Retry-After") == "" || r.errCode() != silo.CodeTooMany {
						t.Errorf("429 without Retry-After or code: %v %s", r.header, r.body)
					}
				default:
					t.Errorf("noisy: got %d", r.status)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for range 4 {
		r := f.do(call{host: "beta.localhost", path: "/findings", key: f.keys["beta"]})
		if r.status == 200 {
			quiet[0]++
		} else {
			quiet[1]++
		}
	}
	if noisy[1] == 0 || noisy[0] == 0 {
		t.Fatalf("noisy tenant: %d ok, %d limited; want both > 0", noisy[0], noisy[1])
	}
	if quiet[1] != 0 {
		t.Fatalf("quiet tenant: %d ok, %d refused; want none refused", quiet[0], quiet[1])
	}
	if m := f.gw.Metrics("acme"); m.Limited != int64(noisy[1]) || m.Requests != 40 {
		t.Fatalf("noisy metrics: %+v, want %d limited of 40", m, noisy[1])
	}
	if m := f.gw.Metrics("beta"); m.Limited != 0 || m.Requests != 4 {
		t.Fatalf("quiet metrics: %+v", m)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	entered := make(chan struct{}, 10)
	unblock := make(chan struct{})
	inv := InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
		if acct == "acme" {
			entered <- struct{}{}
			<-unblock
		}
		return Response{Body: []byte("ok")}, nil
	})
	f := newFixture(t, Config{MaxConcurrent: 2}, inv)
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Go(func() { statuses <- f.do(call{host: "acme.localhost", path: "/echo", key: f.keys["acme"]}).status })
	}
	<-entered
	<-entered
	if r := f.do(call{host: "acme.localhost", path: "/echo", key: f.keys["acme"]}); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("third concurrent request: got %d, want 429 with Retry-After", r.status)
	}
	if r := f.do(call{host: "beta.localhost", path: "/echo", key: f.keys["beta"]}); r.status != 200 {
		t.Fatalf("other tenant while acme is saturated: got %d, want 200", r.status)
	}
	close(unblock)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Fatalf("in-flight request: got %d", s)
		}
	}
	if r := f.do(call{host: "acme.localhost", path: "/echo", key: f.keys["acme"]}); r.status != 200 {
		t.Fatalf("after the slots freed: got %d, want 200", r.status)
	}
}
