package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
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
// of the example's list function does: served from memory after a stat of
// the data key and of config.json.
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
