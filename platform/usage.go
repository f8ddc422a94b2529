package platform

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
	"github.com/silo-run/silo/usage/storage"
)

// UsageConfig tunes metering and limits.
type UsageConfig struct {
	// Off turns metering off (the gateway then records nothing, and
	// monthly invocation limits are not enforced); for benchmarks that
	// compare.
	Off bool
	// Flush, HourlyRetention and DailyRetention are the meter's (see
	// usage.Config; defaults 1m, 90 and 400 days).
	Flush           time.Duration
	HourlyRetention time.Duration
	DailyRetention  time.Duration
	// Prices price usage reports. Zero: usage.DefaultPrices.
	Prices usage.Prices
}

// wireUsage sets the gateway's limit source and meter, and starts the
// meter's flush loop.
func (p *Platform) wireUsage(gc *gateway.Config) error {
	ls := &limitSource{p: p, stacks: map[string]*spec.Stack{}, month: map[silo.AccountID]monthUse{}}
	gc.Limits = ls
	p.Stored = storage.New(storage.Config{Now: p.cfg.Now, Limit: ls.storage})
	gc.Reports = &reports{p: p, cache: map[silo.AccountID]cachedReport{}}
	if p.cfg.Usage.Prices == (usage.Prices{}) {
		p.cfg.Usage.Prices = usage.DefaultPrices()
	}
	if p.cfg.Usage.Off {
		return nil
	}
	m, err := usage.New(usage.Config{
		Store: p.Store, Flush: p.cfg.Usage.Flush, Now: p.cfg.Now, Logger: p.cfg.Logger,
		HourlyRetention: p.cfg.Usage.HourlyRetention, DailyRetention: p.cfg.Usage.DailyRetention,
		Stored: p.storedSamples,
	})
	if err != nil {
		return err
	}
	p.Usage = m
	m.Start()
	gc.Meter = gatewayMeter{p}
	return nil
}

// closeUsage writes what the meter holds.
func (p *Platform) closeUsage() error {
	if p.Usage == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Usage.Close(ctx)
}

// UsageReport builds a usage report with the platform's prices.
func (p *Platform) UsageReport(ctx context.Context, q usage.Query) (usage.Report, error) {
	return p.Plane.Usage(ctx, q, p.cfg.Usage.Prices)
}

