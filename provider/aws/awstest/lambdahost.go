package awstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// LambdaHost returns the silo Lambda host (cmd/silo-lambda) built for linux
// on this machine's architecture, as a function's package holds it: the
// emulated Lambda runs it here. It is built once per test binary.
var LambdaHost = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "silo-lambda-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, "github.com/silo-run/silo/cmd/silo-lambda")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/silo-lambda: %v\n%s", err, out)
	}
	return os.ReadFile(bin)
})
