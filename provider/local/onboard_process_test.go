package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
)

const onboardKillEnv = "SILO_TEST_ONBOARD_KILL"

// onboardChangesInternal are a tenant's first changes: a table, a config, a
// secret slot and a route.
func onboardChangesInternal() []silo.Change {
	mk := func(typ silo.ResourceType, name, spec string) silo.Change {
		r := &silo.Resource{Type: typ, Name: name}
		if spec != "" {
			r.Spec = []byte(spec)
		}
		return silo.Change{Op: silo.OpCreate, Type: typ, Name: name, Desired: r}
	}
	return []silo.Change{
		mk(silo.TypeTable, "findings", ""),
		mk(silo.TypeConfig, "plan", `{"value":"pro"}`),
		mk(silo.TypeSecret, "github-token", ""),
		mk(silo.TypeRoute, "GET /findings", `{"method":"GET","path":"/findings","function":"list"}`),
	}
}

// killAtSync is the set-up of a child that kills itself at a sync: env
// holds "n|dir"; it opens the provider on dir and SIGKILLs the process just
// before its n-th sync from then on. It skips unless parent started it.
func killAtSync(t *testing.T, env, parent string) *Provider {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skip("run by " + parent)
	}
	ns, dir, _ := strings.Cut(v, "|")
	n, _ := strconv.Atoi(ns)
	p, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	kill := func(string) {
		if count++; count == n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	onSync.Store(&kill)
	return p
}

// TestOnboardKillChild is the child of TestOnboardKill9: it creates acme
// with its changes and SIGKILLs itself just before the n-th sync.
func TestOnboardKillChild(t *testing.T) {
	p := killAtSync(t, onboardKillEnv, "TestOnboardKill9")
	if _, err := p.CreateAccountWith(context.Background(), "acme", silo.KindTenant, onboardChangesInternal()); err != nil {
		t.Fatal(err)
	}
	os.Exit(3) // onboarded without reaching the n-th sync
}

// TestOnboardKill9 kills a process onboarding acme (CreateAccountWith) just
// before each of the syncs it makes, then opens the data dir as the next
// process would: acme either does not exist at all (no account, no data
// handle) or exists whole (every change recorded, its table takes writes,
// its config reads back), never in between; both outcomes occur (kills
// before the rename into place, and after it). Onboarding again then
// converges to the whole account.
func TestOnboardKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	ctx := context.Background()
	var absent, whole int
	for n := 1; ; n++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestOnboardKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), onboardKillEnv+"="+strconv.Itoa(n)+"|"+dir)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("sync %d: child: %v\n%s", n, err, out)
		}
		if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() {
			if ws.ExitStatus() != 3 || n == 1 {
				t.Fatalf("sync %d: child exited with %d, want killed or done (3)\n%s", n, ws.ExitStatus(), out)
			}
			break // past the last sync
		}
		p, err := New(Config{Dir: dir})
		if err != nil {
			t.Fatalf("sync %d: open after the kill: %v", n, err)
		}
		ids, err := p.Accounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ids, "acme") {
			whole++
			wantWhole(t, p, n)
		} else {
			absent++
			if _, err := p.Data(ctx, "acme"); silo.ErrorCode(err) != silo.CodeNotFound {
				t.Errorf("sync %d: acme is not listed but Data(acme) = %v; want not found", n, err)
			}
			if rs, err := p.Resources(ctx, "acme"); err == nil && len(rs) > 0 {
				t.Errorf("sync %d: acme is not listed but holds %v", n, rs)
			}
		}
		if got, err := p.CreateAccountWith(ctx, "acme", silo.KindTenant, onboardChangesInternal()); err != nil || got != len(onboardChangesInternal()) {
			t.Fatalf("sync %d: onboarding again = %d, %v", n, got, err)
		}
		wantWhole(t, p, n)
		p.Close()
	}
	if absent == 0 || whole == 0 {
		t.Fatalf("kills left acme absent %d times and whole %d times; want both", absent, whole)
	}
	t.Logf("killed before each of %d syncs: acme absent %d times, whole %d times, never in between", absent+whole, absent, whole)
}

func wantWhole(t *testing.T, p *Provider, n int) {
	t.Helper()
	ctx := context.Background()
	rs, err := p.Resources(ctx, "acme")
	if err != nil || len(rs) != len(onboardChangesInternal()) {
		t.Fatalf("sync %d: acme holds %v (%v); want all %d changes", n, rs, err, len(onboardChangesInternal()))
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Errorf("sync %d: put into acme's table: %v", n, err)
	}
	if v, err := d.Config(ctx, "plan"); err != nil || v != "pro" {
		t.Errorf("sync %d: acme's config plan = %q, %v; want pro", n, v, err)
	}
}
