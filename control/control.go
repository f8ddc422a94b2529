// Package control is the control plane: the registry of accounts and
// tenants, releases, API keys and secrets, on top of the engine; every
// release passes the isolation gate before it becomes current. The CLI
// calls it directly on a local data dir; the server exposes it over HTTP.
//
// It depends on the store and provider contracts and on the engine, never on
// a store or provider implementation, and it never reads a secret value (I3).
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// Builder builds a function's source (a Go package dir or a .wasm file) into
// a content-addressed artifact stored under ArtifactDir, and returns its
// digest; Module returns the bytes of an artifact Build made.
type Builder interface {
	Build(ctx context.Context, source string) (digest string, err error)
	Module(digest string) ([]byte, error)
}

// Config configures a Plane.
type Config struct {
	Store    store.Store
	Provider provider.Provider
	Builder  Builder
	Logger   *slog.Logger
	Now      func() time.Time
	Actor    string
	// Concurrency bounds fleet applies.
	Concurrency int
	// AuditWitness is the path of the audit witness file (see
	// isolation.WithWitness); VerifyAudit checks the log reaches it.
	// Without it VerifyAudit checks the hash chain only.
	AuditWitness string
	// Hook is the engine's step hook (engine.Config.Hook): crash tests
	// use it to stop a process at a step boundary. Gate calls it too, as
	// it starts, with Point "gate" (tests count the gates a command runs).
	Hook func(engine.Step)
	// OnChange, if set, is called in this process after each change the
	// Plane commits (see Announce), before the method returns: the
	// platform drops its cached view of the account there.
	OnChange func(store.Change)
	// Feed, if set, carries each change to the other processes sharing
	// the store (store/postgres implements it); the method that made the
	// change returns only once the announcement is committed.
	Feed store.Feed
	// Ingress, if set, is the provider's own entry point into each
	// account (see Ingress): Show reports the account's URL, and every
	// key issued or revoked is written into the account as well.
	Ingress Ingress
	// Placement, if set, names the release a new account gets instead of
	// the current one; "" keeps the current one. The rollout runner's
	// ReleaseFor is it: during a rollout, an account whose ring has begun
	// gets the rollout's release.
	Placement func(ctx context.Context, a silo.Account) (string, error)
}

// Plane is the control plane. Safe for concurrent use.
//
// Every change of an account's state, keys, secrets, parameters or release
// goes through a Plane method, which announces it (Announce) before it
// returns. Engine is exported for the rollout runner, recovery and
// read-only plans; a caller that changes accounts through it directly
// announces the change itself.
type Plane struct {
	cfg    Config
	Engine *engine.Engine
}

// New returns a Plane.
func New(cfg Config) *Plane {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Actor == "" {
		cfg.Actor = "cli"
	}
	return &Plane{cfg: cfg, Engine: engine.New(engine.Config{
		Store: cfg.Store, Provider: cfg.Provider, Logger: cfg.Logger, Now: cfg.Now,
		Concurrency: cfg.Concurrency, Actor: cfg.Actor, Hook: cfg.Hook,
	})}
}

// EnsureProduction creates the production account on first use and applies
// rel to it. It returns the account. check, if not nil, is asked about the
// plan that applies rel to an existing production account before it is
// applied; what it refuses is returned, and production is not changed.
//
// Two callers at once (two commands on one data dir, two servers on one
// store) may both find no production account: one creates it, and the
// other goes on with that one, waiting while it is being created (see
// awaitProduction).
//
// # Errors
//
// silo.CodeUnavailable when another command or server is still creating
// the production account after productionWait; the provider's and the
// store's errors otherwise.
func (p *Plane) EnsureProduction(ctx context.Context, rel engine.Release, check func(silo.Plan) error) (silo.Account, error) {
	a, _, err := p.ensureProduction(ctx, rel, check)
	return a, err
}

