package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
)

func TestInvokeEcho(t *testing.T) {
	e := newEnv(t, Config{})
	body := e.must(t, "acme", Request{
		ID: "req-1", Method: "POST", Path: "/echo",
		Params: map[string]string{"id": "42"}, Query: url.Values{"q": {"find"}},
		Header: http.Header{"X-Test": {"yes"}}, Body: []byte("payload"),
	}, 200)
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"method": "POST", "path": "/echo", "id": "42", "q": "find", "h": "yes", "body": "payload"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("echo (-want +got):\n%s", diff)
	}
}

func TestHostCalls(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"kv", Request{Path: "/kv", Params: map[string]string{"key": "k1"}, Body: []byte("v1")}, `{"n":1,"value":"v1"}`},
		{"add", Request{Path: "/kv/add", Params: map[string]string{"key": "n"}, Query: url.Values{"d": {"-12"}}}, "-12"},
		{"add again", Request{Path: "/kv/add", Params: map[string]string{"key": "n"}, Query: url.Values{"d": {"5"}}}, "-7"},
		{"blob", Request{Path: "/blob", Params: map[string]string{"key": "x"}, Body: []byte("data")}, `{"keys":["a/x"],"value":"data"}`},
		{"config", Request{Path: "/config", Query: url.Values{"k": {"greeting"}}}, "hello acme"},
		{"secret", Request{Path: "/secret", Query: url.Values{"n": {"api-key"}}}, "secret-of-acme"},
		{"export", Request{Path: "/export", Query: url.Values{"e": {"threat-intel"}, "k": {"bad.example"}}}, "malicious"},
		{"log", Request{ID: "req-log", Path: "/log"}, "logged"},
		{"big response", Request{Path: "/big", Query: url.Values{"n": {"100000"}}}, strings.Repeat("\x00", 100000)},
		{"big request and host result through take", Request{Path: "/kv", Params: map[string]string{"key": "big"}, Body: []byte(strings.Repeat("x", 300000))},
			`{"n":3,"value":"` + strings.Repeat("x", 300000) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.must(t, "acme", tt.req, 200); got != tt.want {
				t.Errorf("got %.80q, want %.80q", got, tt.want)
			}
		})
	}
	if logs := e.logs.String(); !strings.Contains(logs, "hello from guest") || !strings.Contains(logs, "request_id=req-log") || !strings.Contains(logs, "account=acme") {
		t.Errorf("guest log line missing or untagged:\n%s", logs)
	}
}

func TestHostErrorsAreSafe(t *testing.T) {
	e := newEnv(t, Config{})
	// Missing key: not found, with the provider's user message.
	got := e.must(t, "acme", Request{Path: "/kv/get", Params: map[string]string{"key": "nope"}, Query: url.Values{"table": {"items"}}}, 404)
	if !strings.Contains(got, "not found") {
		t.Errorf("not-found message %q", got)
	}
	// Invalid key: the guest sees the invalid status and a user message, no Go error chain.
	got = e.must(t, "acme", Request{Path: "/kv/get", Params: map[string]string{"key": ""}, Query: url.Values{"table": {"items"}}}, 400)
	if !strings.Contains(got, "invalid key") {
		t.Errorf("invalid-key message %q", got)
	}
	// Another account's secrets do not exist from here: globex reads its own.
	if got := e.must(t, "globex", Request{Path: "/secret", Query: url.Values{"n": {"api-key"}}}, 200); got != "secret-of-globex" {
		t.Errorf("globex secret = %q", got)
	}
	// An export not granted is not found.
	e.must(t, "acme", Request{Path: "/export", Query: url.Values{"e": {"customers"}, "k": {"x"}}}, 404)
}

func TestPanicIs500AndInstanceSurvives(t *testing.T) {
	e := newEnv(t, Config{})
	e.must(t, "acme", Request{Path: "/panic"}, 500)
	e.must(t, "acme", Request{Path: "/trap"}, 500)
	e.must(t, "acme", Request{Path: "/echo"}, 200)
}

