package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/runtime"
)

// go test ./examples/findings/functions/list -run '^$' -bench List -benchmem
//
// BenchmarkList is one warm invocation of the list function (GET /findings)
// through the real runtime and the local provider, without HTTP: the part of
// `go run ./bench -scenario gateway` that this app and sdk/fn control.

// storedFinding is what ingest stores for {"severity":"high","app":"github"}
// in the gateway benchmark (enriched from the seeded threat-intel export).
const storedFinding = `{"id":"f-0123456789abcdef","severity":"high","app":"github","status":"open",` +
	`"intel":[{"key":"app:github","threat_level":"elevated","note":"Active token-theft campaign against GitHub Actions runners.","source":"silo-intel"}],` +
	`"remediation":"manual","request_id":"r-0123456789abcdef"}`

func benchList(b *testing.B, findings int, query map[string][]string) {
	ctx := context.Background()
	cache := os.Getenv("SILO_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "silo-test-cache")
	}
	art, err := build.Function(ctx, ".", filepath.Join(cache, "builds"))
	if err != nil {
		b.Fatal(err)
	}
	wasm, err := os.ReadFile(art.Path)
	if err != nil {
		b.Fatal(err)
	}
	p, err := local.New(local.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	must(p.CreateAccount(ctx, "acme", silo.KindTenant))
	must(p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeTable, Name: "findings",
		Desired: &silo.Resource{Type: silo.TypeTable, Name: "findings"}}))
	must(p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeConfig, Name: "plan",
		Desired: &silo.Resource{Type: silo.TypeConfig, Name: "plan", Spec: []byte(`{"value":"pro"}`)}}))
	d, err := p.Data(ctx, "acme")
	must(err)
	for i := 0; i < findings; i++ {
		must(d.Put(ctx, "findings", "f-"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), []byte(storedFinding)))
	}
	rt, err := runtime.New(runtime.Config{CacheDir: filepath.Join(cache, "compiled"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(err)
	defer rt.Close(ctx)
	digest, err := rt.Compile(ctx, wasm)
	must(err)
	inv := runtime.Invocation{
		Account: "acme", Function: "list", Digest: digest,
		Host: &runtime.DataHost{Data: d, Account: "acme", Function: "list",
			Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))},
		Request: runtime.Request{ID: "r-1", Method: "GET", Path: "/findings", Query: query},
	}
	resp, err := rt.Invoke(ctx, inv)
	if err != nil || resp.Status != 200 {
		b.Fatalf("GET /findings: %d %s %v", resp.Status, resp.Body, err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if resp, err := rt.Invoke(ctx, inv); err != nil || resp.Status != 200 {
			b.Fatalf("GET /findings: %d %v", resp.Status, err)
		}
	}
	b.StopTimer()
	// CPU time (user+system of the whole process) per request: on a shared
	// machine it moves less than wall time.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkList is the gateway scenario's request: one finding in the table.
func BenchmarkList(b *testing.B) { benchList(b, 1, nil) }

// BenchmarkList100 lists 100 findings (the default page).
func BenchmarkList100(b *testing.B) { benchList(b, 100, nil) }

// BenchmarkList100Filtered lists 100 findings filtered by severity.
func BenchmarkList100Filtered(b *testing.B) {
	benchList(b, 100, map[string][]string{"severity": {"critical"}})
}