// ensureProduction is EnsureProduction, also reporting whether this call
// created the production account.
func (p *Plane) ensureProduction(ctx context.Context, rel engine.Release, check func(silo.Plan) error) (silo.Account, bool, error) {
	a, err := p.Account(ctx, silo.ProductionID)
	if errors.Is(err, silo.ErrNotFound) {
		a, err = p.Engine.CreateAccount(ctx, silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, Name: "Production"}, rel)
		if !errors.Is(err, engine.ErrProductionExists) {
			return a, err == nil, p.announceAfter(ctx, err, store.Change{Account: silo.ProductionID, What: "create"})
		}
		// Another command or server registered it since the look above
		// (nothing was written here): go on with that one, as if found.
		a, err = p.Account(ctx, silo.ProductionID)
	}
	if err == nil {
		a, err = p.awaitProduction(ctx, a)
	}
	if err != nil {
		return a, false, err
	}
	plan, err := p.Engine.PlanAccount(ctx, a, rel)
	if err != nil {
		return a, false, err
	}
	if check != nil && plan.Touches() {
		if err := check(plan); err != nil {
			return a, false, err
		}
	}
	if len(plan.Changes) == 0 {
		return a, false, p.Engine.Apply(ctx, plan)
	}
	return a, false, p.announceAfter(ctx, p.Engine.Apply(ctx, plan), store.Change{Account: silo.ProductionID, What: "release"})
}

// productionWait bounds how long awaitProduction waits for another command
// or server that is creating the production account (a variable for
// tests); productionPoll is how often it looks.
var productionWait = 10 * time.Second

const productionPoll = 25 * time.Millisecond

// awaitProduction returns the production account a once no process is
// creating it: at once when it is not provisioning, or provisioning with no
// pending intent (a creation a crash or the provider left unfinished, which
// the caller's apply finishes, as Resume does); otherwise, while another
// command or server is between registering it and making it active, it
// looks again every productionPoll. The wait holds no lock and no
// transaction (each look is a read of its own), so the other command
// finishes undisturbed; applying beside it instead would make the same
// provider calls twice at once. On the local provider a creation takes
// well under productionWait; a slower one (a hosted provider) gets a
// retryable silo.CodeUnavailable.
func (p *Plane) awaitProduction(ctx context.Context, a silo.Account) (silo.Account, error) {
	var timeout <-chan time.Time
	for {
		if a.State != silo.StateProvisioning {
			return a, nil
		}
		busy := false
		err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			if a, err = tx.Account(silo.ProductionID); err != nil {
				return err
			}
			pending, err := tx.PendingIntents()
			for _, in := range pending {
				busy = busy || in.Account == silo.ProductionID
			}
			return err
		})
		if err != nil {
			return a, fmt.Errorf("look at the production account: %w", err)
		}
		if a.State != silo.StateProvisioning || !busy {
			return a, nil
		}
		if timeout == nil {
			t := time.NewTimer(productionWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-timeout:
			return a, silo.Errorf(silo.CodeUnavailable, "another command or server is creating the production account at this moment; try again once it finishes")
		case <-time.After(productionPoll):
		}
	}
}

// productionStays is the error of an account's creation that failed (err)
// after the same request created the production account on release rel:
// that account stays, and so does rel as the current release (stored, and
// made current with its audit event, by whoever started the installation:
// the production account runs it), and the error says so.
//
// The production account is not taken back. It is the installation's, not
// the failed account's: the failed account, once registered, stays (in
// state provisioning, to be finished or deleted; see
// engine.CreateAccountThen), to run beside it and read its shared offers.
// On a hosted provider it is a real account, slow to create and costly to
// close (an AWS member account cannot be closed and created again at
// will), so taking it back would make every retry create and close one.
// And no lock keeps another command, or a server on the same store, from
// starting to use it between its creation and this failure. The release
// stays current for the same reasons: the production account runs it.
func productionStays(kind silo.Kind, id silo.AccountID, rel string, err error) error {
	what := string(kind)
	if kind == silo.KindDeveloper {
		what = "developer account"
	}
	stays := fmt.Sprintf("the production account was created on release %s and stays, and %s stays the current release (they serve every account of the installation); %s %s was not created: ", rel, rel, what, id)
	var se *silo.Error
	if errors.As(err, &se) && se.Message != "" {
		return &silo.Error{Code: se.Code, Message: stays + se.Message, Err: err}
	}
	return fmt.Errorf("%s%w", stays, err) // internal: its text stays out of what the API shows
}

// noKeyIssued adds to err, the error of an onboarding of id that failed
// with the account registered, that its first API key was not issued.
func noKeyIssued(id silo.AccountID, err error) error {
	more := fmt.Sprintf("; no API key was issued: silo keys create %s issues one once it is active", id)
	var se *silo.Error
	if errors.As(err, &se) && se.Message != "" {
		return &silo.Error{Code: se.Code, Message: se.Message + more, Err: err}
	}
	return fmt.Errorf("%w%s", err, more)
}

