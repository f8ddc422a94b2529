package control_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/sqlite"
)

// firstCreateRounds is how many fresh installations each backend races
// two first creates on: enough for both to find no production account in
// some of them, and for one to find it being created in others.
const firstCreateRounds = 12

// TestConcurrentFirstCreates: on a fresh installation, two control planes
// (two commands on one SQLite file, two servers on one PostgreSQL schema),
// each with its own store handle and provider on the installation's one
// accounts directory, create a different first tenant at the same moment.
// Both find no production account; both tenants end active and there is
// exactly one production account, also active, created once (must). The
// twin: each tenant created alone on its own installation makes the
// production account itself (must), so the race is what is tested.
func TestConcurrentFirstCreates(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T, dir string) func() store.Store // a new handle on the round's store
	}{
		{"sqlite", func(t *testing.T, dir string) func() store.Store {
			return func() store.Store {
				st, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		}},
		{"postgres", func(t *testing.T, _ string) func() store.Store {
			dsn := pgtest.Fresh(t)
			return func() store.Store {
				st, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for round := range firstCreateRounds {
				dir := t.TempDir()
				handle := b.open(t, dir)
				planes := []*control.Plane{plane(t, handle(), dir), plane(t, handle(), dir)}
				if round == 0 {
					// The twin: one create alone makes production.
					solo(t, b.open(t, t.TempDir()), "acme")
				}
				ctx := context.Background()
				st := handle()
				if err := planes[0].SetCurrent(ctx, release(t, st, nil)); err != nil {
					t.Fatal(err)
				}
				ids := []string{"acme", "globex"}
				errs := make([]error, len(ids))
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, id := range ids {
					wg.Go(func() {
						<-start
						_, errs[i] = planes[i].CreateAccount(ctx, control.CreateRequest{ID: id})
					})
				}
				close(start)
				wg.Wait()
				for i, id := range ids {
					if errs[i] != nil {
						t.Fatalf("round %d: create %s beside create %s: %v", round, id, ids[1-i], errs[i])
					}
				}
				accts, err := planes[0].Accounts(ctx, store.Filter{})
				if err != nil {
					t.Fatal(err)
				}
				got := map[silo.AccountID]silo.State{}
				for _, a := range accts {
					got[a.ID] = a.State
				}
				want := map[silo.AccountID]silo.State{silo.ProductionID: silo.StateActive, "acme": silo.StateActive, "globex": silo.StateActive}
				if len(got) != len(want) || got[silo.ProductionID] != silo.StateActive || got["acme"] != silo.StateActive || got["globex"] != silo.StateActive {
					t.Fatalf("round %d: accounts %v; want %v", round, got, want)
				}
				if n := creates(t, st, silo.ProductionID); n != 1 {
					t.Fatalf("round %d: the production account was created %d times; want once", round, n)
				}
			}
		})
	}
}

// plane is a control plane on st and the local provider of the
// installation in dir (each plane its own provider, as each process has).
func plane(t *testing.T, st store.Store, dir string) *control.Plane {
	t.Helper()
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	return control.New(control.Config{Store: st, Provider: prov})
}

// solo creates tenant id alone on a new installation (handle opens its
// store) and checks that this create made the production account.
func solo(t *testing.T, handle func() store.Store, id string) {
	t.Helper()
	ctx := context.Background()
	st := handle()
	p := plane(t, st, t.TempDir())
	if err := p.SetCurrent(ctx, release(t, st, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: id}); err != nil {
		t.Fatalf("create %s alone: %v", id, err)
	}
	if n := creates(t, st, silo.ProductionID); n != 1 {
		t.Fatalf("create %s alone created the production account %d times; want once", id, n)
	}
}

// creates counts the account.create audit events of account id.
func creates(t *testing.T, st store.Store, id silo.AccountID) int {
	t.Helper()
	n := 0
	err := st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.Audit(0, 10000)
		for _, e := range evs {
			if e.Event.Action == "account.create" && e.Event.Account == id {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFirstCreateWhileProductionIsBeingCreated: a first create that finds
// the production account registered by another create still at work (its
// intents pending) waits for it; when that one takes longer than the wait,
// it answers a retryable CodeUnavailable that says so, and creates nothing
// (must not). Once the other create finishes, the same create goes ahead on
// that production account (must).
func TestFirstCreateWhileProductionIsBeingCreated(t *testing.T) {
	control.SetProductionWait(t, 300*time.Millisecond)
	ctx := context.Background()
	dir := t.TempDir()
	handle := func() store.Store {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	registered, finish := make(chan struct{}), make(chan struct{})
	var once sync.Once
	provA, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { provA.Close() })
	stA := handle()
	a := control.New(control.Config{Store: stA, Provider: provA, Hook: func(s engine.Step) {
		if s.Account == silo.ProductionID && s.Point == "journaled" {
			once.Do(func() { close(registered); <-finish })
		}
	}})
	b := plane(t, handle(), dir)
	if err := a.SetCurrent(ctx, release(t, stA, nil)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.CreateAccount(ctx, control.CreateRequest{ID: "acme"})
		done <- err
	}()
	<-registered
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a wait without its bound ends here
	defer cancel()
	_, err = b.CreateAccount(bctx, control.CreateRequest{ID: "globex"})
	want := "another command or server is creating the production account at this moment; try again once it finishes"
	if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(silo.UserMessage(err), want) {
		t.Errorf("create while production is being created: %v (code %s); want CodeUnavailable %q", err, silo.ErrorCode(err), want)
	}
	if _, err := b.Account(ctx, "globex"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("globex after the refused create: %v; want not found", err)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatalf("the create that made production: %v", err)
	}
	if _, err := b.CreateAccount(ctx, control.CreateRequest{ID: "globex"}); err != nil {
		t.Fatalf("create again once production is made: %v", err)
	}
	if n := creates(t, stA, silo.ProductionID); n != 1 {
		t.Errorf("the production account was created %d times; want once", n)
	}
}
