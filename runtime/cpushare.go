package runtime

import (
	"slices"
	"sync"
	"sync/atomic"
)

// cpus is the runtime-wide side of the accounts' CPU shares: while more
// than one account has an invocation running or waiting to run guest code,
// each may run at most shared of them at once (Config.AccountCPU,
// GOMAXPROCS-1 by default), so none holds every P; an account alone may use
// them all (alone, GOMAXPROCS), so the cap costs a single busy tenant
// nothing.
//
// An account's limit rises when another account stops wanting CPU, so the
// account that leaves wakes the waiters of the others (queued): a slot
// freed in one account must not leave another's waiters parked until one of
// their own account's slots comes back.
type cpus struct {
	shared, alone int
	active        atomic.Int32 // accounts with an invocation running or waiting

	mu     sync.Mutex
	queued map[*cpuShare]struct{} // shares with waiters
}

// queue notes that s has waiters (called with s.mu held).
func (c *cpus) queue(s *cpuShare) {
	c.mu.Lock()
	if c.queued == nil {
		c.queued = map[*cpuShare]struct{}{}
	}
	c.queued[s] = struct{}{}
	c.mu.Unlock()
}

// dequeue notes that s has no waiters left (called with s.mu held).
func (c *cpus) dequeue(s *cpuShare) {
	c.mu.Lock()
	delete(c.queued, s)
	c.mu.Unlock()
}

// leave counts an account out of the ones wanting CPU (called with its
// share's lock held); it reports whether the other accounts' limits may
// have risen, in which case the caller calls wakeQueued once it has let go
// of its own share's lock.
func (c *cpus) leave() bool { return c.active.Add(-1) == 1 }

// wakeQueued hands free slots to the waiters of every share with waiters,
// as far as each one's limit now allows.
func (c *cpus) wakeQueued() {
	c.mu.Lock()
	shares := make([]*cpuShare, 0, len(c.queued))
	for s := range c.queued {
		shares = append(shares, s)
	}
	c.mu.Unlock()
	for _, s := range shares {
		s.mu.Lock()
		s.grantLocked()
		s.mu.Unlock()
	}
}

// cpuShare is one account's CPU share: the slots its invocations hold while
// they run guest code, and the invocations waiting for one, first come
// first served.
type cpuShare struct {
	cpus    *cpus
	mu      sync.Mutex
	running int
	waiting []chan struct{} // closed when the slot is handed over
}

func (s *cpuShare) limitLocked() int {
	if s.cpus.active.Load() > 1 {
		return s.cpus.shared
	}
	return s.cpus.alone
}

func (s *cpuShare) busyLocked() bool { return s.running > 0 || len(s.waiting) > 0 }

// take waits for a slot, or until done is closed; it reports whether it
// got one.
func (s *cpuShare) take(done <-chan struct{}) bool {
	s.mu.Lock()
	if !s.busyLocked() {
		s.cpus.active.Add(1)
	}
	if len(s.waiting) == 0 && s.running < s.limitLocked() {
		s.running++
		s.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	s.waiting = append(s.waiting, ch)
	if len(s.waiting) == 1 {
		s.cpus.queue(s)
		// The limit may have risen between reading it above and
		// queueing, too late for that account's wakeQueued to see us.
		s.grantLocked()
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
	}
	s.mu.Lock()
	if i := slices.Index(s.waiting, ch); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
		if len(s.waiting) == 0 {
			s.cpus.dequeue(s)
		}
		left := !s.busyLocked() && s.cpus.leave()
		s.mu.Unlock()
		if left {
			s.cpus.wakeQueued()
		}
		return false
	}
	s.releaseAndUnlock() // handed over just as done closed: pass it on
	return false
}

// release gives a slot back, handing it to the first waiter if the share
// allows.
func (s *cpuShare) release() {
	s.mu.Lock()
	s.releaseAndUnlock()
}

// releaseAndUnlock gives a slot back (s.mu held) and lets go of s.mu.
func (s *cpuShare) releaseAndUnlock() {
	s.running--
	s.grantLocked()
	left := !s.busyLocked() && s.cpus.leave()
	s.mu.Unlock()
	if left {
		s.cpus.wakeQueued()
	}
}

// grantLocked hands slots to the first waiters while the share allows.
func (s *cpuShare) grantLocked() {
	if len(s.waiting) == 0 {
		return
	}
	for len(s.waiting) > 0 && s.running < s.limitLocked() {
		close(s.waiting[0])
		s.waiting = slices.Delete(s.waiting, 0, 1)
		s.running++
	}
	if len(s.waiting) == 0 {
		s.cpus.dequeue(s)
	}
}
