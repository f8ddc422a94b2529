// Package runtime runs silo functions: WebAssembly modules built from Go with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (see sdk/fn), each instance
// inside one account's sandbox, with host calls bound to that account.
//
// It owns module validation and instrumentation at deploy (Compile), the
// compiled-code cache shared by all accounts, instance pools per (account,
// function, digest), per-account concurrency caps and metrics, and the
// guards against runaway guests. It is the only package that imports wazero;
// it imports the root silo package, provider (for provider.KV and
// provider.Data) and sdk/fn/abi, and must not import the gateway, the engine,
// any store or any concrete provider.
//
// # ABI
//
// The wire contract is in sdk/fn/abi. A guest exports "memory",
// "silo_alloc(size i32) i32", "silo_abi_v1", "_initialize" (Go's reactor
// init) and handlers "name(ptr, len i32) i64" (default "handle") that take an
// encoded abi.Request and return ptr<<32|len of an encoded abi.Response. It
// may import from host module "silo" only: take, kv_get, kv_put, kv_delete,
// kv_add, kv_scan, blob_get, blob_put, blob_delete, blob_list, config_get,
// secret_get, export_get, export_scan, log, log_enabled. None takes an account: the
// invocation's Host decides what a call reaches. Host errors reach the guest
// as a status (not found, denied, invalid, unavailable, internal, too large)
// plus the *silo.Error user message, or "internal error" for anything else;
// Go error strings never cross.
//
// # WASI
//
// Go's wasip1 port needs a few WASI calls. Allowed: args/environ (empty),
// clock_time_get and clock_res_get, random_get (crypto/rand), proc_exit,
// sched_yield, poll_oneoff, fd_write (stdout and stderr go to the log),
// fd_read, fd_close, fd_seek, fd_fdstat_get, fd_fdstat_set_flags,
// fd_filestat_get, fd_prestat_get and fd_prestat_dir_name (there are no
// preopened directories, so they find nothing). Everything else (path_*,
// sock_*, fd_readdir, ...) and any other import module ("env", ...) is
// refused at Compile. Clocks: the monotonic clock is real (Go's scheduler
// and timers need it); the wall clock is real only when the invocation
// grants it (Invocation.WallClock), otherwise it reads a fixed date. Sleeps
// are real but end at the invocation's deadline.
//
// # Runaway guests
//
// wazero v1.12.0 checks a cancelled context only at loop headers, so
// loop-free recursion ignores it (TestFindingWazeroCancelMissesRecursion
// reproduces it), and a guest running machine code cannot be preempted by
// the Go scheduler, so guests stuck on every P would starve the process.
// Compile therefore instruments every module: it adds a mutable i32 global
// (fuel) and an import silo.checkpoint, and makes every function entry and
// every loop header decrement fuel; when fuel reaches zero (every 65536
// entries or iterations) the guest calls checkpoint, which returns fresh
// fuel, or 0 once the invocation's deadline has passed or its context is
// done, and then the injected code executes unreachable and traps.
// Otherwise the checkpoint yields the P (runtime.Gosched), so more stuck
// guests than GOMAXPROCS do not starve other tenants. Cost (RATIONALE.md):
// +5-7% on a worst case of tiny recursive calls, +2.5 ns on a call of an
// empty export, 10-20% (within noise) on a trivial Go handler. wazero's own WithCloseOnContextDone
// is off: the checkpoints cover loops too.
//
// Each instance runs on its own worker goroutine, so Invoke returns at the
// deadline even while a host call is stuck; the instance is then discarded
// when the guest stops, and until then it holds one of its account's
// concurrency slots.
//
// Other guards: modules over Config.MaxModuleSize are refused before
// decoding; memory is capped per invocation (Limits.MemoryPages, one wazero
// runtime per distinct cap, all sharing the compiled code); tables with a
// maximum above Config.MaxTableSize, or without a maximum but grown by
// table.grow (which can take the process down in wazero v1.12.0), are
// refused (Go's linker emits a table without a maximum that it never grows,
// which is accepted); shared and 64-bit memories and the threads proposal
// are refused; a trap, exit or out-of-memory discards only that instance.
//
// What an instance makes the host allocate outside its linear memory
// (tables, globals, element and data segments, imports: wazero allocates
// them on the Go heap at instantiation) is estimated from the module at
// Compile (budget.go); a module over Config.MaxInstanceHeap is refused,
// and Invoke takes the estimate off the function's memory limit, so an
// instance holds at most its memory limit plus a documented constant
// (instanceOverhead + 64 KiB). Modules with more functions, types, locals
// in one function, block nesting in one function or block nesting in all
// than the compile-time caps are refused before wazero compiles them.
//
// # Concurrency
//
// A Runtime is safe for concurrent use. An invocation holds a slot of its
// function (Limits.Concurrency) and one of its account (Config.
// AccountConcurrency); Invoke waits up to Config.QueueWait for them, then
// fails with silo.CodeTooMany. While more than one account wants CPU, at
// most Config.AccountCPU of an account's invocations (GOMAXPROCS-1 by
// default, at least 1) run guest code at the same moment; an account alone
// may use every P. An invocation takes one of its account's CPU slots to run, gives it back
// while it waits in a host call that does I/O (tables, buckets, exports,
// secrets) or sleeps, and at every checkpoint once its time slice is used, so one
// account's invocations take turns among themselves and never hold every P
// (TestAccountCPUCap). An instance serves one invocation at a time and is
// reused only for the same account, function, digest and limits; instances idle for Config.IdleTimeout are closed, so an idle
// account holds none (Stats).
//
// # Linear memories
//
// Each instance's memory is a private mapping of its maximum size outside
// the Go heap (memory_unix.go). When an instance is closed its memory is
// zeroed (every byte the guest could have written: resident pages cleared,
// the rest dropped with MADV_DONTNEED) and kept for the next new instance
// of any account, at most 2×GOMAXPROCS of them, for one idle sweep; an idle
// runtime gives them back (Stats.PooledMemories). A new instance on a
// recycled memory sees exactly what it would see on a fresh one
// (TestRecycledMemoryHoldsNothing), and skips the page faults that were
// most of a cold start. Unlike a Go slice, such a memory does not stay
// valid while something still uses it, so the goroutine running an
// instance holds its memory while it runs code on it, and closing the
// instance meanwhile (Close closes every instance, running or not)
// releases the memory only once the invocation has let go of it
// (TestCloseDuringInvocation).
//
// # Snapshots
//
// The second new instance of an account's function within
// Config.SnapshotTimeout (per artifact, memory cap and wall clock grant)
// gives a snapshot right after its init, before its first request: its
// memory's non-zero pages and its mutable globals (not the first: taking
// it costs about as much as the init, so a function started once after a
// quiet spell does not pay for it).
// Later new instances of the same key start from it: instantiated without
// data segments or start functions, memory and globals written in
// (snapshot.go; Compile prepares each module for it, snapshotmod.go): into
// a recycled memory they are copied, over a new one (on Linux) they are
// mapped copy-on-write from a memfd, remapped anonymous before the memory
// is recycled (TestSnapshotCopyOnWriteRecycled). A Go guest's snapshot
// holds about 1.8 MiB outside the Go heap. Snapshots
// are never used for another account or artifact
// (TestSnapshotNotSharedAcrossAccounts, TestSnapshotNotSharedAcrossArtifacts),
// hold nothing a request wrote (TestSnapshotHoldsNoRequestState), and an
// instance started from one answers as one that ran its init
// (TestSnapshotSameResponses). Instances started from one snapshot share
// the random state the Go runtime drew at init (map hash seeds,
// math/rand's top-level functions); crypto/rand is unaffected. They are
// kept at most Config.SnapshotMemory bytes in all, and dropped once unused
// for Config.SnapshotTimeout (Stats.Snapshots).
//
// An instance that runs its init (no snapshot kept) gets its data
// segments from its artifact's image: mapped copy-on-write over a new
// memory (on Linux), copied into a recycled one (memory_data.go,
// TestDataImageOnNewMemory). The image holds only the module's own data,
// the same for every account; it lives as long as the compiled artifact.
package runtime
