package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/envelope"
)

// TestTwoProcessesWriteOneAccount: two Providers on one directory (two
// processes: silo up and the CLI) write the same account's secrets and
// config and rotate its data key and the master key, all at once. Every
// write survives and every secret still opens: control-plane changes are
// serialized across processes (a lock file per account, and one for the
// master key), not only within one.
func TestTwoProcessesWriteOneAccount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ps := []*Provider{newTestProvider(t, Config{Dir: dir}), newTestProvider(t, Config{Dir: dir})}
	if err := ps[0].CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	const perProvider, rounds = 3, 8
	for i := range ps {
		for n := 0; n < perProvider; n++ {
			declareSecret(t, ps[0], "acme", fmt.Sprintf("s%d-%d", i, n))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i, p := range ps {
		for n := 0; n < perProvider; n++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					if err := p.PutSecret(ctx, "acme", fmt.Sprintf("s%d-%d", i, n), []byte(fmt.Sprintf("v%d", r))); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for r := 0; r < 3; r++ {
				if err := p.RotateDataKey(ctx, "acme"); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeConfig, Name: fmt.Sprintf("c%d-%d", i, r),
					Desired: &silo.Resource{Type: silo.TypeConfig, Name: fmt.Sprintf("c%d-%d", i, r), Spec: []byte(`{"value":"x"}`)}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ps[1].RotateMasterKey(ctx); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}

	// A third provider (a fresh process) reads what they left.
	p3 := newTestProvider(t, Config{Dir: dir})
	d, err := p3.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		for n := 0; n < perProvider; n++ {
			wantSecret(t, d, fmt.Sprintf("s%d-%d", i, n), fmt.Sprintf("v%d", rounds-1))
		}
		for r := 0; r < rounds; r++ {
			wantConfig(t, d, fmt.Sprintf("c%d-%d", i, r), "x")
		}
	}
}

// TestWrapAfterAnotherProcessRotatedMaster: a process that read master.key
// before another process rotated it wraps new data keys (a data-key
// rotation, a new account) under the new master key, not its stale copy of
// the dropped one, so a fresh process opens every secret afterwards.
func TestWrapAfterAnotherProcessRotatedMaster(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rotFixture(t, dir)
	p1 := newTestProvider(t, Config{Dir: dir})
	p2 := newTestProvider(t, Config{Dir: dir})
	if err := p2.RotateMasterKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p1.RotateDataKey(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := p1.CreateAccount(ctx, "umbrella", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	declareSecret(t, p1, "umbrella", "a")
	if err := p1.PutSecret(ctx, "umbrella", "a", []byte("u")); err != nil {
		t.Fatal(err)
	}
	p3 := newTestProvider(t, Config{Dir: dir})
	wantAllSecrets(t, p3)
	d, err := p3.Data(ctx, "umbrella")
	if err != nil {
		t.Fatal(err)
	}
	wantSecret(t, d, "a", "u")
}

// The kill -9 test: a child process (this test binary, re-executed) rotates
// and SIGKILLs itself at one step boundary.
const childEnv = "SILO_LOCAL_ROTATE_CHILD"

// TestRotateChild is the child; it does nothing unless run by
// TestRotateKill9.
func TestRotateChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("the child of TestRotateKill9")
	}
	kind, rest, _ := strings.Cut(spec, "|")
	step, rest, _ := strings.Cut(rest, "|")
	acct, dir, _ := strings.Cut(rest, "|")
	p, err := New(Config{Dir: dir, OnRotateStep: func(s string, id silo.AccountID) error {
		if s == step && (acct == "" || string(id) == acct) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "data":
		err = p.RotateDataKey(context.Background(), "acme")
	case "master":
		err = p.RotateMasterKey(context.Background())
	}
	t.Fatalf("rotation finished without reaching step %s of %s (err %v)", step, acct, err)
}

func TestRotateKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	tests := []struct {
		kind, step, acct string
		ring, masters    int // keys in acme's ring and in master.key right after the kill
	}{
		{"data", StepDataKeyAdded, "acme", 2, 1},
		{"data", StepDataKeyResealed, "acme", 2, 1},
		{"data", StepDataKeyDestroyed, "acme", 1, 1},
		{"master", StepMasterKeyAdded, "", 1, 2},
		{"master", StepMasterKeyRewrap, "acme", 1, 2},
		{"master", StepMasterKeyRewrap, "globex", 1, 2},
		{"master", StepMasterKeyRewrap, "initech", 1, 2},
		{"master", StepMasterKeyDestroyed, "", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.step+"/"+tt.acct, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			rotFixture(t, dir)
			acme := filepath.Join(dir, "accounts", "acme")
			saved := t.TempDir()
			oldSecrets, oldKey := filepath.Join(saved, fileSecrets), filepath.Join(saved, fileDataKey)
			copyFile(t, filepath.Join(acme, fileSecrets), oldSecrets)
			copyFile(t, filepath.Join(acme, fileDataKey), oldKey)

			cmd := exec.Command(os.Args[0], "-test.run=^TestRotateChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tt.kind+"|"+tt.step+"|"+tt.acct+"|"+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("control: the child was not killed at the step: %v\n%s", err, out)
			}
			// The kill left the intermediate state it was meant to.
			if n := ringLen(t, dir, "acme"); n != tt.ring {
				t.Errorf("after the kill acme's ring holds %d keys, want %d", n, tt.ring)
			}
			if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Size() != int64(tt.masters*envelope.KeySize) {
				t.Errorf("after the kill master.key holds %d bytes, want %d keys", st.Size(), tt.masters)
			}

			// Must: a fresh provider decrypts every secret.
			p, err := New(Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			wantAllSecrets(t, p)

			// A second rotation completes, and every secret still decrypts.
			if tt.kind == "data" {
				err = p.RotateDataKey(ctx, "acme")
			} else {
				err = p.RotateMasterKey(ctx)
			}
			if err != nil {
				t.Fatalf("second rotation: %v", err)
			}
			wantAllSecrets(t, p)
			for _, id := range rotIDs {
				if n := ringLen(t, dir, id); n != 1 {
					t.Errorf("%s's ring holds %d keys after the second rotation, want 1", id, n)
				}
			}
			if st, _ := os.Stat(filepath.Join(dir, "master.key")); st.Size() != envelope.KeySize {
				t.Errorf("master.key holds %d bytes after the second rotation, want one key", st.Size())
			}

			// Must not: what was on disk before no longer decrypts.
			if tt.kind == "data" {
				wantOldCiphertextDead(t, p, acme, oldSecrets)
			} else {
				wantOldRingDead(t, p, acme, oldKey)
			}
		})
	}
}
