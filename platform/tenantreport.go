package platform

import (
	"context"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/usage/storage"
)

// reports is the gateway's ReportSource: each account's signed isolation
// report, built when first asked for and built again once the account has
// changed (a release reached it, its parameters, keys or state changed),
// so a tenant's reviewer always reads the proof of what the account runs.
type reports struct {
	p *Platform

	mu    sync.Mutex
	cache map[silo.AccountID]cachedReport
}

// cachedReport is one account's report in both formats, as of the account
// record it was built from.
type cachedReport struct {
	release string
	updated time.Time
	keys    string            // the account's key IDs and whether each is revoked
	body    map[string][]byte // by format
}

// maxCachedReports bounds the cache; past it the cache starts over.
const maxCachedReports = 4096

func (rs *reports) Report(ctx context.Context, acct silo.AccountID, format string) ([]byte, error) {
	a, err := rs.p.Plane.Account(ctx, acct)
	if err != nil {
		return nil, err
	}
	keys, err := rs.p.Plane.Keys(ctx, acct)
	if err != nil {
		return nil, err
	}
	var kb strings.Builder
	for _, k := range keys {
		kb.WriteString(k.ID)
		if k.Revoked != nil {
			kb.WriteString("-")
		}
		kb.WriteString(" ")
	}
	kf := kb.String()
	rs.mu.Lock()
	c, ok := rs.cache[acct]
	if ok && c.release == a.Release && c.updated.Equal(a.Updated) && c.keys == kf {
		if b, ok := c.body[format]; ok {
			rs.mu.Unlock()
			return b, nil
		}
	} else {
		c = cachedReport{release: a.Release, updated: a.Updated, keys: kf, body: map[string][]byte{}}
	}
	rs.mu.Unlock()
	key, err := report.LoadOrCreateKey(rs.p.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	b, err := server.TenantReport(ctx, rs.p.Store, rs.p.Plane, rs.p.Provider, key, acct, format, rs.p.cfg.Now())
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	if len(rs.cache) >= maxCachedReports {
		clear(rs.cache)
	}
	c.body[format] = b
	rs.cache[acct] = c
	rs.mu.Unlock()
	return b, nil
}

// StoredBytes returns the bytes account id stores in each table and bucket
// it holds, with its storage limit (see package usage/storage).
//
// # Errors
//
// CodeNotFound for an unknown account; the provider's.
func (p *Platform) StoredBytes(ctx context.Context, id silo.AccountID) ([]storage.Used, error) {
	d, err := p.Plane.Show(ctx, id)
	if err != nil {
		return nil, err
	}
	var tables, buckets []string
	for _, r := range d.Resources {
		switch r.Type {
		case silo.TypeTable:
			tables = append(tables, r.Name)
		case silo.TypeBucket:
			buckets = append(buckets, r.Name)
		}
	}
	if len(tables)+len(buckets) == 0 {
		return nil, nil
	}
	data, err := p.Provider.Data(ctx, id)
	if err != nil {
		return nil, err
	}
	return p.Stored.Stored(ctx, id, data, tables, buckets)
}
