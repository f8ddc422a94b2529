// Package batch hands values to a writer in batches, off the path that
// produces them: the one way silo's request path defers its log writes (the
// gateway's access log, the functions' log lines).
//
// A value waits in memory until Size of them are there or Every has passed
// since the first of them came; a goroutine then hands them to Write. With
// nothing pending that goroutine sleeps: an idle process does not wake up.
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
	started bool
	closed  bool
	first   chan struct{} // a value came while none was pending
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
	return &Queue[T]{cfg: cfg, first: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
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
	n := len(q.pending)
	q.mu.Unlock()
	switch n {
	case 1:
		signal(q.first)
	case q.cfg.Size:
		signal(q.full)
	}
}

// signal wakes the writer without blocking (ch has room for one).
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (q *Queue[T]) run() {
	defer close(q.done)
	t := time.NewTimer(q.cfg.Every)
	t.Stop()
	for {
		select { // nothing pending: no timer
		case <-q.stop:
			return
		case <-q.first:
		case <-q.full:
		}
		// Both signals may be waiting: a full batch is written now, not
		// after a wait for a signal already taken.
		if !q.isFull() {
			t.Reset(q.cfg.Every)
			select {
			case <-q.stop:
				t.Stop()
				return
			case <-t.C:
			case <-q.full:
				t.Stop()
			}
		}
		q.Flush()
	}
}

func (q *Queue[T]) isFull() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) >= q.cfg.Size
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
	q.mu.Unlock()
	if started {
		close(q.stop)
		<-q.done
	}
	q.Flush()
}