// CheckCreate returns the error CreateAccount refuses req with on rel
// before it writes anything: an ID that is not a tenant ID, a kind that
// cannot be created (an empty kind is a tenant), parameters rel's stack
// does not accept. A caller that must store rel first (the first account
// of a new installation) checks with it, so that a refused request stores
// nothing.
//
// # Errors
//
// CodeInvalid, one sentence for the first problem found.
func CheckCreate(rel engine.Release, req CreateRequest) error {
	if req.Kind == "" {
		req.Kind = silo.KindTenant
	}
	if _, err := checkRequest(req); err != nil {
		return err
	}
	_, err := rel.Stack.ResolveParams(req.Params)
	return err
}

// DeveloperPrefix begins the ID of every developer account (dev-NAME, one
// per developer: silo dev), and no other new account's: a tenant or
// environment named dev-NAME would take developer NAME's account. Accounts
// of another kind created before the rule keep their names.
const DeveloperPrefix = "dev-"

// checkRequest checks what CreateAccount refuses without a release: the
// ID, the kind, the ID's prefix for the kind (DeveloperPrefix) and the time
// to live.
func checkRequest(req CreateRequest) (silo.TenantID, error) {
	tid, err := silo.ParseTenantID(req.ID)
	if err != nil {
		return "", err
	}
	if req.Kind == silo.KindProduction || !req.Kind.Valid() {
		return "", silo.Errorf(silo.CodeInvalid, "cannot create an account of kind %q; use tenant, developer or environment (the one production account is created automatically)", req.Kind)
	}
	if req.Kind != silo.KindDeveloper && strings.HasPrefix(req.ID, DeveloperPrefix) {
		return "", silo.Errorf(silo.CodeInvalid, "invalid ID %q: names starting with %q are kept for developer accounts (silo dev makes %sNAME for each developer); choose another name", req.ID, DeveloperPrefix, DeveloperPrefix)
	}
	return tid, CheckTTL(req.Kind, req.TTL)
}

// CreateRequest asks for a new tenant, developer or environment account.
type CreateRequest struct {
	ID      string
	Kind    silo.Kind
	Name    string
	Params  map[string]string
	TTL     time.Duration // environments only, and required there (CheckTTL)
	WithKey bool          // issue a first API key
}

// Created is the result of CreateAccount: the account and, when asked for,
// its first API key in plain text (shown once, never stored).
type Created struct {
	Account silo.Account `json:"account"`
	Key     string       `json:"key,omitempty"`
	KeyID   string       `json:"key_id,omitempty"`
}

// CreateAccount onboards an account of kind tenant, developer or
// environment on the current release (or the one Config.Placement names),
// creating the production account first if it does not exist. It changes
// no other account: an existing production account stays on its release.
//
// # Errors
//
// What CheckCreate refuses, before anything is written; CodeFailedCheck,
// before anything is written, when the account would break isolation under
// its release (GateAccount: a current release that never passed the gate).
// If the account's
// creation fails after this call created the production account, the
// production account stays and the error says so (see productionStays).
// CodeUnavailable, with nothing written, while another command or server
// is still creating the production account (see EnsureProduction).
func (p *Plane) CreateAccount(ctx context.Context, req CreateRequest) (Created, error) {
	if req.Kind == "" {
		req.Kind = silo.KindTenant
	}
	tid, err := checkRequest(req)
	if err != nil {
		return Created{}, err
	}
	cur, err := p.CurrentRelease(ctx)
	if err != nil {
		return Created{}, err
	}
	a := silo.Account{ID: silo.AccountID(tid), Kind: req.Kind, Name: req.Name, Params: req.Params}
	rel, err := p.placement(ctx, a, cur)
	if err != nil {
		return Created{}, err
	}
	if _, err := rel.Stack.ResolveParams(req.Params); err != nil {
		return Created{}, err
	}
	if err := p.GateAccount(ctx, rel, a); err != nil {
		return Created{}, err
	}
	madeProduction, err := p.productionFor(ctx, cur)
	if err != nil {
		return Created{}, fmt.Errorf("production account: %w", err)
	}
	if req.TTL > 0 {
		exp := p.cfg.Now().Add(req.TTL).UTC()
		a.Expires = &exp
	}
	// Without an Ingress (whose key record must be written into the
	// account once it exists), the first key is stored in the transaction
	// that makes the account active: one commit fewer per onboarding.
	var plain string
	var key *store.APIKey
	var then func(store.Tx, silo.Account) error
	if req.WithKey && p.cfg.Ingress == nil {
		var k store.APIKey
		if plain, k, err = p.newKey(a.ID, "default"); err != nil {
			return Created{}, err
		}
		then = func(tx store.Tx, _ silo.Account) error {
			key = &k
			return p.putKey(tx, k)
		}
	}
	a, err = p.Engine.CreateAccountThen(ctx, a, rel, then)
	if err != nil && req.WithKey {
		// Registered (provisioning failed), it has no key; refused before
		// that, nothing of it exists to say so of.
		if cur, gerr := p.Account(context.WithoutCancel(ctx), a.ID); gerr == nil && cur.State == silo.StateProvisioning {
			err = noKeyIssued(a.ID, err)
		}
	}
	if err != nil && madeProduction {
		err = productionStays(a.Kind, a.ID, rel.ID, err)
	}
	err = p.announceAfter(ctx, err, store.Change{Account: a.ID, What: "create"})
	out := Created{Account: a}
	if err != nil {
		return out, err
	}
	if key != nil && a.State == silo.StateActive {
		out.Key, out.KeyID = plain, key.ID
		return out, nil
	}
	if req.WithKey {
		key, k, err := p.IssueKey(ctx, a.ID, "default")
		if err != nil {
			return out, err
		}
		out.Key, out.KeyID = key, k.ID
	}
	return out, nil
}

