package runtime

import "fmt"

// This file rewrites the code section (see wasm.go, instrument): every
// function body gets the fuel check at entry and at loop headers, and the
// call stack budget (stack.go) charged at entry and given back at every
// exit. While it reads the code it also learns what budget.go bounds.

// frames is what rewriteFunc needs to bound the call stack (stack.go).
type frames struct {
	global  uint32            // the stack budget global
	types   []funcType        // the module's types
	funcs   []uint32          // the type of each defined function
	multi   map[string]uint32 // the block type index for each list of several results
	imports []uint32          // the type of each imported function
}

// funcType returns the type of function idx (imports first).
func (fr *frames) funcType(idx uint32) (funcType, bool) {
	ti := uint64(1) << 32
	if int(idx) < len(fr.imports) {
		ti = uint64(fr.imports[idx])
	} else if i := int(idx) - len(fr.imports); i < len(fr.funcs) {
		ti = uint64(fr.funcs[i])
	}
	if ti >= uint64(len(fr.types)) {
		return funcType{}, false
	}
	return fr.types[ti], true
}

// definesValues returns an upper bound of the SSA values wazero's compiler
// defines for an instruction with opcode op other than a call (which
// defines its results). Control instructions, drop, stores and local and
// global writes define none; local.get and local.tee name a value defined
// elsewhere (a parameter, or the instruction whose result was stored in
// the local).
//
// A call also makes the compiler reload the memory's base and length.
func definesValues(op byte) uint64 {
	switch {
	case op <= 0x05, op >= 0x0B && op <= 0x13, op == 0x1A, op >= 0x20 && op <= 0x22, op == 0x24, op >= 0x36 && op <= 0x3E:
		return 0
	}
	return 1
}

func rewriteCode(body []byte, shift func(uint32) uint32, check []byte, st *codeStats, fr *frames) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	var fb []byte
	if int(n) != len(fr.funcs) {
		return nil, fmt.Errorf("%d function bodies for %d functions", n, len(fr.funcs))
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		f := r.bytes(int(size))
		if r.err != nil {
			break
		}
		var err error
		fb, err = rewriteFunc(fb[:0], f, shift, check, st, fr, fr.types[fr.funcs[i]])
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fb)))
		out = append(out, fb...)
	}
	return out, r.err
}

// blockType reads a block type and returns how many values it passes on
// (its params and results).
func blockType(r *reader, types []funcType) uint64 {
	c := r.b[min(r.off, len(r.b)-1)]
	switch c {
	case 0x40:
		r.byte()
		return 0
	case 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		r.byte()
		return 1
	}
	if i := r.sleb(5); i >= 0 && i < int64(len(types)) {
		return uint64(len(types[i].params) + len(types[i].results))
	}
	return 0
}

// callReloads is how many values a call makes the compiler define after
// it besides its results (the memory's base and length, reloaded).
const callReloads = 2

