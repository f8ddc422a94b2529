package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// TestLogTailOfZeros: a growing log is extended by zeros a chunk at a
// time, so the records that follow within the chunk leave the file's size
// (its inode) as it is. A store opened from such a log as a crash left it
// (its last record followed by zeros, then a torn record followed by
// zeros) has every synced write and not the torn one, and takes writes
// again.
func TestLogTailOfZeros(t *testing.T) {
	ctx := context.Background()
	dir := stackedDir(t)
	p := newTestProvider(t, Config{Dir: dir})
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "accounts", "acme", fileLog)
	for i := range 5 {
		if err := d.Put(ctx, "findings", fmt.Sprintf("k%d", i), []byte(fmt.Sprint("value ", i))); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() != logChunk {
			t.Fatalf("log after %d records: %v, %v; want %d bytes, extended once", i+1, st.Size(), err, logChunk)
		}
	}

	// The crash: the data dir as it is now, every group synced, the log's
	// five records followed by zeros.
	crashed := t.TempDir()
	if err := copyDirTree(dir, crashed); err != nil {
		t.Fatal(err)
	}
	// A sixth record, torn: only its start reached the crashed copy's disk.
	_, _, _, end5, err := readLogAt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "torn", []byte("value of the torn record")); err != nil {
		t.Fatal(err)
	}
	gen, _, n, end6, err := readLogAt(path)
	if err != nil || n != 6 {
		t.Fatalf("log after six records: %d records, %v", n, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(crashed, "accounts", "acme", fileLog), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(b[end5:end6-4], end5)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if g, _, n, _, err := readLogAt(filepath.Join(crashed, "accounts", "acme", fileLog)); err != nil || g != gen || n != 5 {
		t.Fatalf("crashed log: generation %d (want %d), %d records (want 5), %v", g, gen, n, err)
	}

	check := func(d provider.Data, also string) {
		t.Helper()
		for i := range 5 {
			key := fmt.Sprintf("k%d", i)
			if got, err := d.Get(ctx, "findings", key); err != nil || string(got) != fmt.Sprint("value ", i) {
				t.Errorf("%s: %q, %v", key, got, err)
			}
		}
		if got, err := d.Get(ctx, "findings", "torn"); silo.ErrorCode(err) != silo.CodeNotFound {
			t.Errorf("torn record's key: %q, %v; want CodeNotFound", got, err)
		}
		if also != "" {
			if got, err := d.Get(ctx, "findings", also); err != nil || string(got) != "after" {
				t.Errorf("%s: %q, %v", also, got, err)
			}
		}
	}
	p2, err := New(Config{Dir: crashed})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := p2.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	check(d2, "")
	if err := d2.Put(ctx, "findings", "after", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	d3, err := newTestProvider(t, Config{Dir: crashed}).Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	check(d3, "after")
}

// readLogAt reads the log at path as an opener would.
func readLogAt(path string) (gen uint64, ov *overlay, n int, end int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, 0, 0, err
	}
	defer f.Close()
	return readLog(f)
}
