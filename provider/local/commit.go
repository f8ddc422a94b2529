package local

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	silo "github.com/silo-run/silo"

	"go.etcd.io/bbolt"
)

// Group commit of table writes.
//
// A durable write costs a sync, and a disk does a few hundred to a few
// thousand of those a second: one per Put would bound an account's writes
// by the disk's sync rate whatever the number of writers. So concurrent
// writes to one account share a commit: a writer that finds no commit
// running becomes the leader, runs its own write and every write queued
// meanwhile against one view of the store, appends their after-images to
// the account's write-ahead log as one record and syncs it once
// (fdatasync; wal.go), then answers each of them. Writers that arrive while
// a commit runs queue for the next one. A write is answered only after the
// log's sync that holds it returned, so an acknowledged write is on disk
// (TestAckedWritesSurviveKill9, TestPowerLossKeepsAckedWrites).
//
// Before it takes its group, a leader yields the processor once
// (runtime.Gosched), so that goroutines ready to run and about to write
// join this commit rather than the next: with 16 writers that do nothing
// else, 13 writes share a commit instead of 9 (BenchmarkPutConcurrent).
// Unlike bbolt's DB.Batch, there is no timed delay waiting for more
// writers (a lone writer on an idle process commits at once), and the
// group runs in a writer's own goroutine, under runTx's fault guard, never
// in a timer's.

// writeReq is one write waiting for a commit.
type writeReq struct {
	s    *store
	fn   func(*view) error
	done chan writeResult // buffered (1): the answer never blocks the leader
}

// writeResult answers a writeReq: its error, or lead when the writer is
// to run the next commit itself.
type writeResult struct {
	err  error
	lead bool
}

// commitCount counts the commit groups committed and the writes they
// carried (Provider.Commits).
type commitCount struct{ commits, writes atomic.Int64 }

func (n *commitCount) add(writes int) {
	n.commits.Add(1)
	n.writes.Add(int64(writes))
}

// Commits returns how many commit groups of table writes this Provider has
// committed and how many writes (Put, Delete, Add) they carried, so that
// writes/commits is the mean size of a commit group. A group retried
// without a failing write counts once, when it commits.
func (p *Provider) Commits() (commits, writes int64) {
	return p.committed.commits.Load(), p.committed.writes.Load()
}

// committer queues the writes of one account.
type committer struct {
	mu      sync.Mutex
	pending []*writeReq
	running bool
}

// maxGroup bounds the writes one commit carries, so a commit's size
// (and the latency of the writers in it) stays bounded under any load.
const maxGroup = 256

// commit runs fn on a view of the store s, together with the writes of
// other goroutines queued on the same account, and returns fn's error once
// the log record that holds its effect is synced (or has failed).
//
// fn may run more than once (when another write of its group fails, the
// group is retried without it), so it must be idempotent, and it must do no
// costly work that a retry would repeat: values are sealed before, not in
// it. A failing fn gets its own error; the others are unaffected by it.
func (p *Provider) commit(a *account, s *store, fn func(*view) error) error {
	r := &writeReq{s: s, fn: fn, done: make(chan writeResult, 1)}
	if oneTxn {
		p.runGroup(a, []*writeReq{r})
		return (<-r.done).err
	}
	c := &a.commits
	c.mu.Lock()
	c.pending = append(c.pending, r)
	if c.running {
		c.mu.Unlock()
		res := <-r.done
		if !res.lead {
			return res.err
		}
		c.mu.Lock()
	}
	c.running = true
	// Before taking the group, let the goroutines that are ready to run
	// go first: those about to write queue behind this commit instead of
	// waiting for the next one. Nothing is runnable on an idle process, so
	// a lone writer still commits at once; under load a commit carries more
	// writes, and each sync is shared by more of them.
	c.mu.Unlock()
	runtime.Gosched()
	c.mu.Lock()
	group := c.take(r)
	c.mu.Unlock()
	p.runGroup(a, group) // answers r too: group holds it
	c.mu.Lock()
	// Hand the next commit to the first writer still waiting, so that no
	// writer serves the others for longer than its own commit.
	if len(c.pending) > 0 {
		next := c.pending[0]
		next.done <- writeResult{lead: true}
	} else {
		c.running = false
	}
	c.mu.Unlock()
	res := <-r.done
	return res.err
}

