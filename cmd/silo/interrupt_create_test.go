package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
)

// interruptAt makes the engine's step hook cancel, as Ctrl-C does, the
// context it returns when account id reaches step point
// (engine.Config.Hook), then call after (if not nil). Tests that use it
// do not run in parallel: engineStep is the package's.
func interruptAt(t *testing.T, id, point string, after func()) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	var once sync.Once
	engineStep = func(s engine.Step) {
		if string(s.Account) == id && s.Point == point {
			once.Do(func() {
				cancel(errors.New("interrupt signal received"))
				if after != nil {
					after()
				}
			})
		}
	}
	t.Cleanup(func() { engineStep = func(engine.Step) {}; cancel(nil) })
	return ctx
}

// TestInterruptedCreateSaysWhatIsLeft interrupts silo tenant create acme
// (its context cancelled as Ctrl-C cancels it) at the engine's step
// boundaries of the onboarding and wants one error that says what is left
// and what to do, and the command it names to work. The twins: a create
// interrupted once its account is recorded active, and one not
// interrupted, succeed and show the key.
func TestInterruptedCreateSaysWhatIsLeft(t *testing.T) {
	for _, tc := range []struct {
		name         string
		id, point    string // where the interruption comes; "" for none
		want         string // on stderr; "" for success
		then         []string
		state, later string // acme's state after the interruption and after then
	}{
		{"registered, before the provider", "acme", "journaled",
			"silo: interrupted: tenant acme is registered but still provisioning, and no API key was issued: run silo apply acme to finish it (then silo keys create acme for a key), or silo tenant delete acme --yes to remove it\n",
			[]string{"apply", "acme"}, "provisioning", "active"},
		{"after the provider", "acme", "provider",
			"silo: interrupted: tenant acme is registered but still provisioning, and no API key was issued",
			[]string{"tenant", "delete", "acme", "--yes"}, "provisioning", "deleted"},
		{"before the tenant is registered", "production", "recorded",
			"silo: interrupted: tenant acme was not created\n",
			[]string{"tenant", "create", "acme"}, "", "active"},
		{"recorded active", "acme", "recorded", "", nil, "active", "active"},
		{"not interrupted", "", "", "", nil, "active", "active"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			ctx := interruptAt(t, tc.id, tc.point, nil)
			var out, errOut bytes.Buffer
			code := run(ctx, []string{"--data-dir", c.dataDir, "--file", c.file, "tenant", "create", "acme"}, strings.NewReader(""), &out, &errOut)
			if tc.want == "" {
				if code != 0 || !strings.Contains(out.String(), "API key (shown once, store it now): sk_") {
					t.Fatalf("exit %d, stdout %q, stderr %q; want acme created with its key shown", code, out.String(), errOut.String())
				}
			} else if code != 1 || !strings.HasPrefix(errOut.String(), tc.want) || strings.Count(errOut.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, errOut.String(), tc.want)
			}
			if got := listedState(c, "acme"); got != tc.state {
				t.Fatalf("acme after the create: %q, want %q", got, tc.state)
			}
			if tc.then != nil {
				c.ok(tc.then...)
			}
			if got := listedState(c, "acme"); got != tc.later {
				t.Fatalf("acme after silo %s: %q, want %q", strings.Join(tc.then, " "), got, tc.later)
			}
			if tc.later == "active" && tc.want != "" {
				c.ok("keys", "create", "acme")
			}
		})
	}
}

