package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/silo-run/silo/internal/durable"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// SpecPath returns the silo.yaml for path: path itself if it is a file, or
// path/silo.yaml if it is a directory.
//
// # Errors
//
// CodeNotFound when neither exists.
func SpecPath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", silo.Errorf(silo.CodeNotFound, "there is no %s; pass the app's directory or its silo.yaml", path)
	}
	if st.IsDir() {
		p := filepath.Join(path, "silo.yaml")
		if _, err := os.Stat(p); err != nil {
			return "", silo.Errorf(silo.CodeNotFound, "there is no silo.yaml in %s; pass the app's directory or its silo.yaml", path)
		}
		return p, nil
	}
	return path, nil
}

// Deployed is the outcome of Deploy.
type Deployed struct {
	Release engine.Release
	// Changed lists the accounts whose resources or release changed.
	Changed []silo.AccountID
	// Failed maps accounts that could not be applied to why.
	Failed map[silo.AccountID]string
	// Pending lists the accounts the provider is still creating
	// (provider.Pending): not failures; the recovery pass applies the
	// release to them once they exist.
	Pending []silo.AccountID
	// Seeded is set when the production account was seeded by this deploy.
	Seeded bool
	// Held, set by DeployIfUnmanaged, says why Release was built but not
	// deployed: the fleet stays on Serving.
	Held    string
	Serving string
}

// Deploy builds the app at path (a directory holding silo.yaml, or the file
// itself) into a release, loads its functions into the runtime, makes it
// current, creates or updates the production account (seeding it from the
// app's seed/production directory the first time that directory's content
// is seen, see Seed), and applies it to every other account. It is
// idempotent: deploying unchanged sources changes nothing.
//
// # Errors
//
// The spec's *spec.Diagnostics, a build error (CodeInvalid with compiler
// output), a module the runtime refuses (CodeInvalid), or CodeUnavailable
// when some accounts failed to apply (Deployed.Failed says which; the rest
// are applied).
func (p *Platform) Deploy(ctx context.Context, path string) (Deployed, error) {
	return p.deploy(ctx, path, nil)
}

// Confirm is asked by DeployIfUnmanaged, once the release is built and
// before anything changes, with what applying it would destroy (the
// tables, buckets and secrets it deletes or replaces, with every account
// where), and only when that is not nothing. It returns nil to go ahead,
// or the error the deploy returns, having changed nothing. The deploy
// then holds each account, planned again as it is applied, to that list:
// one that would destroy more is not changed (silo.CodeConflict).
type Confirm func(losses []silo.Loss) error

// deploy is Deploy, asking confirm (nil: nobody) before it destroys data.
func (p *Platform) deploy(ctx context.Context, path string, confirm Confirm) (Deployed, error) {
	out := Deployed{Failed: map[silo.AccountID]string{}}
	// The release is stored only once confirmed: a refused deploy stores
	// nothing either.
	var stored store.Release
	rel, err := p.build(ctx, path, func(ctx context.Context, sp string) (engine.Release, error) {
		rel, st, err := p.Plane.PrepareRelease(ctx, sp, store.Origin{Kind: store.OriginDeploy})
		stored = st
		return rel, err
	})
	if err != nil {
		return out, err
	}
	out.Release = rel
	var hold func(silo.Plan) error
	if confirm != nil {
		if hold, err = p.confirmed(ctx, rel, confirm); err != nil {
			return out, err
		}
	}
	if err := p.Plane.PutRelease(ctx, stored); err != nil {
		return out, err
	}
	if err := p.Plane.SetCurrent(ctx, rel); err != nil {
		return out, err
	}
	if _, err := p.Plane.EnsureProduction(ctx, rel, hold); err != nil {
		return out, fmt.Errorf("production account: %w", err)
	}
	if out.Seeded, err = p.seedProduction(ctx, rel); err != nil {
		return out, err
	}
	_, err = p.Plane.Engine.ApplyFleet(ctx, rel, store.Filter{}, hold, func(r engine.FleetResult) {
		if provider.IsPending(r.Err) {
			out.Pending = append(out.Pending, r.Plan.Account)
			return
		}
		if r.Err != nil {
			out.Failed[r.Plan.Account] = silo.UserMessage(r.Err)
			return
		}
		out.Changed = append(out.Changed, r.Plan.Account)
	})
	p.changed(ctx, "")
	if len(out.Failed) > 0 {
		return out, silo.Errorf(silo.CodeUnavailable, "%d account(s) failed to apply release %s; fix the cause and deploy again", len(out.Failed), rel.ID)
	}
	if provider.IsPending(err) {
		err = nil // the first error was a pending account: not a failure
	}
	return out, err
}

