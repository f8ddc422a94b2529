package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// BenchmarkCreateAccountApplyStack measures onboarding one account: create
// it and apply the ten-resource example stack (every write durable).
func BenchmarkCreateAccountApplyStack(b *testing.B) {
	ctx := context.Background()
	p, err := local.New(local.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	stack := providertest.Stack(b)
	i := 0
	for b.Loop() {
		id := silo.AccountID(fmt.Sprintf("t%d", i))
		i++
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			b.Fatal(err)
		}
		providertest.ApplyAll(b, p, id, stack)
	}
	b.ReportMetric(float64(p.OpenStores()), "open-stores")
}

// BenchmarkCreateAccountApplyBatch is BenchmarkCreateAccountApplyStack with
// the stack applied in one ApplyBatch (one manifest write), as the engine
// does when it creates an account.
func BenchmarkCreateAccountApplyBatch(b *testing.B) {
	ctx := context.Background()
	p, cs := stackBench(b)
	i := 0
	for b.Loop() {
		id := silo.AccountID(fmt.Sprintf("t%d", i))
		i++
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			b.Fatal(err)
		}
		if n, err := p.ApplyBatch(ctx, id, cs); err != nil || n != len(cs) {
			b.Fatalf("ApplyBatch = %d, %v", n, err)
		}
	}
}

// BenchmarkCreateAccountWith is BenchmarkCreateAccountApplyBatch in one
// step (CreateAccountWith: the account built in a staging directory and
// renamed into place), as the engine now creates an account.
func BenchmarkCreateAccountWith(b *testing.B) {
	ctx := context.Background()
	p, cs := stackBench(b)
	i := 0
	for b.Loop() {
		id := silo.AccountID(fmt.Sprintf("t%d", i))
		i++
		if n, err := p.CreateAccountWith(ctx, id, silo.KindTenant, cs); err != nil || n != len(cs) {
			b.Fatalf("CreateAccountWith = %d, %v", n, err)
		}
	}
}

