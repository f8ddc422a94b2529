package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/sdk/fn/abi"
)

// hostcallScenario measures one host call round trip (a config read:
// config_get through the runtime's host module and a Host) against raw
// wazero calls, measured in the same run on the same module.
//
// The module is assembled here (hostcallModule): its export "calls" makes
// hostcallN config_get calls in a loop, its export "handle" makes none;
// both return a fixed response. Through the runtime (runtime.Invoke, the
// module instrumented as at deploy, a Host answering Config from memory so
// the provider's own cost is apart) the round trip is
// (t(calls) - t(handle)) / hostcallN. The baselines run the same, not
// instrumented, module in a plain wazero runtime whose "silo" host module
// is no-op Go functions: a call into wasm (the "handle" export) and a raw
// guest-to-host call ((t(calls) - t(handle)) / hostcallN).
func hostcallScenario(ctx context.Context, cfg config) ([]row, error) {
	const rounds = 300
	wasm, err := hostcallModule()
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := runtime.New(runtime.Config{Logger: logger})
	if err != nil {
		return nil, err
	}
	defer rt.Close(ctx)
	digest, err := rt.Compile(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile the host-call module: %w", err)
	}

	// The real local provider, for a second figure that includes its cost.
	prov, err := local.New(local.Config{Dir: filepath.Join(cfg.dir, "dp-hostcall")})
	if err != nil {
		return nil, err
	}
	defer prov.Close()
	if err := prov.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		return nil, err
	}
	res, err := silo.NewResource(silo.TypeConfig, "greeting", map[string]any{"value": "hello"})
	if err != nil {
		return nil, err
	}
	if err := prov.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeConfig, Name: "greeting", Desired: &res}); err != nil {
		return nil, err
	}
	data, err := prov.Data(ctx, "acme")
	if err != nil {
		return nil, err
	}

	invokeEach := func(h runtime.Host, handler string) (time.Duration, error) {
		t0 := time.Now()
		resp, err := rt.Invoke(ctx, runtime.Invocation{
			Account: "acme", Function: "hostcall", Digest: digest, Handler: handler, Host: h,
			Request: runtime.Request{Method: "GET", Path: "/"},
		})
		d := time.Since(t0)
		if err != nil || resp.Status != 200 {
			return 0, fmt.Errorf("invoke %s: status %d, %v", handler, resp.Status, err)
		}
		return d, nil
	}
	// perCall returns the median Invoke time of "calls" minus that of
	// "handle", divided by hostcallN, the two alternating.
	perCall := func(h runtime.Host, n int) (float64, error) {
		var withCalls, without []time.Duration
		for i := 0; i < n; i++ {
			a, err := invokeEach(h, "calls")
			if err != nil {
				return 0, err
			}
			b, err := invokeEach(h, "handle")
			if err != nil {
				return 0, err
			}
			withCalls, without = append(withCalls, a), append(without, b)
		}
		return float64(median(withCalls)-median(without)) / hostcallN, nil
	}
	static := &staticConfigHost{DataHost: runtime.DataHost{Account: "acme", Function: "hostcall"}}
	if _, err := perCall(static, 10); err != nil { // warm-up
		return nil, err
	}
	siloStatic, err := perCall(static, rounds)
	if err != nil {
		return nil, err
	}
	siloLocal, err := perCall(&runtime.DataHost{Data: data, Account: "acme", Function: "hostcall"}, 20)
	if err != nil {
		return nil, err
	}

	// Raw wazero, same module (not instrumented), no-op host functions.
	raw := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer raw.Close(ctx)
	hb := raw.NewHostModuleBuilder(abi.HostModule)
	hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		stack[0] = 0
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}).Export(abi.ImportConfigGet)
	if _, err := hb.Instantiate(ctx); err != nil {
		return nil, err
	}
	mod, err := raw.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions(abi.ExportInitialize))
	if err != nil {
		return nil, fmt.Errorf("raw wazero instantiate: %w", err)
	}
	handle, calls := mod.ExportedFunction("handle"), mod.ExportedFunction("calls")
	stack := make([]uint64, 2)
	callNs := func(f api.Function, times int) (float64, error) {
		var ds []time.Duration
		for r := 0; r < 15; r++ {
			t0 := time.Now()
			for i := 0; i < times; i++ {
				stack[0], stack[1] = 0, 0
				if err := f.CallWithStack(ctx, stack); err != nil {
					return 0, err
				}
			}
			ds = append(ds, time.Since(t0))
		}
		return float64(median(ds)) / float64(times), nil
	}
	const rawCalls = 20000
	callIn, err := callNs(handle, rawCalls)
	if err != nil {
		return nil, err
	}
	withHost, err := callNs(calls, 20)
	if err != nil {
		return nil, err
	}
	rawHost := (withHost - callIn) / hostcallN

	sdk, err := sdkConfigRead(ctx, cfg, rt, static)
	if err != nil {
		return nil, err
	}

	verdict := "met"
	if siloStatic-rawHost > 200 {
		verdict = "MISSED"
	}
	return []row{
		{"hostcall", "config_get round trip (runtime + Host from memory)", fmt.Sprintf("%.0f ns", siloStatic), fmt.Sprintf("%.0f ns (raw wazero guest→host call)", rawHost), fmt.Sprintf("+%.0f ns added", siloStatic-rawHost), "≤ +200 ns: " + verdict},
		{"hostcall", "config_get round trip vs a raw call into wasm", fmt.Sprintf("%.0f ns", siloStatic), fmt.Sprintf("%.0f ns (raw wazero host→guest call)", callIn), fmt.Sprintf("+%.0f ns", siloStatic-callIn), ""},
		{"hostcall", "fn.Config from Go guest code (sdk/fn + wasmimport + runtime + Host from memory; loop of 10,000)", fmt.Sprintf("%.0f ns", sdk), fmt.Sprintf("%.0f ns (raw wazero guest→host call)", rawHost), fmt.Sprintf("+%.0f ns added", sdk-rawHost), "≤ +200 ns: " + sdkVerdict(sdk-rawHost)},
		{"hostcall", "config_get round trip with the local provider", fmt.Sprintf("%.0f ns", siloLocal), "", "", "(provider cost included)"},
	}, nil
}

