package runtime

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// TestFindingWazeroCancelMissesRecursion records why the runtime instruments
// modules (DESIGN §5): with WithCloseOnContextDone(true), wazero v1.12.0
// stops a looping guest whose context is done, but a loop-free recursive
// guest keeps running after its context is cancelled, to completion. If
// wazero starts checking at function entry, this test fails and the
// instrumentation could be reconsidered.
func TestFindingWazeroCancelMissesRecursion(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true))
	defer rt.Close(ctx)

	// env.start cancels the context; then 2^22 calls, no loop; then
	// env.done. env.done still runs: the recursion was not interrupted
	// (wazero reports the closed module only when the call returns).
	cancelled, cancel := context.WithCancel(ctx)
	var doneAfterCancel, doneCalled bool
	_, err := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, s []uint64) {
		cancel()
		s[0] = 0
	}), nil, []api.ValueType{api.ValueTypeI32}).Export("start").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, s []uint64) {
			doneCalled, doneAfterCancel = true, cancelled.Err() != nil
			s[0] = 0
		}), nil, []api.ValueType{api.ValueTypeI32}).Export("done").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, recursionModuleNotify(22, true), wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.ExportedFunction("handle").Call(cancelled, 0, 0)
	t.Logf("call returned %v", err)
	if !doneCalled || !doneAfterCancel {
		t.Fatalf("done called %v, after cancel %v; wazero now interrupts loop-free recursion", doneCalled, doneAfterCancel)
	}

	// Twin: a loop is stopped.
	loop := hostileSpec{handle: cat([]byte{0x03, 0x40, 0x0C, 0x00, 0x0B}, returnOK())}.build()
	mod2, err := rt.InstantiateWithConfig(ctx, loop, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod2.ExportedFunction("handle").Call(cancelled, 0, 0); err == nil {
		t.Fatal("loop: no error; wazero did not stop a loop on cancel")
	}
}