// Account returns one account.
func (p *Plane) Account(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	var a silo.Account
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Account(id)
		return err
	})
	if errors.Is(err, silo.ErrNotFound) {
		return a, silo.Errorf(silo.CodeNotFound, "no account %q; silo tenant list shows the accounts", id)
	}
	return a, err
}

// LiveAccount returns one account that is not deleted: what an action on
// an account looks it up with.
//
// # Errors
//
// CodeNotFound for an account the registry never held, and for a deleted
// one (engine.Live's answer, saying how to start over under its ID).
func (p *Plane) LiveAccount(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	a, err := p.Account(ctx, id)
	if err != nil {
		return a, err
	}
	return a, p.Engine.Answer(ctx, engine.Live(a))
}

// Accounts lists accounts. An unknown kind or state in f is an error with
// code CodeInvalid, not an empty list.
func (p *Plane) Accounts(ctx context.Context, f store.Filter) ([]silo.Account, error) {
	if f.Kind != "" && !f.Kind.Valid() {
		return nil, silo.Errorf(silo.CodeInvalid, "unknown account kind %q; use one of %s", f.Kind, joinAll(silo.Kinds))
	}
	if f.State != "" && !slices.Contains(silo.States, f.State) {
		return nil, silo.Errorf(silo.CodeInvalid, "unknown account state %q; use one of %s", f.State, joinAll(silo.States))
	}
	var out []silo.Account
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Accounts(f)
		return err
	})
	return out, err
}

// Detail is everything silo tenant show prints about an account.
type Detail struct {
	Account   silo.Account     `json:"account"`
	Resources []silo.Resource  `json:"resources"`
	Keys      []store.APIKey   `json:"keys"`
	DataKey   provider.KeyInfo `json:"data_key"`
	// Ref is the provider's own reference to the account (an AWS account
	// ID and OU path; the local account directory); nil while the
	// provider holds no such account (provisioning, deleted, lost). Set for
	// a deleted account whose deletion did not destroy what the provider
	// holds (silo tenant delete destroys it).
	Ref *provider.AccountRef `json:"ref,omitempty"`
	// URL is where the provider serves the account's routes (with an
	// Ingress, once the account has routes); empty when silo's gateway
	// serves them.
	URL   string           `json:"url,omitempty"`
	Drift []silo.DriftItem `json:"drift"`
	// Problems is what is wrong with the account and what to do (see
	// AccountProblems); when it is not empty, DataKey and Drift may be
	// missing.
	Problems []Problem `json:"problems,omitempty"`
	// Unread, when not empty, says in a few words why the provider's
	// state of the resources was not read ("AWS unreachable"): each
	// resource is then in an unknown state, not known to be applied, and
	// Drift is empty.
	Unread string `json:"unread,omitempty"`
}

