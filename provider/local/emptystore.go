package local

import (
	"encoding/binary"
	"hash/fnv"
)

// emptyStore returns the bytes of a new, empty bbolt store with pages of
// pageSize bytes: what bbolt's set-up writes into a new file (two meta
// pages, an empty free list, an empty root leaf), which it then syncs. The
// store image of a set of tables starts from these bytes in a scratch file
// that is never synced (storeImage). bbolt checks the meta pages' magic,
// version and checksum when it opens the file, and
// TestEmptyStoreIsBboltsOwn compares these bytes with a file bbolt set up.
//
// Layout (bbolt file format version 2, in the machine's byte order): each
// page starts with its header (u64 id, u16 flags, u16 count, u32
// overflow); a meta page's body is u32 magic, u32 version, u32 page size,
// u32 flags, u64 root bucket page, u64 root bucket sequence, u64 free list
// page, u64 high water mark, u64 transaction ID and the FNV-64a checksum of
// the fields before it.
func emptyStore(pageSize int) []byte {
	const (
		pageHeader   = 16
		flagLeaf     = 0x02
		flagMeta     = 0x04
		flagFreelist = 0x10
		magic        = 0xED0CDAED
		version      = 2
	)
	ne := binary.NativeEndian
	buf := make([]byte, 4*pageSize)
	header := func(id uint64, flags uint16) []byte {
		p := buf[int(id)*pageSize:]
		ne.PutUint64(p[0:], id)
		ne.PutUint16(p[8:], flags)
		return p[pageHeader:]
	}
	for id := range uint64(2) {
		m := header(id, flagMeta)
		ne.PutUint32(m[0:], magic)
		ne.PutUint32(m[4:], version)
		ne.PutUint32(m[8:], uint32(pageSize))
		ne.PutUint64(m[16:], 3) // root bucket: the leaf on page 3, sequence 0
		ne.PutUint64(m[32:], 2) // free list on page 2
		ne.PutUint64(m[40:], 4) // high water mark: 4 pages
		ne.PutUint64(m[48:], id)
		h := fnv.New64a()
		h.Write(m[:56])
		ne.PutUint64(m[56:], h.Sum64())
	}
	header(2, flagFreelist)
	header(3, flagLeaf)
	return buf
}
