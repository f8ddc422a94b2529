package engine

import (
	"sync"
	"time"

	silo "github.com/silo-run/silo"
)

// The waits between the retries of work that keeps failing on one
// account: the first retry FirstRetryWait after the failure, each next one
// twice as long after, up to MaxRetryWait.
const (
	FirstRetryWait = 10 * time.Second
	MaxRetryWait   = 10 * time.Minute
)

// Backoff spaces out, per account, the retries a running server makes of
// work that keeps failing (a deletion, an onboarding: an IAM denial, an
// unreachable provider), so that an account that cannot be finished is
// neither retried nor logged at every pass. An account is due until it
// fails; then it waits FirstRetryWait, and each failure after doubles the
// wait, up to MaxRetryWait. A success forgets it, and so does a change of
// the account (its record's Updated time): the cause may be gone.
// It is kept in memory: a restarted process tries every account at once.
// Safe for concurrent use.
type Backoff struct {
	now func() time.Time

	mu      sync.Mutex
	waiting map[silo.AccountID]retry
}

// retry is one failing account's wait.
type retry struct {
	updated time.Time     // the account's Updated when it last failed
	next    time.Time     // not tried before
	wait    time.Duration // the last wait
	cause   string        // what failed, as a user reads it
}

func newBackoff(now func() time.Time) *Backoff {
	return &Backoff{now: now, waiting: map[silo.AccountID]retry{}}
}

// Due reports whether account a may be tried now: it has not failed, its
// wait has passed, or it changed since it failed.
func (b *Backoff) Due(a silo.Account) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.waiting[a.ID]
	if !ok {
		return true
	}
	if !r.updated.Equal(a.Updated) {
		delete(b.waiting, a.ID)
		return true
	}
	return !b.now().Before(r.next)
}

// Failed records that work on account a (as its record reads after the
// attempt) failed with err, and returns when the account is due again.
func (b *Backoff) Failed(a silo.Account, err error) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.waiting[a.ID]
	switch {
	case r.wait == 0:
		r.wait = FirstRetryWait
	case r.wait < MaxRetryWait:
		r.wait = min(2*r.wait, MaxRetryWait)
	}
	r.updated, r.next, r.cause = a.Updated, b.now().Add(r.wait), silo.UserMessage(err)
	b.waiting[a.ID] = r
	return r.next
}

// Succeeded forgets account id's failures.
func (b *Backoff) Succeeded(id silo.AccountID) {
	b.mu.Lock()
	delete(b.waiting, id)
	b.mu.Unlock()
}

// Failing returns why the last attempt on account id failed and when it
// is tried again, if it is waiting.
func (b *Backoff) Failing(id silo.AccountID) (cause string, next time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.waiting[id]
	return r.cause, r.next, ok
}