// confirmed plans every account for rel and, when that destroys data,
// asks confirm; it returns the check that holds each account to what was
// confirmed.
func (p *Platform) confirmed(ctx context.Context, rel engine.Release, confirm Confirm) (func(silo.Plan) error, error) {
	sum, err := server.PlanRelease(ctx, p.Plane, rel, "")
	if err != nil {
		return nil, err
	}
	if len(sum.Errors) > 0 {
		return nil, silo.Errorf(silo.CodeInvalid, "%d account(s) cannot be planned for release %s (%s); nothing was changed", len(sum.Errors), rel.ID, sum.Errors[0])
	}
	losses := silo.Losses(sum.Plans)
	if len(losses) > 0 {
		if err := confirm(losses); err != nil {
			return nil, err
		}
	}
	return func(pl silo.Plan) error {
		if more := silo.Unconfirmed(pl, losses); len(more) > 0 {
			return silo.Errorf(silo.CodeConflict, "what would be lost changed since it was confirmed: planned again to be applied, it %s, which was not shown; account %s was not changed", silo.DataLoss([]silo.Plan{{Account: pl.Account, Changes: more}}), pl.Account)
		}
		return nil
	}, nil
}

// DeployIfUnmanaged is Deploy for silo up: it deploys the app at path
// directly only while no rollout has ever run on this installation, asking
// confirm before it destroys data (see Confirm). Once
// rollouts manage the fleet it builds the release (loading its modules) and
// changes nothing: accounts stay where the rollouts put them. When the
// release is not the current one, Held says why, in a sentence naming what
// to do: a rollout is active, the release
// is one a rollout rolled back or did not finish, or it is simply not
// rolled out yet (silo deploy takes it through the rings).
func (p *Platform) DeployIfUnmanaged(ctx context.Context, path string, confirm Confirm) (Deployed, error) {
	out := Deployed{Failed: map[silo.AccountID]string{}}
	rs, err := p.Runner.List(ctx, 0)
	if err != nil {
		return out, err
	}
	if len(rs) == 0 {
		return p.deploy(ctx, path, confirm)
	}
	rel, err := p.Build(ctx, path)
	if err != nil {
		return out, err
	}
	out.Release = rel
	cur, err := p.Plane.CurrentRelease(ctx)
	if err != nil {
		return out, err
	}
	out.Serving = cur.ID
	for _, r := range rs { // newest first
		if r.State.Active() {
			out.Held = fmt.Sprintf("rollout %s of release %s is %s; the fleet stays as the rollout leaves it (silo rollout status %s)", r.ID, r.Release, r.State, r.ID)
			return out, nil
		}
	}
	if rel.ID == cur.ID {
		return out, nil // the rollouts put the fleet where it is
	}
	for _, r := range rs {
		if r.Release != rel.ID {
			continue
		}
		why := string(r.State)
		if r.Reason != "" {
			why += ": " + r.Reason
		}
		out.Held = fmt.Sprintf("silo.yaml builds release %s, which rollout %s did not roll out (%s); the fleet stays on release %s. Fix the app and run silo deploy", rel.ID, r.ID, why, cur.ID)
		return out, nil
	}
	out.Held = fmt.Sprintf("silo.yaml builds release %s, but rollouts manage this fleet and it is on release %s; roll the change out with silo deploy", rel.ID, cur.ID)
	return out, nil
}

// Build builds the app at path into a stored release to ship (origin
// deploy; not made current) and loads every function module into the
// runtime, so no request compiles.
func (p *Platform) Build(ctx context.Context, path string) (engine.Release, error) {
	return p.build(ctx, path, func(ctx context.Context, sp string) (engine.Release, error) {
		return p.Plane.BuildRelease(ctx, sp, store.Origin{Kind: store.OriginDeploy})
	})
}

