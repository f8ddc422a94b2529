package dataplane_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/dataplane"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// gated is the real store, with reads of an account's row counted per
// account; after close(id), the next read of id is held, after the row is
// read, until open(id) (or the read's context ends): a read that the store
// is slow to finish.
type gated struct {
	store.Store
	mu    sync.Mutex
	reads map[silo.AccountID]int
	shut  map[silo.AccountID]chan struct{} // for the next read
	gates map[silo.AccountID]chan struct{} // to open
}

func (g *gated) View(ctx context.Context, fn func(store.Tx) error) error {
	return g.Store.View(ctx, func(tx store.Tx) error { return fn(gatedTx{tx, g, ctx}) })
}

func (g *gated) close(id silo.AccountID) {
	g.mu.Lock()
	g.shut[id] = make(chan struct{})
	g.gates[id] = g.shut[id]
	g.mu.Unlock()
}

func (g *gated) open(id silo.AccountID) {
	g.mu.Lock()
	close(g.gates[id])
	delete(g.gates, id)
	delete(g.shut, id)
	g.mu.Unlock()
}

func (g *gated) count(id silo.AccountID) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads[id]
}

type gatedTx struct {
	store.Tx
	g   *gated
	ctx context.Context
}

func (t gatedTx) Account(id silo.AccountID) (silo.Account, error) {
	a, err := t.Tx.Account(id)
	t.g.mu.Lock()
	t.g.reads[id]++
	gate := t.g.shut[id]
	delete(t.g.shut, id)
	t.g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-t.ctx.Done():
			return silo.Account{}, t.ctx.Err()
		}
	}
	return a, err
}

// newGated returns a directory over a gated real SQLite store holding
// production and tenant acme (see newFixture), with the given Wait.
func newGated(t *testing.T, wait time.Duration) (*gated, *dataplane.Directory, *sqlite.Store) {
	t.Helper()
	f := newFixture(t, map[silo.AccountID]silo.State{"acme": silo.StateActive})
	g := &gated{Store: f.st, reads: map[silo.AccountID]int{}, shut: map[silo.AccountID]chan struct{}{}, gates: map[silo.AccountID]chan struct{}{}}
	prov, err := local.New(local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	dir, err := dataplane.New(dataplane.Config{Store: g, Provider: prov, Policy: isolation.NewPolicy(), Refresh: time.Hour, Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	return g, dir, f.st.(*sqlite.Store)
}

// TestConcurrentRequestsShareOneRead: 50 requests for an account whose
// view is being read wait for that one read (must not read 50 times), and
// all of them get the view (must).
func TestConcurrentRequestsShareOneRead(t *testing.T) {
	g, dir, _ := newGated(t, time.Minute)
	g.close("acme")
	const n = 50
	var started sync.WaitGroup
	var wg sync.WaitGroup
	var served atomic.Int32
	started.Add(n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			v, err := dir.View(context.Background(), "acme")
			if err != nil || v.Account.ID != "acme" {
				t.Errorf("View = %v, %v", v, err)
				return
			}
			served.Add(1)
		}()
	}
	started.Wait()
	// Let the others reach the store if they were going to: open the gate
	// once all 50 are there or after a grace. With one shared read, only
	// one ever is, and the assertion below does not depend on the grace.
	for deadline := time.Now().Add(500 * time.Millisecond); g.count("acme") < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	g.open("acme")
	wg.Wait()
	if got := g.count("acme"); got != 1 {
		t.Errorf("%d concurrent requests read the account %d times, want once", n, got)
	}
	if served.Load() != n {
		t.Errorf("%d of %d requests got the view", served.Load(), n)
	}
}

// TestTenantViewDoesNotReadProduction: reading a tenant's view does not
// read production (must not: a function without exports never needs it),
// so a stalled read of production holds up no tenant request; reading
// production's view does read it (must).
func TestTenantViewDoesNotReadProduction(t *testing.T) {
	g, dir, _ := newGated(t, time.Minute)
	g.close(silo.ProductionID)
	if _, err := dir.View(context.Background(), "acme"); err != nil {
		t.Fatalf("acme's view while production's read stalls: %v", err)
	}
	if n := g.count(silo.ProductionID); n != 0 {
		t.Errorf("reading acme's view read production %d times, want 0", n)
	}
	g.open(silo.ProductionID)
	if _, err := dir.View(context.Background(), silo.ProductionID); err != nil {
		t.Fatal(err)
	}
	if n := g.count(silo.ProductionID); n != 1 {
		t.Errorf("reading production's view read it %d times, want 1", n)
	}
}

// TestStalledReadFailsWithinWait: with every reader connection of the
// real SQLite store taken, a request for an account's view or a key gets,
// within Wait, a CodeUnavailable error saying that silo could not read
// the account (must not: wait for as long as the store is stuck, or blame
// the function); once the store is free the next request is served
// (must).
func TestStalledReadFailsWithinWait(t *testing.T) {
	_, dir, st := newGated(t, 50*time.Millisecond)
	release := holdReaders(t, st)

	for _, tc := range []struct {
		name, want string
		read       func(context.Context) error
	}{
		{"view", "silo could not read account acme's configuration within 50ms", func(ctx context.Context) error {
			_, err := dir.View(ctx, "acme")
			return err
		}},
		{"production", "silo could not read the production account's exports within 50ms", func(ctx context.Context) error {
			_, err := dir.View(ctx, silo.ProductionID)
			return err
		}},
		{"key", "silo could not read the API key within 50ms", func(ctx context.Context) error {
			_, err := dir.Key(ctx, "k1")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tc.read(context.Background()) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute): // a failure detector, not a measure
				t.Fatal("the read waited for the stuck store past a minute; want it bounded by Wait")
			}
			var se *silo.Error
			if !errors.As(err, &se) || se.Code != silo.CodeUnavailable || !strings.HasPrefix(se.Message, tc.want) {
				t.Fatalf("error = %v, want CodeUnavailable %q...", err, tc.want)
			}
			if strings.Contains(se.Message, "function") {
				t.Errorf("the message blames the function: %q", se.Message)
			}
		})
	}

	release()
	if v, err := dir.View(context.Background(), "acme"); err != nil || v.Account.ID != "acme" {
		t.Fatalf("View once the store is free = %v, %v", v, err)
	}
	if _, err := dir.Key(context.Background(), "k1"); !errors.Is(err, silo.ErrNotFound) {
		t.Fatalf("Key once the store is free = %v, want not found", err)
	}
}

