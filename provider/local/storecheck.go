package local

// Structural check of an account's store file (bbolt) before bbolt maps it.
//
// bbolt trusts its file: a page that does not identify as itself, an element
// pointing past its page or a child page beyond the end of the file panics,
// or faults on the memory map. Opened with NoFreelistSync, as here, bbolt
// rebuilds the free list at open by walking the whole tree in a goroutine of
// its own, where no caller can recover, so one damaged account file would
// take the whole process, and every other tenant, down with it. checkStore
// walks the same structure from the file with bounds-checked reads, under
// the file's lock, and refuses the file with a reason instead: every page
// reachable from the chosen meta page is within the file and below the high
// water mark, identifies as itself, is a branch or leaf page (a free-list
// page where the meta page names one), is reached once (so no cycle, and the walk ends), and
// holds elements and keys within its bytes in strictly increasing order
// within the bounds its parent gives; inline buckets are checked the same
// way. It reads each reachable page once, as bbolt's own free-list rebuild
// does.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/bits"
	"os"
	"syscall"
)

// bbolt's on-disk format (go.etcd.io/bbolt/internal/common), version 2,
// little-endian as on every platform silo supports.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16 // id u64, flags u16, count u16, overflow u32
	boltElement      = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	boltMetaSize     = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	boltBucketHeader = 16 // root u64, sequence u64
	boltNoFreelist   = ^uint64(0)

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	leafBucket   = 0x01
)

// storeDamage is the error checkStore returns: why the file is refused.
type storeDamage struct{ reason string }

func (e *storeDamage) Error() string { return "store file is damaged: " + e.reason }

func damagedf(format string, args ...any) error {
	return &storeDamage{reason: fmt.Sprintf(format, args...)}
}

// boltMeta is a decoded meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

// decodeMeta decodes the meta page in b (a page), or says why it is not one.
func decodeMeta(b []byte) (boltMeta, error) {
	if len(b) < boltPageHeader+boltMetaSize {
		return boltMeta{}, errors.New("short meta page")
	}
	m := b[boltPageHeader : boltPageHeader+boltMetaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("not a store file (wrong magic)")
	}
	if le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, fmt.Errorf("unknown store file version %d", le.Uint32(m[4:]))
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	return boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}, nil
}

// storeChecker walks one store file.
type storeChecker struct {
	data     []byte // the whole file
	pageSize int64
	hwm      uint64   // the meta page's high water mark: pages in use are below it
	seen     []uint64 // bit set of the pages reached so far
}

