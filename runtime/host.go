package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	goruntime "runtime"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/sdk/fn/abi"
)

// Host is the data plane of ONE account as seen by ONE function, already
// scoped and authorized. The runtime calls it from the guest's host imports;
// no host import takes an account, so a guest reaches exactly what its Host
// reaches. Methods must honor ctx (it carries the invocation's deadline) and
// be safe for concurrent use.
//
// Errors map to what the guest sees: silo.CodeNotFound → not found;
// CodeForbidden and CodeUnauthenticated → denied; CodeInvalid and CodeTooLarge
// (a storage limit) → invalid (with
// the error's user message); CodeUnavailable, CodeTooMany and context errors →
// unavailable; anything else → internal, with a generic message (the error
// itself is logged, never shown to the guest).
type Host interface {
	Get(ctx context.Context, table, key string) ([]byte, error)
	Put(ctx context.Context, table, key string, v []byte) error
	Delete(ctx context.Context, table, key string) error
	// Add adds delta to the integer at key and returns the sum, atomically
	// (provider.Data.Add).
	Add(ctx context.Context, table, key string, delta int64) (int64, error)
	Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error)

	GetBlob(ctx context.Context, bucket, key string) ([]byte, error)
	PutBlob(ctx context.Context, bucket, key string, v []byte) error
	DeleteBlob(ctx context.Context, bucket, key string) error
	ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error)

	Config(ctx context.Context, key string) (string, error)
	Secret(ctx context.Context, name string) ([]byte, error)

	// ExportGet and ExportScan read a production export, read-only.
	ExportGet(ctx context.Context, export, key string) ([]byte, error)
	ExportScan(ctx context.Context, export, prefix, after string, limit int) ([]provider.KV, error)

	// Log records a guest log line. attrs includes "request_id".
	Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string)
}

// LevelEnabler is optionally implemented by a Host whose Log drops lines
// below some level. The runtime asks it before reading and decoding a guest
// log line, so a line the Host would drop costs no copies. A line it skips
// still counts toward the invocation's cap of log lines.
type LevelEnabler interface {
	Enabled(ctx context.Context, level slog.Level) bool
}

// call is the state of one invocation, reached from host functions through
// the context wazero passes them.
type call struct {
	rt       *Runtime
	host     Host
	acct     silo.AccountID
	fn       string
	reqID    string
	cpu      *cpuShare // the account's CPU share
	onCPU    bool      // this invocation holds one
	done     <-chan struct{}
	deadline time.Time
	yieldAt  time.Time // the checkpoints let other goroutines run from then on
	pending  []byte    // result held for abi.ImportTake
	stopped  bool      // a checkpoint stopped the guest
	logs     int       // log host calls so far
}

// takeCPU waits for one of the account's CPU slots (cpushare.go), or
// until the invocation is over; it reports whether it got one. Only the
// goroutine running the invocation calls it and leaveCPU.
func (c *call) takeCPU() bool {
	c.onCPU = c.cpu.take(c.done)
	return c.onCPU
}

// leaveCPU gives the CPU slot back, if the invocation holds one.
func (c *call) leaveCPU() {
	if c.onCPU {
		c.cpu.release()
		c.onCPU = false
	}
}

// errStopped is what a host call panics with to stop the guest: wazero
// returns it as the guest call's error.
var errStopped = errors.New("the invocation is over")

type callKey struct{}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// status maps a Host error to what the guest sees.
func (c *call) status(ctx context.Context, op string, err error) (abi.Status, string) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return abi.Unavailable, "deadline exceeded"
	}
	var e *silo.Error
	safe := ""
	if errors.As(err, &e) {
		safe = e.Message
	}
	if len(safe) > 240 {
		safe = safe[:240] + "..."
	}
	switch silo.ErrorCode(err) {
	case silo.CodeNotFound:
		return abi.NotFound, safe
	case silo.CodeForbidden, silo.CodeUnauthenticated:
		return abi.Denied, safe
	case silo.CodeInvalid, silo.CodeTooLarge:
		return abi.Invalid, safe
	case silo.CodeUnavailable, silo.CodeTooMany:
		return abi.Unavailable, safe
	}
	c.rt.cfg.Logger.LogAttrs(ctx, slog.LevelError, "host call failed",
		slog.String("account", string(c.acct)), slog.String("function", c.fn),
		slog.String("request_id", c.reqID), slog.String("op", op), slog.Any("err", err))
	return abi.Internal, "internal error"
}