// build is Build, storing the release with buildRelease.
func (p *Platform) build(ctx context.Context, path string, buildRelease func(context.Context, string) (engine.Release, error)) (engine.Release, error) {
	sp, err := SpecPath(path)
	if err != nil {
		return engine.Release{}, err
	}
	rel, err := buildRelease(ctx, sp)
	if err != nil {
		return rel, err
	}
	names := make([]string, 0, len(rel.Artifacts))
	for n := range rel.Artifacts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.load(ctx, rel.Artifacts[n]); err != nil {
			return rel, silo.Errorf(silo.ErrorCode(err), "function %q: %w", n, err)
		}
	}
	return rel, nil
}

// DeployTo builds the app at path and applies the release to one account
// only, without making it current: what silo dev does for a developer
// account. The account must exist. The build passes the per-account
// isolation gate first (control.Plane.GateBuild: the account as the build
// makes it, beside the production account as recorded, which a build
// applied to one account does not change).
//
// # Errors
//
// Those of Build; CodeFailedCheck when the build would break isolation in
// the account: the build is not stored and the account is not changed.
func (p *Platform) DeployTo(ctx context.Context, path string, id silo.AccountID) (silo.Plan, error) {
	var stored store.Release
	// The release is silo dev's build for the account: it runs only in
	// developer accounts until deployed (store.CheckShip).
	rel, err := p.build(ctx, path, func(ctx context.Context, sp string) (engine.Release, error) {
		rel, st, err := p.Plane.PrepareRelease(ctx, sp, store.DevOrigin(id))
		stored = st
		return rel, err
	})
	if err != nil {
		return silo.Plan{}, err
	}
	a, err := p.Plane.Account(ctx, id)
	if err != nil {
		return silo.Plan{}, err
	}
	if err := p.Plane.GateBuild(ctx, rel, a); err != nil {
		return silo.Plan{Account: id, Release: rel.ID}, err
	}
	if err := p.Plane.PutRelease(ctx, stored); err != nil {
		return silo.Plan{}, err
	}
	return p.applyTo(ctx, rel, id)
}

// DeployProbe is DeployTo for silo verify --probe: the app at path is
// built into a probe release (control.Plane.BuildProbeRelease), which
// applies only to the probe's throwaway accounts (store.CheckShip refuses
// any other account).
func (p *Platform) DeployProbe(ctx context.Context, path string, id silo.AccountID) (silo.Plan, error) {
	rel, err := p.build(ctx, path, p.Plane.BuildProbeRelease)
	if err != nil {
		return silo.Plan{}, err
	}
	return p.applyTo(ctx, rel, id)
}

// applyTo applies rel to account id only.
func (p *Platform) applyTo(ctx context.Context, rel engine.Release, id silo.AccountID) (silo.Plan, error) {
	a, err := p.Plane.Account(ctx, id)
	if err != nil {
		return silo.Plan{}, err
	}
	plan, err := p.Plane.Engine.PlanAccount(ctx, a, rel)
	if err != nil {
		return plan, err
	}
	err = p.Plane.Engine.Apply(ctx, plan)
	p.changed(ctx, id)
	return plan, err
}

// LoadCurrent loads the current release's function modules into the
// runtime (from the compile cache when they were compiled before), so the
// first request after a restart does not compile. No release is not an
// error.
func (p *Platform) LoadCurrent(ctx context.Context) error {
	return p.eachCurrent(ctx, func(d string) error { return p.load(ctx, d) })
}

// CheckCurrent makes sure every function module of the current release is
// in the data dir's artifacts, without compiling it, so that a server on a
// data dir that lacks one refuses to start rather than fail those
// requests. No release is not an error.
//
// # Errors
//
// CodeUnavailable naming the missing module and the fix (ReadArtifact).
func (p *Platform) CheckCurrent(ctx context.Context) error {
	return p.eachCurrent(ctx, func(d string) error {
		_, err := ReadArtifact(p.cfg.DataDir, d)
		return err
	})
}

