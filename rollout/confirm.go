package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// Options are what an operator confirms when starting a rollout or a
// rollback.
type Options struct {
	// AllowDataLoss confirms that the rollout may delete or replace tables,
	// buckets and secrets (silo.Change.DestroysData). Without it, a rollout
	// whose plans would is refused before it starts, with
	// silo.CodeNeedsConfirm and what it would destroy. Alone, it confirms
	// whatever the planning as the rollout starts finds.
	AllowDataLoss bool
	// LossesDigest, if set, is the Digest of the Preview the operator
	// looked at. The rollout starts only if what its own planning, as it
	// starts, would destroy has that digest; otherwise it is refused with
	// silo.CodeConflict, naming what it would destroy now, and nothing
	// starts. It confirms nothing by itself: losses still need
	// AllowDataLoss.
	LossesDigest string
	// RetryFailed confirms a rollout of a release whose latest rollout
	// failed (its gates, budget or live verification rolled it back; see
	// Failures). Without it, Start refuses such a release with
	// silo.CodeFailedCheck, naming the rollout and why it failed. The
	// rollout it starts goes through every ring and gate like any other.
	RetryFailed bool
}

// Failure is why a release's latest rollout failed.
type Failure struct {
	Rollout string `json:"rollout"`
	Reason  string `json:"reason"`
}

