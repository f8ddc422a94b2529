package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/runtime"
)

// taskRoot writes a package of the runtime's test guest into a new task
// root, prepared (as "bootstrap prepare" would, by this very build) if
// prepared is set, and returns the root and the environment the host
// reads.
func taskRoot(t *testing.T, prepared bool) (string, func(string) string) {
	t.Helper()
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEMULATED")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "emulated")
	t.Setenv("TMPDIR", t.TempDir())
	cache := os.Getenv("SILO_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "silo-test-cache")
	}
	guest, err := build.Function(context.Background(), filepath.Join("..", "..", "runtime", "testdata", "guest"), filepath.Join(cache, "builds"))
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(guest.Path)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "function.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(root, "function.json"), []byte(`{"artifact":"`+guest.Digest+`","timeout":5000000000}`), 0o644)
	if prepared {
		if err := prepare(context.Background(), root); err != nil {
			t.Fatalf("prepare: %v", err)
		}
	}
	env := map[string]string{envAccount: "acme", envFunction: "guest", envAWSAccount: "123456789012", "LAMBDA_TASK_ROOT": root}
	return root, func(k string) string { return env[k] }
}

// start runs setup and returns the host and its log.
func start(t *testing.T, getenv func(string) string) (*host, *bytes.Buffer) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	h, code := setup(context.Background(), getenv, &stdout, &stderr)
	if h == nil {
		t.Fatalf("setup failed (%d): %s", code, stderr.String())
	}
	t.Cleanup(func() { h.close(context.Background()) })
	return h, &stdout
}

// echo invokes the guest directly and checks its answer.
func echo(t *testing.T, h *host) {
	t.Helper()
	resp, _ := h.serve(context.Background(), event{Invoke: &directInvoke{Method: "GET", Path: "/echo", RequestID: "r-1"}})
	if resp.StatusCode != 200 {
		t.Fatalf("GET /echo: %d %s, want 200", resp.StatusCode, resp.Body)
	}
}

// TestPreparedPackageIsLoaded: a package prepared by this build is served
// from its machine code, without compiling. The twins: the same package
// whose code is damaged or was compiled for another CPU, whose manifest
// names another build, or whose prepared module is of another artifact is
// still served, from code the host makes itself.
func TestPreparedPackageIsLoaded(t *testing.T) {
	root, getenv := taskRoot(t, true)
	h, log := start(t, getenv)
	echo(t, h)
	if c := h.code.Load(); c.path != pathPrecompiled {
		t.Fatalf("served from %s, want %s; log:\n%s", c.path, pathPrecompiled, log)
	}
	if !strings.Contains(log.String(), `"code":"precompiled","prepared":true`) {
		t.Errorf("the start is not logged with its path: %s", log)
	}
	h.close(context.Background())

	damage := map[string]func(t *testing.T, root string){
		"damaged machine code": func(t *testing.T, root string) {
			for _, f := range codeFiles(t, root) {
				b, _ := os.ReadFile(f)
				b[len(b)/2] ^= 0xff
				os.WriteFile(f, b, 0o644)
			}
		},
		"code for another CPU": func(t *testing.T, root string) {
			// The code under another key, as wazero names it on a machine
			// with other CPU features.
			for _, f := range codeFiles(t, root) {
				os.Rename(f, f[:len(f)-1]+"x")
			}
		},
		"no skeleton": func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, preparedSkeleton))
		},
		"another build": func(t *testing.T, root string) {
			rewrite(t, root, func(m *manifest) { m.BuildID = "another" })
		},
		"another artifact": func(t *testing.T, root string) {
			rewrite(t, root, func(m *manifest) { m.Prepared.Digest = runtime.Digest([]byte("another")) })
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			root2 := t.TempDir()
			os.CopyFS(root2, os.DirFS(root))
			f(t, root2)
			getenv2 := func(k string) string {
				if k == "LAMBDA_TASK_ROOT" {
					return root2
				}
				return getenv(k)
			}
			h, log := start(t, getenv2)
			echo(t, h)
			if c := h.code.Load(); c.path == pathPrecompiled {
				t.Errorf("served from the package's code; log:\n%s", log)
			}
		})
	}
}

