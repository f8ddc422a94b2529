package awstest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestSharedBuild builds a small program the way LambdaHost builds the
// host, as several test binaries at once: all get the same executable, and
// only one of them links it (the others wait for it and find it up to
// date). One that asks when nothing changed gets it without a relink (go
// build leaves the file as it is, but for its modification time); after
// its source changes, the next ones get the new build, linked once.
func TestSharedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	cache, mod := t.TempDir(), t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/host\n\ngo 1.24\n")
	source := func(marker string) {
		write("main.go", "package main\n\nfunc main() { println(\""+marker+"\") }\n")
	}
	// concurrently builds as several test binaries would, each its own
	// lock holder, and returns what they got once all got the same and
	// exactly one linked it.
	concurrently := func() []byte {
		t.Helper()
		got := make([][]byte, 4)
		linked := make([]bool, len(got))
		errs := make([]error, len(got))
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() { got[i], linked[i], errs[i] = sharedBuild(cache, mod, "example.com/host", "lambda.norpc") })
		}
		wg.Wait()
		links := 0
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("build %d of %d at once: %v", i+1, len(got), errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("builds at once got different executables (%d and %d bytes)", len(got[0]), len(got[i]))
			}
			if linked[i] {
				links++
			}
		}
		if links != 1 {
			t.Errorf("%d builds at once linked the executable %d times, want once", len(got), links)
		}
		return got[0]
	}
	has := func(b []byte, marker string) bool { return bytes.Contains(b, []byte(marker)) }

	source("shared-build-marker-one")
	one := concurrently()
	if !has(one, "shared-build-marker-one") {
		t.Fatal("the first build does not hold its source's marker")
	}

	// Nothing changed: the executable is not linked again.
	again, linked, err := sharedBuild(cache, mod, "example.com/host", "lambda.norpc")
	if err != nil || linked || !bytes.Equal(again, one) {
		t.Errorf("a build with nothing changed: linked %v, the same executable %v, %v; want it as it was, not linked", linked, bytes.Equal(again, one), err)
	}

	// The source changed: every test binary gets the new build.
	source("shared-build-marker-two")
	two := concurrently()
	if !has(two, "shared-build-marker-two") || has(two, "shared-build-marker-one") {
		t.Error("after its source changed, the build is still the old one")
	}
}

// go test ./provider/aws/awstest -run '^$' -bench LambdaHostBuild -benchtime 3x
//
// BenchmarkLambdaHostBuild measures what one test binary pays for the
// Lambda host once the Go build cache holds its packages: "shared" is
// LambdaHost's way (the shared executable, up to date, read under its
// lock); "temp" links it anew into a temporary directory, as each test
// binary did before. shared/temp is the ratio of their mean times.
func BenchmarkLambdaHostBuild(b *testing.B) {
	cache, err := buildCache()
	if err != nil {
		b.Fatal(err)
	}
	const pkg, tags = "github.com/silo-run/silo/cmd/silo-lambda", "lambda.norpc"
	if _, _, err := sharedBuild(cache, ".", pkg, tags); err != nil { // the first link, and the build cache filled
		b.Fatal(err)
	}
	var shared, temp time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, _, err := sharedBuild(cache, ".", pkg, tags); err != nil {
			b.Fatal(err)
		}
		shared += time.Since(start)

		start = time.Now()
		dir := b.TempDir()
		cmd := exec.Command("go", "build", "-tags", tags, "-trimpath", "-o", filepath.Join(dir, "bootstrap"), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		temp += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(shared.Seconds()/n, "shared-s")
	b.ReportMetric(temp.Seconds()/n, "temp-s")
	b.ReportMetric(shared.Seconds()/temp.Seconds(), "shared/temp")
}
