package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// hostileModules deploys, to a throwaway account of its own, function
// modules that declare what makes the host allocate outside the guest's
// linear memory at every instantiation (full-size tables, huge element
// segments, hundreds of thousands of globals): a few kilobytes of module
// that would cost over a hundred megabytes of host heap per instance.
// Every one must be refused at deploy. Controls: the same construction at
// a size within the runtime's per-instance budget deploys and answers
// through the gateway, so a deploy path that refuses everything cannot
// pass. The hostile modules are never invoked, even if deployed.
func (r *run) hostileModules(ctx context.Context, rep *Report) error {
	t := newTally("hostile-modules", "deploy: modules declaring tables, element segments or globals that would cost the host 68 MiB or more per instance are refused; the same within the budget deploy and answer")
	m := &acct{id: store.ProbeAccountID(r.nonce, "m")}
	if err := r.createProbeAccount(ctx, m); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "silo-probe-module-")
	if err != nil {
		return fmt.Errorf("probe module dir: %w", err)
	}
	defer os.RemoveAll(dir)
	for _, c := range moduleCases {
		// Control first: the construction within the budget deploys and
		// answers, so the refusal below is about its size.
		if err := writeModuleApp(dir, c.build(c.ok)); err != nil {
			return err
		}
		problem := ""
		if _, err := r.t.Control.DeployProbe(ctx, dir, m.id); err != nil {
			problem = "deploy refused: " + errMsg(err)
		} else {
			resp, err := r.send(ctx, rawReq{method: "GET", target: "/", host: r.host(m.id), auth: "Bearer " + m.key})
			switch {
			case err != nil:
				problem = err.Error()
			case resp.status != http.StatusOK || string(resp.body) != "ok":
				problem = fmt.Sprintf("it answered %d %.100q, want 200 \"ok\"", resp.status, resp.body)
			}
		}
		t.control(fmt.Sprintf("a module with %s deploys and answers", c.describe(c.ok)), problem)

		if err := writeModuleApp(dir, c.build(c.over)); err != nil {
			return err
		}
		breach, outcome := "", "refused"
		_, err := r.t.Control.DeployProbe(ctx, dir, m.id)
		switch {
		case err == nil:
			breach, outcome = "the module was deployed", "deployed"
		case silo.ErrorCode(err) != silo.CodeInvalid:
			// Refused, but not as an invalid module: say so in the outcomes.
			outcome = "failed: " + silo.UserMessage(err)
		}
		t.attempt(fmt.Sprintf("deploy a module with %s", c.describe(c.over)), outcome, breach)
	}
	rep.add(t)
	return nil
}

// moduleCases are the hostile constructions, each at a size over any
// sensible per-instance budget (over, 68 MiB or more of host heap per
// instance) and one within the runtime's default of 16 MiB (ok).
var moduleCases = []struct {
	over, ok int
	describe func(n int) string
	build    func(n int) []byte
}{
	{256, 8,
		func(n int) string { return fmt.Sprintf("%d full-size tables (65,536 elements each)", n) },
		func(n int) []byte { return wasmModule{tables: n}.encode() }},
	{256, 8,
		func(n int) string { return fmt.Sprintf("%d passive element segments of 5,000 references", n) },
		func(n int) []byte { return wasmModule{elemSegs: n, elemItems: 5000}.encode() }},
	{800_000, 1000,
		func(n int) string { return fmt.Sprintf("%d globals", n) },
		func(n int) []byte { return wasmModule{globals: n}.encode() }},
}

// writeModuleApp writes an app of one function, module.wasm, routed at /.
func writeModuleApp(dir string, module []byte) error {
	fn := store.ProbeModuleAppFunction
	app := "version: 1\nname: " + store.ProbeModuleApp + "\n" +
		"functions:\n  " + fn + ":\n    source: ./module.wasm\n    timeout: 5s\n" +
		"routes:\n  - {method: GET, path: /, function: " + fn + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "silo.yaml"), []byte(app), 0o644); err != nil {
		return fmt.Errorf("write probe module app: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644); err != nil {
		return fmt.Errorf("write probe module: %w", err)
	}
	return nil
}

// wasmModule is a function module speaking silo's ABI (it exports memory,
// silo_alloc and handle; handle answers 200 "ok"), written byte by byte
// with no toolchain, plus the declarations that cost the host memory at
// instantiation.
type wasmModule struct {
	tables    int // tables of 65,536 funcref elements, minimum and maximum
	elemSegs  int // passive element segments ...
	elemItems int // ... of this many references to function 0 each
	globals   int // immutable i32 globals
}

// okResponse is the ABI encoding of a response 200 "ok" (status varint, no
// headers, body length and body), placed at okAddr in memory.
var okResponse = []byte{0xC8, 0x01, 0x00, 0x02, 'o', 'k'}

const okAddr = 2048

func (m wasmModule) encode() []byte {
	leb := func(v int) []byte { return binary.AppendUvarint(nil, uint64(v)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	vec := func(n int, item []byte) []byte { return cat(leb(n), bytes.Repeat(item, n)) }
	section := func(id byte, body []byte) []byte { return cat([]byte{id}, leb(len(body)), body) }
	name := func(s string) []byte { return cat(leb(len(s)), []byte(s)) }
	fn := func(code []byte) []byte { b := cat([]byte{0x00}, code, []byte{0x0B}); return cat(leb(len(b)), b) }

	out := []byte("\x00asm\x01\x00\x00\x00")
	// Types: 0 (i32)->i32 for silo_alloc, 1 (i32,i32)->i64 for handle.
	out = cat(out, section(1, cat(leb(2),
		[]byte{0x60, 0x01, 0x7F, 0x01, 0x7F},
		[]byte{0x60, 0x02, 0x7F, 0x7F, 0x01, 0x7E})))
	out = cat(out, section(3, []byte{0x02, 0x00, 0x01}))
	if m.tables > 0 {
		out = cat(out, section(4, vec(m.tables, cat([]byte{0x70, 0x01}, leb(65536), leb(65536)))))
	}
	out = cat(out, section(5, []byte{0x01, 0x00, 0x01})) // one memory, min 1 page
	if m.globals > 0 {
		out = cat(out, section(6, vec(m.globals, []byte{0x7F, 0x00, 0x41, 0x00, 0x0B})))
	}
	out = cat(out, section(7, cat(leb(3),
		name("memory"), []byte{0x02, 0x00},
		name("silo_alloc"), []byte{0x00, 0x00},
		name("handle"), []byte{0x00, 0x01})))
	if m.elemSegs > 0 {
		// Flag 1: passive, elemkind funcref (0x00), then function indices.
		seg := cat([]byte{0x01, 0x00}, leb(m.elemItems), bytes.Repeat([]byte{0x00}, m.elemItems))
		out = cat(out, section(9, vec(m.elemSegs, seg)))
	}
	alloc := fn(cat([]byte{0x41}, sleb(1024)))                                      // i32.const 1024
	handle := fn(cat([]byte{0x42}, sleb(int64(okAddr)<<32|int64(len(okResponse))))) // i64.const ptr<<32|len
	out = cat(out, section(10, cat(leb(2), alloc, handle)))
	data := cat([]byte{0x00, 0x41}, sleb(okAddr), []byte{0x0B}, leb(len(okResponse)), okResponse)
	return cat(out, section(11, cat(leb(1), data)))
}

// sleb is the signed LEB128 encoding of v.
func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