// Show returns an account's detail, including drift against the provider.
func (p *Plane) Show(ctx context.Context, id silo.AccountID) (Detail, error) {
	var d Detail
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if d.Account, err = tx.Account(id); err != nil {
			return err
		}
		if d.Resources, err = tx.Resources(id); err != nil {
			return err
		}
		d.Keys, err = tx.Keys(id)
		return err
	})
	if errors.Is(err, silo.ErrNotFound) {
		return d, silo.Errorf(silo.CodeNotFound, "no account %q; silo tenant list shows the accounts", id)
	}
	if err != nil {
		return d, err
	}
	if d.Account.State == silo.StateDeleted {
		// What a deletion that did not destroy it left in the provider.
		if ref, err := p.cfg.Provider.Ref(ctx, id); err == nil {
			d.Ref = &ref
		}
		return d, nil
	}
	// An account half created, half deleted, with damaged files or that
	// the provider cannot read is shown with what is wrong rather than
	// refused: every command agrees that it exists and in which state.
	// The first read that finds the provider unreachable (down) ends the
	// reads: each further one would wait as long to fail the same way.
	ref, err := p.cfg.Provider.Ref(ctx, id)
	if err == nil {
		d.Ref = &ref
	} else if _, _, down := p.readFailure(err); down && !errors.Is(err, silo.ErrNotFound) {
		d.Problems = p.accountProblems(ctx, d.Account, err)
		d.Unread, _, _ = p.readFailure(err)
		return d, nil
	}
	d.URL = p.accountURL(ctx, id)
	_, err = p.cfg.Provider.Resources(ctx, id)
	if d.Problems = p.accountProblems(ctx, d.Account, err); len(d.Problems) > 0 {
		if err != nil && !errors.Is(err, silo.ErrNotFound) {
			if why, _, down := p.readFailure(err); down {
				d.Unread = why
				return d, nil
			}
		}
		d.DataKey, _ = p.cfg.Provider.KeyInfo(ctx, id)
		if d.Drift, err = p.Engine.Drift(ctx, id); errors.Is(err, silo.ErrNotFound) {
			d.Drift, d.Unread = nil, "the provider holds no account for it"
		} else if err != nil {
			d.Drift = nil
			d.Unread, _, _ = p.readFailure(err)
		}
		return d, nil
	}
	if d.DataKey, err = p.cfg.Provider.KeyInfo(ctx, id); err != nil {
		return d, err
	}
	d.Drift, err = p.Engine.Drift(ctx, id)
	return d, err
}

// UpdateParams changes an account's parameters (and its name, if name is
// not empty) and applies them: to a tenant with the current release, as
// onboarding would; to a developer or an environment account with the
// release it runs (a developer's own build, which silo dev applies), so
// that a parameter never moves such an account to another release.
//
// # Errors
//
// CodeNotFound for an unknown or a deleted account and CodeConflict for one
// being deleted, with nothing recorded; CodeInvalid for the production
// account and for parameters that do not fit the release; CodeFailedCheck,
// with nothing recorded, when the account would break isolation under the
// release (GateAccount); an apply error after the change is recorded.
func (p *Plane) UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (silo.Plan, error) {
	if err := p.Engine.Refusing(); err != nil {
		return silo.Plan{}, err // nothing recorded: the apply that follows would be refused
	}
	rel, err := p.CurrentRelease(ctx)
	if err != nil {
		return silo.Plan{}, err
	}
	var a silo.Account
	err = p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if a, err = tx.Account(id); errors.Is(err, silo.ErrNotFound) {
			return silo.Errorf(silo.CodeNotFound, "no account %q; silo tenant list shows the accounts", id)
		} else if err != nil {
			return err
		}
		if err := engine.Live(a); err != nil {
			return err
		}
		if a.Kind == silo.KindProduction {
			return silo.Errorf(silo.CodeInvalid, "the production account has no parameters")
		}
		if a.State == silo.StateDeleting {
			// Refused before anything is written: nothing to apply to.
			return silo.Errorf(silo.CodeConflict, "account %s is being deleted and its parameters cannot change", id)
		}
		// Read in the same transaction as the account, so that the
		// release is the one it runs when the parameters change.
		if rel, err = ownRelease(tx, a, rel); err != nil {
			return err
		}
		params := map[string]string{}
		for k, v := range a.Params {
			params[k] = v
		}
		for k, v := range set {
			if v == "" {
				delete(params, k)
			} else {
				params[k] = v
			}
		}
		if _, err := rel.Stack.ResolveParams(params); err != nil {
			return err
		}
		a.Params = params
		if err := gateAccount(ctx, tx, rel, a); err != nil {
			return err
		}
		if name != "" {
			a.Name = name
		}
		a.Updated = p.cfg.Now()
		if err := tx.UpdateAccount(a); err != nil {
			return err
		}
		a.Version++
		_, err = tx.AppendAudit(store.AuditEvent{Time: a.Updated, Actor: p.cfg.Actor, Action: "account.update", Account: id, Detail: jsonDetail(map[string]any{"params": set})})
		return err
	})
	if err != nil {
		return silo.Plan{}, p.Engine.Answer(ctx, err)
	}
	plan, err := p.Engine.PlanAccount(ctx, a, rel)
	if err != nil {
		return plan, p.announceAfter(ctx, err, store.Change{Account: id, What: "params"})
	}
	return plan, p.announceAfter(ctx, p.Engine.Apply(ctx, plan), store.Change{Account: id, What: "params"})
}

