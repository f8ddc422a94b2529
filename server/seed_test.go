package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
)

// ScanSeed refuses a fixture directory that holds nothing silo loads,
// naming what it expects, what it found and, when the layout sits one level
// deeper, the directory meant; ReadSeed (what --seed uploads) refuses it
// alike. The twins: a directory that holds tables or bucket objects is
// read, with the files beside them named as ignored.
func TestScanSeed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		want    server.SeedLayout
		wantErr []string // fragments of the one error, or none
	}{
		{name: "layout one level deeper", files: []string{"demo/tables/findings.json"},
			wantErr: []string{"holds nothing silo loads", "expects tables/<table>.json and buckets/<bucket>/<key>", "found demo/tables/findings.json", "did you mean --seed DIR/demo?"}},
		{name: "bucket one level deeper", files: []string{"x/y/buckets/files/a.txt"},
			wantErr: []string{"found x/y/buckets/files/a.txt: did you mean --seed DIR/x/y?"}},
		{name: "empty directory", wantErr: []string{"and found no file"}},
		{name: "files silo does not load", files: []string{"README.md", "tables/notes.txt", "buckets/loose.txt"},
			wantErr: []string{"found README.md, buckets/loose.txt, tables/notes.txt"}},
		{name: "tables and objects", files: []string{"tables/findings.json", "buckets/files/a/b.txt"},
			want: server.SeedLayout{Tables: []string{"tables/findings.json"}, Objects: []string{"buckets/files/a/b.txt"}}},
		{name: "ignored files beside a table", files: []string{"tables/findings.json", "README.md", "demo/tables/x.json"},
			want: server.SeedLayout{Tables: []string{"tables/findings.json"}, Ignored: []string{"README.md", "demo/tables/x.json"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, filepath.FromSlash(f))
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(`{"k":"v"}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := server.ScanSeed(dir)
			files, rerr := server.ReadSeed(dir)
			if len(tc.wantErr) > 0 {
				for _, e := range []error{err, rerr} {
					msg := strings.ReplaceAll(silo.UserMessage(e), dir, "DIR")
					if silo.ErrorCode(e) != silo.CodeInvalid || strings.Count(msg, "\n") > 0 {
						t.Fatalf("got %v, want one line with code invalid", e)
					}
					for _, w := range tc.wantErr {
						if !strings.Contains(msg, w) {
							t.Errorf("error %q, want it to contain %q", msg, w)
						}
					}
				}
				return
			}
			if err != nil || rerr != nil {
				t.Fatalf("ScanSeed: %v; ReadSeed: %v", err, rerr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("layout (-want +got):\n%s", diff)
			}
			var read []string
			for f := range files {
				read = append(read, f)
			}
			if diff := cmp.Diff(append(tc.want.Tables, tc.want.Objects...), read, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("ReadSeed files (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := server.ScanSeed(filepath.Join(t.TempDir(), "none")); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("missing directory: got %v, want not_found", err)
	}
}
