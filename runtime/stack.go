package runtime

// This file bounds a guest's call stack. wazero v1.12.0 (the compiler
// engine) runs a guest on a stack it allocates on the Go heap and grows by
// doubling, copying the old one, while the guest recurses, up to a ceiling
// of its own (call_engine.go callStackCeiling) far above any memory limit:
// a recursive function of nine instructions made the host allocate 169 MB
// before wazero trapped it (TestDeepRecursionHeapBounded, the control). wazero v1.12.0 has no setting to
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
//   - at every exit put the saved value back: before each return (and
//     each return_call and return_call_indirect, though the runtime does
//     not enable tail calls), and at the end of the body,
//     which instrument wraps in a block so that branches to the function's
//     own label (br, br_if, br_table out of the body) end there too.
//
// The runtime sets the global to Config.MaxCallStack before every call it
// makes into the guest. A trap unwinds without running the exits, so the
// budget is left spent; the runtime discards every instance whose call
// failed anyway. It tells a stack trap from any other by the global being
// negative: only the entry that traps ever leaves it so.
//
// The frame cost is an estimate read from wazero's compiler
// (backend/isa/*/machine.go requiredStackSize): a frame holds the return
// address and frame pointer and a stack-check slot (32 bytes), the
// callee-saved registers the function uses (at most 13 on amd64 and 23 on
// arm64, 16 bytes each), the arguments and results of the calls it makes
// that do not fit in registers, and a spill slot (8 or 16 bytes) for each
// value the register allocator spills, which it never reuses within a
// function. So the estimate charges 16 bytes for each value the function
// may define: its parameters and locals, one per instruction that
// defines a value, the results of each call and the memory base and
// length reloaded after it, and at every block's end and loop's header
// one per local written inside (at most the locals) and per value the
// block passes on. It is an estimate, not a proof: it is checked against
// the stack wazero really allocates for recursions of several shapes
// (TestDeepRecursionHeapBounded), which stay well under it.
//
// With every frame within its estimate, the frames of a call add up to at
// most MaxCallStack, and wazero's stack, grown by doubling from 10 KiB, is
// then at most 2×MaxCallStack plus a frame; while it grows the old stack
// is alive too, and the stacks it outgrew wait for the garbage collector.
// So a call makes the host allocate at most 4×MaxCallStack for its stack
// (8 MiB by default), the constant docs/security.md states, whatever the
// function's memory limit.

// Frame cost terms, in bytes.
const (
	frameFixed   = 32 + 23*16 // return address, frame pointer, stack check; callee-saved registers
	frameSlot    = 16         // a parameter, local, instruction's value or call argument
	maxFrameCost = 1 << 30    // a frame dearer than this costs this (no overflow)
)

// defaultCallStack is Config.MaxCallStack's default: the sum of frame
// costs a call may reach. The test guest (sdk/fn) starts and answers
// within 768 KiB, and recurses about 3,700 deep within 2 MiB.
const defaultCallStack = 2 << 20

// maxCallStack caps Config.MaxCallStack, so that a budget less a frame's
// cost never wraps an i32.
const maxCallStack = 256 << 20

// stackExport is the name under which instrument exports the stack budget
// global, so that the runtime can reset it and tell a stack trap from
// another.
const stackExport = "silo:stack"

// frameCost returns the estimated bytes one frame of a function takes on
// wazero's stack: params and locals of the function (and the local that
// instrument adds), values an upper bound of the values its instructions
// define (definesValues, and each call's results), and arity the most
// params plus results of a call it makes (passed on the stack when they
// do not fit in registers).
func frameCost(params, locals, values, arity uint64) uint64 {
	return min(frameFixed+frameSlot*(params+locals+1+values+arity), maxFrameCost)
}
