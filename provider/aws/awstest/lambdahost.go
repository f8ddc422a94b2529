package awstest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// LambdaHost returns the silo Lambda host (cmd/silo-lambda) built for linux
// on this machine's architecture, as a function's package holds it: the
// emulated Lambda runs it here. It is read once per test binary from the
// build that every test binary of this checkout shares (sharedBuild): the
// first one to ask links it, the others find it up to date.
var LambdaHost = sync.OnceValues(func() ([]byte, error) {
	cache, err := buildCache()
	if err != nil {
		return nil, err
	}
	exe, _, err := sharedBuild(cache, ".", "github.com/silo-run/silo/cmd/silo-lambda", "lambda.norpc")
	return exe, err
})

// buildCache is the directory under which shared builds live: silo-test in
// the user's cache directory, or in the temporary directory when there is
// none (no HOME).
func buildCache() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "silo-test"), nil
}

// sharedBuild builds package pkg of the module that holds directory dir
// for linux on this machine's architecture (CGO off, trimmed paths, with
// build tags tags) and returns the executable, and whether this call
// linked it (false: it was up to date). The executable has a fixed
// path under cache, one per module root, target and package, so test
// binaries of the same checkout (go test runs several packages' at once)
// share it. An exclusive lock on a file next to it (flock) makes them take
// turns: the first links it, the next ones run go build again, which finds
// the executable's build ID matches its sources and leaves it as it is (a
// second or two of hashing instead of the link's several), and any change
// to the sources or to the toolchain relinks it.
func sharedBuild(cache, dir, pkg, tags string) (exe []byte, linked bool, err error) {
	gomod, err := exec.Command("go", "-C", dir, "env", "GOMOD").Output()
	if err != nil {
		return nil, false, fmt.Errorf("go env GOMOD in %s: %w", dir, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	key := sha256.Sum256([]byte(strings.Join([]string{root, "linux", runtime.GOARCH, pkg, tags}, "\x00")))
	out := filepath.Join(cache, hex.EncodeToString(key[:8]))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, false, err
	}
	lock, err := os.OpenFile(filepath.Join(out, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	defer lock.Close() // which releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	bin := filepath.Join(out, filepath.Base(pkg))
	before, _ := os.Stat(bin)
	cmd := exec.Command("go", "build", "-tags", tags, "-trimpath", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, false, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	// A link puts a new file in place; an up-to-date build only touches it.
	after, err := os.Stat(bin)
	if err != nil {
		return nil, false, err
	}
	exe, err = os.ReadFile(bin)
	return exe, before == nil || !os.SameFile(before, after), err
}
