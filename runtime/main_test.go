package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
)

// guestWasm is the test guest (testdata/guest), built once per test binary.
var guestWasm []byte

// cacheDir is the compilation cache shared by the tests' runtimes, so each
// module is compiled to machine code once per test binary.
var cacheDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "silo-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cacheDir = filepath.Join(dir, "cache")
	if c := os.Getenv(cacheEnv); c != "" {
		cacheDir = c // a child process (subprocess_test.go) shares its parent's
	}
	a, err := build.Function(context.Background(), filepath.Join("testdata", "guest"), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build test guest:", err)
		return 1
	}
	guestWasm, err = os.ReadFile(a.Path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects log output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	rt    *Runtime
	prov  *local.Provider
	hosts map[silo.AccountID]Host
	logs  *syncBuffer
	guest string // digest of guestWasm
}

// newEnv starts a runtime and a real local provider with accounts "acme" and
// "globex" (tables items/block, bucket raw, config greeting, secret api-key)
// and a production account exporting its table "intel" as "threat-intel".
func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	cfg.Interpreter = cfg.Interpreter || onInterpreter
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	prov, err := local.New(local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	apply := func(id silo.AccountID, typ silo.ResourceType, name string, spec any) {
		r, err := silo.NewResource(typ, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := prov.Apply(ctx, id, silo.Change{Op: silo.OpCreate, Type: typ, Name: name, Desired: &r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := prov.CreateAccount(ctx, silo.ProductionID, silo.KindProduction); err != nil {
		t.Fatal(err)
	}
	apply(silo.ProductionID, silo.TypeTable, "intel", map[string]any{})
	prodData, err := prov.Data(ctx, silo.ProductionID)
	if err != nil {
		t.Fatal(err)
	}
	if err := prodData.Put(ctx, "intel", "bad.example", []byte("malicious")); err != nil {
		t.Fatal(err)
	}
	e := &env{rt: rt, prov: prov, hosts: map[silo.AccountID]Host{}, logs: logs}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := prov.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		apply(id, silo.TypeTable, "items", map[string]any{})
		apply(id, silo.TypeTable, "block", map[string]any{})
		apply(id, silo.TypeBucket, "raw", map[string]any{})
		apply(id, silo.TypeConfig, "greeting", map[string]any{"value": "hello " + string(id)})
		apply(id, silo.TypeSecret, "api-key", map[string]any{})
		if err := prov.PutSecret(ctx, id, "api-key", []byte("secret-of-"+string(id))); err != nil {
			t.Fatal(err)
		}
		data, err := prov.Data(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		e.hosts[id] = &blockingHost{DataHost: DataHost{
			Data:    data,
			Exports: map[string]ExportSource{"threat-intel": {Data: prodData, Table: "intel"}},
			Logger:  cfg.Logger, Account: id, Function: "api",
		}}
	}
	e.guest, err = rt.Compile(ctx, guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// blockingHost is the real DataHost, except that reading table "block"
// blocks for a minute ignoring ctx: a host call stuck past the deadline.
type blockingHost struct {
	DataHost
}

func (h *blockingHost) Get(ctx context.Context, table, key string) ([]byte, error) {
	if table == "block" {
		time.Sleep(time.Minute)
	}
	return h.DataHost.Get(ctx, table, key)
}

var _ provider.Data = (provider.Data)(nil)

func (e *env) invoke(t testing.TB, acct silo.AccountID, req Request) (Response, error) {
	t.Helper()
	return e.invokeLim(t, acct, Limits{}, req)
}

func (e *env) invokeLim(t testing.TB, acct silo.AccountID, lim Limits, req Request) (Response, error) {
	t.Helper()
	return e.rt.Invoke(context.Background(), Invocation{
		Account: acct, Function: "api", Digest: e.guest, Limits: lim,
		Host: e.hosts[acct], Request: req,
	})
}

// must invokes and requires a response with status want.
func (e *env) must(t testing.TB, acct silo.AccountID, req Request, want int) string {
	t.Helper()
	resp, err := e.invoke(t, acct, req)
	if err != nil {
		t.Fatalf("invoke %s %s: %v", acct, req.Path, err)
	}
	if resp.Status != want {
		t.Fatalf("invoke %s %s: status %d (%s), want %d", acct, req.Path, resp.Status, resp.Body, want)
	}
	return string(resp.Body)
}

var _ = io.Discard