// checkStore checks the store file f of size bytes (see the file comment),
// mapping it read-only for the walk. A nil error means bbolt can open it
// and walk it without panicking. An empty file is fine (bbolt initializes
// it).
func checkStore(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	if size != int64(int(size)) {
		return damagedf("file of %d bytes is too large to check", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map store file to check it: %w", err)
	}
	defer syscall.Munmap(data)
	return checkStoreBytes(data)
}

// checkStoreBytes checks the store file whose content is data.
func checkStoreBytes(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if err := checkStoreFile(data); err != nil {
		return &storeDamage{reason: err.Error()}
	}
	return nil
}

func checkStoreFile(data []byte) error {
	size := int64(len(data))
	// The page size is the first valid meta page's, as bbolt finds it.
	m0, err0 := decodeMeta(data)
	pageSize := int64(m0.pageSize)
	if err0 != nil {
		pageSize = 0
		for i := 0; i <= 14; i++ {
			pos := int64(1024) << i
			if pos >= size-1024 {
				break
			}
			if m, err := decodeMeta(data[pos:]); err == nil {
				pageSize = int64(m.pageSize)
				break
			}
		}
		if pageSize == 0 {
			return fmt.Errorf("no valid meta page: %v", err0)
		}
	}
	if pageSize < 1024 || pageSize > 1<<24 || bits.OnesCount64(uint64(pageSize)) != 1 {
		return fmt.Errorf("page size %d is not a power of two between 1 KiB and 16 MiB", pageSize)
	}
	if size < 2*pageSize {
		return fmt.Errorf("file is %d bytes, shorter than its two meta pages", size)
	}
	c := &storeChecker{data: data, pageSize: pageSize}
	// bbolt uses the valid meta page with the higher transaction ID.
	var metas []boltMeta
	var errs []error
	for id := uint64(0); id < 2; id++ {
		b, err := c.read(id, 1)
		if err == nil {
			var m boltMeta
			if m, err = decodeMeta(b); err == nil {
				metas = append(metas, m)
				continue
			}
		}
		errs = append(errs, fmt.Errorf("meta page %d: %v", id, err))
	}
	switch {
	case len(metas) == 0:
		return errors.Join(errs...)
	case len(metas) == 2 && metas[1].txid > metas[0].txid:
		metas[0] = metas[1]
	}
	m := metas[0]
	if int64(m.pageSize) != pageSize {
		return fmt.Errorf("meta page gives page size %d, the file uses %d", m.pageSize, pageSize)
	}
	if m.pgid < 3 {
		return fmt.Errorf("the store claims %d pages, fewer than a store has", m.pgid)
	}
	c.hwm = m.pgid
	if m.pgid > uint64(size/pageSize) {
		m.pgid = uint64(size/pageSize) + 1 // read refuses what lies beyond; the set need not be larger
	}
	c.seen = make([]uint64, m.pgid/64+1)
	c.seen[0] |= 3
	if m.freelist != boltNoFreelist {
		if err := c.checkFreelist(m.freelist); err != nil {
			return err
		}
	}
	return c.checkTree(m.root, nil, nil)
}

// read returns pages id..id+n-1, after checking they lie below the high water
// mark (once known) and within the file.
func (c *storeChecker) read(id uint64, n uint64) ([]byte, error) {
	if c.hwm != 0 && (id >= c.hwm || n > c.hwm-id) {
		return nil, fmt.Errorf("page %d (+%d overflow) is beyond the high water mark %d", id, n-1, c.hwm)
	}
	end := (id + n) * uint64(c.pageSize)
	if id+n < id || end/uint64(c.pageSize) != id+n || end > uint64(len(c.data)) {
		return nil, fmt.Errorf("page %d (+%d overflow) is beyond the end of the file (truncated?)", id, n-1)
	}
	return c.data[id*uint64(c.pageSize) : end : end], nil
}

// page reads the page id with its overflow pages and checks its header:
// it identifies as id, has one of the flags in want, and is reached for
// the first time.
func (c *storeChecker) page(id uint64, want ...uint16) ([]byte, error) {
	if id < 2 {
		return nil, fmt.Errorf("page %d is a meta page, referenced as data", id)
	}
	b, err := c.read(id, 1)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if got := le.Uint64(b); got != id {
		return nil, fmt.Errorf("page %d identifies as %d", id, got)
	}
	flags := le.Uint16(b[8:])
	ok := false
	for _, w := range want {
		ok = ok || flags == w
	}
	if !ok {
		return nil, fmt.Errorf("page %d has type flags %#x", id, flags)
	}
	if ov := uint64(le.Uint32(b[12:])); ov > 0 {
		if b, err = c.read(id, ov+1); err != nil {
			return nil, err
		}
	}
	n := uint64(len(b)) / uint64(c.pageSize)
	for i := id; i < id+n; i++ {
		if c.seen[i/64]&(1<<(i%64)) != 0 {
			return nil, fmt.Errorf("page %d is referenced twice", i)
		}
		c.seen[i/64] |= 1 << (i % 64)
	}
	return b, nil
}

// checkFreelist checks the free-list page a meta page names.
func (c *storeChecker) checkFreelist(id uint64) error {
	b, err := c.page(id, flagFreelist)
	if err != nil {
		return fmt.Errorf("free list: %v", err)
	}
	le := binary.LittleEndian
	idx, count := uint64(0), uint64(le.Uint16(b[10:]))
	if count == 0xFFFF {
		if len(b) < boltPageHeader+8 {
			return errors.New("free list: short page")
		}
		idx, count = 1, le.Uint64(b[boltPageHeader:])
	}
	if count > uint64(len(b)-boltPageHeader)/8 || idx+count > uint64(len(b)-boltPageHeader)/8 {
		return fmt.Errorf("free list: %d entries do not fit in page %d", count, id)
	}
	for i := idx; i < idx+count; i++ {
		if p := le.Uint64(b[boltPageHeader+8*i:]); p < 2 || p >= c.hwm {
			return fmt.Errorf("free list: page %d is out of range", p)
		}
	}
	return nil
}

// checkTree checks the page id and everything below it: its keys lie in
// [lo, hi) (nil: unbounded).
func (c *storeChecker) checkTree(id uint64, lo, hi []byte) error {
	b, err := c.page(id, flagBranch, flagLeaf)
	if err != nil {
		return err
	}
	return c.checkNode(id, b, lo, hi)
}

// checkNode checks the node in b (page id, or an inline bucket's page when
// id is 0).
func (c *storeChecker) checkNode(id uint64, b []byte, lo, hi []byte) error {
	le := binary.LittleEndian
	flags, count := le.Uint16(b[8:]), int(le.Uint16(b[10:]))
	if boltPageHeader+count*boltElement > len(b) {
		return fmt.Errorf("page %d: %d elements do not fit in it", id, count)
	}
	if flags == flagBranch && count == 0 {
		return fmt.Errorf("page %d: branch page without elements", id)
	}
	type elem struct {
		key, val []byte
		child    uint64
		bucket   bool
	}
	elems := make([]elem, count)
	for i := range elems {
		off := boltPageHeader + i*boltElement
		e := b[off : off+boltElement]
		var pos, ksize, vsize uint64
		if flags == flagBranch {
			pos, ksize = uint64(le.Uint32(e[0:])), uint64(le.Uint32(e[4:]))
			elems[i].child = le.Uint64(e[8:])
		} else {
			elems[i].bucket = le.Uint32(e[0:])&leafBucket != 0
			pos, ksize, vsize = uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		}
		start := uint64(off) + pos
		if start+ksize+vsize > uint64(len(b)) {
			return fmt.Errorf("page %d: element %d lies beyond the page", id, i)
		}
		elems[i].key = b[start : start+ksize]
		elems[i].val = b[start+ksize : start+ksize+vsize]
		k := elems[i].key
		switch {
		case i == 0 && lo != nil && bytes.Compare(k, lo) < 0,
			i > 0 && bytes.Compare(elems[i-1].key, k) >= 0,
			hi != nil && bytes.Compare(k, hi) >= 0:
			return fmt.Errorf("page %d: key %d is out of order", id, i)
		}
	}
	for i, e := range elems {
		switch {
		case flags == flagBranch:
			var next []byte = hi
			if i+1 < len(elems) {
				next = elems[i+1].key
			}
			if err := c.checkTree(e.child, e.key, next); err != nil {
				return err
			}
		case e.bucket:
			if err := c.checkBucket(id, e.key, e.val); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBucket checks a bucket value: a header naming its root page, or an
// inline page after a header with root 0.
func (c *storeChecker) checkBucket(id uint64, name, v []byte) error {
	if len(v) < boltBucketHeader {
		return fmt.Errorf("page %d: bucket %q has a short header", id, name)
	}
	root := binary.LittleEndian.Uint64(v)
	if root != 0 {
		return c.checkTree(root, nil, nil)
	}
	in := v[boltBucketHeader:]
	if len(in) < boltPageHeader {
		return fmt.Errorf("page %d: inline bucket %q is shorter than a page header", id, name)
	}
	if f := binary.LittleEndian.Uint16(in[8:]); f != flagLeaf {
		return fmt.Errorf("page %d: inline bucket %q has type flags %#x", id, name, f)
	}
	return c.checkNode(0, in, nil, nil)
}

// checkStorePath checks the store file at path without locking it (silo
// doctor on a store no process has open); see checkStore.
func checkStorePath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return damagedf("not a regular file")
	}
	return checkStore(f, fi.Size())
}