// rewriteFunc rewrites one function body of type t: the fuel check at
// entry and loop headers, and the stack budget (stack.go): one more i32
// local that saves the budget at entry, the charge of the frame's cost
// (patched in once the body is read), the body wrapped in a block, and
// the budget restored at every exit.
func rewriteFunc(out, f []byte, shift func(uint32) uint32, check []byte, st *codeStats, fr *frames, t funcType) ([]byte, error) {
	r := &reader{b: f}
	var locals uint64
	groups := r.u32()
	first := r.off
	for n := groups; n > 0 && r.err == nil; n-- {
		locals += uint64(r.u32())
		r.byte()
	}
	if r.err != nil || locals > 1<<20 {
		return nil, fmt.Errorf("bad or over 1,048,576 locals")
	}
	st.maxLocals = max(st.maxLocals, locals)
	saved := uint32(uint64(len(t.params)) + locals) // the new local's index
	out = appendU32(out, groups+1)
	out = append(out, f[first:r.off]...)
	out = append(out, 1, 0x7F)
	out = append(out, check...)
	// saved = stack; stack -= cost; if stack < 0 { trap }
	out = append(out, 0x23)
	out = appendU32(out, fr.global)
	out = append(out, 0x22)
	out = appendU32(out, saved)
	out = append(out, 0x41)
	costAt := len(out)
	out = append(out, 0x80, 0x80, 0x80, 0x80, 0x00, 0x6B, 0x24) // i32.const (5-byte placeholder); i32.sub; global.set
	out = appendU32(out, fr.global)
	out = append(out, 0x23)
	out = appendU32(out, fr.global)
	out = append(out, 0x41, 0x00, 0x48, 0x04, 0x40, 0x00, 0x0B) // i32.const 0; i32.lt_s; if; unreachable; end
	out = append(out, 0x02)
	switch len(t.results) {
	case 0:
		out = append(out, 0x40)
	case 1:
		out = append(out, t.results[0])
	default:
		out = appendSLEB(out, int64(fr.multi[string(t.results)]))
	}
	restore := appendU32([]byte{0x20}, saved)
	restore = append(restore, 0x24)
	restore = appendU32(restore, fr.global)

	var depth uint32
	var values uint64    // an upper bound of the values the instructions define
	var arity uint64     // the most params plus results of a call it makes
	var sets uint64      // local.set and local.tee so far
	var open [][2]uint64 // for each open block, loop and if: sets at its start, the values it passes on
	for r.off < len(f) && r.err == nil {
		start := r.off
		op := r.byte()
		values += definesValues(op)
		if op == 0x0F || op == 0x12 || op == 0x13 { // return, return_call, return_call_indirect
			out = append(out, restore...)
		}
		switch op {
		case 0x02, 0x03, 0x04: // block, loop, if
			depth++
			st.maxDepth = max(st.maxDepth, depth)
			st.nesting += uint64(depth)
		case 0x0B:
			depth--
			if n := len(open); n > 0 {
				// Where control flow merges (a block's end, a loop's
				// header) the compiler defines a value for each local
				// written inside and for each value the block passes on.
				o := open[n-1]
				open = open[:n-1]
				values += min(sets-o[0], uint64(len(t.params))+locals) + o[1]
			}
		case 0x21, 0x22:
			sets++
		}
		switch {
		case op == 0x10 || op == 0x12 || op == 0xD2: // call, return_call, ref.func
			idx := r.u32()
			if op != 0xD2 {
				t, ok := fr.funcType(idx)
				if !ok {
					return nil, fmt.Errorf("call of function %d out of range", idx)
				}
				values += uint64(len(t.results)) + callReloads
				arity = max(arity, uint64(len(t.params)+len(t.results)))
			}
			out = append(out, op)
			out = appendU32(out, shift(idx))
			continue
		case op == 0x03: // loop
			open = append(open, [2]uint64{sets, blockType(r, fr.types)})
			out = append(out, f[start:r.off]...)
			out = append(out, check...)
			continue
		case op == 0x02 || op == 0x04:
			open = append(open, [2]uint64{sets, blockType(r, fr.types)})
		case op <= 0x01, op == 0x05, op == 0x0B, op == 0x0F, op == 0x1A, op == 0x1B, op == 0xD1:
		case op == 0x0C || op == 0x0D:
			r.u32()
		case op == 0x0E:
			for c := r.u32(); c > 0 && r.err == nil; c-- {
				r.u32()
			}
			r.u32()
		case op == 0x11 || op == 0x13:
			ti := r.u32()
			r.u32()
			if int(ti) >= len(fr.types) {
				return nil, fmt.Errorf("call_indirect of type %d out of range", ti)
			}
			t := fr.types[ti]
			values += uint64(len(t.results)) + callReloads
			arity = max(arity, uint64(len(t.params)+len(t.results)))
		case op == 0x1C:
			for c := r.u32(); c > 0 && r.err == nil; c-- {
				r.byte()
			}
		case op >= 0x20 && op <= 0x22:
			// The local that instrument adds and the globals it adds
			// come after the module's own: code naming them would be
			// invalid as written, and valid once instrumented, with the
			// power to refill its fuel or its stack budget.
			if i := r.u32(); i >= saved {
				return nil, fmt.Errorf("uses local %d, which it does not declare", i)
			}
		case op == 0x23 || op == 0x24:
			if i := r.u32(); i >= fr.global-1 {
				return nil, fmt.Errorf("uses global %d, which it does not declare", i)
			}
		case op == 0x25 || op == 0x26:
			st.stateOps = st.stateOps || op == 0x26 // table.set
			r.u32()
		case op >= 0x28 && op <= 0x3E:
			r.u32()
			r.u32()
		case op == 0x3F || op == 0x40:
			r.u32()
		case op == 0x41:
			r.sleb(5)
		case op == 0x42:
			r.sleb(10)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op >= 0x45 && op <= 0xC4:
		case op == 0xD0:
			r.byte()
		case op == 0xFC:
			sub := r.u32()
			// memory.init, data.drop and the table instructions but
			// table.size change state outside memory and globals.
			st.stateOps = st.stateOps || sub >= 8 && sub <= 17 && sub != 10 && sub != 11 && sub != 16
			switch {
			case sub <= 7:
			case sub == 8: // memory.init
				r.u32()
				r.u32()
			case sub == 15: // table.grow
				st.grows[r.u32()] = true
			case sub == 9, sub == 11, sub == 13, sub == 16, sub == 17:
				r.u32()
			case sub == 10, sub == 12, sub == 14:
				r.u32()
				r.u32()
			default:
				return nil, fmt.Errorf("unsupported instruction 0xFC %d", sub)
			}
		case op == 0xFD:
			switch sub := r.u32(); {
			case sub <= 11 || sub == 92 || sub == 93:
				r.u32()
				r.u32()
			case sub == 12 || sub == 13:
				r.bytes(16)
			case sub >= 21 && sub <= 34:
				r.byte()
			case sub >= 84 && sub <= 91:
				r.u32()
				r.u32()
				r.byte()
			}
		default:
			return nil, fmt.Errorf("unsupported instruction 0x%x", op)
		}
		out = append(out, f[start:r.off]...)
	}
	// The body's end now closes the block; then the function's own.
	out = append(out, restore...)
	out = append(out, 0x0B)
	cost := frameCost(uint64(len(t.params)), locals, values, arity)
	st.maxFrame = max(st.maxFrame, cost)
	for i := range 5 {
		out[costAt+i] = byte(cost>>(7*i))&0x7f | 0x80
	}
	out[costAt+4] &^= 0x80
	return out, r.err
}