// storedSamples is the meter's hourly stored-bytes sample: for every
// account not deleted, the bytes in each table and bucket it holds, as the
// storage tracker counts them. An account whose sizes cannot be read is
// left out and named in the error; the others are returned.
func (p *Platform) storedSamples(ctx context.Context) ([]store.StoredSample, error) {
	var out []store.StoredSample
	var errs []error
	f := store.Filter{Limit: 500}
	for {
		type acct struct {
			id              silo.AccountID
			created         time.Time
			tables, buckets []string
		}
		var page []acct
		var last silo.AccountID
		err := p.Store.View(ctx, func(tx store.Tx) error {
			as, err := tx.Accounts(f)
			if err != nil {
				return err
			}
			for _, a := range as {
				last = a.ID
				rs, err := tx.Resources(a.ID)
				if err != nil {
					return err
				}
				x := acct{id: a.ID, created: a.Created}
				for _, r := range rs {
					switch r.Type {
					case silo.TypeTable:
						x.tables = append(x.tables, r.Name)
					case silo.TypeBucket:
						x.buckets = append(x.buckets, r.Name)
					}
				}
				if len(x.tables)+len(x.buckets) > 0 {
					page = append(page, x)
				}
			}
			if len(as) < f.Limit {
				last = ""
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		for _, a := range page {
			us, err := p.Stored.Current(ctx, a.id, func(ctx context.Context) (provider.Data, error) { return p.Provider.Data(ctx, a.id) }, a.tables, a.buckets)
			if err != nil { // the others are still sampled
				errs = append(errs, fmt.Errorf("stored bytes of %s: %w", a.id, err))
				continue
			}
			for _, u := range us {
				out = append(out, store.StoredSample{Account: a.id, Created: a.created, Kind: u.Kind, Name: u.Name, Bytes: u.Bytes})
			}
		}
		if last == "" {
			return out, errors.Join(errs...)
		}
		f.After = last
	}
}

// gatewayMeter adapts the gateway's records to the meter, adding the
// function's declared memory (for GB-seconds) from the account's view.
type gatewayMeter struct{ p *Platform }

func (g gatewayMeter) Record(acct silo.AccountID, fn string, r gateway.Record) {
	created, mem := g.p.dir.Metered(acct, fn)
	g.p.Usage.Add(acct, fn, usage.Sample{
		At: g.p.cfg.Now(), Created: created, Duration: r.Duration, MemoryMiB: mem,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, Error: r.Error,
	})
}

// limitSource is the gateway's LimitSource: an account's plan limits in the
// release it runs, the operator's override over them, and, for a monthly
// bound, the month's invocations so far.
type limitSource struct {
	p *Platform

	mu     sync.Mutex
	stacks map[string]*spec.Stack // by release ID; releases are immutable
	month  map[silo.AccountID]monthUse
}

// monthUse is an account's stored invocations of a month, as of the
// meter's flush generation gen.
type monthUse struct {
	month    time.Time
	created  time.Time // the account's
	gen      uint64
	requests int64
}

func (l *limitSource) Limits(ctx context.Context, acct silo.AccountID) (gateway.Limits, error) {
	a, err := l.p.dir.Account(ctx, acct)
	if err != nil {
		return gateway.Limits{}, err
	}
	var out gateway.Limits
	if a.Release != "" {
		st, err := l.stack(ctx, a.Release)
		if err != nil {
			return gateway.Limits{}, err
		}
		out.Plan, out.Limits = control.PlanLimits(st, a)
	}
	var ov silo.Limits
	err = l.p.Store.View(ctx, func(tx store.Tx) error {
		var err error
		ov, err = tx.LimitOverride(acct)
		return err
	})
	switch {
	case err == nil:
		out.Limits, out.Override = out.Limits.Over(ov), true
	case !errors.Is(err, silo.ErrNotFound):
		return gateway.Limits{}, err
	}
	if out.Invocations > 0 && l.p.Usage == nil {
		out.Invocations = 0 // counted by the meter only: without it, not enforced
	}
	if out.Invocations > 0 {
		if out.Used, err = l.used(ctx, a); err != nil {
			return gateway.Limits{}, err
		}
	}
	return out, nil
}

// storage is the account's storage limit for the storage tracker.
func (l *limitSource) storage(ctx context.Context, acct silo.AccountID) (storage.Limit, error) {
	lim, err := l.Limits(ctx, acct)
	if err != nil {
		return storage.Limit{}, err
	}
	return storage.Limit{Bytes: lim.Storage, Plan: lim.Plan, Override: lim.Override}, nil
}

func (l *limitSource) stack(ctx context.Context, rel string) (*spec.Stack, error) {
	l.mu.Lock()
	st, ok := l.stacks[rel]
	l.mu.Unlock()
	if ok {
		return st, nil
	}
	var r store.Release
	if err := l.p.Store.View(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.Release(rel)
		return err
	}); err != nil {
		return nil, err
	}
	er, err := engine.LoadRelease(r)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(l.stacks) > 64 { // a few releases are live at once
		clear(l.stacks)
	}
	l.stacks[rel] = er.Stack
	l.mu.Unlock()
	return er.Stack, nil
}

// used is account a's requests this month (UTC): stored, read again only
// after the meter flushed, plus those the meter holds. Only a's own count:
// not those of an earlier account that had its ID.
func (l *limitSource) used(ctx context.Context, a silo.Account) (int64, error) {
	now := l.p.cfg.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	acct := a.ID
	pending, gen := l.p.Usage.Pending(acct, a.Created)
	l.mu.Lock()
	mu, ok := l.month[acct]
	l.mu.Unlock()
	if !ok || mu.gen != gen || !mu.month.Equal(start) || !mu.created.Equal(a.Created) {
		var days []store.UsageDay
		if err := l.p.Store.View(ctx, func(tx store.Tx) error {
			var err error
			days, err = tx.Usage(store.UsageQuery{Account: acct, Created: a.Created, From: start})
			return err
		}); err != nil {
			return 0, err
		}
		mu = monthUse{month: start, created: a.Created, gen: gen}
		for _, d := range days {
			mu.requests += d.Total.Requests
		}
		l.mu.Lock()
		if len(l.month) > 100000 {
			clear(l.month)
		}
		l.month[acct] = mu
		l.mu.Unlock()
	}
	return mu.requests + pending, nil
}

// SetLimitOverride sets an account's limit override (see
// control.Plane.SetLimitOverride); the gateway applies it within its limit
// refresh.
func (p *Platform) SetLimitOverride(ctx context.Context, id silo.AccountID, l silo.Limits) (control.AccountLimits, error) {
	out, err := p.Plane.SetLimitOverride(ctx, id, l)
	p.Invalidate(id)
	return out, err
}
