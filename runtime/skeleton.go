package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A module's skeleton is the module with every function body replaced by
// `unreachable`: its types, imports, functions' signatures, tables,
// memory, globals, exports, data, elements and custom sections, without
// its code. Given machine code compiled from the whole module, wazero needs
// nothing else to run it, and decoding and validating the skeleton costs
// a small part of what the whole module costs (the function bodies are most
// of a Go module and all of its validation). So a package prepared on a
// machine of the function's architecture (the Lambda host's) carries, in a
// compilation cache, the machine code of the whole module filed under the
// skeleton's cache key, and the host hands wazero the skeleton:
// Runtime.PrepareCode writes such a cache, CompilePrepared loads it.
//
// Loading machine code is trusting the package that carries it, entirely;
// the whole module was validated and instrumented when the package was
// prepared (by the same build: the caller checks), so skipping the bodies'
// validation at start trusts nothing more.
//
// A skeleton must never be compiled: its code would trap at the first call.
// CompilePrepared compiles one only from a cache and refuses when wazero
// did not find its code there (see cacheState).

// stubBody is a function body of no locals whose code is `unreachable`,
// which is valid whatever the function's type.
var stubBody = []byte{0x03, 0x00, 0x00, 0x0b}

// skeleton returns wasm with every function body replaced by stubBody.
func skeleton(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 {
		return nil, errors.New("not a wasm module")
	}
	out := append(make([]byte, 0, len(wasm)/2), wasm[:8]...)
	r := &reader{b: wasm, off: 8}
	for r.off < len(wasm) && r.err == nil {
		start := r.off
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil {
			break
		}
		if id != 10 {
			out = append(out, wasm[start:r.off]...)
			continue
		}
		s := &reader{b: body}
		n := s.u32()
		if s.err != nil {
			return nil, fmt.Errorf("code section: %w", s.err)
		}
		code := appendU32(make([]byte, 0, 5+int(n)*len(stubBody)), n)
		for range n {
			code = append(code, stubBody...)
		}
		out = appendSection(out, 10, code)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// cacheState is what a compilation cache directory holds: each file's
// identity, by path.
type cacheState map[string]fs.FileInfo

// readCacheState reads the files under dir.
func readCacheState(dir string) (cacheState, error) {
	st := cacheState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := os.Lstat(p)
		st[p] = fi
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read compilation cache %s: %w", dir, err)
	}
	return st, nil
}

// unchanged reports whether dir holds exactly the files st recorded, the
// same files (wazero files what it compiles under a new name, or replaces
// an entry it could not read by renaming a new file over it: either way a
// file appears or changes).
func (st cacheState) unchanged(dir string) (bool, error) {
	now, err := readCacheState(dir)
	if err != nil {
		return false, err
	}
	if len(now) != len(st) {
		return false, nil
	}
	for p, fi := range now {
		if !st.holds(p, fi) {
			return false, nil
		}
	}
	return true, nil
}

// forget removes from dir every file that is not one st recorded, the same:
// what wazero wrote there when it did not find a skeleton's code, which is
// the skeleton's own code and must never be loaded.
func (st cacheState) forget(dir string) error {
	now, err := readCacheState(dir)
	if err != nil {
		return err
	}
	var errs []error
	for p, fi := range now {
		if !st.holds(p, fi) {
			errs = append(errs, os.Remove(p))
		}
	}
	return errors.Join(errs...)
}

// holds reports whether st recorded fi, the same file, at path p.
func (st cacheState) holds(p string, fi fs.FileInfo) bool {
	was, ok := st[p]
	return ok && os.SameFile(was, fi) && was.ModTime().Equal(fi.ModTime()) && was.Size() == fi.Size()
}
