package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/localtest"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// TestCrashRecovery kills a child process with SIGKILL at every step
// boundary of an onboarding, an apply and a deletion (after the journal
// commit, after each provider call, after the final commit; on the AWS
// provider also after each mutating AWS call), restarts, recovers and
// checks that the account converges with no drift, no orphan and no
// pending intent, on the local provider and on an emulated AWS
// organization (where it also checks that one AWS account was created).
func TestCrashRecovery(t *testing.T) {
	if os.Getenv("SILO_CRASH_CHILD") != "" {
		crashChild(t)
		return
	}
	for _, prov := range []string{"local", "aws", "aws-pool"} {
		t.Run(prov, func(t *testing.T) {
			if prov != "local" && testing.Short() {
				t.Skip("starts two kumo processes per kill point")
			}
			phases := []string{"create", "apply", "delete"}
			if prov == "aws-pool" {
				phases = phases[:1] // the pool changes the onboarding only
			}
			for _, phase := range phases {
				for n := 1; ; n++ {
					killed := false
					t.Run(fmt.Sprintf("%s-%d", phase, n), func(t *testing.T) {
						killed = crashOnce(t, prov, phase, n)
					})
					if t.Failed() {
						return
					}
					if !killed {
						if n == 1 {
							t.Fatalf("%s: the child never reached a step boundary", phase)
						}
						t.Logf("%s: killed at each of %d step boundaries; converged every time", phase, n-1)
						break
					}
				}
			}
		})
	}
}

// crashOnce runs phase in a child killed at step n, then recovers and
// converges; it reports whether the child was killed.
func crashOnce(t *testing.T, prov, phase string, n int) bool {
	dir := t.TempDir()
	var org *awstest.Org
	pool := 0
	if prov != "local" {
		org = awstest.NewOrg(t) // fresh per kill point; its processes end with the subtest
	}
	if prov == "aws-pool" {
		// One account created ahead: the onboarding claims it, and a
		// kill in the middle of the claim must not cost a second account.
		pool = 1
		if err := awsProvider(t, org.URL(), pool, nil).FillPool(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if phase != "create" {
		runChild(t, dir, org, pool, "create", 0) // set up without crashing
	}
	killed := runChild(t, dir, org, pool, phase, n)
	var e *env
	if org == nil {
		e = open(t, dir, nil)
	} else {
		e = openOn(t, dir, awsProvider(t, org.URL(), pool, nil), nil)
	}
	if _, err := e.eng.Recover(context.Background()); err != nil {
		t.Fatalf("%s kill at step %d: recover: %v", phase, n, err)
	}
	converge(t, e, phase, org)
	return killed
}

// awsProvider returns an AWS provider on the emulated organization at url
// (awstest.Org.URL) with a warm pool of pool accounts; onCall, if set,
// sees every AWS call.
func awsProvider(t testing.TB, url string, pool int, onCall func(op string)) *siloaws.Provider {
	cfg, endpoint := awstest.Remote(url)
	if onCall != nil {
		awstest.OnCall(&cfg, onCall)
	}
	p, err := siloaws.New(siloaws.Config{AWS: cfg, Email: "aws@example.com", Endpoint: endpoint, PollInterval: time.Millisecond, PoolSize: pool})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkOneAWSAccount checks that the organization was asked for one
// account (acme's, or the warm pool's that acme took), however often the
// process died.
func checkOneAWSAccount(t *testing.T, e *env, org *awstest.Org) {
	t.Helper()
	if n := org.OrgCalls()["CreateAccount"]; n != 1 {
		t.Fatalf("Organizations.CreateAccount called %d times, want 1", n)
	}
}

// runChild runs one phase in a child process that SIGKILLs itself at step n
// (0: never). It reports whether the child was killed.
func runChild(t *testing.T, dir string, org *awstest.Org, pool int, phase string, n int) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
	cmd.Env = append(os.Environ(), "SILO_CRASH_CHILD=1", "SILO_CRASH_DIR="+dir, "SILO_CRASH_PHASE="+phase, "SILO_CRASH_AT="+strconv.Itoa(n))
	if org != nil {
		cmd.Env = append(cmd.Env, "SILO_CRASH_ORG="+org.URL(), "SILO_CRASH_POOL="+strconv.Itoa(pool))
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("child %s/%d: %v\n%s", phase, n, err, out)
	}
	return false
}

// mutating reports whether an AWS operation ("Service.Operation") may
// change something.
func mutating(op string) bool {
	_, name, _ := strings.Cut(op, ".")
	for _, read := range []string{"Get", "List", "Describe", "Head", "AssumeRole"} {
		if strings.HasPrefix(name, read) {
			return false
		}
	}
	return true
}

func crashChild(t *testing.T) {
	dir, phase := os.Getenv("SILO_CRASH_DIR"), os.Getenv("SILO_CRASH_PHASE")
	at, _ := strconv.ParseInt(os.Getenv("SILO_CRASH_AT"), 10, 64)
	var steps atomic.Int64
	step := func() {
		if steps.Add(1) == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	hook := func(engine.Step) { step() }
	var e *env
	if url := os.Getenv("SILO_CRASH_ORG"); url != "" {
		pool, _ := strconv.Atoi(os.Getenv("SILO_CRASH_POOL"))
		e = openOn(t, dir, awsProvider(t, url, pool, func(op string) {
			if mutating(op) {
				step()
			}
		}), hook)
	} else {
		e = open(t, dir, hook)
	}
	ctx := context.Background()
	var err error
	switch phase {
	case "create":
		_, err = e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, release(t, stackV1, "sha256:aaaa"))
	case "apply":
		var p silo.Plan
		p, err = e.eng.PlanAccount(ctx, account(t, e, "acme"), release(t, stackV2, "sha256:bbbb"))
		if err == nil {
			err = e.eng.Apply(ctx, p)
		}
	case "delete":
		_, err = e.eng.DeleteAccount(ctx, "acme")
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecoverRemovesWhatAnInterruptedDeletionLeft: a deletion killed
// inside the local provider, after it shredded the account's keys and
// before it moved the directory away, leaves a directory without data.key;
// the recovery that finishes the deletion (the next start, or another
// server on the same store) removes it. The twin: before the recovery the
// directory is there, with its table file.
func TestRecoverRemovesWhatAnInterruptedDeletionLeft(t *testing.T) {
	dir := t.TempDir()
	runChild(t, dir, nil, 0, "create", 0)
	if !runChild(t, dir, nil, 0, "delete", 1) {
		t.Fatal("the deletion was not killed at its first step")
	}
	acct := localtest.AccountDir(dir, "acme")
	if err := os.Remove(filepath.Join(acct, "data.key")); err != nil { // what the shred did before the kill
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(acct, "data.db")); err != nil {
		t.Fatalf("before the recovery, the account's table file: %v; want it there", err)
	}
	e := open(t, dir, nil)
	if _, err := e.eng.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := account(t, e, "acme"); a.State != silo.StateDeleted {
		t.Errorf("after the recovery acme is %s, want deleted", a.State)
	}
	if _, err := os.Lstat(acct); !os.IsNotExist(err) {
		t.Errorf("after the recovery the account's directory %s: %v; want it gone", acct, err)
	}
}
