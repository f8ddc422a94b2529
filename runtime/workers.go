package runtime

import "time"

// task is one job for one instance.
type task struct {
	in *instance
	j  *job
}

// dispatch hands t to an idle worker, or to a new one when none is idle.
//
// Workers are not bound to instances: there are as many as invocations
// run at once, not one per live instance. Go keeps the descriptor of every
// goroutine it ever ran, for reuse, so a worker per instance left one
// descriptor per instance of the busiest moment behind, spread over the
// heap spans of that peak (docs/benchmarks-dataplane.md, "Twelfth round").
// A worker's stack stays grown from one job to the next, as an
// instance's worker's did.
func (r *Runtime) dispatch(t task) {
	select {
	case r.tasks <- t:
	default:
		go r.worker(t)
	}
}

// worker runs t, then the tasks dispatch hands it, until it has been idle
// for the runtime's IdleTimeout or the runtime closes.
func (r *Runtime) worker(t task) {
	idle := time.NewTimer(r.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		r.run(t.in, t.j)
		idle.Reset(r.cfg.IdleTimeout)
		select {
		case t = <-r.tasks:
		case <-idle.C:
			return
		case <-r.stop:
			return
		}
	}
}
