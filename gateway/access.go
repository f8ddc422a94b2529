package gateway

import (
	"context"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/batch"
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

// newAccessLog batches entries for out with internal/batch's defaults:
// an entry waits in memory for at most batch.DefaultEvery and is then
// handed to the AccessLog off the request path, and an idle gateway does
// not wake up. While the AccessLog is slower than the requests, newer
// entries are dropped and counted (Metrics is unaffected; onDrop tells the
// operator's log how many).
func newAccessLog(out AccessLog, onDrop func(int)) *batch.Queue[AccessEntry] {
	return batch.New(batch.Config[AccessEntry]{Write: out.WriteAccess, Dropped: onDrop})
}

// Close writes the access log entries still buffered and stops the
// goroutine that writes them. Requests served after Close are not logged.
// It is safe to call more than once.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		if g.access != nil {
			g.access.Close()
		}
	})
	return nil
}

// FlushAccessLog hands the access log entries queued so far to the
// AccessLog before it returns: a reader of the log calls it to see every
// request that finished before.
func (g *Gateway) FlushAccessLog() {
	if g.access != nil {
		g.access.Flush()
	}
}

// logAccess queues the access log entry of one authenticated request.
func (g *Gateway) logAccess(e AccessEntry) {
	if g.access != nil {
		g.access.Add(e)
	}
}

func (g *Gateway) accessDropped(n int) {
	g.log.ErrorContext(context.Background(), "gateway: access log entries dropped (the access log is slower than the requests)", "dropped", n)
}
