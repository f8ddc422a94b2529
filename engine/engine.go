// Package engine plans and applies stacks to accounts: it diffs the
// resources an account must hold under a release against the state recorded
// in the store (by content hash, so an unchanged account costs microseconds),
// applies the changes through a provider in dependency order, journals an
// intent before every provider call, recovers pending intents after a crash,
// and reports drift between recorded state and what the provider holds.
//
// It depends on the contracts in store and provider, never on their
// implementations.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/fanout"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// Config configures an Engine.
type Config struct {
	Store    store.Store
	Provider provider.Provider
	Logger   *slog.Logger
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Concurrency bounds fleet-wide applies; 8 if zero.
	Concurrency int
	// Actor names who is acting in audit events; "cli" if empty.
	Actor string
	// RecoverGrace is how long a pending intent of a process on another
	// host must have gone without a heartbeat before Recover reconciles
	// it (that process may still be working on it). Intents of this host
	// are reconciled as soon as their process is gone. 2 minutes if zero.
	RecoverGrace time.Duration
	// Heartbeat is how often an operation under way moves the Updated
	// time of its pending intents to Now, so that Recover on another host
	// leaves them alone (see ownerLive). RecoverGrace/4 if zero; it must
	// stay well below RecoverGrace.
	Heartbeat time.Duration
	// Host names this machine in the owner of each intent (see
	// newAttempt); os.Hostname if empty. Tests give two engines on one
	// store two hosts to stand for two machines.
	Host string
	// Hook, if set, is called at each step boundary of an apply: after the
	// intents commit ("journaled"), after each provider call ("provider"),
	// and after the results commit ("recorded"); and by Recover before it
	// looks at each pending intent ("recovering"). Progress displays and
	// crash tests use it. It must not block.
	Hook func(Step)
}

// Step is a step boundary reported to Config.Hook.
type Step struct {
	Point   string // "journaled", "provider", "recorded", "recovering"
	Account silo.AccountID
	Change  *silo.Change // for "provider"
}

func (e *Engine) hook(point string, a silo.AccountID, c *silo.Change) {
	if e.cfg.Hook != nil {
		e.cfg.Hook(Step{Point: point, Account: a, Change: c})
	}
}

// Engine plans and applies releases to accounts. It is safe for concurrent
// use; two applies to the same account are serialized by the account's
// Version (the loser gets silo.ErrConflict and re-plans).
type Engine struct {
	cfg       Config
	templates sync.Map // release ID → *Template

	mu      sync.Mutex
	refusal error // see Refuse

	retries *Backoff // see Retries
}

// Retries is the backoff of the retries of failed deletions
// (RetryDeletions, Recover) and onboardings (control.Plane.Resume).
func (e *Engine) Retries() *Backoff { return e.retries }

// FailedRetry records in Retries that work on account a failed with err,
// with a as the store holds it after the attempt, and returns when it is
// due again.
func (e *Engine) FailedRetry(ctx context.Context, a silo.Account, err error) time.Time {
	_ = e.cfg.Store.View(ctx, func(tx store.Tx) error {
		if now, rerr := tx.Account(a.ID); rerr == nil {
			a = now
		}
		return nil
	})
	return e.retries.Failed(a, err)
}

// Refuse makes the engine refuse, with err, every change it would make in
// the provider (creating, applying to, deleting an account or an orphan)
// until Refuse(nil): before anything is written, so a refused change
// leaves the registry as it was. Reads (plans, drift, Ref) go on. The
// serving platform sets it while its provider no longer holds the
// installation's accounts (an emptied or another organization), where a
// change would create accounts in the wrong place or record the real ones
// as gone. Safe for concurrent use.
func (e *Engine) Refuse(err error) {
	e.mu.Lock()
	e.refusal = err
	e.mu.Unlock()
}

// Refusing returns the error Refuse set, nil while changes are allowed.
func (e *Engine) Refusing() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refusal
}

