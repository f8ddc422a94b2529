package aws_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// serverOn returns another provider on org, as a second silo server over
// the same organization would build it.
func serverOn(t *testing.T, org *awstest.Org, edit ...func(*siloaws.Config)) *siloaws.Provider {
	t.Helper()
	cfg := siloaws.Config{AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond}
	for _, e := range edit {
		e(&cfg)
	}
	p, err := siloaws.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rendezvous holds the first k Organizations MoveAccount calls made after
// arm until all k have arrived, so that k claimers move one pool account
// at the same moment, and records the error codes AWS answered them.
type rendezvous struct {
	k  int
	op string // service.operation of the calls held

	mu      sync.Mutex
	armed   bool
	arrived int
	all     chan struct{}
	codes   []string // the answers to the held calls: "" for success
}

func newRendezvous(k int) *rendezvous { return newRendezvousOn(k, "MoveAccount") }

// newRendezvousOn holds k calls of Organizations operation op instead.
func newRendezvousOn(k int, op string) *rendezvous {
	return &rendezvous{k: k, op: "Organizations." + op, all: make(chan struct{})}
}

func (r *rendezvous) arm() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed = true
}

// met reports whether all k calls arrived together.
func (r *rendezvous) met() bool {
	select {
	case <-r.all:
		return true
	default:
		return false
	}
}

func (r *rendezvous) install(cfg *siloaws.Config) {
	cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("silo-rendezvous", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx) != r.op {
				return next.HandleInitialize(ctx, in)
			}
			r.mu.Lock()
			held := r.armed && r.arrived < r.k
			if held {
				if r.arrived++; r.arrived == r.k {
					close(r.all)
				}
			}
			r.mu.Unlock()
			if !held {
				return next.HandleInitialize(ctx, in)
			}
			select {
			case <-r.all:
			case <-time.After(20 * time.Second): // met reports it
			}
			out, md, err := next.HandleInitialize(ctx, in)
			code := ""
			var ae smithy.APIError
			if errors.As(err, &ae) {
				code = ae.ErrorCode()
			} else if err != nil {
				code = err.Error()
			}
			r.mu.Lock()
			r.codes = append(r.codes, code)
			r.mu.Unlock()
			return out, md, err
		}), middleware.After)
	})
}

// TestTwoServersRaceForOnePoolAccount makes two providers (two silo
// servers over one organization) claim the pool's only account at the
// same moment: both move it out of OU "pool" together. Exactly one claim
// wins it; the other is answered that the account is gone and onboards
// with a new AWS account. Without the compare-and-swap (a move that
// ignored its source, or a claim that took "already in the destination"
// for success) both would rename the one account and one tenant would be
// left without an account of its own. The claimers are of one kind (AWS
// answers the loser that the account is already in the destination) and
// of two kinds (that it is no longer under the source parent).
func TestTwoServersRaceForOnePoolAccount(t *testing.T) {
	for _, kinds := range [][2]silo.Kind{{silo.KindTenant, silo.KindTenant}, {silo.KindTenant, silo.KindDeveloper}} {
		t.Run(string(kinds[0])+"-"+string(kinds[1]), func(t *testing.T) { raceForOnePoolAccount(t, kinds) })
	}
}

func raceForOnePoolAccount(t *testing.T, kinds [2]silo.Kind) {
	ctx := context.Background()
	r := newRendezvous(2)
	p1, org := newAWS(t, pooled(1), r.install)
	p2 := serverOn(t, org, pooled(1), r.install)
	if err := p1.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := p1.Pool(ctx)
	if err != nil || len(st.Ready) != 1 {
		t.Fatalf("pool = %+v, %v; want 1 ready", st, err)
	}
	pooledID := st.Ready[0]
	r.arm()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []struct {
		p  *siloaws.Provider
		id silo.AccountID
	}{{p1, "acme"}, {p2, "globex"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.p.CreateAccount(ctx, c.id, kinds[i])
		}()
	}
	wg.Wait()
	if !r.met() {
		t.Fatalf("the two claims did not move the pool account at the same moment (codes %v); the test did not race", r.codes)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CreateAccount #%d: %v", i+1, err)
		}
	}
	// Must not: one AWS account for both. Must: each its own, one of them
	// the pool's.
	fresh := serverOn(t, org)
	acme, globex := awsIDOf(t, fresh, "acme"), awsIDOf(t, fresh, "globex")
	if acme == globex {
		t.Fatalf("acme and globex share AWS account %s", acme)
	}
	if (acme == pooledID) == (globex == pooledID) {
		t.Errorf("acme is %s, globex %s; want exactly one of them the pool's %s", acme, globex, pooledID)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != 2 {
		t.Errorf("Organizations.CreateAccount called %d times, want 2 (the pool's and the loser's)", n)
	}
	slices.Sort(r.codes)
	if len(r.codes) != 2 || r.codes[0] != "" || r.codes[1] == "" {
		t.Errorf("the held moves were answered %q; want one success and one refusal", r.codes)
	}
	units := ous(t, accountClients(org, ""))
	for i, a := range []string{acme, globex} {
		want := map[silo.Kind]string{silo.KindTenant: "tenants", silo.KindDeveloper: "developers"}[kinds[i]]
		if got := org.Parent(a); got != units[want] {
			t.Errorf("AWS account %s is in %q, want OU %s %q", a, got, want, units[want])
		}
	}
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if _, err := fresh.KeyInfo(ctx, id); err != nil {
			t.Errorf("KeyInfo(%s): %v", id, err)
		}
	}
	if after, err := fresh.Pool(ctx); err != nil || len(after.Ready) != 0 || len(after.Taken) != 0 {
		t.Errorf("pool after the race = %+v, %v; want empty, nothing left taken", after, err)
	}
	// Must not: a claiming tag left on the account, the winner's or the
	// loser's. The twin, where both stay because both claims stopped, is
	// TestPoolRaceThenCrashIsNotAdopted.
	if keys := claimingKeys(org.Tags(pooledID)); len(keys) != 0 {
		t.Errorf("the pool account the race was for still carries %v; want no claiming tag", keys)
	}
}