// listedState is account id's state as silo tenant list --all shows it,
// "" when it lists no such account.
func listedState(c *cli, id string) string {
	c.t.Helper()
	if _, err := os.Stat(filepath.Join(c.dataDir, "state.db")); err != nil {
		return ""
	}
	for _, l := range strings.Split(c.ok("tenant", "list", "--all"), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// TestInterruptedCreateThroughAServer interrupts silo tenant create t9
// against a server once the server has registered t9, and waits until the
// server sees the client gone: the server goes on and makes t9 active with
// its (unseen) key, and the command says so and what to do about the key.
// The twin, not interrupted, shows the key.
func TestInterruptedCreateThroughAServer(t *testing.T) {
	f, handled, code, errOut := interruptThroughAServer(t, "/v1/accounts", "t9", "tenant", "create", "t9")
	want := []string{"silo: interrupted: the server goes on creating tenant t9 by itself", "the first API key it issues cannot be shown here: once t9 is active, revoke that key (silo keys list t9, silo keys revoke t9 KEY-ID) and run silo keys create t9; or remove it with silo tenant delete t9 --yes\n"}
	if code != 1 || !strings.HasPrefix(errOut, want[0]) || !strings.HasSuffix(errOut, want[1]) {
		t.Fatalf("exit %d, stderr %q; want exit 1 and %q … %q", code, errOut, want[0], want[1])
	}
	<-handled
	if l := f.remote("tenant", "list"); !strings.Contains(l, "t9    tenant  active") {
		t.Fatalf("tenant list after the server's create of t9 ended:\n%s\nwant t9 active", l)
	}
	if k := f.remote("keys", "list", "t9"); !strings.Contains(k, "default") {
		t.Fatalf("keys list t9:\n%s\nwant the key the server issued", k)
	}

	if out := f.remote("tenant", "create", "t10"); !strings.Contains(out, "API key (shown once, store it now): sk_") {
		t.Fatalf("tenant create t10 (not interrupted): %q; want its key shown", out)
	}
	<-handled
}

// interruptThroughAServer runs silo args against a server whose handler
// of POST path is watched, interrupting the command (as Ctrl-C does) once
// account id is registered and the server has seen the client go. It
// returns the fixture, a channel that gets a value each time the server
// finishes handling POST path, and the command's exit code and stderr.
func interruptThroughAServer(t *testing.T, path, id string, args ...string) (*remoteFixture, chan struct{}, int, string) {
	t.Helper()
	var mu sync.Mutex
	var reqCtx context.Context
	handled := make(chan struct{}, 2)
	f := startRemoteOn(t, newCLI(t).file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme")
		f.wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != path {
					h.ServeHTTP(w, r)
					return
				}
				mu.Lock()
				reqCtx = r.Context()
				mu.Unlock()
				h.ServeHTTP(w, r)
				handled <- struct{}{}
			})
		}
	})
	ctx := interruptAt(t, id, "journaled", func() {
		mu.Lock()
		rc := reqCtx
		mu.Unlock()
		<-rc.Done() // the server saw the client go
	})
	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"--data-dir", f.client, "--file", f.file, "--server", f.url, "--token", f.token}, args...), strings.NewReader(""), &out, &errOut)
	return f, handled, code, errOut.String()
}

// TestFailedProvisioningSaysNoKey: a tenant create whose provider call
// fails once the tenant is registered (a file planted where the local
// provider puts its account, as the journal commits) says that no API key
// was issued and how to get one (must); with --no-key it says nothing of
// a key (must not).
func TestFailedProvisioningSaysNoKey(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	const noKey = "; no API key was issued: silo keys create %s issues one once it is active\n"
	for _, tc := range []struct {
		id   string
		args []string
		want bool
	}{{"beta", nil, true}, {"gamma", []string{"--no-key"}, false}} {
		engineStep = func(s engine.Step) {
			if string(s.Account) == tc.id && s.Point == "journaled" {
				blockAccount(t, c, tc.id)
			}
		}
		code, _, errOut := c.run(append([]string{"tenant", "create", tc.id}, tc.args...)...)
		engineStep = func(engine.Step) {}
		if code != 1 || !strings.Contains(errOut, "account "+tc.id+" was registered but provisioning failed") {
			t.Fatalf("create %s: exit %d, stderr %q; want provisioning failed", tc.id, code, errOut)
		}
		if got := strings.HasSuffix(errOut, fmt.Sprintf(noKey, tc.id)); got != tc.want {
			t.Errorf("create %s %v: stderr %q; says no key was issued: %v, want %v", tc.id, tc.args, errOut, got, tc.want)
		}
	}
}