// New returns an Engine.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Actor == "" {
		cfg.Actor = "cli"
	}
	if cfg.RecoverGrace <= 0 {
		cfg.RecoverGrace = 2 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = cfg.RecoverGrace / 4
	}
	cfg.Host = ownerHost(cfg.Host)
	return &Engine{cfg: cfg, retries: newBackoff(cfg.Now)}
}

// Release is a release ready to plan: its parsed stack and artifacts.
type Release struct {
	ID        string
	Stack     *spec.Stack
	Artifacts map[string]string
	// Probe marks a build of silo verify --probe (store.Release.Probe).
	Probe bool
}

// PlanAccount plans release rel for account a. If the desired resources hash
// to the account's StackHash the plan is empty and no recorded state is read.
// A deleted account is not planned: it gets Live's error.
func (e *Engine) PlanAccount(ctx context.Context, a silo.Account, rel Release) (silo.Plan, error) {
	if err := Live(a); err != nil {
		return silo.Plan{Account: a.ID, Kind: a.Kind}, e.Answer(ctx, err)
	}
	desired, err := e.desired(rel, a)
	if err != nil {
		return silo.Plan{}, err
	}
	p := silo.Plan{Account: a.ID, Kind: a.Kind, Release: rel.ID, FromRelease: a.Release, DesiredHash: silo.SetHash(desired), Version: a.Version, Provision: a.State == silo.StateProvisioning}
	if p.DesiredHash == a.StackHash && !p.Provision {
		p.Unchanged = len(desired)
		return p, nil
	}
	var recorded []silo.Resource
	err = e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		recorded, err = tx.Resources(a.ID)
		return err
	})
	if err != nil {
		return silo.Plan{}, fmt.Errorf("plan %s: %w", a.ID, err)
	}
	p.Changes, p.Unchanged = Diff(desired, recorded)
	return p, nil
}

// desired returns the account's desired resources under rel, compiling the
// release's template once per engine.
func (e *Engine) desired(rel Release, a silo.Account) ([]silo.Resource, error) {
	if rel.ID == "" {
		return Desired(rel.Stack, rel.Artifacts, a)
	}
	v, ok := e.templates.Load(rel.ID)
	if !ok {
		t, err := Compile(rel.Stack, rel.Artifacts)
		if err != nil {
			return nil, err
		}
		v, _ = e.templates.LoadOrStore(rel.ID, t)
	}
	return v.(*Template).For(a)
}

// Diff returns the changes that turn current into desired, in apply order
// (creates and updates by dependency order, then deletes in reverse), and
// the number of unchanged resources.
func Diff(desired, current []silo.Resource) (changes []silo.Change, unchanged int) {
	cur := make(map[string]silo.Resource, len(current))
	for _, r := range current {
		cur[r.Key()] = r
	}
	for i := range desired {
		d := desired[i]
		c, ok := cur[d.Key()]
		delete(cur, d.Key())
		switch {
		case !ok:
			changes = append(changes, silo.Change{Op: silo.OpCreate, Type: d.Type, Name: d.Name, Desired: &d})
		case c.Hash == d.Hash:
			unchanged++
		default:
			op := silo.OpUpdate
			if replaces(c, d) {
				op = silo.OpReplace
			}
			changes = append(changes, silo.Change{Op: op, Type: d.Type, Name: d.Name, Desired: &d, Current: &c})
		}
	}
	for _, c := range cur {
		c := c
		changes = append(changes, silo.Change{Op: silo.OpDelete, Type: c.Type, Name: c.Name, Current: &c})
	}
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		ad, bd := a.Op == silo.OpDelete, b.Op == silo.OpDelete
		if ad != bd {
			return !ad
		}
		if a.Type.Order() != b.Type.Order() {
			if ad {
				return a.Type.Order() > b.Type.Order()
			}
			return a.Type.Order() < b.Type.Order()
		}
		return a.Key() < b.Key()
	})
	return changes, unchanged
}

