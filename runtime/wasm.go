package runtime

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// This file is a small reader and rewriter of the wasm binary format. It does
// two things at deploy time, before wazero ever sees a module:
//
//   - validate: list imports, tables, memories and exports so Compile can
//     refuse what the sandbox does not allow (imports outside the allowlist,
//     tables without a maximum, shared or 64-bit memories, ...);
//   - instrument: add an imported host function silo.checkpoint and a mutable
//     i32 global "fuel", and make every function entry and every loop header
//     decrement fuel and, when it reaches zero, call checkpoint, which returns
//     fresh fuel or 0 to stop the guest (then the injected code executes
//     unreachable and traps). See doc.go, "Runaway guests";
//   - bound the call stack: add a mutable i32 global "stack", the budget of
//     frame costs left, exported as stackExport, and make every function
//     charge its frame at entry and give it back at every exit (stack.go).

var errTruncated = errors.New("truncated")

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || n > 5 || v > 0xFFFFFFFF {
		r.fail(errTruncated)
		return 0
	}
	r.off += n
	return uint32(v)
}

// sleb skips a signed LEB128 of at most max bytes.
func (r *reader) sleb(max int) int64 {
	var v int64
	var shift uint
	for i := 0; i < max; i++ {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	r.fail(errors.New("bad LEB128"))
	return 0
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || r.off+n > len(r.b) {
		r.fail(errTruncated)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

type section struct {
	id   byte
	body []byte
}

type funcType struct{ params, results []byte }

type wimport struct {
	module, name string
	kind         byte   // 0 func, 1 table, 2 memory, 3 global
	typ          uint32 // for funcs
}

type limits struct {
	min, max uint64
	hasMax   bool
	flags    byte
}

type wexport struct {
	name string
	kind byte
	idx  uint32
}

// module is the parsed outline of a wasm binary.
type module struct {
	sections      []section
	types         []funcType
	imports       []wimport
	funcImports   uint32
	globalImports uint32
	funcs         []uint32 // type index of each defined function
	tables        []limits
	memories      []limits
	globals       uint32 // defined globals
	exports       []wexport
	dataSegments  uint32    // after merging; set by instrument
	code          codeStats // set by instrument
}

// codeStats is what instrument learns about a module while it rewrites
// it: what it can make the host allocate at instantiation and how hard
// it is to compile (see budget.go).
type codeStats struct {
	grows     map[uint32]bool // tables the code grows (table.grow)
	elemSegs  uint32          // element segments
	elemItems uint64          // items of all element segments
	maxLocals uint64          // most locals declared by one function
	maxDepth  uint32          // deepest block nesting of one function
	nesting   uint64          // the sum, over every block, loop and if, of its depth
	maxFrame  uint64          // the highest frame cost of one function (stack.go)
	stateOps  bool            // it changes tables or data segments (snapshot.go)
}

func (m *module) growsTable(i uint32) bool { return m.code.grows[i] }

func readLimits(r *reader) limits {
	l := limits{flags: r.byte()}
	switch l.flags {
	case 0:
		l.min = uint64(r.u32())
	case 1:
		l.min = uint64(r.u32())
		l.max = uint64(r.u32())
		l.hasMax = true
	default:
		// 2/3: shared memory; 4+: 64-bit. Neither is allowed.
		r.fail(fmt.Errorf("unsupported limits flags 0x%x (shared or 64-bit memory/table)", l.flags))
	}
	return l
}

// parseModule reads the outline of a wasm binary.
func parseModule(b []byte) (*module, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")) {
		return nil, errors.New("not a wasm module (bad magic)")
	}
	if !bytes.Equal(b[4:8], []byte{1, 0, 0, 0}) {
		return nil, errors.New("unsupported wasm version (want 1)")
	}
	m := &module{}
	r := &reader{b: b, off: 8}
	for r.off < len(b) && r.err == nil {
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			break
		}
		m.sections = append(m.sections, section{id, body})
		s := &reader{b: body}
		switch id {
		case 1:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				if s.byte() != 0x60 {
					s.fail(errors.New("bad type form"))
				}
				p := s.bytes(int(s.u32()))
				res := s.bytes(int(s.u32()))
				m.types = append(m.types, funcType{p, res})
			}
		case 2:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				im := wimport{module: s.name(), name: s.name(), kind: s.byte()}
				switch im.kind {
				case 0:
					im.typ = s.u32()
					m.funcImports++
				case 1:
					s.byte()
					readLimits(s)
				case 2:
					readLimits(s)
				case 3:
					s.byte()
					s.byte()
					m.globalImports++
				default:
					s.fail(fmt.Errorf("bad import kind %d", im.kind))
				}
				m.imports = append(m.imports, im)
			}
		case 3:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				m.funcs = append(m.funcs, s.u32())
			}
		case 4:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				s.byte() // reftype
				m.tables = append(m.tables, readLimits(s))
			}
		case 5:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				m.memories = append(m.memories, readLimits(s))
			}
		case 6:
			m.globals = s.u32()
		case 7:
			for n := s.u32(); n > 0 && s.err == nil; n-- {
				m.exports = append(m.exports, wexport{name: s.name(), kind: s.byte(), idx: s.u32()})
			}
		}
		if s.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, s.err)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