// claimingKeys returns the silo:claiming keys among tags, sorted.
func claimingKeys(tags map[string]string) []string {
	var out []string
	for k := range tags {
		if strings.HasPrefix(k, "silo:claiming:") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestTwoServersClaimFromOnePool onboards 12 tenants at once, 6 through
// each of two providers, from a pool of 6: no pool account goes to two
// tenants, every tenant gets one AWS account of its own, and every pool
// account is either a tenant's or still ready (none left out of the pool).
func TestTwoServersClaimFromOnePool(t *testing.T) {
	ctx := context.Background()
	const size, tenants = 6, 12
	p1, org := newAWS(t, pooled(size))
	p2 := serverOn(t, org, pooled(size))
	if err := p1.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := p1.Pool(ctx)
	if err != nil || len(st.Ready) != size {
		t.Fatalf("pool = %+v, %v; want %d ready", st, err, size)
	}
	var wg sync.WaitGroup
	errs := make([]error, tenants)
	for i := range tenants {
		p := []*siloaws.Provider{p1, p2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.CreateAccount(ctx, silo.AccountID(fmt.Sprintf("t%d", i)), silo.KindTenant)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	fresh := serverOn(t, org)
	owner := map[string]silo.AccountID{}
	for i := range tenants {
		id := silo.AccountID(fmt.Sprintf("t%d", i))
		a := awsIDOf(t, fresh, id)
		if prev, dup := owner[a]; dup {
			t.Errorf("AWS account %s belongs to %s and %s", a, prev, id)
		}
		owner[a] = id
	}
	ids, err := fresh.Accounts(ctx)
	if err != nil || len(ids) != tenants {
		t.Errorf("Accounts = %v, %v; want the %d tenants", ids, err, tenants)
	}
	after, err := fresh.Pool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Taken) != 0 {
		t.Errorf("pool accounts left out of the pool: %+v", after.Taken)
	}
	claimed := 0
	for _, a := range st.Ready {
		_, isTenant := owner[a]
		if isTenant {
			claimed++
		}
		if isTenant == slices.Contains(after.Ready, a) {
			t.Errorf("pool account %s: a tenant's %v, still ready %v; want exactly one", a, isTenant, !isTenant)
		}
	}
	if claimed == 0 {
		t.Errorf("no tenant was onboarded from the pool")
	}
	if n, want := org.OrgCalls()["CreateAccount"], size+tenants-claimed; n != want {
		t.Errorf("Organizations.CreateAccount called %d times, want %d (%d for the pool, one per tenant not served from it)", n, want, size)
	}
}

// slowMoves moves clock on by d at every Organizations MoveAccount
// answer, as a server paused for d between its claim's steps would see.
func slowMoves(clock *testClock, d time.Duration) func(*siloaws.Config) {
	return func(cfg *siloaws.Config) {
		cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("silo-slow-move", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx) == "Organizations.MoveAccount" {
					clock.advance(d)
				}
				return out, md, err
			}), middleware.After)
		})
	}
}

