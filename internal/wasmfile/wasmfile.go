// Package wasmfile tells a WebAssembly binary module from bytes that are
// not one (an empty file, a truncated one, another format), without
// decoding it: the check the build, the build cache and the artifact upload
// make before they keep a function module. The runtime decodes and
// validates modules in full when it compiles them.
//
// It imports only the standard library.
package wasmfile

import (
	"bytes"
	"errors"
	"fmt"
)

var (
	magic   = []byte("\x00asm")
	version = []byte{1, 0, 0, 0}
)

// maxSectionID is the highest section ID of the WebAssembly 1.0 binary
// format with bulk memory (12, data count).
const maxSectionID = 12

// Check returns nil if b is framed as a WebAssembly 1.0 binary module: the
// magic number and version, then sections each of a known ID whose size
// fits in the bytes that follow, ending exactly at the end of b, with at
// least one section (a function module has code).
//
// # Errors
//
// An error saying what is wrong (empty, bad magic, unsupported version,
// a section that runs past the end) for anything else.
func Check(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("it is empty (0 bytes)")
	case len(b) < 8 || !bytes.Equal(b[:4], magic):
		return fmt.Errorf("it does not start with the wasm magic number (%d bytes)", len(b))
	case !bytes.Equal(b[4:8], version):
		return fmt.Errorf("it is wasm version %x, not 1", b[4:8])
	case len(b) == 8:
		return errors.New("it is a wasm header with no sections")
	}
	for off := 8; off < len(b); {
		id := b[off]
		if id > maxSectionID {
			return fmt.Errorf("it has an unknown section ID %d at byte %d (truncated or damaged)", id, off)
		}
		size, n := uleb32(b[off+1:])
		if n == 0 {
			return fmt.Errorf("its section at byte %d has a malformed size (truncated or damaged)", off)
		}
		off += 1 + n
		if uint64(size) > uint64(len(b)-off) {
			return fmt.Errorf("its section at byte %d runs %d bytes past the end (truncated)", off-1-n, uint64(size)-uint64(len(b)-off))
		}
		off += int(size)
	}
	return nil
}

// uleb32 decodes an unsigned LEB128 value of at most 32 bits; n is 0 if b
// does not start with one.
func uleb32(b []byte) (v uint32, n int) {
	var shift uint
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}
