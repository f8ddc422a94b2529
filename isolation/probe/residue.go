package probe

import (
	"context"
	"fmt"

	silo "github.com/silo-run/silo"
)

// residue checks that instance memory never crosses accounts: A's instance
// writes a marker into a global and all over a heap buffer; B's instances
// and production's (the same module!) must not see it, neither in their
// globals and heap nor in fresh memory; A's next warm invocation does (the
// control that shows the probe can observe residue at all). Then A's
// instance is closed and B starts a new one, which the runtime puts on the
// memory A's left (it recycles closed instances' memories, zeroed): B must
// find nothing of A's there either. Then the roles swap.
func (r *run) residue(ctx context.Context, rep *Report) error {
	t := newTally("residue", "instance memory: a marker A leaves in a global and on the heap is never seen by B's or production's instances of the same module")
	for _, pair := range [][2]*acct{{r.a, r.b}, {r.b, r.a}} {
		owner, other := pair[0], pair[1]
		m := fmt.Sprintf("residue-%s-of-%s", r.nonce, owner.id)
		if _, err := r.batch(ctx, owner, []op{{Op: "residue.set", Key: m}}); err != nil {
			return err
		}
		res, err := r.batch(ctx, other, []op{{Op: "residue.get", Key: m}})
		if err != nil {
			return err
		}
		r.residueAttempts(t, string(other.id)+"'s instance", string(owner.id), m, res[0])
		res, err = r.invokeProduction(ctx, silo.FunctionSpec{Artifact: r.digest}, []op{{Op: "residue.get", Key: m}})
		if err != nil {
			return err
		}
		r.residueAttempts(t, "production's instance", string(owner.id), m, res[0])
		res, err = r.batch(ctx, owner, []op{{Op: "residue.get", Key: m}})
		if err != nil {
			return err
		}
		x := res[0]
		problem := ""
		if x.Global != m {
			problem = fmt.Sprintf("the warm instance's global holds %q, not its own marker %q", x.Global, m)
		}
		t.control(string(owner.id)+"'s next warm invocation sees its own global marker", problem)
		problem = ""
		if !x.HeapHas {
			problem = "the warm instance's heap no longer holds its own marker"
		}
		t.control(string(owner.id)+"'s next warm invocation sees its own heap marker", problem)

		// Recycled memory: close other's instances, then owner's, so that
		// other's next instance is new and takes the memory owner's left
		// (the most recently recycled one).
		r.t.Runtime.Evict(other.id)
		problem = ""
		if n := r.t.Runtime.Evict(owner.id); n == 0 {
			problem = "no idle instance of " + string(owner.id) + " to close"
		}
		t.control(string(owner.id)+"'s instance is closed and its memory recycled", problem)
		res, err = r.batch(ctx, other, []op{{Op: "residue.get", Key: m}})
		if err != nil {
			return err
		}
		r.residueAttempts(t, string(other.id)+"'s new instance on "+string(owner.id)+"'s recycled memory", string(owner.id), m, res[0])
	}
	rep.add(t)
	return nil
}

func (r *run) residueAttempts(t *tally, who, owner, m string, x result) {
	breach := ""
	if x.Global == m {
		breach = fmt.Sprintf("its global holds %s's marker %q", owner, m)
	}
	t.attempt(who+" reads "+owner+"'s global marker", x.Status, breach)
	breach = ""
	if x.HeapHas {
		breach = fmt.Sprintf("its heap buffer holds %s's marker", owner)
	}
	t.attempt(who+" searches its heap buffer for "+owner+"'s marker", x.Status, breach)
	breach = ""
	if x.FreshHas {
		breach = fmt.Sprintf("8 MiB of fresh memory hold %s's marker", owner)
	}
	t.attempt(who+" searches fresh memory for "+owner+"'s marker", x.Status, breach)
}
