package probe

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
)

// GuestDir returns the directory of the probe guest's Go source
// (isolation/probe/testdata/probe): next to this package's source when it
// is on disk, else under the working directory (the repository root).
func GuestDir() string {
	if _, file, _, ok := goruntime.Caller(0); ok {
		d := filepath.Join(filepath.Dir(file), "testdata", "probe")
		if _, err := os.Stat(filepath.Join(d, "main.go")); err == nil {
			return d
		}
	}
	return filepath.Join("isolation", "probe", "testdata", "probe")
}

// BuildGuest builds the probe guest with the Go toolchain (GOOS=wasip1)
// into outDir and returns the module, for Target.Guest. It needs the silo
// source tree (see GuestDir).
//
// # Errors
//
// CodeNotFound when the guest's source is not on disk; the build's errors.
func BuildGuest(ctx context.Context, outDir string) ([]byte, error) {
	dir := GuestDir()
	if _, err := os.Stat(filepath.Join(dir, "main.go")); errors.Is(err, os.ErrNotExist) {
		return nil, silo.Errorf(silo.CodeNotFound, "the probe guest's source is not at %s; run silo verify --probe from the silo source tree", dir)
	}
	a, err := build.Function(ctx, dir, outDir)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(a.Path)
}