func TestExitDiscardsInstance(t *testing.T) {
	e := newEnv(t, Config{})
	e.must(t, "acme", Request{Path: "/echo"}, 200)
	_, err := e.invoke(t, "acme", Request{Path: "/exit"})
	if silo.ErrorCode(err) != silo.CodeInternal {
		t.Fatalf("exit: got %v, want an internal error", err)
	}
	if s := e.rt.Stats(); s.Instances != 0 {
		t.Errorf("after exit: %d instances, want 0 (discarded)", s.Instances)
	}
	e.must(t, "acme", Request{Path: "/echo"}, 200) // twin: a new instance serves
}

func TestUnknownDigestAndHandler(t *testing.T) {
	e := newEnv(t, Config{})
	_, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "api", Digest: "feed", Host: e.hosts["acme"]})
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("unknown digest: got %v, want not found", err)
	}
	_, err = e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "api", Digest: e.guest, Handler: "nosuch", Host: e.hosts["acme"]})
	if silo.ErrorCode(err) != silo.CodeInternal {
		t.Errorf("unknown handler: got %v, want an internal error (the release's fault, not the caller's)", err)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	for i := 0; i < 5; i++ {
		e.must(t, "acme", Request{Path: "/echo", Body: []byte("12345")}, 200)
	}
	e.must(t, "acme", Request{Path: "/panic"}, 500)
	e.invoke(t, "acme", Request{Path: "/exit"})
	m := e.rt.Metrics("acme")
	if m.Invocations != 7 || m.Errors != 1 || m.Status5xx != 1 || m.BytesIn != 25 {
		t.Errorf("metrics = %+v, want 7 invocations, 1 error, 1 5xx, 25 bytes in", m)
	}
	if m.Quantile(0.5) <= 0 || m.Quantile(0.99) < m.Quantile(0.5) {
		t.Errorf("quantiles p50=%v p99=%v", m.Quantile(0.5), m.Quantile(0.99))
	}
	if g := e.rt.Metrics("globex"); g.Invocations != 0 {
		t.Errorf("globex metrics = %+v, want none", g)
	}
}

func TestLogFloodCapped(t *testing.T) {
	e := newEnv(t, Config{})
	e.must(t, "acme", Request{Path: "/logflood"}, 200)
	logs := e.logs.String()
	if n := strings.Count(logs, "msg=flood"); n != maxLogLines {
		t.Errorf("%d log host lines kept, want %d", n, maxLogLines)
	}
	if n := strings.Count(logs, "stdout flood"); n != maxLogLines {
		t.Errorf("%d stdio lines kept, want %d", n, maxLogLines)
	}
	// Stdio lines carry the request ID of their invocation.
	if _, err := e.invoke(t, "acme", Request{Path: "/logflood", ID: "rid-stdio"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.logs.String(), `msg="stdout flood" account=acme function=api request_id=rid-stdio`); n != maxLogLines {
		t.Errorf("%d stdio lines with the request ID, want %d", n, maxLogLines)
	}
	// Twin: the next invocation may log again.
	e.must(t, "acme", Request{Path: "/log"}, 200)
	if !strings.Contains(e.logs.String(), "hello from guest") {
		t.Error("log line after a flood was dropped")
	}
}

// countingHost is the real DataHost, counting the lines that reach Log.
type countingHost struct {
	DataHost
	mu    sync.Mutex
	lines int
}

func (h *countingHost) Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) {
	h.mu.Lock()
	h.lines++
	h.mu.Unlock()
	h.DataHost.Log(ctx, level, msg, attrs)
}

