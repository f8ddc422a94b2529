package main

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// cancelOnOutput is a command's stdout that cancels the command's context,
// as Ctrl-C does, once what was written matches re.
type cancelOnOutput struct {
	mu     sync.Mutex
	b      strings.Builder
	re     *regexp.Regexp
	cancel context.CancelCauseFunc
}

func (w *cancelOnOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.re.MatchString(w.b.String()) {
		w.cancel(errors.New("interrupt signal received"))
	}
	return len(p), nil
}

// Interrupting silo deploy through a server while it follows the rollout
// (here: as soon as the rollout's ID is printed) says that the rollout goes
// on in the server, and how to reattach, stop or undo it, not only
// "interrupted". The twin: a deploy followed to its end says none of it.
func TestDeployInterruptedSaysTheRolloutGoesOn(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	srvCtx, stop := context.WithCancel(context.Background())
	var srvOut, srvErr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(srvCtx, []string{"--data-dir", c.dataDir, "--file", c.file, "server", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, strings.NewReader(""), &srvOut, &srvErr)
	}()
	t.Cleanup(func() { stop(); <-done })
	api := regexp.MustCompile(`API on (http://\S+)`)
	for deadline := time.Now().Add(time.Minute); api.FindString(srvErr.String()) == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", srvErr.String())
		}
	}
	// Commands find the server through the data dir, as silo deploy does
	// beside a running server.
	remote := func(ctx context.Context, stdout *cancelOnOutput, args ...string) (int, string) {
		var errOut lockedBuffer
		code := run(ctx, append([]string{"--data-dir", c.dataDir, "--file", c.file}, args...), strings.NewReader(""), stdout, &errOut)
		return code, errOut.String()
	}

	writeFile(t, file, strings.Replace(string(src), "Hello, ", "Hi, ", 1))
	never := &cancelOnOutput{re: regexp.MustCompile(`^\b$`), cancel: func(error) {}}
	if code, errOut := remote(context.Background(), never, "deploy"); code != 0 || !strings.Contains(never.b.String(), "succeeded") || strings.Contains(errOut, "goes on") {
		t.Fatalf("deploy followed to its end: exit %d\n%s%s", code, never.b.String(), errOut)
	}

	writeFile(t, file, strings.Replace(string(src), "Hello, ", "Hey, ", 1))
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	out := &cancelOnOutput{re: regexp.MustCompile(`ro-000002`), cancel: cancel}
	code, errOut := remote(ctx, out, "deploy")
	want := "silo: interrupted; rollout ro-000002 goes on in the server; run silo rollout status ro-000002 --follow to reattach, silo rollout abort ro-000002 to stop it, or silo rollout rollback ro-000002 to undo it\n"
	if code != 1 || errOut != want {
		t.Fatalf("deploy interrupted once its rollout started: exit %d, stderr %q; want exit 1 and %q\nstdout: %s", code, errOut, want, out.b.String())
	}
}