// replaces reports whether changing c into d cannot be done in place: an
// export that now points at a different kind of resource is withdrawn and
// published again.
func replaces(c, d silo.Resource) bool {
	if c.Type != silo.TypeExport {
		return false
	}
	var a, b silo.ExportSpec
	_ = json.Unmarshal(c.Spec, &a)
	_ = json.Unmarshal(d.Spec, &b)
	return (a.Table == "") != (b.Table == "") || (a.Bucket == "") != (b.Bucket == "") || (a.Config == "") != (b.Config == "")
}

// intentKey names the intent of one change of one apply attempt. The
// attempt nonce keeps a retried plan (after a crash, or for a re-created
// account) from colliding with the journal entries of the earlier attempt.
func intentKey(a silo.AccountID, version int64, attempt string, c silo.Change) string {
	return fmt.Sprintf("apply/%s/v%d/%s/%s", a, version, attempt, c.Key())
}

// Apply applies a plan. It journals one intent per change in one
// transaction, makes the provider calls in order, then records the results,
// the account's new release and an audit event in a second transaction. If
// the account changed since the plan was made, Apply returns
// silo.ErrConflict and changes nothing.
func (e *Engine) Apply(ctx context.Context, p silo.Plan) error {
	if !p.Touches() {
		return nil
	}
	if err := e.Refusing(); err != nil {
		return err
	}
	var seqs []int64
	attempt := e.newAttempt()
	err := e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		seqs = seqs[:0]
		a, err := tx.Account(p.Account)
		if err != nil {
			return err
		}
		if err := Live(a); err != nil {
			return err
		}
		if a.Version != p.Version {
			return silo.Errorf(silo.CodeConflict, "account %s changed since the plan was made; plan again", p.Account)
		}
		if err := checkShip(tx, p.Release, a); err != nil {
			return err
		}
		now := e.cfg.Now()
		// Claim the account: bumping its version makes a concurrent apply
		// of the same plan fail the check above.
		a.Updated = now
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		for i := range p.Changes {
			c := p.Changes[i]
			seq, err := tx.AddIntent(store.Intent{Key: intentKey(p.Account, p.Version, attempt, c), Account: p.Account, Action: "apply", Change: &c, State: store.IntentPending, Created: now, Updated: now})
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply %s: %w", p.Account, e.Answer(ctx, err))
	}
	release := e.hold(ctx, seqs...)
	e.hook("journaled", p.Account, nil)
	done := 0
	var applyErr error
	if p.Provision {
		if err := e.cfg.Provider.CreateAccount(ctx, p.Account, p.Kind); err != nil {
			applyErr = fmt.Errorf("create account: %w", err)
		}
	}
	for i, c := range p.Changes {
		if applyErr != nil {
			break
		}
		if err := ctx.Err(); err != nil {
			applyErr = err
			break
		}
		c.Release = p.Release
		if err := e.cfg.Provider.Apply(ctx, p.Account, c); err != nil {
			applyErr = fmt.Errorf("%s %s: %w", c.Op, c.Key(), err)
			break
		}
		e.hook("provider", p.Account, &p.Changes[i])
		done++
	}
	release()
	err = e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		for i, c := range p.Changes {
			if i >= done {
				msg := "not attempted"
				if i == done && applyErr != nil {
					msg = applyErr.Error()
				}
				if err := tx.FinishIntent(seqs[i], store.IntentFailed, msg); err != nil {
					return err
				}
				continue
			}
			if err := record(tx, p.Account, c); err != nil {
				return err
			}
			if err := tx.FinishIntent(seqs[i], store.IntentDone, ""); err != nil {
				return err
			}
		}
		if applyErr != nil {
			return nil
		}
		a, err := tx.Account(p.Account)
		if err != nil {
			return err
		}
		// The hash of what is recorded now, not the plan's word for it: a
		// plan whose changes do not reach its DesiredHash (one edited by
		// hand) leaves an account that the next plan diffs in full.
		held, err := tx.Resources(p.Account)
		if err != nil {
			return err
		}
		a.StackHash, a.Release, a.Updated = silo.SetHash(held), p.Release, e.cfg.Now()
		if a.State == silo.StateProvisioning {
			a.State = silo.StateActive
		}
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"release": p.Release, "from": p.FromRelease, "changes": p.Counts()})
		_, err = tx.AppendAudit(store.AuditEvent{Time: e.cfg.Now(), Actor: e.cfg.Actor, Action: "release.apply", Account: p.Account, Detail: detail})
		return err
	})
	if err != nil {
		return fmt.Errorf("record apply of %s: %w", p.Account, err)
	}
	e.hook("recorded", p.Account, nil)
	if provider.IsPending(applyErr) {
		return errors.Unwrap(applyErr) // provider.Pending: says what happens next
	}
	if applyErr != nil {
		return silo.Errorf(silo.ErrorCode(applyErr), "apply to account %s stopped at %w; fix the cause and run silo apply again", p.Account, applyErr)
	}
	return nil
}

