package runtime

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// TestInstrumentValid checks that instrumented modules still validate and
// compile, for the Go guest and the hand-assembled ones.
func TestInstrumentValid(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	for name, wasm := range map[string][]byte{
		"recursion": recursionModuleNotify(3, true),
		"table":     hostileSpec{table: []byte{0x70, 0x01, 0x01, 0x0A}, handle: returnOK()}.build(),
		"imports":   hostileSpec{imports: funcImport("silo", "config_get", 4), nImport: 1, handle: returnOK()}.build(),
	} {
		m, err := parseModule(wasm)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := instrument(m, fuel, defaultCallStack)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := rt.CompileModule(ctx, out); err != nil {
			t.Errorf("%s: instrumented module does not compile: %v", name, err)
		}
		m2, err := parseModule(out)
		if err != nil {
			t.Fatalf("%s: reparse: %v", name, err)
		}
		if m2.funcImports != m.funcImports+1 || m2.globals != m.globals+2 {
			t.Errorf("%s: imports %d→%d, globals %d→%d; want one more import and two more globals (fuel, stack)", name, m.funcImports, m2.funcImports, m.globals, m2.globals)
		}
	}
}

// FuzzInstrument: the deploy-time parser and rewriter take untrusted bytes;
// they must never panic.
func FuzzInstrument(f *testing.F) {
	f.Add(recursionModuleNotify(3, true))
	f.Add(hostileSpec{table: []byte{0x70, 0x00, 0x01}, handle: cat([]byte{0xD0, 0x70}, i32c(5), []byte{0xFC, 0x0F, 0x00}, opDrop, returnOK())}.build())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseModule(b)
		if err != nil {
			return
		}
		instrument(m, fuel, defaultCallStack)
	})
}
