// Package storage counts the bytes each account stores in each of its
// tables and buckets and holds them under the account's storage limit
// (silo.Limits.Storage, a bound per table and per bucket).
//
// A Tracker wraps an account's provider.Data: a table's or bucket's size is
// read once, the first time the tracker meets it (a scan of the table, a
// listing of the bucket with each blob's size), and then moved by every
// write and delete made through the tracker. A write that would take a
// table or bucket over the limit is refused before it reaches the provider,
// with CodeTooLarge and a message naming the limit and how to raise it;
// writes that shrink or keep the size always pass. The size counted is the
// keys' and values' bytes as the function gave them, not the provider's
// bytes on disk (which add encryption and index overhead).
//
// What it does not see: writes made by another process (another server
// sharing the store) and, for a bucket with more blobs than one listing
// returns (1,000 keys with the local and AWS providers), the blobs past the first listing.
//
// A table write through a provider that lets it be admitted inside its own
// transaction (the local provider's AddMetered, PutMetered and
// DeleteMetered) is counted there, from the value it replaces, and so
// exactly however many writes of a key run at once. Through another
// provider (AWS) the tracker reads the old value first, and two concurrent
// writes of one key may both count the change from it until the size is
// read again (after Config.Recount).
//
// It imports the root package and provider (the Data interface) only.
package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// Limit is an account's storage bound and where it comes from, for the
// refusal message.
type Limit struct {
	Bytes    uint64 // per table and per bucket; 0: unbounded
	Plan     string // the plan of silo.yaml's limits that set it; "" for none
	Override bool   // an operator's override set it
}

// LimitFunc returns an account's storage limit.
type LimitFunc func(ctx context.Context, acct silo.AccountID) (Limit, error)

// Config configures a Tracker.
type Config struct {
	// Limit gives each account's limit; nil: no limit (sizes are still
	// counted).
	Limit LimitFunc
	// LimitRefresh is how long an account's limit is kept before it is
	// read again; default 5s (a plan change reaches writes within it).
	LimitRefresh time.Duration
	// Recount is how long a size is trusted before it is read again from
	// the provider; default 1h.
	Recount time.Duration
	Now     func() time.Time
}

// Tracker counts stored bytes per account, table and bucket. Safe for
// concurrent use.
type Tracker struct {
	cfg   Config
	mu    sync.Mutex
	accts map[silo.AccountID]*account
}

type account struct {
	mu    sync.Mutex
	sizes map[string]*size // by kind + "/" + name
	lim   Limit
	limAt time.Time
}

// size is one table's or bucket's byte count. mu serializes its first read.
type size struct {
	mu    sync.Mutex
	known bool
	at    time.Time // when it was read
	bytes int64     // guarded by account.mu once known
}

// Used is the bytes stored in one table or bucket.
type Used struct {
	Kind  string `json:"kind"` // "table" or "bucket"
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	// Limit is the bound on it (0: none).
	Limit uint64 `json:"limit,omitempty"`
}

