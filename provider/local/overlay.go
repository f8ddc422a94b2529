package local

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/bbolt"
)

// overlay holds the writes logged since a store's last checkpoint (wal.go),
// by table: each key's sealed value, or nil for a deletion.
type overlay struct {
	mu     sync.RWMutex
	tables map[string]*tableOverlay
}

type tableOverlay struct {
	vals map[string][]byte
	keys []string // sorted, for scans
}

func newOverlay() *overlay { return &overlay{tables: map[string]*tableOverlay{}} }

// get returns key's value in table (nil: deleted) and whether the overlay
// has the key.
func (o *overlay) get(table string, key []byte) ([]byte, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	t := o.tables[table]
	if t == nil {
		return nil, false
	}
	v, ok := t.vals[string(key)]
	return v, ok
}

// from returns the keys of table that start with prefix and sort at or
// after start, in order, with their values (nil: deleted).
func (o *overlay) from(table, start, prefix string) (keys []string, vals [][]byte) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	t := o.tables[table]
	if t == nil {
		return nil, nil
	}
	i, _ := slices.BinarySearch(t.keys, start)
	for ; i < len(t.keys) && strings.HasPrefix(t.keys[i], prefix); i++ {
		keys = append(keys, t.keys[i])
		vals = append(vals, t.vals[t.keys[i]])
	}
	return keys, vals
}

// apply adds a group's writes.
func (o *overlay) apply(ch *changes) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for table, w := range ch.tables {
		t := o.tables[table]
		if t == nil {
			t = &tableOverlay{vals: map[string][]byte{}}
			o.tables[table] = t
		}
		for k, v := range w {
			if _, ok := t.vals[k]; !ok {
				i, _ := slices.BinarySearch(t.keys, k)
				t.keys = slices.Insert(t.keys, i, k)
			}
			t.vals[k] = v
		}
	}
}

// changes are the writes of one commit group: the last value of each key
// by table (nil: deleted).
type changes struct {
	tables map[string]map[string][]byte
}

func (c *changes) empty() bool { return len(c.tables) == 0 }

func (c *changes) get(table string, key []byte) ([]byte, bool) {
	v, ok := c.tables[table][string(key)]
	return v, ok
}

func (c *changes) set(table string, key, val []byte) {
	if c.tables == nil {
		c.tables = map[string]map[string][]byte{}
	}
	t := c.tables[table]
	if t == nil {
		t = map[string][]byte{}
		c.tables[table] = t
	}
	t[string(key)] = val
}

// encode returns the record of c in generation gen: its header, then per
// write the operation, the table, the key and (for a put) the value, each
// length-prefixed.
func (c *changes) encode(gen uint64) []byte {
	rec := make([]byte, recHeaderSize, 256)
	for table, t := range c.tables {
		for k, v := range t {
			op := byte(opPut)
			if v == nil {
				op = opDel
			}
			rec = append(rec, op)
			rec = binary.AppendUvarint(rec, uint64(len(table)))
			rec = append(rec, table...)
			rec = binary.AppendUvarint(rec, uint64(len(k)))
			rec = append(rec, k...)
			if v != nil {
				rec = binary.AppendUvarint(rec, uint64(len(v)))
				rec = append(rec, v...)
			}
		}
	}
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(rec)-recHeaderSize))
	binary.BigEndian.PutUint64(rec[8:16], gen)
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(rec[8:], castagnoli))
	return rec
}

// decodeChanges reads a record's payload; ok is false if it does not parse.
func decodeChanges(b []byte) (c *changes, ok bool) {
	c = &changes{}
	field := func() ([]byte, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, false
		}
		f := b[w : w+int(n)]
		b = b[w+int(n):]
		return f, true
	}
	for len(b) > 0 {
		op := b[0]
		b = b[1:]
		table, ok1 := field()
		key, ok2 := field()
		if !ok1 || !ok2 {
			return nil, false
		}
		switch op {
		case opPut:
			v, ok := field()
			if !ok {
				return nil, false
			}
			c.set(string(table), key, bytes.Clone(v))
		case opDel:
			c.set(string(table), key, nil)
		default:
			return nil, false
		}
	}
	return c, true
}

// view is what a table operation sees: the store's bbolt transaction
// (read-only), the overlay as it was when the operation began, and in a
// commit group the group's own writes so far.
type view struct {
	tx *bbolt.Tx
	ov *overlay
	ch *changes // nil: a read
}

// table returns the table name as this view sees it, or nil if the store
// has no such table.
func (v *view) table(name string) *tableView {
	b := v.tx.Bucket([]byte(name))
	if b == nil {
		return nil
	}
	return &tableView{b: b, name: name, v: v}
}

// tableView is one table of a view. Its writes go to the group's changes,
// which the group logs and then adds to the overlay (commit.go).
type tableView struct {
	b    *bbolt.Bucket
	name string
	v    *view
}

// Get returns key's sealed value, or nil.
func (t *tableView) Get(key []byte) []byte {
	if t.v.ch != nil {
		if v, ok := t.v.ch.get(t.name, key); ok {
			return v
		}
	}
	if v, ok := t.v.ov.get(t.name, key); ok {
		return v
	}
	return t.b.Get(key)
}

// Put sets key to the sealed value env, with bbolt's checks on both (the
// checkpoint must not fail on a write the log holds).
func (t *tableView) Put(key, env []byte) error {
	switch {
	case len(key) == 0:
		return bbolt.ErrKeyRequired
	case len(key) > bbolt.MaxKeySize:
		return bbolt.ErrKeyTooLarge
	case int64(len(env)) > bbolt.MaxValueSize:
		return bbolt.ErrValueTooLarge
	}
	t.v.ch.set(t.name, key, env) // env is the caller's and never changed
	return nil
}

// Delete removes key.
func (t *tableView) Delete(key []byte) error {
	if len(key) == 0 {
		return bbolt.ErrKeyRequired
	}
	t.v.ch.set(t.name, key, nil)
	return nil
}

// scan calls fn, in key order, for each key that starts with prefix and
// sorts after after, up to limit of them: the overlay's keys merged with
// bbolt's, the overlay's value winning and its deletions hiding the key.
func (t *tableView) scan(prefix, after string, limit int, fn func(key string, env []byte) error) error {
	start := prefix
	if after >= prefix {
		start = after
	}
	okeys, ovals := t.v.ov.from(t.name, start, prefix)
	c := t.b.Cursor()
	k, v := c.Seek([]byte(start))
	i, n := 0, 0
	for n < limit {
		inStore := k != nil && bytes.HasPrefix(k, []byte(prefix))
		inOverlay := i < len(okeys)
		if !inStore && !inOverlay {
			return nil
		}
		var key string
		var env []byte
		if inOverlay && (!inStore || okeys[i] <= string(k)) {
			key, env = okeys[i], ovals[i]
			if inStore && okeys[i] == string(k) {
				k, v = c.Next()
			}
			i++
		} else {
			key, env = string(k), v
			k, v = c.Next()
		}
		if key == after || env == nil {
			continue
		}
		if err := fn(key, env); err != nil {
			return err
		}
		n++
	}
	return nil
}
