package runtime

import "fmt"

// This file bounds what a module can make the host allocate outside its
// linear memory. wazero v1.12.0 allocates every table's elements, every
// global, every element segment's references and every imported
// function's record on the Go heap when it instantiates a module: none of
// it is linear memory, so the memory limit does not see it, and the
// allocation cannot be interrupted. A module of a few kilobytes declaring
// thousands of full-size tables held over a gigabyte per instance. So
// Compile estimates, from the module's declarations, an upper bound of
// these bytes per instance (hostBytes), refuses a module above
// Config.MaxInstanceHeap, and Invoke counts the estimate against the
// function's memory limit: the linear memory may grow only to the limit
// minus the estimate in whole pages (rounded down; the remainder, under
// 64 KiB, is part of the constant). What an instance holds on the host is
// then at most its memory limit plus instanceOverhead plus 64 KiB.
//
// Compiling is bounded too: wazero's compiler allocates per function, per
// local and per nesting level of blocks, so Compile refuses modules with
// more functions, types, locals in one function or block nesting than a
// Go guest comes near (the figures below were measured on the test guest
// and the example app's functions).

// Per-item upper bounds, in bytes, of what wazero v1.12.0 allocates on the
// Go heap for an instance (internal/wasm/store.go instantiate, table.go
// buildTables and Grow, module.go buildGlobals, store.go
// buildElementInstances and applyElements, engine/wazevo NewModuleEngine
// and FunctionInstanceReference). TestHostBytesBoundsHeap checks them
// against the heap a real instantiation takes.
const (
	costTableSlot = 8   // one table element (a uintptr)
	costGrownSlot = 16  // a slot table.grow may add: append may double the array
	costTable     = 128 // a TableInstance and its pointers
	costGlobal    = 96  // a GlobalInstance, its pointer and its module context slot
	costElemItem  = 56  // a function instance a ref.func creates, and a passive slot
	costSegment   = 32  // an element or data segment's slice header
	costImport    = 64  // an imported function's record and context slot
	costType      = 8   // a type ID
)

// instanceOverhead is the documented constant: what every instance holds
// on the Go heap besides its linear memory and hostBytes (the wazero module
// and engine structures, the sys context and the instance record),
// measured at under 64 KiB for the test guest (TestHostBytesBoundsHeap).
//
// Not included: the worker goroutine's own stack (it runs only the
// runtime's Go code), and the guest's call stack, which wazero grows on
// the Go heap while the guest recurses, bounded per call by stack.go.
const instanceOverhead = 64 << 10

// Compile-time bounds. A Go guest built with sdk/fn has about 2,000-2,500
// functions, fewer than 20 types, at most 20 locals, a nesting depth of
// 550-630 (one block per resume point of its largest function) and a
// nesting sum of 2.2-2.6 million. wazero's compile time grows with the
// depth at which each block opens (about 35 ns per unit of the nesting sum
// here, so a single function nested 16,384 deep took 3 s), which is why the
// sum is capped over the whole module, not only the depth per function.
const (
	maxFunctions = 1 << 17 // defined and imported functions
	maxTypes     = 1 << 12
	maxLocals    = 1 << 14 // in one function
	maxDepth     = 1 << 13 // nested blocks, loops and ifs in one function
	maxNesting   = 1 << 26 // the sum over every block, loop and if of its depth
)

// hostBytes returns an upper bound of the bytes an instance of m holds on
// the Go heap outside its linear memory, beyond instanceOverhead.
func hostBytes(m *module) uint64 {
	n := uint64(m.funcImports)*costImport +
		uint64(m.globals+m.globalImports)*costGlobal +
		uint64(m.code.elemSegs+m.dataSegments)*costSegment +
		m.code.elemItems*costElemItem +
		uint64(len(m.types))*costType
	for i, t := range m.tables {
		n += costTable + t.min*costTableSlot
		if m.growsTable(uint32(i)) && t.hasMax && t.max > t.min {
			n += (t.max - t.min) * costGrownSlot
		}
	}
	return n
}

// hostPages is hostBytes in whole 64 KiB pages, rounded down: what Invoke
// takes off the function's memory limit.
func hostPages(bytes uint64) uint32 { return uint32(min(bytes/65536, 1<<16)) }

// checkBudget appends to findings what makes m too costly to instantiate
// or compile.
func (r *Runtime) checkBudget(m *module, add func(format string, args ...any)) {
	if hb := hostBytes(m); hb > uint64(r.cfg.MaxInstanceHeap) {
		add("its tables, globals, element and data segments and imports need %s of host memory per instance, over the %s cap; declare fewer or smaller tables and segments",
			sizeString(hb), sizeString(uint64(r.cfg.MaxInstanceHeap)))
	}
	if m.code.maxFrame > uint64(r.cfg.MaxCallStack) {
		add("a function's frame needs an estimated %s of call stack, over the %s a call may use; split the function",
			sizeString(m.code.maxFrame), sizeString(uint64(r.cfg.MaxCallStack)))
	}
	if n := uint64(len(m.funcs)) + uint64(m.funcImports); n > maxFunctions {
		add("declares %d functions, over the %d cap", n, maxFunctions)
	}
	if len(m.types) > maxTypes {
		add("declares %d function types, over the %d cap", len(m.types), maxTypes)
	}
	if m.code.maxLocals > maxLocals {
		add("a function declares %d locals, over the %d cap", m.code.maxLocals, maxLocals)
	}
	if m.code.maxDepth > maxDepth {
		add("a function nests blocks %d deep, over the %d cap", m.code.maxDepth, maxDepth)
	}
	if m.code.nesting > maxNesting {
		add("its blocks nest %d levels in all (the sum of every block's depth), over the %d cap; flatten deeply nested code", m.code.nesting, maxNesting)
	}
}

func sizeString(b uint64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", b)
}
