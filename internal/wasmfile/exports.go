package wasmfile

import (
	"errors"
	"fmt"
	"strings"
)

// Value types of the WebAssembly 1.0 binary format.
const (
	I32 byte = 0x7f
	I64 byte = 0x7e
	F32 byte = 0x7d
	F64 byte = 0x7c
)

// Section IDs this file reads.
const (
	sectionType     = 1
	sectionImport   = 2
	sectionFunction = 3
	sectionExport   = 7
)

// Func is an exported function: its name and its type.
type Func struct {
	Name    string
	Params  []byte // value types (I32, I64, ...)
	Results []byte
}

// Is reports whether f has exactly the parameter and result types given.
func (f Func) Is(params, results []byte) bool {
	return string(f.Params) == string(params) && string(f.Results) == string(results)
}

// Signature returns f's type as text, e.g. "(i32, i32) i64".
func (f Func) Signature() string { return Signature(f.Params, f.Results) }

// Signature returns a function type as text, e.g. "(i32, i32) i64".
func Signature(params, results []byte) string {
	names := func(ts []byte) []string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = valueName(t)
		}
		return s
	}
	out := "(" + strings.Join(names(params), ", ") + ")"
	switch len(results) {
	case 0:
	case 1:
		out += " " + valueName(results[0])
	default:
		out += " (" + strings.Join(names(results), ", ") + ")"
	}
	return out
}

func valueName(t byte) string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	}
	return fmt.Sprintf("type 0x%02x", t)
}

// Exports returns the functions the module b exports, in the order of its
// export section, each with its type. It reads the type, import, function
// and export sections only; other exports (memories, globals, tables) are
// left out.
//
// # Errors
//
// Check's error if b is not framed as a module; an error saying which
// section is malformed (truncated, an index out of range) otherwise.
func Exports(b []byte) ([]Func, error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	var (
		types    []Func // Params and Results only
		funcs    []uint32
		imported uint32 // function imports come first in the function index space
		exports  []export
	)
	for off := 8; off < len(b); {
		id := b[off]
		size, n := uleb32(b[off+1:])
		off += 1 + n
		r := &reader{b: b[off : off+int(size)]}
		off += int(size)
		var err error
		switch id {
		case sectionType:
			types, err = readTypes(r)
		case sectionImport:
			imported, err = readImports(r)
		case sectionFunction:
			funcs, err = readFunctions(r)
		case sectionExport:
			exports, err = readExports(r)
		default:
			continue
		}
		if err == nil && r.err == nil && len(r.b) != 0 {
			err = errors.New("bytes left at its end")
		}
		if err == nil {
			err = r.err
		}
		if err != nil {
			return nil, fmt.Errorf("its section %d is malformed: %v (truncated or damaged)", id, err)
		}
	}
	out := make([]Func, 0, len(exports))
	for _, e := range exports {
		fi := e.index
		if fi < imported {
			// A re-exported import: its type is in the import section,
			// which readImports does not keep.
			continue
		}
		fi -= imported
		if int(fi) >= len(funcs) || int(funcs[fi]) >= len(types) {
			return nil, fmt.Errorf("its export %q names function %d, which it does not define (damaged)", e.name, e.index)
		}
		t := types[funcs[fi]]
		out = append(out, Func{Name: e.name, Params: t.Params, Results: t.Results})
	}
	return out, nil
}

// reader reads the contents of one section; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("it ends early")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	v, n := uleb32(r.b)
	if n == 0 {
		r.fail("a malformed number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint32) []byte {
	if uint64(n) > uint64(len(r.b)) {
		r.fail("it ends early")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// count reads a vector's length, refusing one that cannot fit in what is
// left (each element takes at least one byte).
func (r *reader) count() uint32 {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)) {
		r.fail("a vector of %d elements in %d bytes", n, len(r.b))
		return 0
	}
	return n
}

func (r *reader) name() string { return string(r.bytes(r.u32())) }

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func readTypes(r *reader) ([]Func, error) {
	n := r.count()
	types := make([]Func, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		if form := r.byte(); form != 0x60 && r.err == nil {
			return nil, fmt.Errorf("type %d has form 0x%02x, not a function type", i, form)
		}
		params := r.bytes(r.count())
		results := r.bytes(r.count())
		types = append(types, Func{Params: params, Results: results})
	}
	return types, nil
}

// readImports returns the number of imported functions.
func readImports(r *reader) (uint32, error) {
	n := r.count()
	var funcs uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
			funcs++
		case 0x01: // table: reference type, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: value type, mutability
			r.byte()
			r.byte()
		default:
			if r.err == nil {
				return 0, fmt.Errorf("import %d is of unknown kind 0x%02x", i, kind)
			}
		}
	}
	return funcs, nil
}

func readFunctions(r *reader) ([]uint32, error) {
	n := r.count()
	funcs := make([]uint32, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		funcs = append(funcs, r.u32())
	}
	return funcs, nil
}

// export is a function export: its name and function index.
type export struct {
	name  string
	index uint32
}

// readExports returns the function exports.
func readExports(r *reader) ([]export, error) {
	n := r.count()
	var out []export
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.name()
		kind := r.byte()
		idx := r.u32()
		if kind == 0x00 && r.err == nil {
			out = append(out, export{name: name, index: idx})
		}
	}
	return out, nil
}