// TestPoolSlowClaimGivesUp: a claim that took more than half of ClaimTimeout
// to move its pool account (another server may already count the account
// as abandoned) does not go on to own it: the account stays out of the
// pool with no owner, to be returned, and the onboarding asks AWS for an
// account of its own. Its twin, a claim at normal speed, takes the pool
// account. The provider's clock is the test's, so that only the move
// takes time, and only as much as the test says, however busy the
// machine.
func TestPoolSlowClaimGivesUp(t *testing.T) {
	const timeout = time.Hour
	for _, slow := range []bool{true, false} {
		t.Run(fmt.Sprintf("slow=%v", slow), func(t *testing.T) {
			ctx := context.Background()
			delay := time.Duration(0)
			if slow {
				delay = timeout/2 + time.Millisecond
			}
			clock := &testClock{at: time.Now()}
			p, _ := newAWS(t, pooled(1), func(c *siloaws.Config) { c.ClaimTimeout = timeout }, slowMoves(clock, delay))
			siloaws.SetClock(p, clock.now)
			if err := p.FillPool(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := p.Pool(ctx)
			if err != nil || len(st.Ready) != 1 {
				t.Fatalf("pool = %+v, %v; want 1 ready", st, err)
			}
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			got := awsIDOf(t, p, "acme")
			after, err := p.Pool(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slow {
				if got != st.Ready[0] || len(after.Taken) != 0 {
					t.Errorf("acme is %s (pool after: %+v); want the pool's %s, nothing left taken", got, after, st.Ready[0])
				}
				return
			}
			if got == st.Ready[0] {
				t.Errorf("a claim slower than half of ClaimTimeout kept the pool account %s", got)
			}
			if len(after.Taken) != 1 || after.Taken[0].AWSAccountID != st.Ready[0] || after.Taken[0].Account != "" {
				t.Errorf("pool after a slow claim = %+v; want %s taken with no owner", after, st.Ready[0])
			}
		})
	}
}

// crashAfterMove returns an edit that stops the provider after its first
// Organizations MoveAccount once *armed, whatever AWS answered, as a
// process killed then would.
func crashAfterMove(armed *atomic.Bool) func(*siloaws.Config) {
	return func(cfg *siloaws.Config) {
		var once sync.Once
		cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("silo-crash-after-move", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if armed.Load() && awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx) == "Organizations.MoveAccount" {
					crash := false
					once.Do(func() { crash = true })
					if crash {
						return middleware.InitializeOutput{}, md, errCrash
					}
				}
				return out, md, err
			}), middleware.After)
		})
	}
}

// TestPoolRaceThenCrashIsNotAdopted: two servers race for the pool's only
// account and both stop right after their moves, the winner's done, the
// loser's refused, neither knowing which. The account now carries both
// claiming tags and names no owner, so neither tenant's next onboarding
// may finish the claim (the other could be the winner, still running):
// both get accounts of their own and the pool account stays out of the
// pool, to be returned after ClaimTimeout. Its twin, one claiming tag, is
// TestPoolClaimResumesAfterCrash "after the move", where the onboarding
// finishes the claim.
func TestPoolRaceThenCrashIsNotAdopted(t *testing.T) {
	ctx := context.Background()
	r := newRendezvous(2)
	var armed atomic.Bool
	p1, org := newAWS(t, pooled(1), r.install, crashAfterMove(&armed))
	p2 := serverOn(t, org, pooled(1), r.install, crashAfterMove(&armed))
	if err := p1.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := p1.Pool(ctx)
	if err != nil || len(st.Ready) != 1 {
		t.Fatalf("pool = %+v, %v; want 1 ready", st, err)
	}
	r.arm()
	armed.Store(true)
	var wg sync.WaitGroup
	for i, id := range []silo.AccountID{"acme", "globex"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := []*siloaws.Provider{p1, p2}[i].CreateAccount(ctx, id, silo.KindTenant); err == nil {
				t.Errorf("CreateAccount(%s) went on after its crash", id)
			}
		}()
	}
	wg.Wait()
	if !r.met() {
		t.Fatalf("the two claims did not move the pool account at the same moment (codes %v)", r.codes)
	}
	restarted := serverOn(t, org, pooled(1))
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := restarted.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatalf("CreateAccount(%s) after the crash: %v", id, err)
		}
	}
	if keys := claimingKeys(org.Tags(st.Ready[0])); !slices.Equal(keys, []string{"silo:claiming:acme", "silo:claiming:globex"}) {
		t.Errorf("after both claims stopped the pool account carries claiming tags %v; want acme's and globex's", keys)
	}
	acme, globex := awsIDOf(t, restarted, "acme"), awsIDOf(t, restarted, "globex")
	if acme == globex || acme == st.Ready[0] || globex == st.Ready[0] {
		t.Errorf("acme is %s, globex %s; want two new accounts, neither the pool's %s", acme, globex, st.Ready[0])
	}
	after, err := restarted.Pool(ctx)
	if err != nil || len(after.Taken) != 1 || after.Taken[0].AWSAccountID != st.Ready[0] || after.Taken[0].Account != "" {
		t.Errorf("pool after = %+v, %v; want %s taken with no owner", after, err, st.Ready[0])
	}
}