// checkShip refuses to apply stored release id to account a when the rule
// for probe and dev builds (store.CheckShip) forbids it. A release that is
// not stored is neither.
func checkShip(tx store.Tx, id string, a silo.Account) error {
	rel, err := tx.Release(id)
	if errors.Is(err, silo.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return store.CheckShip(rel, &a)
}

func record(tx store.Tx, a silo.AccountID, c silo.Change) error {
	if c.Op == silo.OpDelete {
		return tx.DeleteResource(a, c.Type, c.Name)
	}
	return tx.PutResource(a, *c.Desired)
}

// FleetResult is the outcome of planning or applying one account of a fleet.
type FleetResult struct {
	Plan silo.Plan
	Err  error
}

// PlanFleet plans rel for every account matching f (production included
// when f allows it), calling fn for each plan in account order.
func (e *Engine) PlanFleet(ctx context.Context, rel Release, f store.Filter, fn func(silo.Plan, error) error) error {
	const page = 2000
	f.Limit = page
	for {
		var accts []silo.Account
		if err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			accts, err = tx.Accounts(f)
			return err
		}); err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range accts {
			if a.State == silo.StateDeleting {
				continue
			}
			p, err := e.PlanAccount(ctx, a, rel)
			if err := fn(p, err); err != nil {
				return err
			}
		}
		if len(accts) < page {
			return nil
		}
		f.After = accts[len(accts)-1].ID
	}
}

// ApplyFleet plans and applies rel to every account matching f with bounded
// concurrency, calling progress (serialized) for each account that had
// something to do. It returns the number of accounts changed and the first
// error; it keeps going past failures of single accounts. check, if not
// nil, is asked about each plan that changes something before it is
// applied: a plan it refuses is that account's error, and nothing is
// applied to the account (what an operator confirmed is held to this way,
// as each account is planned again).
func (e *Engine) ApplyFleet(ctx context.Context, rel Release, f store.Filter, check func(silo.Plan) error, progress func(FleetResult)) (int, error) {
	var (
		mu      sync.Mutex
		first   error
		changed int
		g       = fanout.New(e.cfg.Concurrency)
		report  = func(r FleetResult) {
			mu.Lock()
			defer mu.Unlock()
			if r.Err != nil && first == nil {
				first = r.Err
			}
			if r.Err == nil {
				changed++
			}
			if progress != nil {
				progress(r)
			}
		}
	)
	err := e.PlanFleet(ctx, rel, f, func(p silo.Plan, err error) error {
		if err != nil {
			report(FleetResult{Plan: p, Err: err})
			return nil
		}
		if !p.Touches() {
			return nil
		}
		if check != nil {
			if err := check(p); err != nil {
				report(FleetResult{Plan: p, Err: err})
				return nil
			}
		}
		return g.Go(ctx, func() { report(FleetResult{Plan: p, Err: e.Apply(ctx, p)}) })
	})
	g.Wait()
	if err != nil {
		return changed, err
	}
	return changed, first
}