// eachCurrent calls fn with the digest of each function module of the
// current release, stopping at its first error. No release calls nothing.
func (p *Platform) eachCurrent(ctx context.Context, fn func(digest string) error) error {
	rel, err := p.Plane.CurrentRelease(ctx)
	if errors.Is(err, silo.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, d := range rel.Artifacts {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// seedProduction seeds the production account from the app's
// seed/production directory when its content changed since the last seed.
func (p *Platform) seedProduction(ctx context.Context, rel engine.Release) (bool, error) {
	if rel.Stack == nil || rel.Stack.Dir == "" {
		return false, nil
	}
	dir := filepath.Join(rel.Stack.Dir, "seed", "production")
	if _, err := os.Stat(dir); err != nil {
		return false, nil
	}
	sum, err := dirHash(dir)
	if err != nil {
		return false, err
	}
	const setting = "seed.production"
	var old string
	_ = p.Store.View(ctx, func(tx store.Tx) error { old, _ = tx.Setting(setting); return nil })
	if old == sum {
		return false, nil
	}
	if err := p.Seed(ctx, silo.ProductionID, dir); err != nil {
		return false, err
	}
	return true, p.Store.Update(ctx, func(tx store.Tx) error { return tx.PutSetting(setting, sum) })
}

// Seed writes fixture data into an account: every file tables/<table>.json
// (a JSON object; each member becomes a key, its value stored as JSON, or
// as the string itself when it is a JSON string) and every file under
// buckets/<bucket>/ (stored as the blob at its slash-separated relative
// path). Tables and buckets must be declared in the account's stack.
// Seeding is idempotent: it overwrites the keys it names and leaves others.
//
// # Errors
//
// CodeInvalid naming the file for a table file that is not a JSON object,
// and, before anything is written, for tables and buckets the account's
// stack does not declare (CheckSeed); CodeNotFound when the account does
// not exist.
func (p *Platform) Seed(ctx context.Context, id silo.AccountID, dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return silo.Errorf(silo.CodeNotFound, "seed directory %s does not exist", dir)
	}
	if err := p.checkSeedOf(ctx, id, dir); err != nil {
		return err
	}
	data, err := p.Provider.Data(ctx, id)
	if err != nil {
		return err
	}
	n := 0
	tables, _ := filepath.Glob(filepath.Join(dir, "tables", "*.json"))
	for _, f := range tables {
		table := strings.TrimSuffix(filepath.Base(f), ".json")
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read seed %s: %w", f, err)
		}
		rel := "tables/" + filepath.Base(f) // as the user named it: dir may be a server's copy
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			where := ""
			if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
				where = fmt.Sprintf(" (at byte %d)", se.Offset)
			}
			return silo.Errorf(silo.CodeInvalid, "seed file %s is not a JSON object of key → value%s; fix it and run again", rel, where)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := []byte(m[k])
			var s string
			if json.Unmarshal(v, &s) == nil {
				v = []byte(s)
			}
			if err := data.Put(ctx, table, k, v); err != nil {
				return silo.Errorf(silo.ErrorCode(err), "seed %s of %s from %s: %w", table, id, rel, err)
			}
			n++
		}
	}
	bucketsDir := filepath.Join(dir, "buckets")
	ents, _ := os.ReadDir(bucketsDir)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		root := filepath.Join(bucketsDir, e.Name())
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(mustRel(root, path))
			if err := data.PutBlob(ctx, e.Name(), key, b); err != nil {
				return silo.Errorf(silo.ErrorCode(err), "seed bucket %s of %s from %s: %w", e.Name(), id, path, err)
			}
			n++
			return nil
		})
		if err != nil {
			return err
		}
	}
	p.cfg.Logger.Info("seeded account", "account", id, "dir", dir, "items", n)
	return nil
}

// dirHash is a content hash of every regular file under dir.
func dirHash(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		return hashFile(h, dir, path)
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// EnsureAccount creates the account on the current release unless it
// exists (then it only makes sure it runs the current release, keeping its
// parameters). It returns the account.
func (p *Platform) EnsureAccount(ctx context.Context, req control.CreateRequest) (silo.Account, error) {
	a, err := p.Plane.Account(ctx, silo.AccountID(req.ID))
	if err == nil && a.State != silo.StateDeleted {
		if a.Kind != req.Kind && req.Kind == silo.KindDeveloper {
			return a, silo.Errorf(silo.CodeConflict, "account %s exists already as a %s account, not a developer account; run silo dev with another developer name: silo dev --user NAME", a.ID, a.Kind)
		}
		if a.Kind != req.Kind && req.Kind != "" {
			return a, silo.Errorf(silo.CodeConflict, "account %s exists already as a %s account, not %s; choose another name", a.ID, a.Kind, req.Kind)
		}
		rel, err := p.Plane.CurrentRelease(ctx)
		if err != nil {
			return a, err
		}
		plan, err := p.Plane.Engine.PlanAccount(ctx, a, rel)
		if err != nil {
			return a, err
		}
		err = p.Plane.Engine.Apply(ctx, plan)
		p.changed(ctx, a.ID)
		if err != nil {
			return a, err
		}
		return p.Plane.Account(ctx, a.ID)
	}
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return a, err
	}
	req.WithKey = false
	c, err := p.Plane.CreateAccount(ctx, req)
	return c.Account, err
}