// TestInvalidateDuringReadIsNotJoined: a request that comes after an
// account's invalidation does not get the result of a read that began
// before it (must not: a key revoked or an account suspended would be
// served from the old read), and that read's result is not cached; the
// request that began before still gets its read (must).
func TestInvalidateDuringReadIsNotJoined(t *testing.T) {
	g, dir, _ := newGated(t, time.Minute)
	g.close("acme")
	before := make(chan *dataplane.View, 1)
	go func() {
		v, err := dir.View(context.Background(), "acme")
		if err != nil {
			t.Error(err)
		}
		before <- v
	}()
	for g.count("acme") == 0 {
		time.Sleep(time.Millisecond)
	}
	setState(t, g.Store, "acme", silo.StateSuspended)
	dir.Invalidate("acme")
	after, err := dir.View(context.Background(), "acme") // the old read is still held
	if err != nil {
		t.Fatal(err)
	}
	if after.Account.State != silo.StateSuspended {
		t.Errorf("a request after the invalidation sees state %s, want suspended", after.Account.State)
	}
	g.open("acme") // the old read ends after the new one
	if v := <-before; v.Account.State != silo.StateActive {
		t.Errorf("the request before the change sees %s, want active (what it read)", v.Account.State)
	}
	if again, _ := dir.View(context.Background(), "acme"); again.Account.State != silo.StateSuspended {
		t.Errorf("the cache holds state %s, want suspended", again.Account.State)
	}
}

func setState(t *testing.T, st store.Store, id silo.AccountID, s silo.State) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		a.State = s
		return tx.UpdateAccount(a)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGatewaySaysSiloWaited: through the real gateway, a request of a
// tenant whose view silo cannot read in time (every reader connection of
// the store taken) gets 503 saying silo could not read the account, not
// that the function was slow (must not); once the store is free, the same
// request reaches the function (must).
func TestGatewaySaysSiloWaited(t *testing.T) {
	_, dir, st := newGated(t, 50*time.Millisecond)
	plain, key, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutKey(key) }); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{BaseDomain: "localhost"}, dir, gateway.InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req gateway.Request) (gateway.Response, error) {
		return gateway.Response{Body: []byte("ran " + fn)}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		r := httptest.NewRequest("POST", "http://localhost/t/acme/findings", nil)
		r.Header.Set("Authorization", "Bearer "+plain)
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if _, err := dir.Key(context.Background(), key.ID); err != nil { // cached: the key is not what waits
		t.Fatal(err)
	}
	release := holdReaders(t, st)
	code, body := get()
	if code != 503 || !strings.Contains(body, "silo could not read account acme's configuration within 50ms") || strings.Contains(body, "function") {
		t.Errorf("with the store stuck: %d %s; want 503 saying silo could not read the account", code, body)
	}
	release()
	if code, body := get(); code != 200 || body != "ran ingest" {
		t.Errorf("with the store free: %d %s; want 200 from the function", code, body)
	}
}

// holdReaders takes every reader connection of st (it keeps max(4,
// GOMAXPROCS)) until the returned function is called.
func holdReaders(t *testing.T, st *sqlite.Store) func() {
	t.Helper()
	pool := max(4, runtime.GOMAXPROCS(0))
	release := make(chan struct{})
	var in, held sync.WaitGroup
	in.Add(pool)
	for range pool {
		held.Add(1)
		go func() {
			defer held.Done()
			_ = st.View(context.Background(), func(store.Tx) error {
				in.Done()
				<-release
				return nil
			})
		}()
	}
	in.Wait()
	var once sync.Once
	stop := func() { once.Do(func() { close(release); held.Wait() }) }
	t.Cleanup(stop)
	return stop
}