// doesIO names the host calls that may wait on storage: an invocation
// gives its CPU slot back for their duration.
var doesIO = map[string]bool{
	abi.ImportKVGet: true, abi.ImportKVPut: true, abi.ImportKVDelete: true, abi.ImportKVAdd: true, abi.ImportKVScan: true,
	abi.ImportBlobGet: true, abi.ImportBlobPut: true, abi.ImportBlobDelete: true, abi.ImportBlobList: true,
	abi.ImportSecretGet: true, abi.ImportExportGet: true, abi.ImportExportScan: true,
}

// hostFn adapts a handler to wazero's stack-based host function, looking up
// the invocation and the guest memory once.
type hostFn func(ctx context.Context, c *call, mem api.Memory, stack []uint64)

func (r *Runtime) instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(hostModule)
	add := func(name string, f hostFn) {
		io := doesIO[name]
		t := hostSigs[name]
		params := make([]api.ValueType, len(t.params))
		copy(params, t.params)
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			c := callOf(ctx)
			if c == nil {
				// Called outside an invocation (cannot happen through Invoke).
				if len(t.results) > 0 {
					stack[0] = negStatus(abi.Internal)
				}
				return
			}
			if !io {
				f(ctx, c, m.Memory(), stack)
				return
			}
			// The account's other invocations may run guest code while
			// this one waits for I/O.
			c.leaveCPU()
			f(ctx, c, m.Memory(), stack)
			// A call that returns once the invocation is over (its
			// context done: the call gave up because the time ran out,
			// or came back late) does not return to the guest, which
			// would answer its failure, or act on it, after its time:
			// the guest is stopped here and the invocation timed out
			// waiting (the platform names what for).
			if ctx.Err() != nil || !c.takeCPU() {
				c.stopped = true
				panic(errStopped)
			}
		}), params, append([]api.ValueType(nil), t.results...)).Export(name)
	}
	add(abi.ImportTake, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		p, n := uint32(s[0]), uint32(s[1])
		data := c.pending
		c.pending = nil
		if uint32(len(data)) < n {
			n = uint32(len(data))
		}
		if !mem.Write(p, data[:n]) {
			s[0] = negStatus(abi.Invalid)
			return
		}
		s[0] = uint64(n)
	})
	add(abi.ImportKVGet, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		t, k, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		v, err := c.host.Get(ctx, t, k)
		c.out(ctx, mem, s, 4, "kv_get", v, err)
	})
	add(abi.ImportKVPut, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		t, k, ok := str2(mem, s)
		v, ok2 := bytesAt(mem, s[4], s[5])
		if !ok || !ok2 {
			s[0] = negStatus(abi.Invalid)
			return
		}
		c.done1(ctx, s, "kv_put", c.host.Put(ctx, t, k, v))
	})
	add(abi.ImportKVDelete, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		t, k, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		c.done1(ctx, s, "kv_delete", c.host.Delete(ctx, t, k))
	})
	add(abi.ImportKVAdd, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		t, k, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		n, err := c.host.Add(ctx, t, k, int64(s[4]))
		c.out(ctx, mem, s, 5, "kv_add", binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(n)), err)
	})
	add(abi.ImportKVScan, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		t, p, ok := str2(mem, s)
		a, ok2 := strAt(mem, s[4], s[5])
		if !ok || !ok2 {
			s[0] = negStatus(abi.Invalid)
			return
		}
		kvs, err := c.host.Scan(ctx, t, p, a, int(uint32(s[6])))
		c.out(ctx, mem, s, 7, "kv_scan", encodeKVs(kvs), err)
	})
	add(abi.ImportBlobGet, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		bk, k, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		v, err := c.host.GetBlob(ctx, bk, k)
		c.out(ctx, mem, s, 4, "blob_get", v, err)
	})
	add(abi.ImportBlobPut, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		bk, k, ok := str2(mem, s)
		v, ok2 := bytesAt(mem, s[4], s[5])
		if !ok || !ok2 {
			s[0] = negStatus(abi.Invalid)
			return
		}
		c.done1(ctx, s, "blob_put", c.host.PutBlob(ctx, bk, k, v))
	})
	add(abi.ImportBlobDelete, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		bk, k, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		c.done1(ctx, s, "blob_delete", c.host.DeleteBlob(ctx, bk, k))
	})
	add(abi.ImportBlobList, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		bk, p, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		keys, err := c.host.ListBlobs(ctx, bk, p, int(uint32(s[4])))
		var v []byte
		if err == nil {
			v = abi.AppendStrings(nil, keys)
		}
		c.out(ctx, mem, s, 5, "blob_list", v, err)
	})
	add(abi.ImportConfigGet, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		k, ok := strAt(mem, s[0], s[1])
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		v, err := c.host.Config(ctx, k)
		c.outString(ctx, mem, s, 2, "config_get", v, err)
	})
	add(abi.ImportSecretGet, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		n, ok := strAt(mem, s[0], s[1])
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		v, err := c.host.Secret(ctx, n)
		c.out(ctx, mem, s, 2, "secret_get", v, err)
	})
	add(abi.ImportExportGet, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		e, k, ok := str2(mem, s)
		if !ok {
			s[0] = negStatus(abi.Invalid)
			return
		}
		v, err := c.host.ExportGet(ctx, e, k)
		c.out(ctx, mem, s, 4, "export_get", v, err)
	})
	add(abi.ImportExportScan, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		e, p, ok := str2(mem, s)
		a, ok2 := strAt(mem, s[4], s[5])
		if !ok || !ok2 {
			s[0] = negStatus(abi.Invalid)
			return
		}
		kvs, err := c.host.ExportScan(ctx, e, p, a, int(uint32(s[6])))
		c.out(ctx, mem, s, 7, "export_scan", encodeKVs(kvs), err)
	})
	add(abi.ImportLogEnabled, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		level := slog.Level(int32(s[0]))
		s[0] = 1
		if c.logs > maxLogLines {
			s[0] = 0 // over the cap (and warned): the line would be dropped
		} else if le, ok := c.host.(LevelEnabler); ok && !le.Enabled(ctx, level) {
			s[0] = 0
		}
	})
	add(abi.ImportLog, func(ctx context.Context, c *call, mem api.Memory, s []uint64) {
		c.logs++
		switch {
		case c.logs == maxLogLines+1:
			c.host.Log(ctx, slog.LevelWarn, "further log lines of this invocation dropped (over 1000)", map[string]string{"request_id": c.reqID})
			return
		case c.logs > maxLogLines:
			return
		}
		level := slog.Level(int32(s[0]))
		if le, ok := c.host.(LevelEnabler); ok && !le.Enabled(ctx, level) {
			return // dropped anyway: do not read or decode it
		}
		msg, ok := strAt(mem, s[1], s[2])
		raw, ok2 := mem.Read(uint32(s[3]), uint32(s[4]))
		if !ok || !ok2 {
			return
		}
		attrs, err := abi.DecodePairs(raw)
		if err != nil {
			attrs = map[string]string{}
		}
		attrs["request_id"] = c.reqID
		if len(msg) > 4096 {
			msg = msg[:4096]
		}
		c.host.Log(ctx, level, msg, attrs)
	})
	// The checkpoint import that instrumentation adds to every module (guests
	// may not import it themselves: it is not in hostSigs). It returns fresh
	// fuel, or 0 once the invocation's deadline has passed, which makes the
	// injected code trap. Being Go code, it is also where the Go scheduler
	// can preempt a guest that would otherwise hold its P.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = fuel
		c := callOf(ctx)
		if c == nil {
			return
		}
		select {
		case <-c.done:
			c.stopped = true
			s[0] = 0
		default:
			now := time.Now()
			if now.After(c.deadline) {
				c.stopped = true
				s[0] = 0
				return
			}
			// Once the invocation has had its time slice, let other
			// goroutines (other tenants' guests, timers) run at every
			// checkpoint: a guest in machine code cannot be preempted
			// otherwise. A short invocation is not descheduled halfway.
			if now.After(c.yieldAt) {
				c.leaveCPU() // the account's other invocations get a turn
				goruntime.Gosched()
				if !c.takeCPU() {
					c.stopped = true
					s[0] = 0
				}
			}
		}
	}), nil, []api.ValueType{i32}).Export(importCheckpoint)
	_, err := b.Instantiate(ctx)
	return err
}