// CreateAccount onboards an account (see control.Plane.CreateAccount),
// which the gateway sees at once.
func (p *Platform) CreateAccount(ctx context.Context, req control.CreateRequest) (control.Created, error) {
	return p.Plane.CreateAccount(ctx, req)
}

// IssueKey issues a fresh API key named name for an account and revokes
// the key an earlier IssueKey of that name issued for it, so a command that
// runs again (silo up, silo dev) leaves exactly one key of its own: the
// earlier key is revoked at once, also while a rotation's grace still lets
// it work. Only keys IssueKey issued are replaced, as the data dir records
// them (issuedKeysFile): a key made otherwise, a rotated-in key that
// inherited the name included, is left alone. Where the data dir has no
// record of the name for the account (written by an earlier silo), every
// active key of that name is revoked, as then. It returns the key in plain
// text (shown once; only its hash is stored).
func (p *Platform) IssueKey(ctx context.Context, id silo.AccountID, name string) (string, error) {
	issued, err := p.issuedKeys()
	if err != nil {
		return "", err
	}
	var earlier []string
	if prev, ok := issued[name+"/"+string(id)]; ok {
		earlier = []string{prev}
	} else {
		keys, err := p.Plane.Keys(ctx, id)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			if k.Name == name && k.Revoked == nil {
				earlier = append(earlier, k.ID)
			}
		}
	}
	plain, k, err := p.Plane.IssueKey(ctx, id, name)
	if err != nil {
		return "", err
	}
	for _, keyID := range earlier {
		if err := p.Plane.RevokeKey(ctx, id, keyID); err != nil && !errors.Is(err, silo.ErrNotFound) {
			return "", err
		}
	}
	issued[name+"/"+string(id)] = k.ID
	return plain, p.writeIssuedKeys(issued)
}

// issuedKeysFile, in the data dir, records the key IssueKey last issued
// for each name and account ("silo-up/acme": key ID).
const issuedKeysFile = "issued-keys.json"

func (p *Platform) issuedKeys() (map[string]string, error) {
	m := map[string]string{}
	b, err := os.ReadFile(filepath.Join(p.cfg.DataDir, issuedKeysFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return nil, fmt.Errorf("read the record of issued keys: %w; remove %s to start it again", err, filepath.Join(p.cfg.DataDir, issuedKeysFile))
	}
	return m, nil
}

func (p *Platform) writeIssuedKeys(m map[string]string) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := durable.WriteFile(filepath.Join(p.cfg.DataDir, issuedKeysFile), b, durable.Options{}); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "cannot write the record of issued keys (%s) in the data dir %s: %v; make the data dir writable by the user running silo", issuedKeysFile, p.cfg.dataDirName, durable.Cause(err))
	}
	return nil
}

// RevokeKey revokes a key; the gateway refuses it from the next request.
func (p *Platform) RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error {
	return p.Plane.RevokeKey(ctx, id, keyID)
}

// RevokeKeyAfter revokes a key once grace has passed (see
// control.Plane.RevokeKeyAfter); the gateway sees the new revocation time
// from the next request.
func (p *Platform) RevokeKeyAfter(ctx context.Context, id silo.AccountID, keyID string, grace time.Duration) error {
	return p.Plane.RevokeKeyAfter(ctx, id, keyID, grace)
}

// SetSecret sets a secret of an account (see control.Plane.SetSecret).
func (p *Platform) SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	return p.Plane.SetSecret(ctx, id, name, value)
}

// SetState suspends or resumes an account; the gateway sees it at once.
func (p *Platform) SetState(ctx context.Context, id silo.AccountID, st silo.State) error {
	_, err := p.Plane.SetState(ctx, id, st, "account."+string(st))
	return err
}