// codeFiles returns the files of the package's machine code.
func codeFiles(t *testing.T, root string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, preparedCode, "*", "*"))
	if len(files) == 0 {
		t.Fatal("no machine code in the package")
	}
	return files
}

func rewrite(t *testing.T, root string, f func(*manifest)) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, preparedManifest))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(&m)
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(root, preparedManifest), b, 0o644)
}

// TestInterpreterFirstThenMachineCode: a package without prepared code is
// served at once on the interpreter; once the background compilation is
// done, the next invocation runs on machine code, with the same answer.
func TestInterpreterFirstThenMachineCode(t *testing.T) {
	_, getenv := taskRoot(t, false)
	hold := make(chan struct{})
	beforeBackgroundCompile = func() { <-hold }
	t.Cleanup(func() { beforeBackgroundCompile = nil })
	h, log := start(t, getenv)
	echo(t, h)
	if c := h.code.Load(); c.path != pathInterpreter {
		t.Fatalf("first invocation served from %s, want %s", c.path, pathInterpreter)
	}
	close(hold)
	h.compiling.Wait()
	echo(t, h)
	if c := h.code.Load(); c.path != pathCompiled {
		t.Fatalf("after the background compilation served from %s, want %s; log:\n%s", c.path, pathCompiled, log)
	}
	if !strings.Contains(log.String(), "switched to machine code") {
		t.Errorf("the switch is not logged: %s", log)
	}
}

// TestEngineChoice: SILO_LAMBDA_ENGINE pins the engine (and an unknown
// value is refused); a package's code is ignored under "compiler".
func TestEngineChoice(t *testing.T) {
	_, getenv := taskRoot(t, true)
	for _, c := range []struct{ engine, want string }{
		{"compiler", pathCompiled},
		{"interpreter", pathInterpreter},
		{"", pathPrecompiled},
	} {
		t.Run(c.engine, func(t *testing.T) {
			h, _ := start(t, func(k string) string {
				if k == envEngine {
					return c.engine
				}
				return getenv(k)
			})
			echo(t, h)
			h.compiling.Wait()
			if got := h.code.Load().path; got != c.want {
				t.Errorf("served from %s, want %s", got, c.want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	h, _ := setup(context.Background(), func(k string) string {
		if k == envEngine {
			return "jit"
		}
		return getenv(k)
	}, &stdout, &stderr)
	if h != nil || !strings.Contains(stderr.String(), "SILO_LAMBDA_ENGINE is \"jit\"") {
		t.Errorf("an unknown engine: %s, want a refusal naming it", stderr.String())
	}
}

// TestInvocationWaitsForTheGuestBeforeIt: an invocation that arrives while
// the container's one slot is still held by the guest before it (one that
// sleeps past its deadline, 5 s here, and is answered then) waits for it and
// is served, instead of being refused as too many.
func TestInvocationWaitsForTheGuestBeforeIt(t *testing.T) {
	_, getenv := taskRoot(t, true)
	h, _ := start(t, getenv)
	echo(t, h)
	first := make(chan int, 1)
	go func() {
		resp, _ := h.serve(context.Background(), event{Invoke: &directInvoke{Method: "GET", Path: "/sleep", RequestID: "r-sleep"}})
		first <- resp.StatusCode
	}()
	time.Sleep(2 * time.Second) // the sleeper holds the slot
	resp, _ := h.serve(context.Background(), event{Invoke: &directInvoke{Method: "GET", Path: "/echo", RequestID: "r-2"}})
	if resp.StatusCode != 200 {
		t.Errorf("GET /echo while another invocation runs: %d %s, want 200 once it is done", resp.StatusCode, resp.Body)
	}
	if code := <-first; code != 503 {
		t.Errorf("GET /sleep: %d, want 503 at its deadline", code)
	}
}
