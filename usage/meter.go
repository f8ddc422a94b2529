// Package usage meters what each account uses and prices it. A Meter
// aggregates the gateway's per-request records in memory, per account and
// function and per minute, and flushes each minute into the control-plane
// store's hourly roll-ups (store.Tx.AddUsage), which PruneUsage rolls up
// into daily totals and deletes by the configured retention. Report reads
// them back for `silo usage` and the API, and a PriceTable turns them into a
// cost estimate. Once an hour the meter also samples the bytes each
// account stores in each table and bucket (Config.Stored) into the store's
// stored-bytes history, priced as byte-hours per GB-month.
//
// It imports the root silo package, store and the standard library; it must
// not import the gateway, the runtime, providers or any storage
// implementation (the platform adapts the gateway's records to Sample).
package usage

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// Sample is what one request used.
type Sample struct {
	At time.Time // when the request ended; its hour holds it
	// Created is the creation time of the account the request was for,
	// which tells it apart from an earlier account that had its ID (zero:
	// the account registered under the ID when the usage is written).
	Created   time.Time
	Duration  time.Duration
	MemoryMiB int64 // the function's declared memory, held for Duration
	BytesIn   int64
	BytesOut  int64
	Error     bool
}

// Config configures a Meter. Zero fields take the defaults noted.
type Config struct {
	// Store receives the flushed usage. Required.
	Store store.Store
	// Flush is how often the aggregated usage is written. Default 1m.
	Flush time.Duration
	// HourlyRetention is how long hourly roll-ups are kept (then only the
	// daily total of each day); DailyRetention how long daily totals are
	// kept. Defaults 90 and 400 days.
	HourlyRetention time.Duration
	DailyRetention  time.Duration
	// Stored, if set, returns the bytes each account stores now in each
	// of its tables and buckets (with an error, those it could read). The meter samples it once in each UTC
	// hour, at the hour's first flush, into the store's stored-bytes
	// history (store.Tx.SetStored).
	Stored func(ctx context.Context) ([]store.StoredSample, error)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives flush failures. Default: discard.
	Logger *slog.Logger
}

