package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// planFormat names the saved-plan file format.
const planFormat = "silo-plan/1"

// savedPlan is what silo plan --out writes and silo apply --plan applies:
// exactly the changes that were reviewed, and the fleet they were planned
// against, so that applying refuses a fleet that moved since.
type savedPlan struct {
	Format  string                   `json:"format"`
	Release string                   `json:"release"`
	Plans   []silo.Plan              `json:"plans"` // the accounts it changes
	Fleet   map[silo.AccountID]int64 `json:"fleet"` // every account planned, at the version planned
}

// newSavedPlan records plans against the fleet listed before planning. An
// account whose plan was made against another version than listed changed
// while planning: the caller should plan again.
func newSavedPlan(release string, before []silo.Account, plans []silo.Plan) (savedPlan, error) {
	sp := savedPlan{Format: planFormat, Release: release, Plans: plans, Fleet: map[silo.AccountID]int64{}}
	for _, a := range before {
		sp.Fleet[a.ID] = a.Version
	}
	for _, p := range plans {
		if v, ok := sp.Fleet[p.Account]; !ok || v != p.Version {
			return sp, silo.Errorf(silo.CodeConflict, "account %s changed while it was planned; run silo plan again", p.Account)
		}
	}
	return sp, nil
}

// write saves the plan to path (internal/durable: temp file, fsync,
// rename; mode 0600).
func (sp savedPlan) write(path string) error {
	b, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(b, '\n'), durable.Options{NoDirSync: true}); err != nil {
		return silo.Errorf(silo.CodeInvalid, "cannot write the plan to %s: %v; choose another --out", path, durable.Cause(err))
	}
	return nil
}

// readSavedPlan reads a plan file written by silo plan --out.
func readSavedPlan(path string) (savedPlan, error) {
	var sp savedPlan
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return sp, silo.Errorf(silo.CodeNotFound, "no plan file %s; write one with silo plan --all --out %s", path, path)
	}
	if err != nil {
		return sp, silo.Errorf(silo.CodeInvalid, "cannot read the plan file %s: %v", path, durable.Cause(err))
	}
	if json.Unmarshal(b, &sp) != nil || sp.Format != planFormat || sp.Release == "" || sp.Fleet == nil {
		return sp, silo.Errorf(silo.CodeInvalid, "%s is not a plan written by silo plan --out; write one with silo plan --all --out FILE", path)
	}
	return sp, nil
}

// moved compares the fleet a saved plan was made against with the fleet
// now, and describes what differs ("" when nothing does).
func (sp savedPlan) moved(now []silo.Account) string {
	var diffs []string
	seen := map[silo.AccountID]bool{}
	for _, a := range now {
		seen[a.ID] = true
		v, ok := sp.Fleet[a.ID]
		switch {
		case !ok:
			diffs = append(diffs, string(a.ID)+" is new")
		case v != a.Version:
			diffs = append(diffs, string(a.ID)+" changed")
		}
	}
	for id := range sp.Fleet {
		if !seen[id] {
			diffs = append(diffs, string(id)+" is gone")
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5:5], fmt.Sprintf("%d more", len(diffs)-5))
	}
	return strings.Join(diffs, ", ")
}

// applySaved applies exactly the plans of sp, after checking that the fleet
// has not moved since and that data-destroying changes are confirmed. It
// makes the plan's release current first, as silo apply does, and
// refuses a release whose latest rollout failed unless retry confirms it.
func applySaved(ctx context.Context, g *globals, a *app, sp savedPlan, yes, retry bool) ([]silo.Plan, error) {
	rel, err := a.plane.Release(ctx, sp.Release)
	if err != nil {
		return nil, silo.Errorf(silo.CodeNotFound, "release %s, which the plan was made for, is not stored here; make a new plan with silo plan --all --out FILE", sp.Release)
	}
	if err := a.reship(ctx, rel.ID, retry); err != nil {
		return nil, err
	}
	if _, err := a.plane.Account(ctx, silo.ProductionID); err != nil {
		return nil, silo.Errorf(silo.CodeFailedCheck, "there is no production account yet; run silo apply --all once, then plan again")
	}
	unmoved := func() error {
		now, err := a.plane.Accounts(ctx, store.Filter{})
		if err != nil {
			return err
		}
		if d := sp.moved(now); d != "" {
			return silo.Errorf(silo.CodeConflict, "the fleet changed since the plan was made (%s); nothing was changed. Make a new plan with silo plan --all --out FILE", d)
		}
		return nil
	}
	if err := unmoved(); err != nil {
		return nil, err
	}
	if err := sp.replanned(ctx, a, rel); err != nil {
		return nil, err
	}
	if losses := silo.Losses(sp.Plans); len(losses) > 0 {
		if err := g.confirmLosses(yes, "this plan destroys data", losses); err != nil {
			return nil, err
		}
		if !yes {
			// Typed at a terminal: the fleet may have moved while the
			// question waited. Each plan is applied only to the account
			// version it was made for, but one that moved would stop the
			// apply midway, after the accounts before it.
			if err := unmoved(); err != nil {
				return nil, err
			}
		}
	}
	if err := a.plane.SetCurrent(ctx, rel); err != nil {
		return nil, err
	}
	var done []silo.Plan
	for _, p := range sp.Plans {
		if err := a.plane.Engine.Apply(ctx, p); err != nil {
			return done, fmt.Errorf("apply the saved plan to %s: %w", p.Account, err)
		}
		done = append(done, p)
	}
	return done, nil
}

// replanned plans the fleet for rel again and refuses the saved plan
// unless its plans are exactly those: the same accounts, each with the
// same changes, against the same version. A plan file edited by hand (a
// change removed, say) would otherwise be applied and record the account
// on rel while it holds what rel does not declare.
func (sp savedPlan) replanned(ctx context.Context, a *app, rel engine.Release) error {
	sum, err := server.PlanRelease(ctx, a.plane, rel, "")
	if err != nil {
		return err
	}
	if len(sum.Errors) > 0 {
		return silo.Errorf(silo.CodeInvalid, "%d account(s) cannot be planned now; nothing was changed. See silo plan --all", len(sum.Errors))
	}
	now := map[silo.AccountID]silo.Plan{}
	for _, p := range sum.Plans {
		now[p.Account] = p
	}
	var differ []silo.AccountID
	saved := map[silo.AccountID]bool{}
	for _, p := range sp.Plans {
		saved[p.Account] = true
		if q, ok := now[p.Account]; !ok || !samePlan(p, q) {
			differ = append(differ, p.Account)
		}
	}
	for id := range now {
		if !saved[id] {
			differ = append(differ, id)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	slices.Sort(differ)
	return silo.Errorf(silo.CodeConflict, "the plan file does not match what silo plans for %s now: it was edited or the fleet changed; nothing was changed. Make it again with silo plan --all --out FILE", differ[0])
}

// samePlan reports whether two plans of one account make the same changes
// from the same account version to the same release.
func samePlan(p, q silo.Plan) bool {
	a, errA := json.Marshal(p)
	b, errB := json.Marshal(q)
	return errA == nil && errB == nil && string(a) == string(b)
}