// BenchmarkReapplyStack measures a repeated (no-change) apply of the stack.
func BenchmarkReapplyStack(b *testing.B) {
	ctx := context.Background()
	p, err := local.New(local.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	stack := providertest.Stack(b)
	p.CreateAccount(ctx, "acme", silo.KindTenant)
	providertest.ApplyAll(b, p, "acme", stack)
	for b.Loop() {
		providertest.ApplyAll(b, p, "acme", stack)
	}
}

func benchData(b *testing.B) (*local.Provider, func() context.Context) {
	p, err := local.New(local.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	p.CreateAccount(context.Background(), "acme", silo.KindTenant)
	providertest.ApplyAll(b, p, "acme", providertest.Stack(b))
	return p, context.Background
}

func BenchmarkDataGet(b *testing.B) {
	p, ctx := benchData(b)
	d, _ := p.Data(ctx(), "acme")
	d.Put(ctx(), "findings", "k", make([]byte, 256))
	for b.Loop() {
		if _, err := d.Get(ctx(), "findings", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDataGetParallel(b *testing.B) {
	p, ctx := benchData(b)
	d, _ := p.Data(ctx(), "acme")
	d.Put(ctx(), "findings", "k", make([]byte, 256))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Get(ctx(), "findings", "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDataPut is dominated by bbolt's fsync per transaction.
func BenchmarkDataPut(b *testing.B) {
	p, ctx := benchData(b)
	d, _ := p.Data(ctx(), "acme")
	v := make([]byte, 256)
	i := 0
	for b.Loop() {
		if err := d.Put(ctx(), "findings", fmt.Sprintf("k%d", i%1000), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSecret(b *testing.B) {
	p, ctx := benchData(b)
	p.PutSecret(ctx(), "acme", "api_token", []byte("tok"))
	d, _ := p.Data(ctx(), "acme")
	for b.Loop() {
		if _, err := d.Secret(ctx(), "api_token"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutBlob(b *testing.B) {
	p, ctx := benchData(b)
	d, _ := p.Data(ctx(), "acme")
	v := make([]byte, 4096)
	for b.Loop() {
		if err := d.PutBlob(ctx(), "uploads", "a/b/c.bin", v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDurableWriteBaseline is the unit the other benchmarks are
// measured in on a given disk: one small file written durably (temp, fsync,
// rename, dir fsync), as every manifest, config and key write is.
func BenchmarkDurableWriteBaseline(b *testing.B) {
	dir := b.TempDir()
	v := make([]byte, 512)
	for b.Loop() {
		f, err := os.CreateTemp(dir, ".tmp-*")
		if err != nil {
			b.Fatal(err)
		}
		f.Write(v)
		f.Sync()
		f.Close()
		if err := os.Rename(f.Name(), filepath.Join(dir, "file")); err != nil {
			b.Fatal(err)
		}
		d, _ := os.Open(dir)
		d.Sync()
		d.Close()
	}
}

// BenchmarkConfig is a config read through a data handle, as every request
// of the example's list function does: served from memory (see
// BenchmarkWarm for the cost of checking the files at every call).
func BenchmarkConfig(b *testing.B) {
	p, ctx := benchData(b)
	d, _ := p.Data(ctx(), "acme")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(p.Dir(), "accounts", "acme", "config.json"), old, old)
	for b.Loop() {
		if _, err := d.Config(ctx(), "plan"); err != nil {
			b.Fatal(err)
		}
	}
}

// warmData is a data handle of an account whose config, secrets and store
// have been read once (the files aged past the racy window), as on the
// request path of a busy tenant.
func warmData(b *testing.B, cfg local.Config) provider.Data {
	ctx := context.Background()
	cfg.Dir = b.TempDir()
	p, err := local.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		b.Fatal(err)
	}
	providertest.ApplyAll(b, p, "acme", providertest.Stack(b))
	if err := p.PutSecret(ctx, "acme", "api_token", []byte("tok")); err != nil {
		b.Fatal(err)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := d.Put(ctx, "findings", fmt.Sprintf("k%02d", i), make([]byte, 256)); err != nil {
			b.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{"config.json", "secrets.json"} {
		os.Chtimes(filepath.Join(p.Dir(), "accounts", "acme", name), old, old)
	}
	if _, err := d.Config(ctx, "plan"); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Secret(ctx, "api_token"); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkWarm measures the data-plane reads of every request on a warm
// account: Config, Secret, Get and a 20-pair Scan. With the default
// CacheRecheck, Config and Secret make no system call; Get and Scan make
// none on an open store either way.
func BenchmarkWarm(b *testing.B) {
	ctx := context.Background()
	for _, c := range warmConfigs {
		d := warmData(b, c.cfg)
		b.Run("config/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.Config(ctx, "plan"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("secret/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.Secret(ctx, "api_token"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("get/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.Get(ctx, "findings", "k07"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("scan/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if kvs, err := d.Scan(ctx, "findings", "k", "", 100); err != nil || len(kvs) != 20 {
					b.Fatal(len(kvs), err)
				}
			}
		})
	}
}

// warmConfigs are the cache settings BenchmarkWarm compares: files checked
// (stat) at every call, as before CacheRecheck existed, and the default.
var warmConfigs = []struct {
	name string
	cfg  local.Config
}{
	{"recheck-every-call", local.Config{CacheRecheck: -1}},
	{"recheck-1s", local.Config{}},
}

// stackBench returns a provider in a fresh directory, closed with b, and
// the changes that create the conformance stack.
func stackBench(b *testing.B) (*local.Provider, []silo.Change) {
	p, err := local.New(local.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	var cs []silo.Change
	for _, r := range providertest.Stack(b) {
		cs = append(cs, silo.Change{Op: silo.OpCreate, Type: r.Type, Name: r.Name, Desired: &r})
	}
	return p, cs
}
