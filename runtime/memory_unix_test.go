//go:build unix

package runtime

import (
	"syscall"
	"testing"
)

// The lifetime rules of a linear memory's mapping (heldMemory): Free while
// a worker holds it waits for unhold; a freed handle cannot be held again,
// even once its mapping serves another instance; freeing it twice frees
// nothing of the other's.
func TestMemoryHold(t *testing.T) {
	page := uint64(syscall.Getpagesize())
	const pages = 4
	alloc := func(t *testing.T, p *memPool) *mmapMemory {
		t.Helper()
		m, ok := p.alloc(page, pages*page, 0).(*mmapMemory)
		if !ok {
			t.Skip("no mapping for a linear memory on this machine")
		}
		return m
	}
	wantMapped := func(t *testing.T, p *memPool, want int, when string) {
		t.Helper()
		if got := p.mappings(); got != want {
			t.Fatalf("%s: %d memories mapped, want %d", when, got, want)
		}
	}

	t.Run("free while held waits for unhold", func(t *testing.T) {
		p := newMemPool()
		p.close() // freed memories are unmapped, not pooled
		m := alloc(t, p)
		b := m.Reallocate(pages * page)
		m.Free()
		wantMapped(t, p, 1, "after Free while held")
		b[len(b)-1] = 1 // the holder still uses it
		m.unhold()
		wantMapped(t, p, 0, "after unhold")
		if m.hold() {
			t.Fatal("a freed memory was held again")
		}
	})
	t.Run("free while not held frees at once", func(t *testing.T) {
		p := newMemPool()
		p.close()
		m := alloc(t, p)
		m.unhold()
		if !m.hold() {
			t.Fatal("a live memory could not be held")
		}
		m.unhold()
		m.Free()
		wantMapped(t, p, 0, "after Free")
		if m.hold() {
			t.Fatal("a freed memory was held again")
		}
	})
	t.Run("a recycled mapping gets a new handle", func(t *testing.T) {
		p := newMemPool()
		defer p.close()
		old := alloc(t, p)
		old.unhold()
		old.Free()
		if p.len() != 1 {
			t.Fatalf("%d memories pooled after Free, want 1", p.len())
		}
		m := alloc(t, p)
		if p.len() != 0 || p.mappings() != 1 {
			t.Fatalf("second alloc: %d pooled, %d mapped; want the pooled mapping taken (0, 1)", p.len(), p.mappings())
		}
		if old.hold() {
			t.Fatal("the closed module's handle was held again after its mapping went to a new one")
		}
		old.Free() // wazero frees a module once; a second Free changes nothing
		wantMapped(t, p, 1, "after the old handle's second Free")
		if p.len() != 0 {
			t.Fatal("the old handle's second Free pooled the mapping a new instance uses")
		}
		b := m.Reallocate(pages * page)
		b[len(b)-1] = 1
		m.unhold()
		m.Free()
		if p.len() != 1 {
			t.Fatalf("%d memories pooled after the new handle's Free, want 1", p.len())
		}
	})
}
