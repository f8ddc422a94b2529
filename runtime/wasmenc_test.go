package runtime

import "encoding/binary"

// A tiny wasm encoder for hand-assembled hostile modules (there is no
// wat2wasm here). Only what the tests need.

func leb(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

func sleb(v int64) []byte { return appendSLEB(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func vec(items ...[]byte) []byte { return cat(leb(uint32(len(items))), cat(items...)) }

func name(s string) []byte { return cat(leb(uint32(len(s))), []byte(s)) }

func sect(id byte, body []byte) []byte { return cat([]byte{id}, leb(uint32(len(body))), body) }

func functype(params, results []byte) []byte {
	return cat([]byte{0x60}, leb(uint32(len(params))), params, leb(uint32(len(results))), results)
}

func body(locals []byte, code ...[]byte) []byte {
	b := cat(locals, cat(code...), []byte{0x0B})
	return cat(leb(uint32(len(b))), b)
}

var noLocals = []byte{0}

// okResponse is an encoded abi.Response{Status: 200, Body: "ok"} placed at
// okAddr by a data segment.
var okResponse = []byte{0xC8, 0x01, 0x00, 0x02, 'o', 'k'}

const okAddr = 2048

// returnOK is the code that makes handle return okResponse.
func returnOK() []byte {
	return cat([]byte{0x42}, sleb(int64(okAddr)<<32|int64(len(okResponse))))
}

// hostileSpec describes a module with silo's exports: silo_alloc (returns
// 1024) and handle (whose code is given), plus extra functions.
type hostileSpec struct {
	imports     []byte   // encoded import entries (each: module, name, 0x00, typeidx)
	nImport     int      // number of function imports
	table       []byte   // encoded table entry, if any
	tables      [][]byte // more encoded table entries, after table
	memory      []byte   // encoded memory limits; default min 1
	globals     [][]byte // encoded global entries
	handle      []byte   // handle's code (without end); must leave an i64
	locals      []byte   // handle's encoded locals; default none
	elems       []byte   // the element section's body, if any
	extra       [][]byte // extra function bodies, of type 2 (i32) -> i32 unless extraTypes says
	extraTypes  []uint32 // the type of each extra function, if not 2
	extraLocals [][]byte // the encoded locals of each extra function, if not none
	types       [][]byte // more function types, after the six below
	data        []byte   // placed at dataAddr by a second data segment
}

const dataAddr = 4096

// Types: 0 (i32)->i32, 1 (i32,i32)->i64, 2 (i32)->i32 (for extra), 3 ()->i32,
// 4 (i32,i32,i32,i32)->i64, 5 (i32,i32,i32,i32)->i32.
func (s hostileSpec) build() []byte {
	types := vec(
		functype([]byte{0x7F}, []byte{0x7F}),
		functype([]byte{0x7F, 0x7F}, []byte{0x7E}),
		functype([]byte{0x7F}, []byte{0x7F}),
		functype(nil, []byte{0x7F}),
		functype([]byte{0x7F, 0x7F, 0x7F, 0x7F}, []byte{0x7E}),
		functype([]byte{0x7F, 0x7F, 0x7F, 0x7F}, []byte{0x7F}),
	)
	if len(s.types) > 0 {
		types = vec(append([][]byte{
			functype([]byte{0x7F}, []byte{0x7F}),
			functype([]byte{0x7F, 0x7F}, []byte{0x7E}),
			functype([]byte{0x7F}, []byte{0x7F}),
			functype(nil, []byte{0x7F}),
			functype([]byte{0x7F, 0x7F, 0x7F, 0x7F}, []byte{0x7E}),
			functype([]byte{0x7F, 0x7F, 0x7F, 0x7F}, []byte{0x7F}),
		}, s.types...)...)
	}
	out := cat([]byte("\x00asm\x01\x00\x00\x00"), sect(1, types))
	if s.nImport > 0 {
		out = cat(out, sect(2, cat(leb(uint32(s.nImport)), s.imports)))
	}
	fidx := [][]byte{leb(0), leb(1)}
	for i := range s.extra {
		typ := uint32(2)
		if i < len(s.extraTypes) {
			typ = s.extraTypes[i]
		}
		fidx = append(fidx, leb(typ))
	}
	out = cat(out, sect(3, vec(fidx...)))
	var tables [][]byte
	if s.table != nil {
		tables = append(tables, s.table)
	}
	if tables = append(tables, s.tables...); len(tables) > 0 {
		out = cat(out, sect(4, vec(tables...)))
	}
	mem := s.memory
	if mem == nil {
		mem = []byte{0x00, 0x01}
	}
	out = cat(out, sect(5, vec(mem)))
	if len(s.globals) > 0 {
		out = cat(out, sect(6, vec(s.globals...)))
	}
	base := uint32(s.nImport)
	out = cat(out, sect(7, vec(
		cat(name("memory"), []byte{0x02}, leb(0)),
		cat(name("silo_alloc"), []byte{0x00}, leb(base)),
		cat(name("handle"), []byte{0x00}, leb(base+1)),
	)))
	locals := s.locals
	if locals == nil {
		locals = noLocals
	}
	bodies := [][]byte{
		body(noLocals, []byte{0x41}, sleb(1024)),
		body(locals, s.handle),
	}
	for i, x := range s.extra {
		l := noLocals
		if i < len(s.extraLocals) && s.extraLocals[i] != nil {
			l = s.extraLocals[i]
		}
		bodies = append(bodies, body(l, x))
	}
	if s.elems != nil {
		out = cat(out, sect(9, s.elems))
	}
	out = cat(out, sect(10, vec(bodies...)))
	segs := [][]byte{cat([]byte{0x00, 0x41}, sleb(okAddr), []byte{0x0B}, leb(uint32(len(okResponse))), okResponse)}
	if s.data != nil {
		segs = append(segs, cat([]byte{0x00, 0x41}, sleb(dataAddr), []byte{0x0B}, leb(uint32(len(s.data))), s.data))
	}
	return cat(out, sect(11, vec(segs...)))
}

func funcImport(module, field string, typ uint32) []byte {
	return cat(name(module), name(field), []byte{0x00}, leb(typ))
}

// Opcodes used by the tests.
var (
	opEnd         = []byte{0x0B}
	opDrop        = []byte{0x1A}
	opUnreachable = []byte{0x00}
)

func i32c(v int32) []byte           { return cat([]byte{0x41}, sleb(int64(v))) }
func callF(f uint32) []byte         { return cat([]byte{0x10}, leb(f)) }
func localGet(i uint32) []byte      { return cat([]byte{0x20}, leb(i)) }
func ifEmpty(code ...[]byte) []byte { return cat([]byte{0x04, 0x40}, cat(code...), opEnd) }