// TestTwoServersFillOnePool makes two providers fill an empty pool of 3 at
// the same moment: both counted it empty and their first creations are
// held until both arrive. Each counts the pool again after each creation,
// so together they create at most one account more than the size (each
// server's last); without the recount each created 3, twice the size.
// The twin: the pool is full.
func TestTwoServersFillOnePool(t *testing.T) {
	ctx := context.Background()
	const size = 3
	r := newRendezvousOn(2, "CreateAccount")
	p1, org := newAWS(t, pooled(size), r.install)
	p2 := serverOn(t, org, pooled(size), r.install)
	r.arm()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*siloaws.Provider{p1, p2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.FillPool(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if !r.met() {
		t.Fatalf("the two fills did not create at the same moment (codes %v); the test did not race", r.codes)
	}
	st, err := p1.Pool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created := org.OrgCalls()["CreateAccount"]
	if len(st.Ready) < size || created > size+1 {
		t.Errorf("two fills at once: %d ready, %d CreateAccount calls; want at least %d ready and at most %d calls", len(st.Ready), created, size, size+1)
	}
}

// crashAfterWonMove returns an edit that stops a provider after the first
// Organizations MoveAccount that AWS carried out once *armed, of all the
// providers given the same once, as a process killed then would; refused
// moves and later ones go on.
func crashAfterWonMove(armed *atomic.Bool, once *sync.Once) func(*siloaws.Config) {
	return func(cfg *siloaws.Config) {
		cfg.AWS.APIOptions = append(cfg.AWS.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("silo-crash-after-won-move", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil && armed.Load() && awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx) == "Organizations.MoveAccount" {
					crash := false
					once.Do(func() { crash = true })
					if crash {
						return middleware.InitializeOutput{}, md, errCrash
					}
				}
				return out, md, err
			}), middleware.After)
		})
	}
}

// TestPoolRaceWinnerCrashIsAdopted: two servers race for the pool's only
// account; the winner stops right after its move, the loser runs to its
// end (an account of its own) and takes its claiming tag back. The account
// then carries the winner's tag alone, so the winner's retry finishes the
// claim on the pool's account with no new AWS account. Its twin, where the
// loser stopped too and both tags stay, is TestPoolRaceThenCrashIsNotAdopted.
func TestPoolRaceWinnerCrashIsAdopted(t *testing.T) {
	ctx := context.Background()
	r := newRendezvous(2)
	var armed atomic.Bool
	var once sync.Once
	p1, org := newAWS(t, pooled(1), r.install, crashAfterWonMove(&armed, &once))
	p2 := serverOn(t, org, pooled(1), r.install, crashAfterWonMove(&armed, &once))
	if err := p1.FillPool(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := p1.Pool(ctx)
	if err != nil || len(st.Ready) != 1 {
		t.Fatalf("pool = %+v, %v; want 1 ready", st, err)
	}
	pooledID := st.Ready[0]
	r.arm()
	armed.Store(true)
	ids := []silo.AccountID{"acme", "globex"}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, p := range []*siloaws.Provider{p1, p2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.CreateAccount(ctx, ids[i], silo.KindTenant)
		}()
	}
	wg.Wait()
	if !r.met() {
		t.Fatalf("the two claims did not move the pool account at the same moment (codes %v)", r.codes)
	}
	winner, loser := -1, -1 // the winner's claim stopped with an error
	for i, err := range errs {
		if err != nil {
			winner = i
		} else {
			loser = i
		}
	}
	if winner < 0 || loser < 0 {
		t.Fatalf("CreateAccount = %v; want one claim stopped after its move and one finished", errs)
	}
	if keys := claimingKeys(org.Tags(pooledID)); !slices.Equal(keys, []string{"silo:claiming:" + string(ids[winner])}) {
		t.Errorf("after the race the pool account carries claiming tags %v; want the winner's (%s) alone", keys, ids[winner])
	}
	restarted := serverOn(t, org, pooled(1))
	if err := restarted.CreateAccount(ctx, ids[winner], silo.KindTenant); err != nil {
		t.Fatalf("CreateAccount(%s) after its crash: %v", ids[winner], err)
	}
	if got := awsIDOf(t, restarted, ids[winner]); got != pooledID {
		t.Errorf("%s is AWS account %s, want the pool's %s", ids[winner], got, pooledID)
	}
	if got := awsIDOf(t, restarted, ids[loser]); got == pooledID {
		t.Errorf("%s, which lost the race, is the pool's account %s too", ids[loser], pooledID)
	}
	if n := org.OrgCalls()["CreateAccount"]; n != 2 {
		t.Errorf("Organizations.CreateAccount called %d times, want 2 (the pool's and the loser's)", n)
	}
	if keys := claimingKeys(org.Tags(pooledID)); len(keys) != 0 {
		t.Errorf("after the finished claim the account carries %v; want no claiming tag", keys)
	}
}