// --- writer helpers ---

func appendU32(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(body)))
	return append(out, body...)
}

// sectionRank orders non-custom sections as the spec requires.
func sectionRank(id byte) int {
	switch id {
	case 0:
		return 0
	case 12:
		return 10
	case 10:
		return 11
	case 11:
		return 12
	}
	return int(id)
}

// instrument returns b with the checkpoint import, the fuel and stack
// globals and the checks added. fuel is the initial value of the fuel
// global, stack the call stack budget (stack.go).
func instrument(m *module, fuel, stack int32) ([]byte, error) {
	cpType := uint32(len(m.types))            // new type () -> i32
	cpFunc := m.funcImports                   // the new import's function index
	fuelGlobal := m.globalImports + m.globals // the new global's index
	fr := frames{global: fuelGlobal + 1, types: m.types, funcs: m.funcs, multi: map[string]uint32{}}
	var moreTypes []byte // () -> results, the body block of a function with several results
	for _, im := range m.imports {
		if im.kind == 0 {
			fr.imports = append(fr.imports, im.typ)
		}
	}
	for _, ti := range m.funcs {
		if int(ti) >= len(m.types) {
			return nil, fmt.Errorf("function type %d out of range", ti)
		}
		res := m.types[ti].results
		if _, ok := fr.multi[string(res)]; len(res) > 1 && !ok {
			fr.multi[string(res)] = cpType + 1 + uint32(len(fr.multi))
			moreTypes = append(moreTypes, 0x60, 0x00)
			moreTypes = appendU32(moreTypes, uint32(len(res)))
			moreTypes = append(moreTypes, res...)
		}
	}
	shift := func(idx uint32) uint32 {
		if idx >= m.funcImports {
			return idx + 1
		}
		return idx
	}
	check := []byte{0x23}
	check = appendU32(check, fuelGlobal)
	check = append(check, 0x45, 0x04, 0x40, 0x10)
	check = appendU32(check, cpFunc)
	check = append(check, 0x24)
	check = appendU32(check, fuelGlobal)
	check = append(check, 0x23)
	check = appendU32(check, fuelGlobal)
	check = append(check, 0x45, 0x04, 0x40, 0x00, 0x0B, 0x0B, 0x23)
	check = appendU32(check, fuelGlobal)
	check = append(check, 0x41, 0x01, 0x6B, 0x24)
	check = appendU32(check, fuelGlobal)

	newType := func(count uint32, prev []byte) []byte {
		b := appendU32(nil, count+1+uint32(len(fr.multi)))
		b = append(b, prev...)
		b = append(b, 0x60, 0x00, 0x01, 0x7F)
		return append(b, moreTypes...)
	}
	newImport := func(count uint32, prev []byte) []byte {
		b := appendU32(nil, count+1)
		b = append(b, prev...)
		b = appendU32(b, uint32(len(hostModule)))
		b = append(b, hostModule...)
		b = appendU32(b, uint32(len(importCheckpoint)))
		b = append(b, importCheckpoint...)
		b = append(b, 0x00)
		return appendU32(b, cpType)
	}
	newGlobal := func(count uint32, prev []byte) []byte {
		b := appendU32(nil, count+2)
		b = append(b, prev...)
		b = append(b, 0x7F, 0x01, 0x41)
		b = appendSLEB(b, int64(fuel))
		b = append(b, 0x0B, 0x7F, 0x01, 0x41)
		b = appendSLEB(b, int64(stack))
		return append(b, 0x0B)
	}
	stackEntry := func(b []byte) []byte {
		b = appendU32(b, uint32(len(stackExport)))
		b = append(b, stackExport...)
		b = append(b, 0x03)
		return appendU32(b, fr.global)
	}
	// vecRest splits a vec section body into its count and the rest.
	vecRest := func(body []byte) (uint32, []byte) {
		r := &reader{b: body}
		n := r.u32()
		return n, body[r.off:]
	}

	m.code = codeStats{grows: map[uint32]bool{}}
	hasDataCount := false // memory.init and data.drop name segments by index
	for _, s := range m.sections {
		hasDataCount = hasDataCount || s.id == 12
	}
	out := append([]byte(nil), "\x00asm\x01\x00\x00\x00"...)
	done := map[byte]bool{}
	emitMissing := func(upTo int) {
		for _, id := range []byte{1, 2, 6, 7} {
			if !done[id] && sectionRank(id) < upTo {
				switch id {
				case 1:
					out = appendSection(out, 1, newType(0, nil))
				case 2:
					out = appendSection(out, 2, newImport(0, nil))
				case 6:
					out = appendSection(out, 6, newGlobal(0, nil))
				case 7:
					out = appendSection(out, 7, stackEntry(appendU32(nil, 1)))
				}
				done[id] = true
			}
		}
	}
	for _, s := range m.sections {
		if s.id != 0 {
			emitMissing(sectionRank(s.id))
		}
		var body []byte
		var err error
		switch s.id {
		case 0:
			body, err = rewriteCustom(s.body, shift)
			if body == nil && err == nil {
				continue // dropped
			}
		case 1:
			body = newType(vecRest(s.body))
		case 2:
			body = newImport(vecRest(s.body))
		case 6:
			n, rest := vecRest(s.body)
			rest, err = rewriteGlobals(n, rest, shift)
			body = newGlobal(n, rest)
		case 7:
			body = stackEntry(appendU32(nil, uint32(len(m.exports))+1))
			for _, e := range m.exports {
				body = appendU32(body, uint32(len(e.name)))
				body = append(body, e.name...)
				body = append(body, e.kind)
				if e.kind == 0 {
					body = appendU32(body, shift(e.idx))
				} else {
					body = appendU32(body, e.idx)
				}
			}
		case 8:
			r := &reader{b: s.body}
			body = appendU32(nil, shift(r.u32()))
			err = r.err
		case 9:
			body, err = rewriteElements(s.body, shift, &m.code)
		case 10:
			body, err = rewriteCode(s.body, shift, check, &m.code, &fr)
		case 11:
			if hasDataCount {
				body = s.body
			} else {
				body = mergeData(s.body, maxDataGap)
			}
			m.dataSegments = (&reader{b: body}).u32() // as wazero will see them
		default:
			body = s.body
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
		out = appendSection(out, s.id, body)
		if s.id != 0 {
			done[s.id] = true
		}
	}
	emitMissing(1 << 30)
	return out, nil
}

// maxDataGap is the largest run of zeros mergeData fills to join two data
// segments. Go's gaps are mostly 8-31 bytes; a larger bound only adds zeros
// to copy (4096 copied 0.65 MB more per instance and cost 0.2 ms).
const maxDataGap = 64

// dataEnd returns the end of the highest active data segment of m (the
// bytes instantiation writes), or 0 if any segment's offset is not a
// constant.
func dataEnd(m *module) uint64 {
	var end uint64
	for _, s := range m.sections {
		if s.id != 11 {
			continue
		}
		r := &reader{b: s.body}
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if r.u32() != 0 || r.byte() != 0x41 { // active, memory 0; i32.const
				return 0
			}
			off := uint64(uint32(int32(r.sleb(5))))
			if r.byte() != 0x0B {
				return 0
			}
			size := r.u32()
			r.bytes(int(size))
			end = max(end, off+uint64(size))
		}
		if r.err != nil {
			return 0
		}
	}
	return end
}