// TestInterruptedEnvCreateLeavesNothing interrupts silo env create (its
// context cancelled as Ctrl-C cancels it) at the engine's step boundaries
// of the environment's onboarding, seeded and not: the command says the
// environment was not created, nothing of it is listed, and the same name
// can be created again. The twins, not interrupted, create it with its key.
func TestInterruptedEnvCreateLeavesNothing(t *testing.T) {
	seed := filepath.Join(filepath.Dir(newCLI(t).file), "fixtures", "demo")
	for _, tc := range []struct {
		name, point string // where the interruption comes; "" for none
		seed        bool
	}{
		{"registered, before the provider", "journaled", false},
		{"after the provider", "provider", false},
		{"recorded, before its seed", "recorded", true},
		{"not interrupted", "", false},
		{"not interrupted, seeded", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			c.ok("tenant", "create", "acme")
			args := []string{"--data-dir", c.dataDir, "--file", c.file, "env", "create", "demo-1", "--kind", "demo", "--ttl", "1h", "--param", "plan=enterprise"}
			if tc.seed {
				args = append(args, "--seed", seed)
			}
			ctx := interruptAt(t, "demo-1", tc.point, nil)
			var out, errOut bytes.Buffer
			code := run(ctx, args, strings.NewReader(""), &out, &errOut)
			if tc.point == "" {
				if code != 0 || !strings.Contains(out.String(), "API key (shown once, store it now): sk_") {
					t.Fatalf("exit %d, stdout %q, stderr %q; want demo-1 created with its key shown", code, out.String(), errOut.String())
				}
				if !strings.Contains(out.String(), " (in 1h)\n") { // the TTL as given, not as Go prints it (1h0m0s)
					t.Errorf("stdout %q; want the expiry said as (in 1h)", out.String())
				}
				if got := envState(c, "demo-1"); got != "active" {
					t.Fatalf("demo-1 after the create: %q, want active", got)
				}
				return
			}
			if want := "silo: interrupted: environment demo-1 was not created\n"; code != 1 || errOut.String() != want {
				t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, errOut.String(), want)
			}
			if got := envState(c, "demo-1"); got != "" {
				t.Fatalf("demo-1 after the interrupted create: %q, want nothing listed", got)
			}
			engineStep = func(engine.Step) {}
			c.ok(args[4:]...)
		})
	}
}

// envState is environment id's state as silo env list -o json gives it,
// "" when it lists no such environment.
func envState(c *cli, id string) string {
	c.t.Helper()
	var envs []silo.Account
	if err := json.Unmarshal([]byte(c.ok("env", "list", "-o", "json")), &envs); err != nil {
		c.t.Fatalf("env list -o json: %v", err)
	}
	for _, a := range envs {
		if string(a.ID) == id {
			return string(a.State)
		}
	}
	return ""
}

// TestInterruptedEnvCreateThroughAServer interrupts silo env create demo-1
// against a server once the server has registered it, and waits until the
// server sees the client gone: the server goes on and makes demo-1 active,
// and the command says so. The twin, not interrupted, shows the key.
func TestInterruptedEnvCreateThroughAServer(t *testing.T) {
	create := []string{"env", "create", "demo-1", "--kind", "demo", "--ttl", "1h", "--param", "plan=enterprise"}
	f, handled, code, errOut := interruptThroughAServer(t, "/v1/environments", "demo-1", create...)
	if want := "silo: interrupted: the server goes on creating environment demo-1 by itself"; code != 1 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	<-handled
	if l := f.remote("env", "list"); !strings.Contains(l, "demo-1  demo environment  active") {
		t.Fatalf("env list after the server's create of demo-1 ended:\n%s\nwant demo-1 active", l)
	}
	engineStep = func(engine.Step) {}
	create[2] = "demo-2"
	if out := f.remote(create...); !strings.Contains(out, "API key (shown once, store it now): sk_") {
		t.Fatalf("env create demo-2 (not interrupted): %q; want its key shown", out)
	}
	<-handled
}