// ownRelease returns the release a parameter change applies to a (see
// UpdateParams): the one a runs for a developer or an environment account
// (a developer's own build, the release an environment was made for), else
// (and while a runs none yet) current.
func ownRelease(tx store.Tx, a silo.Account, current engine.Release) (engine.Release, error) {
	if a.Kind != silo.KindDeveloper && a.Kind != silo.KindEnvironment || a.Release == "" || a.Release == current.ID {
		return current, nil
	}
	r, err := tx.Release(a.Release)
	if err != nil {
		return current, fmt.Errorf("read release %s of account %s: %w", a.Release, a.ID, err)
	}
	rel, err := engine.LoadRelease(r)
	if err != nil {
		return current, fmt.Errorf("load release %s of account %s: %w", a.Release, a.ID, err)
	}
	return rel, nil
}

// AuditLog returns up to limit audit entries after sequence number after,
// oldest first, those of account acct only when acct is not empty. limit is
// capped at 1000.
func (p *Plane) AuditLog(ctx context.Context, after int64, limit int, acct silo.AccountID) ([]store.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	out := []store.AuditEntry{}
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		for len(out) < limit {
			page, err := tx.Audit(after, 1000)
			if err != nil || len(page) == 0 {
				return err
			}
			for _, e := range page {
				if (acct == "" || e.Event.Account == acct) && len(out) < limit {
					out = append(out, e)
				}
			}
			after = page[len(page)-1].Seq
		}
		return nil
	})
	return out, err
}

// VerifyAudit checks the whole audit log's hash chain and, when the plane
// was configured with an AuditWitness, that the log still reaches the
// witnessed head (so truncation is detected too). It returns the number of
// entries verified.
func (p *Plane) VerifyAudit(ctx context.Context) (int, error) {
	if p.cfg.AuditWitness == "" {
		return p.verifyChain(ctx)
	}
	res, err := isolation.VerifyAudit(ctx, p.cfg.Store, p.cfg.AuditWitness)
	return res.Entries, err
}

// verifyChain checks the hash chain alone, page by page.
func (p *Plane) verifyChain(ctx context.Context) (int, error) {
	var prev string
	var after int64
	total := 0
	for {
		var page []store.AuditEntry
		if err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			page, err = tx.Audit(after, 1000)
			return err
		}); err != nil {
			return total, err
		}
		n, err := store.VerifyChain(prev, after, page)
		total += n
		if err != nil {
			return total, silo.Errorf(silo.CodeFailedCheck, "audit log is not intact: %v", err)
		}
		if len(page) == 0 {
			return total, nil
		}
		last := page[len(page)-1]
		prev, after = last.Hash, last.Seq
	}
}

// DataDirWritable checks that dir exists (creating it) and is writable, and
// says what to do if not, naming the data dir as the user gave it (name).
func DataDirWritable(dir, name string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "cannot create the data dir %s: %v; choose a writable --data-dir", name, durable.Cause(err))
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err == nil {
		f.Close()
		err = os.Remove(f.Name())
	}
	if err != nil {
		return silo.Errorf(silo.CodeUnavailable, "cannot write to the data dir %s: %v; choose a writable --data-dir, or make this one writable by the user running silo", name, durable.Cause(err))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func joinAll[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