// mergeData joins the active data segments of a data section whose gaps
// are at most maxGap bytes, filling the gaps with zeros (what memory holds
// there anyway). Go's linker emits a segment per run of non-zero data, tens
// of thousands for a small function, and wazero evaluates and copies each
// one on every instantiation; merged, a cold start does a few large copies
// instead. It only merges a section it fully understands: every segment
// active on memory 0 at an i32.const offset, no two overlapping, so that
// the merged segments write exactly the same bytes.
// Otherwise it returns body unchanged.
func mergeData(body []byte, maxGap uint64) []byte {
	type seg struct {
		off  uint64
		data []byte
	}
	r := &reader{b: body}
	n := r.u32()
	segs := make([]seg, 0, min(n, 1<<16))
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.u32() != 0 || r.byte() != 0x41 { // active, memory 0; i32.const
			return body
		}
		off := uint64(uint32(int32(r.sleb(5))))
		if r.byte() != 0x0B {
			return body
		}
		data := r.bytes(int(r.u32()))
		segs = append(segs, seg{off, data})
	}
	if r.err != nil || r.off != len(body) || len(segs) < 2 {
		return body
	}
	// Disjoint segments write the same bytes in any order.
	slices.SortStableFunc(segs, func(a, b seg) int { return cmp.Compare(a.off, b.off) })
	for i := 1; i < len(segs); i++ {
		if segs[i].off < segs[i-1].off+uint64(len(segs[i-1].data)) {
			return body
		}
	}
	var runs [][2]int // [first, last] segment of each merged run
	for i := range segs {
		if i > 0 && segs[i].off-(segs[i-1].off+uint64(len(segs[i-1].data))) <= maxGap {
			runs[len(runs)-1][1] = i
		} else {
			runs = append(runs, [2]int{i, i})
		}
	}
	out := appendU32(make([]byte, 0, len(body)+int(maxGap)), uint32(len(runs)))
	for _, run := range runs {
		first, last := segs[run[0]], segs[run[1]]
		size := last.off + uint64(len(last.data)) - first.off
		out = append(out, 0x00, 0x41)
		out = appendSLEB(out, int64(int32(uint32(first.off))))
		out = append(out, 0x0B)
		out = appendU32(out, uint32(size))
		start := len(out)
		out = append(out, make([]byte, size)...)
		for _, s := range segs[run[0] : run[1]+1] {
			copy(out[start+int(s.off-first.off):], s.data)
		}
	}
	return out
}

