package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"

	"github.com/silo-run/silo/provider/aws/awstest"
)

// The test binary is the emulator too: TestMain runs it when
// childEnv is set, with the arguments that variable holds.
const childEnv = "SILO_AWS_EMULATOR_TEST_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childEnv); ok {
		os.Exit(run(strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// emulator starts the emulator in a child process on a free port and
// returns it and the address it printed.
func emulator(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	awstest.Kumo(t) // built before the child's clock starts
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childEnv+"=--listen 127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	served := regexp.MustCompile(`serves at (http://\S+) `)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := served.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, m[1]
		}
	}
	t.Fatalf("the emulator exited without serving; stderr: %s", stderr.String())
	return nil, ""
}

// children returns the process IDs whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			id, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			kids = append(kids, id)
		}
	}
	return kids
}

// gone waits until no process of pids is alive (zombies count as gone);
// it reports whether that happened within a minute.
func gone(pids []int) bool {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		alive := false
		for _, pid := range pids {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err == nil && !strings.Contains(string(b[bytes.LastIndexByte(b, ')')+1:]), " Z ") {
				alive = true
			}
		}
		if !alive {
			return true
		}
	}
	return false
}

// TestEmulatorServesAndStopsClean: the emulator serves the organization at
// the address it prints, with its management account's kumo as its child;
// Ctrl-C stops it and its kumo, and so does SIGKILL (the kernel ends the
// kumo it leaves).
func TestEmulatorServesAndStopsClean(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, url := emulator(t)
			org := organizations.NewFromConfig(aws.Config{Region: awstest.Region, Credentials: aws.AnonymousCredentials{}}, func(o *organizations.Options) { o.BaseEndpoint = aws.String(url) })
			roots, err := org.ListRoots(context.Background(), &organizations.ListRootsInput{})
			if err != nil || len(roots.Roots) != 1 {
				t.Fatalf("ListRoots at %s: %v, %v", url, roots, err)
			}
			kumo := children(t, cmd.Process.Pid)
			if len(kumo) != 1 {
				t.Fatalf("the emulator runs %d child processes, want its management account's kumo", len(kumo))
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if sig == syscall.SIGINT && err != nil {
				t.Errorf("after Ctrl-C the emulator exited with %v, want 0", err)
			}
			if !gone(kumo) {
				t.Errorf("kumo %v still runs a minute after the emulator got %v", kumo, sig)
			}
		})
	}
}

// TestEmulatorBadArguments: a wrong argument is refused with the usage
// and exit status 2, before anything starts.
func TestEmulatorBadArguments(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"--nope"}, {"--listen"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage: silo-aws-emulator") || out.Len() != 0 {
			t.Errorf("silo-aws-emulator %v: exit %d, stdout %q, stderr %q; want 2 and the usage", args, code, out.String(), errOut.String())
		}
	}
}
