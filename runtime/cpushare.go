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
type cpus struct {
	shared, alone int
	active        atomic.Int32 // accounts with an invocation running or waiting
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
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.waiting, ch); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
		if !s.busyLocked() {
			s.cpus.active.Add(-1)
		}
		return false
	}
	s.releaseLocked() // handed over just as done closed: pass it on
	return false
}

// release gives a slot back, handing it to the first waiter if the share
// allows.
func (s *cpuShare) release() {
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

func (s *cpuShare) releaseLocked() {
	s.running--
	for len(s.waiting) > 0 && s.running < s.limitLocked() {
		close(s.waiting[0])
		s.waiting = slices.Delete(s.waiting, 0, 1)
		s.running++
	}
	if !s.busyLocked() {
		s.cpus.active.Add(-1)
	}
}