// rewriteCustom shifts function indices in the "name" section (keeping the
// module and function names, dropping local names) and keeps other custom
// sections as they are. It returns nil to drop a section.
func rewriteCustom(body []byte, shift func(uint32) uint32) ([]byte, error) {
	r := &reader{b: body}
	name := r.name()
	if r.err != nil {
		return nil, nil
	}
	if name != "name" {
		return body, nil
	}
	out := appendU32(nil, uint32(len(name)))
	out = append(out, name...)
	for r.off < len(body) && r.err == nil {
		id := r.byte()
		sub := r.bytes(int(r.u32()))
		switch id {
		case 0:
			out = append(out, 0)
			out = appendU32(out, uint32(len(sub)))
			out = append(out, sub...)
		case 1:
			s := &reader{b: sub}
			n := s.u32()
			nb := appendU32(nil, n)
			for ; n > 0 && s.err == nil; n-- {
				nb = appendU32(nb, shift(s.u32()))
				nm := s.name()
				nb = appendU32(nb, uint32(len(nm)))
				nb = append(nb, nm...)
			}
			if s.err != nil {
				return nil, nil // a broken name section is dropped, not fatal
			}
			out = append(out, 1)
			out = appendU32(out, uint32(len(nb)))
			out = append(out, nb...)
		}
	}
	if r.err != nil {
		return nil, nil
	}
	return out, nil
}

// rewriteConstExpr copies a constant expression up to and including its end,
// shifting ref.func.
func rewriteConstExpr(r *reader, out []byte, shift func(uint32) uint32) []byte {
	for r.err == nil {
		start := r.off
		op := r.byte()
		switch op {
		case 0x0B:
			return append(out, op)
		case 0xD2:
			out = append(out, op)
			out = appendU32(out, shift(r.u32()))
			continue
		case 0x41:
			r.sleb(5)
		case 0x42:
			r.sleb(10)
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0x23:
			r.u32()
		case 0xD0:
			r.byte()
		case 0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E: // extended-const arithmetic
		default:
			r.fail(fmt.Errorf("unsupported constant expression opcode 0x%x", op))
		}
		out = append(out, r.b[start:r.off]...)
	}
	return out
}

func rewriteGlobals(n uint32, body []byte, shift func(uint32) uint32) ([]byte, error) {
	r := &reader{b: body}
	var out []byte
	for ; n > 0 && r.err == nil; n-- {
		out = append(out, r.bytes(2)...) // valtype, mut
		out = rewriteConstExpr(r, out, shift)
	}
	return out, r.err
}

func rewriteElements(body []byte, shift func(uint32) uint32, st *codeStats) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	st.elemSegs += n
	out := appendU32(nil, n)
	for ; n > 0 && r.err == nil; n-- {
		flags := r.u32()
		out = appendU32(out, flags)
		if flags > 7 {
			return nil, fmt.Errorf("bad element segment flags %d", flags)
		}
		if flags&1 == 0 { // active
			if flags&2 != 0 {
				out = appendU32(out, r.u32()) // table index
			}
			out = rewriteConstExpr(r, out, shift)
		}
		if flags&3 != 0 { // elemkind or reftype
			out = append(out, r.byte())
		}
		cnt := r.u32()
		st.elemItems += uint64(cnt)
		out = appendU32(out, cnt)
		for ; cnt > 0 && r.err == nil; cnt-- {
			if flags&4 == 0 {
				out = appendU32(out, shift(r.u32()))
			} else {
				out = rewriteConstExpr(r, out, shift)
			}
		}
	}
	return out, r.err
}