// New returns a Tracker.
func New(cfg Config) *Tracker {
	if cfg.LimitRefresh <= 0 {
		cfg.LimitRefresh = 5 * time.Second
	}
	if cfg.Recount <= 0 {
		cfg.Recount = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tracker{cfg: cfg, accts: map[silo.AccountID]*account{}}
}

func (t *Tracker) account(acct silo.AccountID) *account {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.accts[acct]
	if a == nil {
		a = &account{sizes: map[string]*size{}}
		t.accts[acct] = a
	}
	return a
}

// Data returns d, the data plane of acct, with its writes counted and held
// under acct's limit. A nil Tracker returns d as it is.
func (t *Tracker) Data(acct silo.AccountID, d provider.Data) provider.Data {
	if t == nil || d == nil {
		return d
	}
	return &data{Data: d, t: t, acct: acct, a: t.account(acct)}
}

// Stored returns the bytes acct stores in each of the named tables and
// buckets, reading the size of those the tracker has not met yet, sorted
// by kind and name.
//
// # Errors
//
// The provider's (a missing table or bucket is left out).
func (t *Tracker) Stored(ctx context.Context, acct silo.AccountID, d provider.Data, tables, buckets []string) ([]Used, error) {
	a := t.account(acct)
	lim, err := t.limit(ctx, acct, a)
	if err != nil {
		return nil, err
	}
	var out []Used
	for _, kn := range [][2]any{{"table", tables}, {"bucket", buckets}} {
		kind := kn[0].(string)
		for _, name := range kn[1].([]string) {
			s, err := t.size(ctx, a, d, kind, name)
			if errors.Is(err, silo.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			a.mu.Lock()
			out = append(out, Used{Kind: kind, Name: name, Bytes: s.bytes, Limit: lim.Bytes})
			a.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Kind < out[j].Kind || out[i].Kind == out[j].Kind && out[i].Name < out[j].Name
	})
	return out, nil
}

// Current returns the bytes acct stores now in each of the named tables
// and buckets, for the hourly stored-bytes sample: the count the tracker
// keeps for those it has met (not read again when older than Recount, so
// sampling every account each hour does not scan every table), and a read
// for those it has not, through the Data that data returns (called only
// then, at most once). A missing table or bucket is left out.
//
// # Errors
//
// data's and the provider's.
func (t *Tracker) Current(ctx context.Context, acct silo.AccountID, data func(context.Context) (provider.Data, error), tables, buckets []string) ([]Used, error) {
	a := t.account(acct)
	var d provider.Data
	var out []Used
	for _, kn := range [][2]any{{"table", tables}, {"bucket", buckets}} {
		kind := kn[0].(string)
		for _, name := range kn[1].([]string) {
			a.mu.Lock()
			s := a.sizes[kind+"/"+name]
			known := s != nil && s.known
			var n int64
			if known {
				n = s.bytes
			}
			a.mu.Unlock()
			if !known {
				if d == nil {
					var err error
					if d, err = data(ctx); err != nil {
						return nil, err
					}
				}
				s, err := t.size(ctx, a, d, kind, name)
				if errors.Is(err, silo.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				a.mu.Lock()
				n = s.bytes
				a.mu.Unlock()
			}
			out = append(out, Used{Kind: kind, Name: name, Bytes: n})
		}
	}
	return out, nil
}

// limit returns the account's limit, read within LimitRefresh.
func (t *Tracker) limit(ctx context.Context, acct silo.AccountID, a *account) (Limit, error) {
	if t.cfg.Limit == nil {
		return Limit{}, nil
	}
	now := t.cfg.Now()
	a.mu.Lock()
	if !a.limAt.IsZero() && now.Sub(a.limAt) < t.cfg.LimitRefresh {
		l := a.lim
		a.mu.Unlock()
		return l, nil
	}
	a.mu.Unlock()
	l, err := t.cfg.Limit(ctx, acct)
	if errors.Is(err, silo.ErrNotFound) {
		l, err = Limit{}, nil
	}
	if err != nil {
		return Limit{}, fmt.Errorf("storage limit of %s: %w", acct, err)
	}
	a.mu.Lock()
	a.lim, a.limAt = l, now
	a.mu.Unlock()
	return l, nil
}

// size returns the table's or bucket's size entry, read from the provider
// the first time and again after Recount.
func (t *Tracker) size(ctx context.Context, a *account, d provider.Data, kind, name string) (*size, error) {
	k := kind + "/" + name
	a.mu.Lock()
	s := a.sizes[k]
	if s == nil {
		s = &size{}
		a.sizes[k] = s
	}
	a.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := t.cfg.Now()
	if s.known && now.Sub(s.at) < t.cfg.Recount {
		return s, nil
	}
	var n int64
	var err error
	if kind == "table" {
		n, err = tableBytes(ctx, d, name)
	} else {
		n, err = bucketBytes(ctx, d, name)
	}
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	s.known, s.at, s.bytes = true, now, n
	a.mu.Unlock()
	return s, nil
}

func tableBytes(ctx context.Context, d provider.Data, table string) (int64, error) {
	var n int64
	after := ""
	for {
		kvs, err := d.Scan(ctx, table, "", after, 1000)
		if err != nil {
			return 0, err
		}
		for _, kv := range kvs {
			n += int64(len(kv.Key) + len(kv.Value))
		}
		if len(kvs) == 0 {
			return n, nil
		}
		after = kvs[len(kvs)-1].Key
	}
}

func bucketBytes(ctx context.Context, d provider.Data, bucket string) (int64, error) {
	keys, err := d.ListBlobs(ctx, bucket, "", maxList)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, k := range keys {
		v, err := d.GetBlob(ctx, bucket, k)
		if errors.Is(err, silo.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return 0, err
		}
		n += int64(len(k) + len(v))
	}
	return n, nil
}

// refusal is the error of a write over the limit: short enough that a
// function sees all of it (the runtime passes a host error's first 240
// bytes on).
func refusal(kind, name string, l Limit, bytes, delta int64) error {
	from := "the operator's override"
	if l.Plan != "" {
		from = fmt.Sprintf("plan %q", l.Plan)
		if l.Override {
			from += " and an override"
		}
	}
	return silo.Errorf(silo.CodeTooLarge,
		"storage limit: %s %q holds %s, may hold %s per %s under %s; delete data or raise the limit (larger plan, or silo limits set --storage)",
		kind, clip(name), Human(bytes), Human(int64(l.Bytes)), kind, from)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Human formats a byte count: exact below 1 KiB, else with one decimal.
func Human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 3 {
		f /= unit
		i++
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0") + " " + []string{"KiB", "MiB", "GiB", "TiB"}[i]
}
