//go:build unix

package awstest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestBuildStopsWhole: when a build's context ends, the go command is
// stopped with every process it started, as an emulator stopped by Ctrl-C
// while it builds kumo must leave no compiler running. The stand-in for a
// compiler is a program run by "go run", a child of the go command.
// The twin: while the context lasts, that child runs.
func TestBuildStopsWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := buildCmd(ctx, "run", "./testdata/sleeper", pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var pid int
	for pid == 0 {
		select {
		case err := <-done:
			t.Fatalf("go run ended before its program started: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(string(b))
		}
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the go command's child %d is not running while the build's context lasts: %v", pid, err)
	}
	cancel()
	<-done
	// The child is gone once the kernel has reaped it: a process killed
	// with its group is reparented and reaped, so poll until it is.
	for i := 0; alive(pid); i++ {
		if i == 600 {
			t.Fatalf("the go command's child %d still runs after the build's context ended", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether process pid runs: it exists and, where /proc
// says, is not a zombie waiting for a parent that does not reap it.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return !os.IsNotExist(err) || !procMounted()
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}
