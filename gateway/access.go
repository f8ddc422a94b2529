package gateway

import (
	"context"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
)

// AccessEntry is one line of an account's access log: one authenticated
// request and its outcome. It never holds a body, a query string, a header
// or a key.
type AccessEntry struct {
	Time      time.Time // when the request arrived
	Account   silo.AccountID
	Method    string
	Path      string // the path within the tenant, percent-encoded, without the query
	Status    int    // the status the client got
	Duration  time.Duration
	RequestID string // the X-Request-Id the client got
	Function  string // the route's function; "" if no route matched
	Release   string // the release the account ran; "" before its first
}

// AccessLog receives the gateway's access log in batches, in the order the
// requests finished, from one goroutine at a time. It must not keep the
// slice. Errors are its own to report: the gateway does not wait for it or
// retry.
type AccessLog interface {
	WriteAccess(entries []AccessEntry)
}

// Access log batching: entries wait in memory until accessBatch of them
// are there or accessFlushEvery has passed since the first of them came,
// and are then handed to the AccessLog off the request path; with nothing
// pending, the writer sleeps (an idle gateway does not wake up). While the AccessLog is slower than the
// requests, at most accessMaxPending wait; newer ones are dropped and
// counted (Metrics is unaffected; the operator's log says how many).
const (
	accessBatch      = 256
	accessFlushEvery = 100 * time.Millisecond
	accessMaxPending = 16384
)

// accessLog buffers entries for an AccessLog.
type accessLog struct {
	out AccessLog
	log func(dropped int)

	mu      sync.Mutex
	pending []AccessEntry
	dropped int
	flushes int           // calls of flush, for tests
	first   chan struct{} // an entry came while none was pending
	full    chan struct{} // a batch is ready
	stop    chan struct{}
	done    chan struct{}
}

func newAccessLog(out AccessLog, onDrop func(int)) *accessLog {
	a := &accessLog{out: out, log: onDrop, first: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// add queues e. It never blocks on the AccessLog.
func (a *accessLog) add(e AccessEntry) {
	a.mu.Lock()
	if len(a.pending) >= accessMaxPending {
		a.dropped++
		a.mu.Unlock()
		return
	}
	a.pending = append(a.pending, e)
	n := len(a.pending)
	a.mu.Unlock()
	switch n {
	case 1:
		signal(a.first)
	case accessBatch:
		signal(a.full)
	}
}

// signal wakes the writer without blocking (ch has room for one).
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (a *accessLog) run() {
	defer close(a.done)
	t := time.NewTimer(accessFlushEvery)
	t.Stop()
	var spare []AccessEntry
	for {
		select { // nothing pending: no timer
		case <-a.stop:
			a.flush(spare)
			return
		case <-a.first:
		case <-a.full:
		}
		t.Reset(accessFlushEvery)
		select {
		case <-a.stop:
			t.Stop()
			a.flush(spare)
			return
		case <-t.C:
		case <-a.full:
			t.Stop()
		}
		spare = a.flush(spare)
	}
}

// flush hands the pending entries to the AccessLog and returns the
// emptied slice for reuse.
func (a *accessLog) flush(spare []AccessEntry) []AccessEntry {
	a.mu.Lock()
	batch := a.pending
	a.pending = spare[:0]
	dropped := a.dropped
	a.dropped = 0
	a.flushes++
	a.mu.Unlock()
	if dropped > 0 {
		a.log(dropped)
	}
	if len(batch) > 0 {
		a.out.WriteAccess(batch)
	}
	clear(batch) // drop the requests' strings
	return batch
}

func (a *accessLog) close() {
	close(a.stop)
	<-a.done
}

// Close writes the access log entries still buffered and stops the
// goroutine that writes them. Requests served after Close are not logged.
// It is safe to call more than once.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		if g.access != nil {
			g.access.close()
		}
	})
	return nil
}

// logAccess queues the access log entry of one authenticated request.
func (g *Gateway) logAccess(e AccessEntry) {
	if g.access != nil {
		g.access.add(e)
	}
}

func (g *Gateway) accessDropped(n int) {
	g.log.ErrorContext(context.Background(), "gateway: access log entries dropped (the access log is slower than the requests)", "dropped", n)
}