// take removes from the queue up to maxGroup writes on lead's store,
// lead's own first. The caller holds c.mu.
func (c *committer) take(lead *writeReq) []*writeReq {
	group := []*writeReq{lead}
	rest := c.pending[:0]
	for _, q := range c.pending {
		switch {
		case q == lead:
		case q.s == lead.s && len(group) < maxGroup:
			group = append(group, q)
		default:
			rest = append(rest, q)
		}
	}
	clear(c.pending[len(rest):])
	c.pending = rest
	return group
}

// runGroup commits group's writes with one sync of the log and answers
// each. A write whose fn fails is answered with its error and the others
// are run again without it. An error of the commit itself (a failed write
// or sync of the log, a closed store, a fault) answers them all. Once they
// are answered, a checkpoint that is due runs (wal.go).
func (p *Provider) runGroup(a *account, group []*writeReq) {
	s := group[0].s
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if s.err != nil {
			p.retire(a, s)
		}
	}()
	answer := func(err error) {
		for _, q := range group {
			q.done <- writeResult{err: err}
		}
	}
	switch {
	case s.closed:
		answer(bbolt.ErrDatabaseNotOpen) // the writers open the store again
		return
	case s.err != nil:
		answer(commitErr(a, s.err))
		return
	}
	for len(group) > 0 {
		if beforeGroup != nil {
			beforeGroup(len(group))
		}
		failed := -1
		ch := &changes{}
		ov := s.ov.Load()
		err := p.runTx(a, s, false, func(tx *bbolt.Tx) error {
			v := &view{tx: tx, ov: ov, ch: ch}
			for i, q := range group {
				if err := q.fn(v); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if err == nil && !ch.empty() {
			err = s.logGroup(ch)
		}
		switch {
		case err == nil:
			ov.apply(ch)
			p.committed.add(len(group))
			answer(nil)
			if s.due() {
				if err := s.checkpointLocked(); err != nil {
					p.log.Warn("checkpoint of an account's table writes failed; its log keeps them", "account", a.id, "err", err)
				}
			}
			return
		case failed >= 0: // nothing of the group was logged
			group[failed].done <- writeResult{err: err}
			group = append(group[:failed:failed], group[failed+1:]...)
		default:
			answer(commitErr(a, err))
			return
		}
	}
}

// retire takes the store s, whose log takes no more records (a failed
// restart or clearing of a record, wal.go), out of service: the next
// operation opens the store again, which replays what the log holds.
func (p *Provider) retire(a *account, s *store) {
	p.mu.Lock()
	if a.db != s {
		s = nil
	} else {
		p.detachLocked(a)
	}
	p.mu.Unlock()
	if s != nil {
		p.log.Warn("account store's log failed; reopening the store", "account", a.id, "err", s.err)
		go s.close() // once the group holding it is done
	}
}

// commitErr is the error every writer of a failed commit gets: a full
// disk, an exceeded quota, a read-only file system or an I/O error (a
// failed sync) says so, naming the store rather than its path on the
// server; other errors are returned as they are.
func commitErr(a *account, err error) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("the tables of account %s (%s)", a.id, fileDB)
	if errors.Is(err, syscall.EIO) {
		return &silo.Error{Code: silo.CodeUnavailable, Err: err, Message: fmt.Sprintf("cannot write %s: the disk reported an I/O error, so these writes may not be saved; check the disk (the kernel log says more), then retry", what)}
	}
	return diskErr(what, err)
}

// beforeGroup, if set (by tests only), is called with the size of each
// group before its writes run.
var beforeGroup func(size int)

// oneTxn, if set (by benchmarks only), commits every write on its own: the
// baseline group commit is measured against.
var oneTxn bool
