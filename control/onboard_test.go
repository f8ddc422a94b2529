package control_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// commitCounter counts the Update calls that reach the store it wraps (the
// real witnessed SQLite store); it changes nothing.
type commitCounter struct {
	store.Store
	n atomic.Int64
}

func (c *commitCounter) Update(ctx context.Context, fn func(store.Tx) error) error {
	c.n.Add(1)
	return c.Store.Update(ctx, fn)
}

// TestOnboardingCommitsTwiceWithOneWitness: creating a tenant with its first
// key commits twice (registry row, intents and audit; then results, state,
// key and its audit), and the audit witness is written once, after the
// second commit: while the provider works it still names the head before
// the onboarding, and the log verifies against it. Afterwards the witness is
// at the head, the key is stored and the log holds account.create and
// key.issue. The twin: a key issued on its own (IssueKey) commits once and
// moves the witness at once.
func TestOnboardingCommitsTwiceWithOneWitness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	witness := filepath.Join(dir, isolation.WitnessFile)
	if _, err := isolation.EnsureWitness(ctx, st, witness); err != nil {
		t.Fatal(err)
	}
	ws := isolation.WithWitness(st, witness)
	ws.OnError = func(err error) { t.Errorf("witness: %v", err) }
	cc := &commitCounter{Store: ws}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	seq := func() int64 {
		t.Helper()
		w, err := isolation.ReadWitness(witness)
		if err != nil {
			t.Fatal(err)
		}
		return w.Seq
	}
	var before int64
	var during []int64
	p := control.New(control.Config{Store: cc, Provider: prov, Hook: func(s engine.Step) {
		if s.Account == "acme" && s.Point == "provider" && s.Change == nil {
			during = append(during, seq())
			if _, err := isolation.VerifyAudit(ctx, st, witness); err != nil {
				t.Errorf("VerifyAudit while the provider works: %v", err)
			}
		}
	}})
	if err := p.SetCurrent(ctx, release(t, cc, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnsureProduction(ctx, mustCurrent(t, p), nil); err != nil {
		t.Fatal(err)
	}
	before = seq()
	cc.n.Store(0)
	c, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme", WithKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cc.n.Load(); got != 2 {
		t.Errorf("onboarding with a key: %d commits, want 2", got)
	}
	if c.Key == "" || c.KeyID == "" || c.Account.State != silo.StateActive {
		t.Fatalf("CreateAccount = %+v; want an active account and its key", c)
	}
	if len(during) != 1 || during[0] != before {
		t.Errorf("witness while the provider worked: %v, want [%d] (not yet moved)", during, before)
	}
	res, err := isolation.VerifyAudit(ctx, st, witness)
	if err != nil {
		t.Fatal(err)
	}
	if got := seq(); got != res.Head.Seq {
		t.Errorf("witness after onboarding: seq %d, want the head %d", got, res.Head.Seq)
	}
	var actions []string
	var keys []store.APIKey
	err = st.View(ctx, func(tx store.Tx) error {
		ents, err := tx.Audit(before, 0)
		for _, e := range ents {
			actions = append(actions, e.Event.Action)
		}
		if err != nil {
			return err
		}
		keys, err = tx.Keys("acme")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 2 || actions[0] != "account.create" || actions[1] != "key.issue" {
		t.Errorf("audit of the onboarding: %v, want [account.create key.issue]", actions)
	}
	if len(keys) != 1 || keys[0].ID != c.KeyID {
		t.Errorf("keys of acme: %+v, want the one returned (%s)", keys, c.KeyID)
	}

	cc.n.Store(0)
	if _, _, err := p.IssueKey(ctx, "acme", "second"); err != nil {
		t.Fatal(err)
	}
	if got := cc.n.Load(); got != 1 {
		t.Errorf("IssueKey: %d commits, want 1", got)
	}
	if got := seq(); got != res.Head.Seq+1 {
		t.Errorf("witness after IssueKey: seq %d, want %d", got, res.Head.Seq+1)
	}
}

func mustCurrent(t *testing.T, p *control.Plane) engine.Release {
	t.Helper()
	rel, err := p.CurrentRelease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
