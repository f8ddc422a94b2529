package runtime

import (
	"errors"
	"fmt"
	"strconv"
)

// This file prepares an instrumented module so that new instances can
// start from a snapshot of an initialised one (snapshot.go). wazero
// copies a module's active data segments into memory on every
// instantiation and has no option to skip them, and it lets the host read
// and set only exported globals. So restartable rewrites the module:
//
//   - every active data segment becomes passive, and a new exported
//     function (exportInitData) copies each into memory with memory.init
//     and drops it with data.drop, which is what instantiation did: a
//     normal start runs it first, before _initialize; an instance started
//     from a snapshot does not run it, and its memory comes from the
//     snapshot instead;
//   - every mutable global is exported (exportGlobal + its index), so the
//     runtime can read them after _initialize and set them on a new
//     instance.
//
// Both change nothing the guest can observe: exports are reached by the
// host only, and the new function is in no table and called by no code of
// the guest. A module is left as it is (and never snapshotted) when the
// rewrite could change its behaviour: it has a start section (it would run
// before the data are copied), its code changes tables or data segments
// (table.set, table.grow, table.fill, table.copy, table.init, elem.drop,
// memory.init, data.drop: state a snapshot does not hold), a data segment
// has an offset other than a constant, or a mutable global holds a vector
// or a reference.

const (
	exportInitData = "silo.init_data"
	exportGlobal   = "silo.global."
)

// restartable returns the instrumented module inst rewritten as described
// above, the export names of its mutable globals, in index order, and the
// data segments exportInitData copies (their bytes are inst's), or an
// error saying why the module cannot be snapshotted (inst is then used as
// it is). m is the original module, as instrument read it.
func restartable(m *module, inst []byte) ([]byte, []string, []dataSeg, error) {
	if m.code.stateOps {
		return nil, nil, nil, errors.New("its code changes tables or data segments")
	}
	if len(m.memories) != 1 {
		return nil, nil, nil, errors.New("it defines no memory")
	}
	im, err := parseModule(inst)
	if err != nil {
		return nil, nil, nil, err
	}
	var types, funcs, code, data, dataCount, globals, exports *section
	for i := range im.sections {
		s := &im.sections[i]
		switch s.id {
		case 1:
			types = s
		case 3:
			funcs = s
		case 6:
			globals = s
		case 7:
			exports = s
		case 8:
			return nil, nil, nil, errors.New("it has a start section")
		case 10:
			code = s
		case 11:
			data = s
		case 12:
			dataCount = s
		}
	}
	if types == nil || funcs == nil || code == nil || exports == nil {
		return nil, nil, nil, errors.New("it lacks a type, function, code or export section")
	}

	// Mutable globals: their export names.
	var names []string
	if globals != nil {
		r := &reader{b: globals.body}
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			vt, mut := r.byte(), r.byte()
			rewriteConstExpr(r, nil, func(x uint32) uint32 { return x })
			if mut == 0 {
				continue
			}
			if vt != i32 && vt != i64 && vt != 0x7D && vt != 0x7C { // i32, i64, f32, f64
				return nil, nil, nil, fmt.Errorf("mutable global %d is of type 0x%x", i, vt)
			}
			names = append(names, exportGlobal+strconv.Itoa(int(im.globalImports+i)))
		}
		if r.err != nil {
			return nil, nil, nil, fmt.Errorf("global section: %w", r.err)
		}
	}
	for _, e := range im.exports {
		if e.name == exportInitData || len(e.name) > len(exportGlobal) && e.name[:len(exportGlobal)] == exportGlobal {
			return nil, nil, nil, fmt.Errorf("it exports %q, a name the runtime uses", e.name)
		}
	}

	// Data: active segments become passive; the init function copies them.
	var segs uint32
	var newData []byte
	var segList []dataSeg
	initBody := []byte{0} // no locals
	if data != nil {
		r := &reader{b: data.body}
		segs = r.u32()
		newData = appendU32(nil, segs)
		for i := uint32(0); i < segs && r.err == nil; i++ {
			switch flags := r.u32(); flags {
			case 1: // passive already
				b := r.bytes(int(r.u32()))
				newData = append(newData, 1)
				newData = appendU32(newData, uint32(len(b)))
				newData = append(newData, b...)
				continue
			case 2:
				if r.u32() != 0 {
					return nil, nil, nil, errors.New("a data segment is for a memory other than 0")
				}
			case 0:
			default:
				return nil, nil, nil, fmt.Errorf("data segment flags %d", flags)
			}
			if r.byte() != 0x41 {
				return nil, nil, nil, errors.New("a data segment's offset is not a constant")
			}
			off := r.sleb(5)
			if r.byte() != 0x0B {
				return nil, nil, nil, errors.New("a data segment's offset is not a constant")
			}
			b := r.bytes(int(r.u32()))
			newData = append(newData, 1)
			newData = appendU32(newData, uint32(len(b)))
			newData = append(newData, b...)
			segList = append(segList, dataSeg{off: uint32(off), b: b})
			// i32.const off; i32.const 0; i32.const len; memory.init i 0; data.drop i
			initBody = append(initBody, 0x41)
			initBody = appendSLEB(initBody, off)
			initBody = append(initBody, 0x41, 0x00, 0x41)
			initBody = appendSLEB(initBody, int64(int32(uint32(len(b)))))
			initBody = append(initBody, 0xFC, 0x08)
			initBody = appendU32(initBody, i)
			initBody = append(initBody, 0x00, 0xFC, 0x09)
			initBody = appendU32(initBody, i)
		}
		if r.err != nil || r.off != len(data.body) {
			return nil, nil, nil, errors.New("data section: malformed")
		}
	}
	initBody = append(initBody, 0x0B)
	if dataCount != nil && (&reader{b: dataCount.body}).u32() != segs {
		return nil, nil, nil, errors.New("its data count does not match its data section")
	}

	typeCount, typeRest := vecSplit(types.body)
	funcCount, funcRest := vecSplit(funcs.body)
	codeCount, codeRest := vecSplit(code.body)
	expCount, expRest := vecSplit(exports.body)
	initFunc := im.funcImports + funcCount

	out := append([]byte(nil), "\x00asm\x01\x00\x00\x00"...)
	for _, s := range im.sections {
		body := s.body
		switch s.id {
		case 1: // + () -> ()
			body = append(appendU32(nil, typeCount+1), typeRest...)
			body = append(body, 0x60, 0x00, 0x00)
		case 3:
			body = append(appendU32(nil, funcCount+1), funcRest...)
			body = appendU32(body, typeCount)
		case 7:
			body = append(appendU32(nil, expCount+1+uint32(len(names))), expRest...)
			body = appendExport(body, exportInitData, 0x00, initFunc)
			for _, n := range names {
				idx, _ := strconv.Atoi(n[len(exportGlobal):])
				body = appendExport(body, n, 0x03, uint32(idx))
			}
		case 10:
			if dataCount == nil {
				out = appendSection(out, 12, appendU32(nil, segs))
			}
			body = append(appendU32(nil, codeCount+1), codeRest...)
			body = appendU32(body, uint32(len(initBody)))
			body = append(body, initBody...)
		case 11:
			body = newData
		}
		out = appendSection(out, s.id, body)
	}
	return out, names, segList, nil
}

// vecSplit splits a vec section body into its count and the rest.
func vecSplit(body []byte) (uint32, []byte) {
	r := &reader{b: body}
	n := r.u32()
	return n, body[r.off:]
}

func appendExport(b []byte, name string, kind byte, idx uint32) []byte {
	b = appendU32(b, uint32(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return appendU32(b, idx)
}
