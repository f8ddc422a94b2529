package runtime

import (
	goruntime "runtime"

	"github.com/tetratelabs/wazero/experimental"
)

// A new instance that does not start from a snapshot (the first of a
// function after a quiet spell) used to have its data segments copied
// into its memory by exportInitData: about 1.5 MB for a Go guest, most
// of it read-only data the guest never writes, and on fresh memory each
// page cost a first-write fault (on a VM the dearest part of such a cold
// start). So a restartable artifact keeps its data segments laid out as
// in memory in a memfd, as a snapshot's image (snapshot.go), and the
// memory allocator writes them in before _initialize runs: mapped
// copy-on-write over a memory no instance used (pages only read are never
// copied), copied into a recycled one. The instance then runs
// _initialize alone; what it starts with is byte for byte what
// exportInitData would have written.
//
// Isolation: the image holds the module's own data segments, which every
// instance of the artifact starts with whatever its account; a write
// copies the page into the instance's memory, and the ranges mapped are
// mapped anonymous again before the memory is recycled (memPool.put).
//
// Memory: one image per loaded artifact (the size of its data segments,
// rounded to pages), mapped and counted in the process's resident memory
// like a snapshot's image; it is given back when the artifact is
// unreachable (a cleanup, so that no instantiation under way loses it).

// dataSeg is an active data segment: b written at off.
type dataSeg struct {
	off uint32
	b   []byte
}

// dataImage is an artifact's data segments as memory holds them after
// exportInitData, from the page at start on.
type dataImage struct {
	start uint32 // a page boundary
	image []byte // shared mapping of fd
	fd    int
}

// newDataImage lays segs out in a memfd, or returns nil if the platform
// has none or the segments do not fit in the initial memory of minBytes
// (instantiation then runs exportInitData, which fails as it did).
func newDataImage(segs []dataSeg, minBytes uint64) *dataImage {
	if !haveMmap || len(segs) == 0 {
		return nil
	}
	lo, hi := uint64(segs[0].off), uint64(0)
	for _, s := range segs {
		lo, hi = min(lo, uint64(s.off)), max(hi, uint64(s.off)+uint64(len(s.b)))
	}
	lo = lo &^ (snapPage - 1)
	hi = (hi + snapPage - 1) &^ (snapPage - 1)
	if hi > minBytes || hi == lo {
		return nil
	}
	image, fd, err := imageFile("silo-data", int(hi-lo))
	if err != nil || image == nil {
		return nil
	}
	// Overlapping segments: the later one wins, as with memory.init in
	// order.
	for _, s := range segs {
		copy(image[uint64(s.off)-lo:], s.b)
	}
	d := &dataImage{start: uint32(lo), image: image, fd: fd}
	goruntime.AddCleanup(d, func(d dataImage) {
		unmapImage(d.image)
		closeImageFile(d.fd)
	}, *d)
	return d
}

// reservedMemory is a linear memory whose first bytes can be written
// before wazero sizes it.
type reservedMemory interface {
	// reserve returns the first n bytes, to be written (they count as
	// written when the memory is recycled, whatever wazero does next),
	// or nil if the memory has fewer.
	reserve(n uint64) []byte
}

// writeTo puts the data segments into mem, a new linear memory whose
// initial size holds them (newDataImage checked it). It keeps d alive
// while it reads the image.
func (d *dataImage) writeTo(mem experimental.LinearMemory) {
	defer goruntime.KeepAlive(d)
	r, ok := mem.(reservedMemory)
	if !ok {
		return
	}
	end := uint64(d.start) + uint64(len(d.image))
	buf := r.reserve(end)
	if buf == nil {
		return // a memory under the segments' size: instantiation fails
	}
	cm, _ := mem.(cowMemory)
	dst := buf[d.start:end]
	if cm != nil && cm.fresh() {
		if err := mapCOW(dst, d.fd, 0); err == nil {
			cm.mappedCOW(d.start, uint32(len(d.image)))
			return
		}
		populate(dst)
	}
	copy(dst, d.image)
}