// Failures returns, for each release whose latest rollout (a rollback
// rollout aside) failed, that rollout and why: the releases Start refuses
// without Options.RetryFailed. A release rolled out again with success is
// not in it, nor one made current since its rollout failed (see
// FailuresOf).
func (rn *Runner) Failures(ctx context.Context) (map[string]Failure, error) {
	rs, err := rn.List(ctx, 0)
	if err != nil {
		return nil, err
	}
	var cur string
	err = rn.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if cur, err = tx.CurrentRelease(); errors.Is(err, silo.ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return FailuresOf(rs, cur), nil
}

// FailuresOf is Failures over rollouts rs, newest first, with current the
// current release ("" for none): a list that holds only the latest
// rollouts (GET /v1/rollouts) knows the failures of the releases those
// rolled out.
//
// A failed rollout leaves the release that was current as it started
// current. So a release whose latest rollout failed, and which is current
// now though that rollout did not start from it, was made current since,
// by an operator who confirmed it (silo apply --retry-failed): its latest
// outcome is that success, and it is not a failure. A failed rollout of
// the release that was current already (moving the accounts that lag)
// stays its failure.
func FailuresOf(rs []Rollout, current string) map[string]Failure {
	out := map[string]Failure{}
	seen := map[string]bool{}
	for _, r := range rs { // newest first
		if r.RollbackOf != "" || seen[r.Release] {
			continue
		}
		seen[r.Release] = true
		if failed(r) && !(r.Release == current && r.Previous != r.Release) {
			out[r.Release] = Failure{Rollout: r.ID, Reason: r.Reason}
		}
	}
	return out
}

// failed reports whether r ended failed: in state failed, or (recorded
// before a failed rollout could no longer be rolled back) rolled back by
// an operator after a ring of it had rolled back on its own.
func failed(r Rollout) bool {
	if r.State == StateFailed {
		return true
	}
	for _, ring := range r.Rings {
		if ring.Phase == PhaseRolledBack {
			return true
		}
	}
	return false
}

// Reship is the rule for shipping again a release whose latest rollout
// failed (Failures): it refuses release rel then, unless retry confirms
// it, with silo.CodeFailedCheck naming the rollout and why it failed;
// again says how to confirm ("to ..., confirm it: <command>"). Start keeps
// it (Options.RetryFailed), and so does silo apply, which makes a release
// current and applies it to every account at once, without rings.
func (rn *Runner) Reship(ctx context.Context, rel string, retry bool, again string) error {
	if retry {
		return nil
	}
	fs, err := rn.Failures(ctx)
	if err != nil {
		return err
	}
	f, ok := fs[rel]
	if !ok {
		return nil
	}
	return silo.Errorf(silo.CodeFailedCheck, "release %s failed in rollout %s (%s); no account was changed. Deploy a fixed release, or, %s", rel, f.Rollout, f.Reason, again)
}

// Preview is what starting a rollout or a rollback would destroy, computed
// by the same planning that refuses it (see PreviewStart and
// PreviewRollback).
type Preview struct {
	// Release is the release the accounts would move to.
	Release string `json:"release"`
	// Accounts is the number of accounts planned: the live accounts the
	// rollout's rings select (for a rollback, those it would return) that
	// can take Release.
	Accounts int `json:"accounts"`
	// Losses are the tables, buckets and secrets the plans delete or
	// replace, each with every account where; empty when nothing is
	// destroyed.
	Losses []silo.Loss `json:"losses"`
	// Digest identifies Losses, every account included (an empty list
	// has one too). Passed back as Options.LossesDigest, it makes the
	// start or rollback go ahead only for exactly these losses.
	Digest string `json:"losses_digest"`
	// Failure, in a rollout's preview, says why the release's latest
	// rollout failed: starting it needs Options.RetryFailed.
	Failure *Failure `json:"failure,omitempty"`
}

// digestLen is the length of a Preview's Digest: 16 bytes, in hex.
const digestLen = 32

// lossDigest is the Digest of losses: the SHA-256 of their JSON,
// shortened to 16 bytes.
func lossDigest(losses []silo.Loss) string {
	if losses == nil {
		losses = []silo.Loss{}
	}
	b, _ := json.Marshal(losses) // strings only: always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:digestLen/2])
}

// confirm refuses a start or a rollback that opt does not confirm,
// planning it with preview as it starts: silo.CodeInvalid for a
// LossesDigest that no preview gives; silo.CodeConflict when
// opt.LossesDigest is set and what it would destroy now differs from what
// was previewed (again says where to look again); refuse(pv) when it would
// destroy data and opt does not allow it. With AllowDataLoss and no
// digest nothing is planned.
func confirm(opt Options, preview func() (Preview, error), again string, refuse func(Preview) error) error {
	if d := opt.LossesDigest; d != "" && (len(d) != digestLen || strings.Trim(d, "0123456789abcdef") != "") {
		return silo.Errorf(silo.CodeInvalid, "losses digest %q is not one a preview gives (%d lower-case hex digits); pass the losses_digest of %s", clip(d), digestLen, again)
	}
	if opt.AllowDataLoss && opt.LossesDigest == "" {
		return nil
	}
	pv, err := preview()
	if err != nil {
		return err
	}
	if opt.LossesDigest != "" && opt.LossesDigest != pv.Digest {
		now := "it would destroy nothing"
		if len(pv.Losses) > 0 {
			now = "it now " + silo.DescribeLosses(pv.Losses)
		}
		return silo.Errorf(silo.CodeConflict, "what would be lost changed since you confirmed: %s; nothing was started. Look again (%s) and confirm what it lists", now, again)
	}
	if len(pv.Losses) > 0 && !opt.AllowDataLoss {
		return refuse(pv)
	}
	return nil
}

// clip shortens s, an operator's input quoted back, to 40 bytes.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// PreviewStart returns what Start(ctx, releaseID, Options{}) would plan
// and destroy, and why the release's latest rollout failed if it did
// (Start then needs Options.RetryFailed); it changes nothing. Start refuses, unless its Options allow
// data loss, exactly when Losses is not empty. The fleet may change between
// a preview and a Start, so Start plans again; given the preview's Digest
// (Options.LossesDigest) it refuses when what it finds differs.
//
// # Errors
//
// silo.ErrNotFound for an unknown release; CodeInvalid for a release
// silo verify --probe built (store.CheckShip); a store or engine error when
// an account cannot be read or planned.
func (rn *Runner) PreviewStart(ctx context.Context, releaseID string) (Preview, error) {
	rel, err := rn.shippable(ctx, releaseID)
	if err != nil {
		return Preview{}, err
	}
	return rn.PreviewNew(ctx, rel)
}

// PreviewNew is PreviewStart for rel, which need not be stored: what
// StartNew of it would plan and destroy. It changes nothing.
//
// # Errors
//
// PreviewStart's.
func (rn *Runner) PreviewNew(ctx context.Context, rel engine.Release) (Preview, error) {
	if err := store.CheckShip(store.Release{ID: rel.ID, Probe: rel.Probe}, nil); err != nil { // a new build: no origin to check yet
		return Preview{}, err
	}
	pv, err := rn.startPreview(ctx, rel)
	if err != nil {
		return pv, err
	}
	fs, err := rn.Failures(ctx)
	if f, ok := fs[rel.ID]; ok {
		pv.Failure = &f
	}
	return pv, err
}

// PreviewRollback returns what Rollback(ctx, id, Options{}) would plan
// and destroy; it changes nothing. Rollback refuses, unless its Options
// allow data loss, exactly when Losses is not empty.
//
// # Errors
//
// As Rollback's before it starts anything: silo.ErrNotFound for an unknown
// rollout; CodeInvalid if the rollout had no previous release;
// CodeConflict if it was rolled back already (by an operator or by its
// own gates), a later one ran, or it is a rollback itself.
func (rn *Runner) PreviewRollback(ctx context.Context, id string) (Preview, error) {
	orig, rel, err := rn.rollbackTarget(ctx, id)
	if err != nil {
		return Preview{}, err
	}
	return rn.rollbackPreview(ctx, orig, rel)
}

// startPreview plans the accounts a rollout of rel would move: those its
// rings select.
func (rn *Runner) startPreview(ctx context.Context, rel engine.Release) (Preview, error) {
	rings := ringsOf(rel.Stack, false)
	return rn.preview(ctx, rel, func(_ store.Tx, as []silo.Account) (map[silo.AccountID]string, error) {
		to := map[silo.AccountID]string{}
		for _, a := range as {
			if ringOf(rings, rel.Stack, a) >= 0 {
				to[a.ID] = rel.ID
			}
		}
		return to, nil
	})
}

// rollbackPreview plans the accounts a rollback of orig to rel would
// return.
func (rn *Runner) rollbackPreview(ctx context.Context, orig Rollout, rel engine.Release) (Preview, error) {
	back := Rollout{Release: rel.ID, Rings: ringsOf(rel.Stack, true)}
	return rn.preview(ctx, rel, func(tx store.Tx, as []silo.Account) (map[silo.AccountID]string, error) {
		var mine []silo.Account
		for _, a := range as {
			if ringOf(back.Rings, rel.Stack, a) >= 0 {
				mine = append(mine, a)
			}
		}
		return undoTargets(tx, back, orig, mine)
	})
}

// rollbackTarget returns rollout id and the release rolling it back
// returns to, or why it cannot be rolled back.
func (rn *Runner) rollbackTarget(ctx context.Context, id string) (Rollout, engine.Release, error) {
	orig, err := rn.Get(ctx, id)
	if err != nil {
		return orig, engine.Release{}, err
	}
	if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error { return rollbackable(tx, orig) }); err != nil {
		return orig, engine.Release{}, err
	}
	rel, err := rn.release(ctx, orig.Previous)
	return orig, rel, err
}

