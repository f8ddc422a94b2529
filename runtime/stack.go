package runtime

import "github.com/tetratelabs/wazero/api"

// This file bounds a guest's call stack. wazero v1.12.0 (the compiler
// engine) runs a guest on a stack it allocates on the Go heap and grows by
// doubling, copying the old one, while the guest recurses, up to a ceiling
// of its own (call_engine.go callStackCeiling) far above any memory limit:
// a recursive function of nine instructions made the host allocate 161 MB
// in 0.26 s before wazero trapped it. wazero v1.12.0 has no setting to
// lower that ceiling (it is a constant of its compiler engine; only the
// interpreter has a frame cap), so the bound is put into the module at
// deploy, as the fuel checks are.
//
// Every defined function gets an estimate of what one of its frames takes
// on that stack (frameCost), and instrument makes it:
//
//   - at entry, save the global "stack" (the budget left) in a new local,
//     subtract its frame cost, and when the result is negative set nothing
//     more and trap;
//   - at every exit put the saved value back: before each return,
//     return_call and return_call_indirect, and at the end of the body,
//     which instrument wraps in a block so that branches to the function's
//     own label (br, br_if, br_table out of the body) end there too.
//
// A trap unwinds without running the exits, so the budget is left spent;
// the runtime discards every instance whose call failed, and a new one
// starts with the full budget. The runtime tells a stack trap from any
// other by the exported global being negative: only the entry that traps
// ever leaves it so.
//
// The frame cost is an upper-bound estimate read from wazero's compiler
// (backend/isa/*/machine.go requiredStackSize): a frame holds the return
// address and frame pointer and a stack-check slot (32 bytes), the
// callee-saved registers the function uses (at most 13 on amd64 and 23 on
// arm64, 16 bytes each), the arguments and results of the calls it makes
// that do not fit in registers, and a spill slot (8 or 16 bytes) for each
// value the register allocator spills, which it never reuses within a
// function. The values are the parameters, the locals, and at most one per
// instruction, so the estimate charges 16 bytes for each. Block parameters
// that the SSA construction adds at merge points are not counted; a
// function made of many blocks over many locals could take more than its
// estimate (the tests measure the shapes in stack_test.go).
//
// With every frame within its estimate, the frames of a call add up to at
// most stackBudget, and wazero's stack, grown by doubling from 10 KiB, is
// then at most 2×stackBudget plus a frame; while it grows the old stack is
// alive too. So a call holds at most stackHostBytes of stack on the host,
// the constant docs/security.md states, whatever the function's memory
// limit; TestDeepRecursionHeapBounded measures it.

// Frame cost terms, in bytes.
const (
	frameFixed   = 32 + 23*16 // return address, frame pointer, stack check; callee-saved registers
	frameSlot    = 16         // a parameter, local, instruction's value or call argument
	maxFrameCost = 1 << 30    // a frame dearer than this costs this (no overflow)
)

// stackBudget is the sum of frame costs a call may reach: 2 MiB, a depth
// of about 2,600 for a small function (one a Go guest built with sdk/fn
// uses at most a few hundred kilobytes of; see TestGoGuestStackEstimate).
const stackBudget = 2 << 20

// stackHostBytes bounds what a guest's call stack makes the host hold
// during one call: the grown stack (at most 2×stackBudget plus the largest
// frame wazero asks for) and the stack it is copied from. It is part of
// the constant that docs/security.md states per invocation.
const stackHostBytes = 4 * stackBudget

// stackExport is the name under which instrument exports the stack budget
// global, so that the runtime can tell a stack trap from another.
const stackExport = "silo:stack"

// frameCost returns the estimated bytes one frame of a function takes on
// wazero's stack: params, results and locals of the function, ops its
// instructions, and arity the most params plus results of any type of the
// module (the calls it makes).
func frameCost(params, locals, ops, arity uint64) uint64 {
	return min(frameFixed+frameSlot*(params+locals+1+ops+arity), maxFrameCost)
}

// stackExceeded reports whether mod's last call trapped because its call
// stack outgrew the budget.
func stackExceeded(mod api.Module) bool {
	if mod == nil {
		return false
	}
	g := mod.ExportedGlobal(stackExport)
	return g != nil && int32(uint32(g.Get())) < 0
}