// Validate fills in defaults and checks the configuration.
//
// # Errors
//
// CodeInvalid naming the first bad field.
func (c *Config) Validate() error {
	if c.Store == nil {
		return silo.Errorf(silo.CodeInvalid, "usage meter needs a store")
	}
	if c.Flush < 0 || c.HourlyRetention < 0 || c.DailyRetention < 0 {
		return silo.Errorf(silo.CodeInvalid, "usage flush and retention must not be negative")
	}
	if c.Flush == 0 {
		c.Flush = time.Minute
	}
	if c.HourlyRetention == 0 {
		c.HourlyRetention = 90 * 24 * time.Hour
	}
	if c.DailyRetention == 0 {
		c.DailyRetention = 400 * 24 * time.Hour
	}
	if c.DailyRetention < c.HourlyRetention {
		return silo.Errorf(silo.CodeInvalid, "usage daily retention (%s) is shorter than the hourly retention (%s); keep daily totals at least as long", c.DailyRetention, c.HourlyRetention)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

type key struct {
	acct    silo.AccountID
	created int64 // store.CreatedKey of the account's creation
	fn      string
	hour    int64 // Unix hour
}

// acctKey is an account as the meter counts its pending requests: an ID
// and a creation time.
type acctKey struct {
	acct    silo.AccountID
	created int64
}

// Meter aggregates samples in memory and flushes them to the store. Its
// methods are safe for concurrent use; Add takes one mutex and touches one
// map entry, so it is cheap on the request path.
type Meter struct {
	cfg Config

	mu      sync.Mutex
	pending map[key]*store.Counters
	perAcct map[acctKey]int64 // requests in pending, by account
	gen     uint64            // flushes written
	lastPrn time.Time         // last prune
	sampled int64             // Unix hour of the last stored-bytes sample
	retry   time.Time         // after a failed sample, when to sample again

	flushMu sync.Mutex // one flush at a time
	stop    chan struct{}
	done    chan struct{}
}

// New returns a meter. Call Start to flush periodically, Close to flush
// the rest.
//
// # Errors
//
// CodeInvalid for a bad configuration.
func New(cfg Config) (*Meter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Meter{cfg: cfg, pending: map[key]*store.Counters{}, perAcct: map[acctKey]int64{}}, nil
}

// Add records one request of acct's function fn.
func (m *Meter) Add(acct silo.AccountID, fn string, s Sample) {
	c := store.Counters{
		Requests:        1,
		DurationMicros:  s.Duration.Microseconds(),
		MemoryMiBMicros: s.MemoryMiB * s.Duration.Microseconds(),
		BytesIn:         s.BytesIn, BytesOut: s.BytesOut,
	}
	if s.Error {
		c.Errors = 1
	}
	created := store.CreatedKey(s.Created)
	k := key{acct, created, fn, s.At.Unix() / 3600}
	m.mu.Lock()
	p := m.pending[k]
	if p == nil {
		p = new(store.Counters)
		m.pending[k] = p
	}
	*p = p.Add(c)
	m.perAcct[acctKey{acct, created}]++
	m.mu.Unlock()
}

// Pending returns the requests of the account acct created at created
// recorded and not yet flushed (those recorded without a creation time
// too), and the number of flushes written so far (so a caller can tell
// when what it read from the store is stale).
func (m *Meter) Pending(acct silo.AccountID, created time.Time) (requests int64, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.perAcct[acctKey{acct, store.CreatedKey(created)}]
	if !created.IsZero() {
		n += m.perAcct[acctKey{acct, 0}]
	}
	return n, m.gen
}

// Flush writes what was recorded into the store, each sample in its hour,
// and prunes by the retention at most once an hour. On
// a store error the usage is kept and written by the next Flush.
//
// # Errors
//
// The store's error, wrapped.
func (m *Meter) Flush(ctx context.Context) error { return m.flush(ctx, true) }

// flush is Flush; sample false leaves the stored-bytes sample out (on
// Close: no provider reads while the server stops).
func (m *Meter) flush(ctx context.Context, sample bool) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	now := m.cfg.Now()
	m.mu.Lock()
	batch, perAcct := m.pending, m.perAcct
	m.pending, m.perAcct = map[key]*store.Counters{}, map[acctKey]int64{}
	m.mu.Unlock()
	if len(batch) > 0 {
		hours := map[int64][]store.UsageDelta{}
		for k, c := range batch {
			hours[k.hour] = append(hours[k.hour], store.UsageDelta{Account: k.acct, Created: store.CreatedTime(k.created), Function: k.fn, Counters: *c})
		}
		write := func(tx store.Tx) error {
			for h, ds := range hours {
				if err := tx.AddUsage(time.Unix(h*3600, 0), ds); err != nil {
					return err
				}
			}
			return nil
		}
		if err := m.cfg.Store.Update(ctx, write); err != nil {
			m.mu.Lock() // keep it for the next flush
			for k, c := range batch {
				if p := m.pending[k]; p != nil {
					*c = c.Add(*p)
				}
				m.pending[k] = c
			}
			for a, n := range perAcct {
				m.perAcct[a] += n
			}
			m.mu.Unlock()
			return fmt.Errorf("flush usage: %w", err)
		}
	}
	m.mu.Lock()
	m.gen++
	prune := now.Sub(m.lastPrn) >= time.Hour
	if prune {
		m.lastPrn = now
	}
	sample = sample && m.cfg.Stored != nil && m.sampled != now.Unix()/3600 && !now.Before(m.retry)
	m.mu.Unlock()
	if sample {
		if err := m.SampleStored(ctx); err != nil {
			return err
		}
	}
	if prune {
		if err := m.Prune(ctx); err != nil {
			return err
		}
	}
	return nil
}

// storedBatch bounds the samples written in one transaction; sampleRetry
// is how long after a failed sample the next is taken.
const (
	storedBatch = 1000
	sampleRetry = 5 * time.Minute
)

// SampleStored records what Config.Stored returns as the stored bytes of
// the current hour (a second sample in an hour replaces the first). Flush
// calls it once an hour; on an error it records what the source returned
// and the first flush 5 minutes later samples the hour again.
//
// # Errors
//
// Config.Stored's or the store's error, wrapped.
func (m *Meter) SampleStored(ctx context.Context) error {
	if m.cfg.Stored == nil {
		return nil
	}
	now := m.cfg.Now()
	ss, srcErr := m.cfg.Stored(ctx)
	for len(ss) > 0 {
		n := min(len(ss), storedBatch)
		if err := m.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.SetStored(now, ss[:n]) }); err != nil {
			return fmt.Errorf("sample stored bytes: %w", err)
		}
		ss = ss[n:]
	}
	if srcErr != nil { // what it returned is kept; a later flush samples again
		m.mu.Lock()
		m.retry = now.Add(sampleRetry)
		m.mu.Unlock()
		return fmt.Errorf("sample stored bytes: %w", srcErr)
	}
	m.mu.Lock()
	m.sampled = now.Unix() / 3600
	m.mu.Unlock()
	return nil
}

// Prune applies the retention: hours of days older than HourlyRetention are
// rolled up, days older than DailyRetention deleted.
//
// # Errors
//
// The store's error, wrapped.
func (m *Meter) Prune(ctx context.Context) error {
	now := m.cfg.Now()
	return m.cfg.Store.Update(ctx, func(tx store.Tx) error {
		_, _, err := tx.PruneUsage(now.Add(-m.cfg.HourlyRetention), now.Add(-m.cfg.DailyRetention))
		if err != nil {
			return fmt.Errorf("prune usage: %w", err)
		}
		return nil
	})
}

// Start flushes every Flush interval until Close.
func (m *Meter) Start() {
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		tk := time.NewTicker(m.cfg.Flush)
		defer tk.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
				if err := m.Flush(context.Background()); err != nil {
					m.cfg.Logger.Error("usage: flush", "error", err)
				}
			}
		}
	}()
}

// Close stops the periodic flush and flushes what is left (without a
// stored-bytes sample).
//
// # Errors
//
// The last flush's error.
func (m *Meter) Close(ctx context.Context) error {
	if m.stop != nil {
		close(m.stop)
		<-m.done
		m.stop = nil
	}
	return m.flush(ctx, false)
}
