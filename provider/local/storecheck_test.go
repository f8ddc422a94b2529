package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// randomStore writes a store through bbolt with random puts, deletes and
// nested buckets (values from empty to several pages) over many commits,
// as the provider opens it, and returns its path.
func randomStore(t testing.TB, dir string, seed uint64, commits int) string {
	t.Helper()
	path := filepath.Join(dir, "data.db")
	r := rand.New(rand.NewPCG(seed, 1))
	for round := range 3 { // closed and reopened between rounds
		db, err := bbolt.Open(path, fileMode, &bbolt.Options{NoFreelistSync: round != 1, FreelistType: bbolt.FreelistMapType})
		if err != nil {
			t.Fatal(err)
		}
		for range commits {
			err := db.Update(func(tx *bbolt.Tx) error {
				for range 1 + r.IntN(50) {
					name := fmt.Appendf(nil, "t%d", r.IntN(4))
					b, err := tx.CreateBucketIfNotExists(name)
					if err != nil {
						return err
					}
					if r.IntN(10) == 0 {
						if b, err = b.CreateBucketIfNotExists([]byte("nested")); err != nil {
							return err
						}
					}
					key := fmt.Appendf(nil, "k%04d", r.IntN(2000))
					switch n := r.IntN(10); {
					case n < 6:
						err = b.Put(key, bytes.Repeat([]byte{byte(n)}, r.IntN(3)*r.IntN(6000)))
					case n < 9:
						err = b.Delete(key)
					default:
						if r.IntN(20) == 0 {
							err = tx.DeleteBucket(name)
						}
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestCheckStoreAcceptsValidStores: every store bbolt wrote passes, whatever
// its history (no false alarm takes a healthy account out of service).
func TestCheckStoreAcceptsValidStores(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			path := randomStore(t, t.TempDir(), seed, 40)
			if err := checkStorePath(path); err != nil {
				t.Fatalf("checkStorePath of a store bbolt wrote: %v", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckStoreMutations damages a valid store file in 3,000 random ways
// (bytes changed, a page header overwritten, truncated, bytes inserted, a
// page copied over another) and opens and walks every file checkStore
// accepts through openBolt: nothing may panic or fault (a panic in bbolt's
// own goroutine would kill the test binary). The undamaged file is
// accepted and walked in full (the twin), and both outcomes occur.
func TestCheckStoreMutations(t *testing.T) {
	seed, err := os.ReadFile(randomStore(t, t.TempDir(), 7, 1))
	if err != nil {
		t.Fatal(err)
	}
	if n := walkStore(t, seed); n == 0 {
		t.Fatalf("the undamaged store: walked %d keys, want some", n)
	}
	r := rand.New(rand.NewPCG(3, 4))
	accepted, refused := 0, 0
	for range 3000 {
		b := bytes.Clone(seed)
		switch r.IntN(5) {
		case 0:
			at, n := r.IntN(len(b)), r.IntN(64)
			for i := at; i < at+n && i < len(b); i++ {
				b[i] ^= byte(r.IntN(256))
			}
		case 1:
			at := r.IntN(len(b)) &^ 4095
			for i := at; i < at+16 && i < len(b); i++ {
				b[i] = byte(r.IntN(256))
			}
		case 2:
			b = b[:r.IntN(len(b))]
		case 3:
			at := r.IntN(len(b))
			b = append(b[:at:at], append(bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(5000)), b[at:]...)...)
		case 4:
			src, dst := r.IntN(len(b)/4096), r.IntN(len(b)/4096)
			copy(b[dst*4096:dst*4096+4096], seed[src*4096:src*4096+4096])
		}
		if checkStoreBytes(b) != nil {
			refused++
			continue
		}
		accepted++
		walkStore(t, b)
	}
	if accepted == 0 || refused == 0 {
		t.Errorf("accepted %d, refused %d damaged files: want both", accepted, refused)
	}
}

// walkStore opens the store file b as the provider does and reads every
// key of every bucket; it returns how many it read.
func walkStore(t *testing.T, b []byte) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.db")
	if err := os.WriteFile(path, b, fileMode); err != nil {
		t.Fatal(err)
	}
	db, _, err := openBolt(context.Background(), path, bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return 0
	}
	defer db.Close()
	n := 0
	_ = db.View(func(tx *bbolt.Tx) error {
		var walk func(b *bbolt.Bucket)
		walk = func(b *bbolt.Bucket) {
			_ = b.ForEach(func(k, v []byte) error {
				n++
				if v == nil {
					if c := b.Bucket(k); c != nil {
						walk(c)
					}
				}
				return nil
			})
		}
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { walk(b); return nil })
	})
	return n
}

// branchOf returns the offset in the store file b of the root page of the
// bucket name (a branch page in the fixtures below), and its page size.
func branchOf(t *testing.T, b []byte, name string) (int, int) {
	t.Helper()
	le := binary.LittleEndian
	m, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(m.pageSize)
	if m1, err := decodeMeta(b[ps:]); err == nil && m1.txid > m.txid {
		m = m1
	}
	root := b[int(m.root)*ps:]
	for i := range int(le.Uint16(root[10:])) {
		off := boltPageHeader + i*boltElement
		pos, ks := int(le.Uint32(root[off+4:])), int(le.Uint32(root[off+8:]))
		if string(root[off+pos:off+pos+ks]) == name {
			id := int(le.Uint64(root[off+pos+ks:]))
			if le.Uint16(b[id*ps+8:]) != flagBranch {
				t.Fatalf("bucket %s: root page %d is no branch page", name, id)
			}
			return id * ps, ps
		}
	}
	t.Fatalf("no bucket %s in the root page", name)
	return 0, 0
}

// TestCheckStoreRefuses crafts each kind of damage bbolt would panic on,
// or walk into forever, in a valid store, and wants checkStore to refuse
// it with its reason; the unaltered store passes (the twin).
func TestCheckStoreRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.db")
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("findings"))
		for i := 0; err == nil && i < 2000; i++ {
			err = b.Put(fmt.Appendf(nil, "k%05d", i), bytes.Repeat([]byte{1}, 100))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	tests := []struct {
		name, want string
		damage     func(b []byte, branch, ps int) []byte
	}{
		{"undamaged", "", func(b []byte, _, _ int) []byte { return b }},
		{"page identifies as another", "identifies as", func(b []byte, br, _ int) []byte {
			child := int(le.Uint64(b[br+boltPageHeader+8:]))
			le.PutUint64(b[child*4096:], 0)
			return b
		}},
		{"child referenced twice", "referenced twice", func(b []byte, br, _ int) []byte {
			le.PutUint64(b[br+boltPageHeader+boltElement+8:], le.Uint64(b[br+boltPageHeader+8:]))
			return b
		}},
		{"cycle", "referenced twice", func(b []byte, br, ps int) []byte { // a branch page its own child
			le.PutUint64(b[br+boltPageHeader+8:], uint64(br/ps))
			return b
		}},
		{"element beyond its page", "beyond the page", func(b []byte, br, _ int) []byte {
			le.PutUint32(b[br+boltPageHeader:], 1<<20)
			return b
		}},
		{"child beyond the high water mark", "high water mark", func(b []byte, br, _ int) []byte {
			le.PutUint64(b[br+boltPageHeader+8:], 1<<40)
			return b
		}},
		{"truncated", "end of the file", func(b []byte, _, _ int) []byte { return b[:len(b)/2] }},
		{"keys out of order", "out of order", func(b []byte, br, _ int) []byte {
			off := br + boltPageHeader + boltElement // the second key of the branch page
			b[off+int(le.Uint32(b[off:]))] = 0       // now sorts before the first
			return b
		}},
		{"wrong magic", "wrong magic", func(b []byte, _, ps int) []byte {
			b[boltPageHeader] ^= 0xff
			b[ps+boltPageHeader] ^= 0xff
			return b
		}},
		{"branch page without elements", "without elements", func(b []byte, br, _ int) []byte {
			le.PutUint16(b[br+10:], 0)
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(good)
			br, ps := branchOf(t, b, "findings")
			b = tt.damage(b, br, ps)
			err := checkStoreBytes(b)
			switch {
			case tt.name == "undamaged" && err != nil:
				t.Fatalf("checkStore: %v, want nil", err)
			case tt.name != "undamaged" && err == nil:
				t.Fatalf("checkStore accepted the damage, want an error")
			case err != nil && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("checkStore: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkOpenStore measures opening a store of about 2,000 keys (≈ 600
// pages) as the provider does, with the structural check (openBolt) and,
// as the baseline, bbolt's own open (which with NoFreelistSync walks the
// tree too); compare their ns/op as a ratio.
func BenchmarkOpenStore(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "data.db")
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{NoFreelistSync: true})
	if err != nil {
		b.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("findings"))
		for i := 0; err == nil && i < 2000; i++ {
			err = bk.Put(fmt.Appendf(nil, "k%05d", i), bytes.Repeat([]byte{1}, 1000))
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	opts := bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}
	b.Run("bbolt-baseline", func(b *testing.B) {
		for b.Loop() {
			o := opts
			db, err := bbolt.Open(path, fileMode, &o)
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
	b.Run("checked", func(b *testing.B) {
		for b.Loop() {
			db, _, err := openBolt(context.Background(), path, opts)
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
}

// BenchmarkRunTx measures what runTx (recover, SetPanicOnFault) adds to a
// read transaction: bbolt's View of one key as the baseline, then the same
// through runTx; compare their ns/op as a ratio.
func BenchmarkRunTx(b *testing.B) {
	p := newTestProvider(b, Config{})
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "data.db"), fileMode, &bbolt.Options{NoFreelistSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("t"))
		if err != nil {
			return err
		}
		return bk.Put([]byte("k"), []byte("v"))
	}); err != nil {
		b.Fatal(err)
	}
	get := func(tx *bbolt.Tx) error { _ = tx.Bucket([]byte("t")).Get([]byte("k")); return nil }
	a := &account{id: "acme"}
	b.Run("view-baseline", func(b *testing.B) {
		for b.Loop() {
			_ = db.View(get)
		}
	})
	b.Run("runTx", func(b *testing.B) {
		for b.Loop() {
			_ = p.runTx(a, &store{db: db}, false, get)
		}
	})
}