func sdkVerdict(added float64) string {
	if added > 200 {
		return "MISSED"
	}
	return "met"
}

// sdkConfigRead measures a config read as a Go function makes it, through
// sdk/fn: the runtime's test guest (runtime/testdata/guest) is built and
// invoked on "/config-loop?n=N" (N fn.Config calls in a loop) and on
// "/empty-loop?n=N" (the same loop without them), alternating; the
// difference of the medians divided by N is one round trip from Go code
// (SDK, wasmimport, runtime host function, Host, copy back), with the
// invocation's own cost amortized away.
func sdkConfigRead(ctx context.Context, cfg config, rt *runtime.Runtime, h runtime.Host) (float64, error) {
	src := filepath.Join(filepath.Dir(appDir(cfg)), "..", "runtime", "testdata", "guest")
	art, err := build.Function(ctx, src, filepath.Join(cfg.dir, "dp-hostcall-guest"))
	if err != nil {
		return 0, fmt.Errorf("build %s: %w", src, err)
	}
	wasm, err := os.ReadFile(art.Path)
	if err != nil {
		return 0, err
	}
	digest, err := rt.Compile(ctx, wasm)
	if err != nil {
		return 0, err
	}
	const n = 10000
	q := url.Values{"k": {"greeting"}, "n": {strconv.Itoa(n)}}
	one := func(path, want string) (time.Duration, error) {
		t0 := time.Now()
		resp, err := rt.Invoke(ctx, runtime.Invocation{
			Account: "acme", Function: "guest", Digest: digest, Host: h,
			Request: runtime.Request{Method: "GET", Path: path, Query: q},
		})
		d := time.Since(t0)
		if err != nil || resp.Status != 200 || string(resp.Body) != want {
			return 0, fmt.Errorf("invoke guest %s: status %d %q, %v", path, resp.Status, resp.Body, err)
		}
		return d, nil
	}
	var cfgT, empty []time.Duration
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 105 && time.Now().Before(deadline); i++ {
		a, err := one("/config-loop", "hello")
		if err != nil {
			return 0, err
		}
		b, err := one("/empty-loop", "greeting")
		if err != nil {
			return 0, err
		}
		if i >= 5 { // warm-up
			cfgT, empty = append(cfgT, a), append(empty, b)
		}
	}
	if len(cfgT) == 0 {
		return 0, fmt.Errorf("no guest invocation measured")
	}
	return float64(median(cfgT)-median(empty)) / n, nil
}

// hostcallN is how many config_get calls the "calls" export makes.
const hostcallN = 10000

// staticConfigHost is the real DataHost with Config answered from memory.
type staticConfigHost struct{ runtime.DataHost }