func negStatus(s abi.Status) uint64 { return uint64(-int64(s)) }

func strAt(mem api.Memory, p, n uint64) (string, bool) {
	b, ok := mem.Read(uint32(p), uint32(n))
	return string(b), ok
}

func bytesAt(mem api.Memory, p, n uint64) ([]byte, bool) {
	b, ok := mem.Read(uint32(p), uint32(n))
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func str2(mem api.Memory, s []uint64) (string, string, bool) {
	a, ok := strAt(mem, s[0], s[1])
	b, ok2 := strAt(mem, s[2], s[3])
	return a, b, ok && ok2
}

func encodeKVs(kvs []provider.KV) []byte {
	n := 0
	for _, kv := range kvs {
		n += len(kv.Key) + len(kv.Value) + 10
	}
	b := make([]byte, 0, n+5)
	ak := make([]abi.KV, len(kvs))
	for i, kv := range kvs {
		ak[i] = abi.KV{Key: kv.Key, Value: kv.Value}
	}
	return abi.AppendKVs(b, ak)
}

// out delivers a result: into the guest's buffer (stack[o], stack[o+1]) if
// it fits, else held for take. Errors are held as their safe message.
func (c *call) out(ctx context.Context, mem api.Memory, s []uint64, o int, op string, v []byte, err error) {
	if err != nil {
		c.fail(ctx, s, op, err)
		return
	}
	if len(v) > c.rt.cfg.MaxResponseSize {
		c.pending = []byte("result too large")
		s[0] = negStatus(abi.TooLarge)
		return
	}
	p, n := uint32(s[o]), uint32(s[o+1])
	if uint32(len(v)) <= n {
		if !mem.Write(p, v) {
			s[0] = negStatus(abi.Invalid)
			return
		}
	} else {
		c.pending = v
	}
	s[0] = uint64(len(v))
}

func (c *call) outString(ctx context.Context, mem api.Memory, s []uint64, o int, op string, v string, err error) {
	if err != nil {
		c.fail(ctx, s, op, err)
		return
	}
	p, n := uint32(s[o]), uint32(s[o+1])
	if uint32(len(v)) <= n {
		if !mem.WriteString(p, v) {
			s[0] = negStatus(abi.Invalid)
			return
		}
	} else {
		c.pending = []byte(v)
	}
	s[0] = uint64(len(v))
}

func (c *call) done1(ctx context.Context, s []uint64, op string, err error) {
	if err != nil {
		c.fail(ctx, s, op, err)
		return
	}
	s[0] = 0
}

func (c *call) fail(ctx context.Context, s []uint64, op string, err error) {
	st, msg := c.status(ctx, op, err)
	c.pending = []byte(msg)
	s[0] = negStatus(st)
}
