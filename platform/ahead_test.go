package platform_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// TestReleaseCompiledAhead: a release stored by another server (which
// compiled its upload there, not here) is not compiled by this server
// until it becomes current (must not); once a rollout made it current, CompileAhead
// compiles its every module without any request (must), as a server does
// before a new tenant's first request.
func TestReleaseCompiledAhead(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	plat := p.Platform()
	aheadCtx, stop := context.WithCancel(ctx)
	ahead := make(chan struct{})
	go func() { defer close(ahead); plat.CompileAhead(aheadCtx) }()
	t.Cleanup(func() { stop(); <-ahead })

	rel, err := platform.BuildRelease(ctx, filepath.Join(app, "silo.yaml"), filepath.Join(silotest.CacheDir(), "builds"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string][]byte{}
	for name, d := range rel.Artifacts {
		b, err := os.ReadFile(platform.BuiltArtifact(filepath.Join(silotest.CacheDir(), "builds"), d))
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = b
	}
	src, err := os.ReadFile(filepath.Join(app, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Stored as another server sharing the store stores an upload: it
	// compiled the modules in its own process, not in this one.
	up := storeUnchecked(t, plat, string(src), mods)
	c := apiClient(t, plat)
	for name, d := range up.Artifacts {
		if plat.Runtime.Compiled(d) {
			t.Fatalf("module of %s compiled before its release was made current or rolled out", name)
		}
	}

	ro, err := c.StartRollout(ctx, up.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Follow(ctx, ro.ID, func(rollout.Rollout) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// No request is sent: the modules compile in the background. The
	// bound only keeps a broken CompileAhead from hanging the test.
	deadline := time.Now().Add(3 * time.Minute)
	for name, d := range up.Artifacts {
		for !plat.Runtime.Compiled(d) {
			if time.Now().After(deadline) {
				t.Fatalf("module of %s not compiled ahead of any request", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
