// Package batch hands values to a writer in batches, off the path that
// produces them: the one way silo's request path defers its log writes (the
// gateway's access log, the functions' log lines).
//
// A value waits in memory until Size of them are there or Every has passed
// since the first of them came; a goroutine then hands them to Write. With
// nothing pending that goroutine sleeps: an idle process does not wake up.
// The first value of a batch starts its timer rather than waking the
// goroutine, so a batch costs the goroutine one wake-up: when it is full
// or its Every has passed.
// While Write is slower than the values come, at most MaxPending wait:
// Add then drops newer ones and counts them, AddWaiting writes the waiting
// ones on its caller's goroutine first.
//
// It imports only the standard library.
package batch

import (
	"sync"
	"time"
)

// Defaults of the Config fields left zero.
const (
	DefaultSize       = 256
	DefaultEvery      = 100 * time.Millisecond
	DefaultMaxPending = 16384
)

// Config configures a Queue.
type Config[T any] struct {
	// Write is given each batch, in the order its values were added, from
	// one goroutine at a time. It must not keep the slice. Required.
	Write func([]T)
	// Dropped, if set, is told how many values were dropped because
	// MaxPending were waiting, before the next batch is written.
	Dropped func(n int)
	// Size is the batch written at once, without waiting for Every.
	Size int
	// Every is the longest a value waits before it is written.
	Every time.Duration
	// MaxPending bounds the values waiting.
	MaxPending int
}

// Queue batches values for Config.Write. It is safe for concurrent use.
type Queue[T any] struct {
	cfg Config[T]

	wmu sync.Mutex // held while a batch is taken and written: batches stay in order

	mu      sync.Mutex
	pending []T
	spare   []T // the last batch's slice, emptied, for reuse
	dropped int
	flushes int
	wakes   int // of the writer goroutine, for tests
	started bool
	closed  bool
	every   *time.Timer   // started by a batch's first value, stopped by its Flush
	full    chan struct{} // a batch is ready
	stop    chan struct{}
	done    chan struct{}
}

// New returns a Queue. Its goroutine starts with the first Add.
func New[T any](cfg Config[T]) *Queue[T] {
	if cfg.Size <= 0 {
		cfg.Size = DefaultSize
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	q := &Queue[T]{cfg: cfg, every: time.NewTimer(cfg.Every), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	q.every.Stop()
	return q
}

// Add queues v. It never waits for Write: with MaxPending values waiting,
// v is dropped and counted. After Close, v is dropped.
func (q *Queue[T]) Add(v T) { q.add(v, false) }

// AddWaiting queues v like Add, but with MaxPending values waiting it
// first writes them on the caller's goroutine: nothing is dropped, and a
// producer faster than Write is held to its pace. After Close, v is
// dropped.
func (q *Queue[T]) AddWaiting(v T) { q.add(v, true) }

func (q *Queue[T]) add(v T, wait bool) {
	q.mu.Lock()
	for !q.closed && len(q.pending) >= q.cfg.MaxPending && wait {
		q.mu.Unlock()
		q.Flush()
		q.mu.Lock()
	}
	if q.closed {
		q.mu.Unlock()
		return
	}
	if len(q.pending) >= q.cfg.MaxPending {
		q.dropped++
		q.mu.Unlock()
		return
	}
	if !q.started {
		q.started = true
		go q.run()
	}
	q.pending = append(q.pending, v)
	switch len(q.pending) {
	case 1:
		q.every.Reset(q.cfg.Every)
	case q.cfg.Size:
		select { // wake the writer without blocking (full has room for one)
		case q.full <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
}

func (q *Queue[T]) run() {
	defer close(q.done)
	for {
		select { // nothing pending: no timer running
		case <-q.stop:
			return
		case <-q.every.C:
		case <-q.full:
		}
		q.mu.Lock()
		q.wakes++
		q.mu.Unlock()
		q.Flush()
	}
}

// Flush writes the values pending now before it returns, after any batch
// being written. Readers call it to see what was added before.
func (q *Queue[T]) Flush() {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.mu.Lock()
	batch := q.pending
	q.pending = q.spare[:0]
	q.spare = nil
	q.every.Stop() // the next value starts the next batch's timer
	dropped := q.dropped
	q.dropped = 0
	q.flushes++
	q.mu.Unlock()
	if dropped > 0 && q.cfg.Dropped != nil {
		q.cfg.Dropped(dropped)
	}
	if len(batch) > 0 {
		q.cfg.Write(batch)
	}
	clear(batch) // drop what the values point to
	q.mu.Lock()
	if q.spare == nil && cap(batch) <= 4*q.cfg.Size {
		q.spare = batch
	}
	q.mu.Unlock()
}

// flushCount reports how many times a batch was taken (empty ones
// included), for tests.
func (q *Queue[T]) flushCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.flushes
}

// Close writes what is pending and stops the goroutine; values added
// after it are dropped. It is safe to call more than once.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	started := q.started
	q.every.Stop()
	q.mu.Unlock()
	if started {
		close(q.stop)
		<-q.done
	}
	q.Flush()
}