// preview plans every live account that the rollout would move and
// returns what those plans destroy. moves maps a page of accounts to the
// release each would move to, leaving out those that stay; target, one
// of those releases, is used as given.
func (rn *Runner) preview(ctx context.Context, target engine.Release, moves func(store.Tx, []silo.Account) (map[silo.AccountID]string, error)) (Preview, error) {
	var plans []silo.Plan
	f := store.Filter{Limit: 1000}
	for {
		var page []silo.Account
		var to map[silo.AccountID]string
		if err := rn.cfg.Store.View(ctx, func(tx store.Tx) error {
			all, err := tx.Accounts(f)
			if err != nil {
				return fmt.Errorf("list accounts: %w", err)
			}
			page = all
			live := all[:0:0]
			for _, a := range all {
				if a.State != silo.StateDeleting && a.State != silo.StateDeleted {
					live = append(live, a)
				}
			}
			to, err = moves(tx, live)
			return err
		}); err != nil {
			return Preview{}, err
		}
		for _, a := range page {
			id, ok := to[a.ID]
			if !ok {
				continue
			}
			rel := target // which need not be stored (PreviewNew)
			if id != target.ID {
				var err error
				if rel, err = rn.release(ctx, id); err != nil {
					return Preview{}, err
				}
			}
			p, err := rn.cfg.Engine.PlanAccount(ctx, a, rel)
			if silo.ErrorCode(err) == silo.CodeInvalid {
				// The account cannot take rel (a parameter it lacks): its
				// step fails against the ring's budget and changes nothing.
				continue
			}
			if err != nil {
				return Preview{}, fmt.Errorf("plan %s for release %s: %w", a.ID, id, err)
			}
			plans = append(plans, p)
		}
		if len(page) < f.Limit {
			losses := silo.Losses(plans)
			if losses == nil {
				losses = []silo.Loss{}
			}
			return Preview{Release: target.ID, Accounts: len(plans), Losses: losses, Digest: lossDigest(losses)}, nil
		}
		f.After = page[len(page)-1].ID
	}
}
