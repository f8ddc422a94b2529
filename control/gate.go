package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/store"
)

// Gate refuses a release that would open a path across accounts: it
// verifies the fleet as it would be under rel (isolation.Gate) before
// anything is applied. It is GateRollout of a release that moves every
// account (silo apply).
func (p *Plane) Gate(ctx context.Context, rel engine.Release) error {
	return p.GateRollout(ctx, rel, nil)
}

// GateRollout is Gate for a rollout of rel, which moves only the accounts
// its rings select: those keep reports true for are gated as they are
// (isolation.GateKeeping; nil keeps none), so a release that drops a
// production export an account it leaves alone is granted is refused,
// naming the account. A release the gate passes while the fleet breaks
// isolation (isolation.GateWarning) is logged as a warning and recorded
// in the audit log (release.gate_warning, with the warning). The step
// hook sees each gate it runs, with Point "gate".
func (p *Plane) GateRollout(ctx context.Context, rel engine.Release, keep func(silo.Account) bool) error {
	if p.cfg.Hook != nil {
		p.cfg.Hook(engine.Step{Point: "gate"})
	}
	f, err := isolation.LoadFleet(ctx, p.cfg.Store)
	if err != nil {
		return fmt.Errorf("load fleet for the isolation gate: %w", err)
	}
	res, err := isolation.GateKeeping(ctx, rel, f, keep)
	if err != nil || res.Status != isolation.StatusViolated {
		return err
	}
	// Passed while the fleet breaks isolation (a hotfix): say so in the
	// log and the audit log.
	w := isolation.GateWarning(rel.ID, res)
	p.cfg.Logger.Warn(w, Notice)
	return p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Time: p.cfg.Now(), Actor: p.cfg.Actor, Action: "release.gate_warning", Detail: jsonDetail(map[string]any{"release": rel.ID, "violations": res.Violations, "warning": w})})
		return err
	})
}

// Notice marks a log record meant for the operator running the command
// that logs it: a command that serves nothing drops its log lines but
// shows these (the gate's warning that a release ships while the fleet
// breaks isolation).
var Notice = slog.Bool("notice", true)

// GateAccount refuses to create account a on rel, or to apply rel to it
// again, when what a would hold under rel opens a path across accounts
// (isolation.GateAccount, against the production account as recorded).
// Every onboarding and parameter change runs it before it writes anything,
// so a current release that never passed Gate reaches no account.
func (p *Plane) GateAccount(ctx context.Context, rel engine.Release, a silo.Account) error {
	return p.cfg.Store.View(ctx, func(tx store.Tx) error { return gateAccount(ctx, tx, rel, a) })
}

// GateBuild is GateAccount for a developer's own build, applied to
// account a alone (silo dev): the same gate, against the production
// account as recorded, which a build applied to one account does not
// change, with a refusal that says to fix the build rather than to deploy
// a release.
//
// A build whose functions are granted a production export that its own
// silo.yaml adds but the production account does not export yet is
// refused too, saying so: silo dev never changes the production account
// (every tenant reads it), and a function holding a grant production does
// not back would be a counterexample to I1 in every proof of the
// installation (silo verify, and each tenant's signed report) for as long
// as the account ran it.
func (p *Plane) GateBuild(ctx context.Context, rel engine.Release, a silo.Account) error {
	return p.cfg.Store.View(ctx, func(tx store.Tx) error {
		prod, err := productionState(tx)
		if err != nil {
			return err
		}
		names, err := undeployedExports(rel, a, prod)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			return silo.Errorf(silo.CodeFailedCheck, "build %s grants %s, which this silo.yaml adds to production but the production account does not export yet, and silo dev never changes the production account (every tenant reads it): %s keeps running what it ran. Deploy the export first (silo deploy ships this silo.yaml to the fleet; to ship the export alone, deploy a silo.yaml that adds it without the grant), then save again; until then develop without the grant",
				rel.ID, exportList(names), a.ID)
		}
		return gateWith(ctx, tx, rel, a, func(why string) error {
			return silo.Errorf(silo.CodeFailedCheck, "%s. Fix silo.yaml and save it again: %s keeps running what it ran until a build passes (silo dev changes your account alone)", why, a.ID)
		})
	})
}

// undeployedExports returns, sorted, the exports that functions of
// account a are granted under rel, that rel's production section
// declares, and that production as recorded does not export. None while
// there is no production account: it is created on the release then.
func undeployedExports(rel engine.Release, a silo.Account, prod *isolation.AccountState) ([]string, error) {
	if prod == nil || rel.Stack == nil {
		return nil, nil
	}
	have := map[string]bool{}
	for _, r := range prod.Resources {
		if r.Type == silo.TypeExport {
			have[r.Name] = true
		}
	}
	rs, err := engine.Desired(rel.Stack, rel.Artifacts, a)
	if err != nil {
		return nil, fmt.Errorf("gate build %s for %s: %w", rel.ID, a.ID, err)
	}
	var out []string
	for _, r := range rs {
		if r.Type != silo.TypeFunction {
			continue
		}
		var fs silo.FunctionSpec
		if err := json.Unmarshal(r.Spec, &fs); err != nil {
			return nil, fmt.Errorf("gate build %s for %s: read function %s: %w", rel.ID, a.ID, r.Name, err)
		}
		for _, e := range fs.Exports {
			if _, declared := rel.Stack.Production.Exports[e]; declared && !have[e] && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// exportList names exports for a message: export "a", exports "a" and "b".
func exportList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return "export " + q[0]
	}
	return "exports " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// gateAccount is GateAccount in transaction tx.
func gateAccount(ctx context.Context, tx store.Tx, rel engine.Release, a silo.Account) error {
	return gateWith(ctx, tx, rel, a, func(why string) error {
		return silo.Errorf(silo.CodeFailedCheck, "%s. Deploy a release that passes the isolation gate: fix silo.yaml, deploy it (silo deploy, or silo apply --all), then check the fleet with silo verify", why)
	})
}

// gateWith runs isolation.GateAccount in transaction tx; a refusal is
// the error refused makes of the gate's reason, saying what to do.
func gateWith(ctx context.Context, tx store.Tx, rel engine.Release, a silo.Account, refused func(why string) error) error {
	prod, err := productionState(tx)
	if err != nil {
		return err
	}
	_, err = isolation.GateAccount(ctx, rel, a, prod)
	if silo.ErrorCode(err) != silo.CodeFailedCheck {
		return err
	}
	return refused(silo.UserMessage(err))
}

// productionState returns the production account with its recorded
// resources, or nil while there is none (or only a deleted or unfinished
// one: the onboarding creates it on its release then).
func productionState(tx store.Tx) (*isolation.AccountState, error) {
	a, err := tx.Account(silo.ProductionID)
	if errors.Is(err, silo.ErrNotFound) || err == nil && a.State != silo.StateActive {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the production account for the isolation gate: %w", err)
	}
	rs, err := tx.Resources(a.ID)
	if err != nil {
		return nil, fmt.Errorf("read the production account's resources for the isolation gate: %w", err)
	}
	return &isolation.AccountState{Account: a, Resources: rs, HasDataKey: true}, nil
}
