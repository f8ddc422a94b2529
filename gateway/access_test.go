package gateway

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// collected is an AccessLog that keeps what it is given.
type collected struct {
	mu      sync.Mutex
	entries []AccessEntry
	batches int
}

func (c *collected) WriteAccess(es []AccessEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, es...)
	c.batches++
}

func (c *collected) byRequest(rid string) (AccessEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.RequestID == rid {
			return e, true
		}
	}
	return AccessEntry{}, false
}

// TestAccessLog: every authenticated request leaves one entry in its
// account's access log, failures included, with the request ID the client
// got; no body, query or key. Requests without a valid key leave none.
func TestAccessLog(t *testing.T) {
	sink := &collected{}
	f := newFixture(t, Config{AccessLog: sink}, nil)
	key := f.keys["acme"]
	tests := []struct {
		name   string
		c      call
		logged bool
		want   AccessEntry
	}{
		{"ok", call{method: "POST", host: "acme.localhost", path: "/findings?token=sekrit", key: key, body: "body-secret"}, true,
			AccessEntry{Account: "acme", Method: "POST", Path: "/findings", Status: 200, Function: "create"}},
		{"function error", call{host: "acme.localhost", path: "/fail/internal", key: key}, true,
			AccessEntry{Account: "acme", Method: "GET", Path: "/fail/internal", Status: 500, Function: "fail-internal"}},
		{"no route", call{host: "localhost", path: "/t/acme/nowhere", key: key}, true,
			AccessEntry{Account: "acme", Method: "GET", Path: "/nowhere", Status: 404}},
		{"another account's key", call{host: "beta.localhost", path: "/findings", key: key}, false, AccessEntry{}},
		{"no key", call{host: "acme.localhost", path: "/findings"}, false, AccessEntry{}},
	}
	rids := map[string]string{}
	for _, tt := range tests {
		r := f.do(tt.c)
		rids[tt.name] = r.header.Get("X-Request-Id")
	}
	f.gw.Close() // writes what is buffered
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sink.byRequest(rids[tt.name])
			if ok != tt.logged {
				t.Fatalf("got logged %v, want %v", ok, tt.logged)
			}
			if !ok {
				return
			}
			if got.Duration <= 0 || got.Time.IsZero() {
				t.Errorf("got time %v, duration %v; want both set", got.Time, got.Duration)
			}
			got.Time, got.Duration, got.RequestID = time.Time{}, 0, ""
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	all := fmt.Sprintf("%+v", sink.entries)
	for _, secret := range []string{key, "sekrit", "body-secret"} {
		if strings.Contains(all, secret) {
			t.Errorf("the access log holds %q: %s", secret, all)
		}
	}
}

// TestAccessLogBatches: entries reach the AccessLog in batches, not one
// call per request, and none is lost.
func TestAccessLogBatches(t *testing.T) {
	sink := &collected{}
	f := newFixture(t, Config{AccessLog: sink, RatePerSecond: 1e6, Burst: 1e6}, nil)
	const n = 300
	for range n {
		if r := f.do(call{host: "acme.localhost", path: "/echo", key: f.keys["acme"]}); r.status != 200 {
			t.Fatalf("got %d", r.status)
		}
	}
	f.gw.Close()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.entries) != n || sink.batches >= n/2 {
		t.Errorf("got %d entries in %d batches, want %d in far fewer batches", len(sink.entries), sink.batches, n)
	}
	for _, e := range sink.entries {
		if e.Account != silo.AccountID("acme") {
			t.Fatalf("entry of %s, want acme", e.Account)
		}
	}
}