func (*staticConfigHost) Config(context.Context, string) (string, error) { return "hello", nil }

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// hostcallModule assembles a minimal guest that follows the ABI: it imports
// silo.config_get, exports memory, silo_alloc, silo_abi_v1, _initialize,
// handle (no host call) and calls (hostcallN config_get calls); both
// handlers return one pre-encoded 200 response from a data segment.
func hostcallModule() ([]byte, error) {
	const (
		keyOff  = 256
		outOff  = 512
		respOff = 1024
		reqOff  = 4096
	)
	key := []byte("greeting")
	resp := abi.AppendResponse(nil, &abi.Response{Status: 200, Body: []byte("ok")})
	packed := int64(respOff)<<32 | int64(len(resp))

	var m []byte
	m = append(m, 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00)
	section := func(id byte, body []byte) {
		m = append(m, id)
		m = uleb(m, uint64(len(body)))
		m = append(m, body...)
	}
	const i32, i64 = 0x7f, 0x7e
	// Types: 0 (i32×4)->i64, 1 (i32)->i32, 2 (i32,i32)->i64, 3 ()->().
	var types []byte
	types = uleb(types, 4)
	types = append(types, 0x60, 4, i32, i32, i32, i32, 1, i64)
	types = append(types, 0x60, 1, i32, 1, i32)
	types = append(types, 0x60, 2, i32, i32, 1, i64)
	types = append(types, 0x60, 0, 0)
	section(1, types)
	// Imports: func 0 = silo.config_get.
	var imps []byte
	imps = uleb(imps, 1)
	imps = str(imps, abi.HostModule)
	imps = str(imps, abi.ImportConfigGet)
	imps = append(imps, 0x00, 0)
	section(2, imps)
	// Functions 1..5: alloc, handle, calls, _initialize, silo_abi_v1.
	section(3, []byte{5, 1, 2, 2, 3, 3})
	// Memory: 2 pages, max 2.
	section(5, []byte{1, 0x01, 2, 2})
	// Exports.
	var exps []byte
	exps = uleb(exps, 6)
	for _, e := range []struct {
		name string
		kind byte
		idx  byte
	}{{"memory", 2, 0}, {abi.ExportAlloc, 0, 1}, {abi.ExportHandle, 0, 2}, {"calls", 0, 3}, {abi.ExportInitialize, 0, 4}, {abi.ExportABI, 0, 5}} {
		exps = str(exps, e.name)
		exps = append(exps, e.kind, e.idx)
	}
	section(7, exps)
	// Code.
	fn := func(locals, code []byte) []byte {
		b := append(append([]byte(nil), locals...), code...)
		return append(uleb(nil, uint64(len(b))), b...)
	}
	i32c := func(b []byte, v int64) []byte { return sleb(append(b, 0x41), v) }
	i64c := func(b []byte, v int64) []byte { return sleb(append(b, 0x42), v) }
	var alloc, handle, calls, nop []byte
	alloc = append(i32c(nil, reqOff), 0x0b)
	handle = append(i64c(nil, packed), 0x0b)
	// local 2 (i32) = hostcallN; loop { if local2 == 0 break; config_get(key, out); drop; local2-- }
	calls = i32c(nil, hostcallN)
	calls = append(calls, 0x21, 2)                // local.set 2
	calls = append(calls, 0x02, 0x40)             // block
	calls = append(calls, 0x03, 0x40)             // loop
	calls = append(calls, 0x20, 2, 0x45, 0x0d, 1) // local.get 2; i32.eqz; br_if 1
	calls = i32c(calls, keyOff)
	calls = i32c(calls, int64(len(key)))
	calls = i32c(calls, outOff)
	calls = i32c(calls, 64)
	calls = append(calls, 0x10, 0, 0x1a) // call 0; drop
	calls = append(calls, 0x20, 2)       // local.get 2
	calls = i32c(calls, 1)
	calls = append(calls, 0x6b, 0x21, 2) // i32.sub; local.set 2
	calls = append(calls, 0x0c, 0)       // br 0
	calls = append(calls, 0x0b, 0x0b)    // end loop; end block
	calls = i64c(calls, packed)
	calls = append(calls, 0x0b)
	nop = []byte{0x0b}
	var code []byte
	code = uleb(code, 5)
	code = append(code, fn([]byte{0}, alloc)...)
	code = append(code, fn([]byte{0}, handle)...)
	code = append(code, fn([]byte{1, 1, i32}, calls)...)
	code = append(code, fn([]byte{0}, nop)...)
	code = append(code, fn([]byte{0}, nop)...)
	section(10, code)
	// Data: the key and the response.
	var dat []byte
	dat = uleb(dat, 2)
	for _, s := range []struct {
		off int64
		b   []byte
	}{{keyOff, key}, {respOff, resp}} {
		dat = append(dat, 0)
		dat = i32c(dat, s.off)
		dat = append(dat, 0x0b)
		dat = uleb(dat, uint64(len(s.b)))
		dat = append(dat, s.b...)
	}
	section(11, dat)
	return m, nil
}

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func str(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }
