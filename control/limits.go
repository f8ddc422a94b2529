package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
)

// AccountLimits are an account's limits and where they come from.
type AccountLimits struct {
	Account silo.AccountID `json:"account"`
	// Plan is the account's plan in the limits section of the release it
	// runs, with its limits ("" and zero when that release declares none,
	// or the account is not a tenant account).
	Plan       string      `json:"plan,omitempty"`
	PlanLimits silo.Limits `json:"plan_limits"`
	// Override is the operator's override; Effective is PlanLimits with
	// Override over it (zero fields take the gateway's defaults).
	Override  silo.Limits `json:"override"`
	Effective silo.Limits `json:"effective"`
}

// PlanLimits returns the plan and its limits for account a under stack st.
// Only tenant accounts are on plans: developer and environment accounts get
// the gateway's defaults (and any override), so that a developer never
// meets a customer's plan limits.
func PlanLimits(st *spec.Stack, a silo.Account) (string, silo.Limits) {
	if st == nil || a.Kind != silo.KindTenant {
		return "", silo.Limits{}
	}
	params, err := st.ResolveParams(a.Params)
	if err != nil {
		params = a.Params // the plan param as given
	}
	plan, l, ok := st.Plan(params)
	if !ok {
		return "", silo.Limits{}
	}
	return plan, l
}

// Limits returns an account's limits: its plan's in the release it runs
// and the operator's override.
//
// # Errors
//
// CodeNotFound for a missing or a deleted account; the store's errors.
func (p *Plane) Limits(ctx context.Context, id silo.AccountID) (AccountLimits, error) {
	a, err := p.LiveAccount(ctx, id)
	if err != nil {
		return AccountLimits{}, err
	}
	out := AccountLimits{Account: id}
	if a.Release != "" {
		rel, err := p.Release(ctx, a.Release)
		if err != nil {
			return AccountLimits{}, err
		}
		out.Plan, out.PlanLimits = PlanLimits(rel.Stack, a)
	}
	err = p.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		out.Override, err = tx.LimitOverride(id)
		return err
	})
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return AccountLimits{}, err
	}
	out.Effective = out.PlanLimits.Over(out.Override)
	return out, nil
}

// SetLimitOverride sets the operator's override of an account's limits
// (a zero l removes it) and records it in the audit log. The gateway
// applies it within its limit refresh, without a restart.
//
// # Errors
//
// CodeNotFound for a missing or a deleted account, CodeInvalid for limits out of range
// and for limits on the production account, which the gateway never
// serves (removing an override there is allowed).
func (p *Plane) SetLimitOverride(ctx context.Context, id silo.AccountID, l silo.Limits) (AccountLimits, error) {
	if err := l.Check(); err != nil {
		return AccountLimits{}, err
	}
	err := p.cfg.Store.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Account(id)
		if errors.Is(err, silo.ErrNotFound) {
			return silo.Errorf(silo.CodeNotFound, "no account %q; silo tenant list shows the accounts", id)
		}
		if err != nil {
			return err
		}
		if err := engine.Live(a); err != nil {
			return err
		}
		if a.Kind == silo.KindProduction && !l.IsZero() {
			// Limits bound the gateway's requests and the writes of the
			// functions they run; the gateway never serves production, and
			// nothing else runs its functions.
			return silo.Errorf(silo.CodeInvalid, "the production account takes no limits, because the gateway never serves it; set limits on a tenant, developer or environment account")
		}
		if err := tx.PutLimitOverride(id, l); err != nil {
			return err
		}
		_, err = tx.AppendAudit(store.AuditEvent{Time: p.cfg.Now(), Actor: p.cfg.Actor, Action: "limits.set", Account: id, Detail: jsonDetail(l)})
		return err
	})
	if err != nil {
		return AccountLimits{}, p.Engine.Answer(ctx, err)
	}
	return p.Limits(ctx, id)
}

// Usage builds a usage report (see package usage) priced with prices. A
// report of every account (q.Account empty) is a per-tenant billing
// export: every account in the registry but production that existed in the
// window, deleted ones included, is listed, even without usage, with its
// floor for the time it existed (from its creation to its deletion or
// now); the production account is left out, usage and all, and so are the
// throwaway accounts of silo verify --probe unless q.Probes. A report of
// one ID lists that one, production or a probe's included when named.
//
// An account deleted and purged when a new account took its ID (see
// store.Tx.PurgeAccount) is listed as deleted, with its own usage, apart
// from the new one, which starts from nothing.
//
// # Errors
//
// CodeInvalid for a bad query, CodeNotFound for an ID no account ever had.
func (p *Plane) Usage(ctx context.Context, q usage.Query, prices usage.Prices) (usage.Report, error) {
	now := p.cfg.Now()
	if q.Until.IsZero() {
		q.Until = now
	}
	var as []silo.Account
	if q.Account != "" {
		a, err := p.Account(ctx, q.Account)
		switch {
		case err == nil:
			as = append(as, a)
		case !errors.Is(err, silo.ErrNotFound):
			return usage.Report{}, err
		}
	} else {
		var err error
		if as, err = p.Accounts(ctx, store.Filter{IncludeDeleted: true}); err != nil {
			return usage.Report{}, err
		}
	}
	err := p.cfg.Store.View(ctx, func(tx store.Tx) error {
		purged, err := tx.PurgedAccounts(q.Account)
		as = append(as, purged...)
		return err
	})
	if err != nil {
		return usage.Report{}, err
	}
	if q.Account != "" && len(as) == 0 {
		return usage.Report{}, silo.Errorf(silo.CodeNotFound, "no account %q; silo tenant list shows the accounts", q.Account)
	}
	var lives []usage.Lifetime
	for _, a := range as {
		if q.Account == "" && (a.Kind == silo.KindProduction || store.IsProbeAccount(a) && !q.Probes) {
			continue
		}
		lives = append(lives, usage.LifetimeOf(a, now))
	}
	return usage.Build(ctx, p.cfg.Store, q, prices, lives)
}

// Since parses the start of a time window, relative to now: a number of
// days ("30d") or hours ("12h"), another positive duration ("10m",
// "1h30m"), a date (2026-03-01, UTC midnight) or an RFC 3339 time
// (2026-03-01T12:00:00Z). silo usage and silo logs read their --since and
// --until with it.
//
// # Errors
//
// CodeInvalid saying how to write it (a negative duration is one); one
// wrapping usage.ErrTooEarly for a number of days that reaches back before
// usage.Earliest (the year 1). The messages name the flag --since; When
// names another flag or parameter.
func Since(s string, now time.Time) (time.Time, error) { return When("--since", s, now) }

// When is Since for a time given as name (a flag such as --until, or a
// query parameter such as since), which its errors name.
func When(name, s string, now time.Time) (time.Time, error) {
	if back, ok := strings.CutPrefix(s, "-"); ok {
		if _, err := When(name, back, now); err == nil {
			return time.Time{}, silo.Errorf(silo.CodeInvalid, "%s %q is negative; write how far back without a sign (%s)", name, s, back)
		}
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, unit, ok := count(s); ok && (unit == "d" || unit == "h") {
		t := now.AddDate(0, 0, -n)
		if unit == "h" { // in whole days first: n hours may not fit a time.Duration
			t = now.UTC().AddDate(0, 0, -n/24).Add(-time.Duration(n%24) * time.Hour)
		}
		if t.Before(usage.Earliest) {
			return time.Time{}, &silo.Error{Code: silo.CodeInvalid, Err: usage.ErrTooEarly,
				Message: fmt.Sprintf("%s %q reaches back before the year 1; write fewer days (100000d is about 270 years, longer than any account has existed) or a date (2026-03-01)", name, s)}
		}
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, silo.Errorf(silo.CodeInvalid, "%s %q is not a window; %s", name, s, SinceForms)
}

// SinceForms says how to write what Since reads.
const SinceForms = "write how far back (30d, 12h, 10m), a date (2026-03-01) or an RFC 3339 time (2026-03-01T12:00:00Z)"

// count reads "<n><unit>" with a one-letter unit.
func count(s string) (int, string, bool) {
	if len(s) < 2 {
		return 0, "", false
	}
	v := 0
	for _, c := range s[:len(s)-1] {
		if c < '0' || c > '9' || v > 1e6 {
			return 0, "", false
		}
		v = v*10 + int(c-'0')
	}
	return v, s[len(s)-1:], true
}
