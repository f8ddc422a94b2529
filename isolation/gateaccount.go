package isolation

import (
	"context"
	"fmt"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
)

// GateAccount is the gate for one account: it checks what account a would
// hold under rel before a is created on rel or has rel applied to it again
// (new parameters, a developer's own build). Accounts are created on the
// current release, which Gate checked as it became current; but a release
// made current without Gate (by a silo older than the gate, or written
// into the store by hand) would reach every new account unchecked.
//
// It verifies a fleet of two: a as rel makes it, and the production
// account, whose exports a's functions may read: prod as recorded, or, when
// prod is nil (the first account creates production too), as rel would
// create it. Only counterexamples that involve a, or the production
// account rel would create, refuse: what is wrong with a production
// account already running is for Gate and silo verify to find. Its cost
// does not grow with the fleet.
//
// # Errors
//
// CodeFailedCheck, naming rel, a and the first counterexample (callers add
// what to do, which depends on where rel comes from); the error of
// engine.Desired if a's resources cannot be computed.
func GateAccount(ctx context.Context, rel engine.Release, a silo.Account, prod *AccountState) (Result, error) {
	t, err := engine.Compile(rel.Stack, rel.Artifacts)
	if err != nil {
		return Result{}, fmt.Errorf("gate release %s for %s: %w", rel.ID, a.ID, err)
	}
	a.Release, a.State = rel.ID, silo.StateActive
	rs, err := t.For(a)
	if err != nil {
		return Result{}, fmt.Errorf("gate release %s for %s: %w", rel.ID, a.ID, err)
	}
	f := &Fleet{Operators: []Operator{ControlPlane()}, Accounts: []AccountState{{Account: a, Resources: rs, HasDataKey: true}}}
	made := prod == nil
	if made {
		p := silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive, Release: rel.ID}
		prs, err := t.For(p)
		if err != nil {
			return Result{}, fmt.Errorf("gate release %s for the production account: %w", rel.ID, err)
		}
		prod = &AccountState{Account: p, Resources: prs, HasDataKey: true}
	}
	f.Accounts = append(f.Accounts, *prod)
	res := Verify(ctx, f)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	mine := res.Involving(a.ID)
	n, where := len(mine), "account "+string(a.ID)
	if made {
		mine, n = res.Counterexamples, res.Violations
		where += " (or in the production account created with it)"
	}
	if n == 0 {
		return res, nil
	}
	return res, silo.Errorf(silo.CodeFailedCheck, "release %s would break isolation in %s in %d place(s); first: %s; nothing was changed", rel.ID, where, n, describe(mine[0]))
}

// describe says what a counterexample breaks, and where its last edge
// comes from.
func describe(c Counterexample) string {
	s := c.Invariant + ": " + c.Problem
	if len(c.Path) > 0 {
		s += " (" + c.Path[len(c.Path)-1].Origin + ")"
	}
	return s
}
