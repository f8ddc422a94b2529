package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// twin returns a second engine on e's store and provider, as another
// process on the same store would be, on host (empty: this host), with
// clock c and hook.
func twin(e *env, host string, c *clock, hook func(engine.Step)) *engine.Engine {
	return engine.New(engine.Config{Store: e.store, Provider: e.prov, Host: host, Now: c.Now, Hook: hook, Heartbeat: time.Millisecond})
}

// deadOwner returns an owner (host~pid) on this host whose process has
// ended.
func deadOwner(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s~%d", host, cmd.Process.Pid)
}

// journal adds a pending intent with key, as the process named in it
// would have before it was cut off.
func journal(t *testing.T, e *env, key string, acct silo.AccountID, action string, at time.Time) {
	t.Helper()
	if err := e.store.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.AddIntent(store.Intent{Key: key, Account: acct, Action: action, State: store.IntentPending, Created: at, Updated: at})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// deletions counts the account.delete events of the audit log.
func deletions(t *testing.T, e *env, id silo.AccountID) int {
	t.Helper()
	n := 0
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		es, err := tx.Audit(0, 1000)
		for _, x := range es {
			if x.Event.Action == "account.delete" && x.Event.Account == id {
				n++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecoverClaimsEachIntentOnce: two processes recover one store at
// once. The first reads an interrupted intent as pending; before it acts,
// the second takes it over: it confirms an interrupted creation the
// provider had done, or is resuming an interrupted deletion. The first
// must then leave the intent (Settled) rather than settle it a second time
// from what it read before (a confirmed creation marked failed again, the
// same deletion resumed twice side by side).
func TestRecoverClaimsEachIntentOnce(t *testing.T) {
	for _, action := range []string{"create-account", "delete-account"} {
		t.Run(action, func(t *testing.T) {
			ctx := context.Background()
			e := open(t, t.TempDir(), nil)
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, release(t, stackV1, "sha256:aaaa")); err != nil {
				t.Fatal(err)
			}
			c := &clock{now: time.Now()}
			key := action + "/acme/" + deadOwner(t) + "~abc"
			journal(t, e, key, "acme", action, c.Now())
			before := deletions(t, e, "acme")

			// The second signals once it has taken the intent over: at
			// the end of its recovery, or inside the deletion it resumed,
			// where it stays until the first is done.
			tookOver, finish := make(chan struct{}), make(chan struct{})
			var once sync.Once
			second := twin(e, "", c, func(s engine.Step) {
				if s.Point == "journaled" && s.Account == "acme" {
					once.Do(func() { close(tookOver) })
					<-finish
				}
			})
			var secondRep engine.RecoveryReport
			var secondErr error
			ended := make(chan struct{})
			var started sync.Once
			first := twin(e, "", c, func(s engine.Step) {
				if s.Point != "recovering" || s.Account != "acme" {
					return
				}
				started.Do(func() {
					go func() {
						defer close(ended)
						secondRep, secondErr = second.Recover(ctx)
						once.Do(func() { close(tookOver) })
					}()
					<-tookOver
				})
			})
			rep, err := first.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			close(finish)
			<-ended
			if secondErr != nil {
				t.Fatal(secondErr)
			}
			if rep.Settled != 1 || rep.Confirmed+rep.Abandoned+rep.Resumed != 0 {
				t.Errorf("first recovery: %+v; want the intent left to the second (settled 1, nothing else)", rep)
			}
			var in store.Intent
			if err := e.store.View(ctx, func(tx store.Tx) error { in, err = tx.IntentByKey(key); return err }); err != nil {
				t.Fatal(err)
			}
			switch action {
			case "create-account":
				if secondRep.Confirmed != 1 || in.State != store.IntentDone {
					t.Errorf("second recovery: %+v, intent %s; want the creation confirmed (done)", secondRep, in.State)
				}
			case "delete-account":
				if secondRep.Resumed != 1 || secondRep.Abandoned != 1 {
					t.Errorf("second recovery: %+v; want the deletion resumed once", secondRep)
				}
				if n := deletions(t, e, "acme") - before; n != 1 {
					t.Errorf("the recoveries started %d deletions of acme, want 1", n)
				}
				if a := account(t, e, "acme"); a.State != silo.StateDeleted {
					t.Errorf("acme is %s, want deleted", a.State)
				}
			}
			if n := pending(t, e); n != 0 {
				t.Errorf("%d intents still pending, want 0", n)
			}
		})
	}
}

// pending counts the pending intents.
func pending(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		ins, err := tx.PendingIntents()
		n = len(ins)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecoverHeartbeatAcrossHosts: a deletion under way in a process on
// host a, its heartbeat running, is left alone by a recovery on host b
// however far the clock moves (the heartbeat moves the intent with it),
// and finishes by itself. The twin: an intent of host a whose process
// stopped (no heartbeat) is left alone within the grace period and taken
// over once it is older.
func TestRecoverHeartbeatAcrossHosts(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir(), nil)
	rel := release(t, stackV1, "sha256:aaaa")
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: id, Kind: silo.KindTenant}, rel); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{now: time.Now()}
	const grace = 2 * time.Minute // engine.Config's default

	// Under way on host a: stopped inside the deletion, heartbeat running.
	inside, finish := make(chan struct{}), make(chan struct{})
	a := twin(e, "host-a", c, func(s engine.Step) {
		if s.Point == "journaled" && s.Account == "acme" {
			close(inside)
			<-finish
		}
	})
	b := twin(e, "host-b", c, nil)
	deleted := make(chan error, 1)
	go func() { _, err := a.DeleteAccount(ctx, "acme"); deleted <- err }()
	<-inside
	c.advance(10 * grace)
	waitHeartbeat(t, e, "acme", c.Now())
	rep, err := b.Recover(ctx)
	if err != nil || rep.Skipped != 1 || rep.Resumed+rep.Abandoned+rep.Confirmed+rep.Settled != 0 {
		t.Errorf("recovery on host b while host a deletes acme: %+v, %v; want it skipped", rep, err)
	}
	if st := account(t, e, "acme").State; st != silo.StateDeleting {
		t.Errorf("acme is %s while host a deletes it, want deleting", st)
	}
	close(finish)
	if err := <-deleted; err != nil {
		t.Fatalf("host a's deletion: %v", err)
	}
	if st := account(t, e, "acme").State; st != silo.StateDeleted {
		t.Errorf("acme is %s after host a's deletion, want deleted", st)
	}

	// Stopped on host a: no heartbeat.
	journal(t, e, "delete-account/globex/host-a~4242~abc", "globex", "delete-account", c.Now())
	c.advance(grace - time.Second)
	if rep, err := b.Recover(ctx); err != nil || rep.Skipped != 1 || rep.Resumed != 0 {
		t.Errorf("recovery on host b within the grace period: %+v, %v; want it skipped", rep, err)
	}
	c.advance(2 * time.Second)
	if rep, err := b.Recover(ctx); err != nil || rep.Skipped != 0 || rep.Resumed != 1 {
		t.Errorf("recovery on host b past the grace period: %+v, %v; want the deletion resumed", rep, err)
	}
	if st := account(t, e, "globex").State; st != silo.StateDeleted {
		t.Errorf("globex is %s after the recovery, want deleted", st)
	}
}

// waitHeartbeat waits until the pending intent of id has been moved to at
// or later by its owner's heartbeat.
func waitHeartbeat(t *testing.T, e *env, id silo.AccountID, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var moved bool
		if err := e.store.View(context.Background(), func(tx store.Tx) error {
			ins, err := tx.PendingIntents()
			for _, in := range ins {
				moved = moved || in.Account == id && !in.Updated.Before(at.Truncate(time.Microsecond))
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if moved {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the heartbeat of the deletion of %s did not move its intent to %v", id, at)
		}
		time.Sleep(time.Millisecond)
	}
}