// A guest log line below the Host's level is dropped before it is decoded
// (it never reaches Log); at or above the level it is logged.
func TestLogBelowLevelSkipped(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tt := range []struct {
		level slog.Level
		want  int
	}{{slog.LevelWarn, 0}, {slog.LevelInfo, 1}} {
		logs := &syncBuffer{}
		lg := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: tt.level}))
		dh := e.hosts["acme"].(*blockingHost).DataHost
		dh.Logger = lg
		h := &countingHost{DataHost: dh}
		resp, err := e.rt.Invoke(context.Background(), Invocation{
			Account: "acme", Function: "api", Digest: e.guest, Host: h, Request: Request{ID: "req-lv", Path: "/log"},
		})
		if err != nil || resp.Status != 200 {
			t.Fatalf("level %v: invoke /log: %v, %d", tt.level, err, resp.Status)
		}
		if h.lines != tt.want {
			t.Errorf("level %v: %d lines reached Log, want %d", tt.level, h.lines, tt.want)
		}
		if got := strings.Contains(logs.String(), "hello from guest"); got != (tt.want > 0) {
			t.Errorf("level %v: line logged = %v, want %v:\n%s", tt.level, got, tt.want > 0, logs.String())
		}
	}
}

// versionedConfigHost is the real DataHost whose config values a test
// changes between invocations, as a deploy changes the provider's.
type versionedConfigHost struct {
	DataHost
	value string
}

func (h *versionedConfigHost) Config(context.Context, string) (string, error) { return h.value, nil }

// The SDK keeps config values it has returned, to return them again without
// allocating, but asks the host every time: a changed value is seen by the
// next invocation of the same warm instance.
func TestConfigChangeSeenByWarmInstance(t *testing.T) {
	e := newEnv(t, Config{})
	h := &versionedConfigHost{DataHost: e.hosts["acme"].(*blockingHost).DataHost}
	for i, v := range []string{"v1", "v1", "v2", "", "v3"} {
		h.value = v
		resp, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "api", Digest: e.guest, Host: h,
			Request: Request{Path: "/config", Query: url.Values{"k": {"plan"}}}})
		if err != nil || resp.Status != 200 || string(resp.Body) != v {
			t.Errorf("invocation %d: got %d %q, %v; want 200 %q", i, resp.Status, resp.Body, err, v)
		}
	}
	if s := e.rt.Stats(); s.Instances != 1 {
		t.Errorf("%d instances; the test means one warm instance", s.Instances)
	}
}

// TestHostCallAdd: kv_add returns the sum to the guest, concurrent
// invocations lose no increment, a refusal reaches the guest as invalid
// with the provider's message (and changes nothing), and each account
// counts in its own table.
func TestHostCallAdd(t *testing.T) {
	// 24 invocations share 16 slots: the others wait for one as long as it
	// takes (each add is a durable write), not the default 100 ms, which a
	// busy disk outlasts; the test is about the sums, not the queue.
	e := newEnv(t, Config{QueueWait: time.Minute})
	add := func(key string, d int) Request {
		return Request{Path: "/kv/add", Params: map[string]string{"key": key}, Query: url.Values{"d": {strconv.Itoa(d)}}}
	}
	const n = 24
	var wg sync.WaitGroup
	sums := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.invoke(t, "acme", add("hits", 1))
			if err != nil || resp.Status != 200 {
				t.Errorf("concurrent add: %v, %d %s", err, resp.Status, resp.Body)
				return
			}
			sums[i] = string(resp.Body)
		}()
	}
	wg.Wait()
	slices.SortFunc(sums, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	for i, s := range sums {
		if s != strconv.Itoa(i+1) {
			t.Fatalf("sums of %d concurrent adds of 1: %v, want 1..%d each once", n, sums, n)
		}
	}
	if got := e.must(t, "globex", add("hits", 1), 200); got != "1" {
		t.Errorf("globex's first add = %s, want 1 (its own counter)", got)
	}
	// Not an integer: invalid, the provider's message, value unchanged.
	e.must(t, "acme", Request{Path: "/kv", Params: map[string]string{"key": "word"}, Body: []byte("high")}, 200)
	got := e.must(t, "acme", add("word", 1), 400)
	if !strings.Contains(got, "not a base-10 integer") {
		t.Errorf("add to a word: %q, want the provider's reason", got)
	}
	if v, err := e.hosts["acme"].Get(context.Background(), "items", "word"); err != nil || string(v) != "high" {
		t.Errorf("after a refused add: %q, %v; want it unchanged", v, err)
	}
}
