package runtime

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/silo-run/silo/sdk/fn/abi"
)

// Strings the bounds tests pass to host calls, at dataAddr.
const (
	sItems    = dataAddr      // "items"
	sK        = dataAddr + 5  // "k"
	sV        = dataAddr + 6  // "v"
	sGreeting = dataAddr + 7  // "greeting"
	sRaw      = dataAddr + 15 // "raw"
	sAPIKey   = dataAddr + 18 // "api-key"
	outBuf    = 8192
	resAddr   = 12288
	memEnd    = 65536 // the modules have one page
)

var boundsData = []byte("itemskvgreetingrawapi-key")

// hostCallModule calls the host import name (of type typ) once with args
// and answers with the call's i64 result as an 8-byte body.
func hostCallModule(name string, typ uint32, args ...uint32) []byte {
	code := cat(i32c(resAddr), i32c(0x080001C8), []byte{0x36, 0x02, 0x00}) // status 200, no header, 8-byte body
	code = cat(code, i32c(resAddr+4))
	for _, a := range args {
		code = cat(code, i32c(int32(a)))
	}
	code = cat(code, callF(0), []byte{0x37, 0x03, 0x00}, []byte{0x42}, sleb(int64(resAddr)<<32|12))
	six := make([]byte, 6)
	nine := make([]byte, 9)
	for i := range nine {
		nine[i] = 0x7F
	}
	copy(six, nine)
	return hostileSpec{
		imports: funcImport("silo", name, typ), nImport: 1,
		types:  [][]byte{functype(six, []byte{0x7E}), functype(nine, []byte{0x7E})},
		data:   boundsData,
		handle: code,
	}.build()
}

// Type indices of hostCallModule's imports.
const (
	t4 = 4 // (i32 x4) -> i64
	t6 = 6 // (i32 x6) -> i64
	t9 = 7 // (i32 x9) -> i64
)

// TestHostCallsCheckGuestBounds: a host call given a pointer and length
// outside the guest's memory (past its end, straddling it, or wrapping
// around 2^32) answers Invalid and reaches nothing; the same call in
// bounds succeeds.
func TestHostCallsCheckGuestBounds(t *testing.T) {
	e := newEnv(t, Config{})
	invalid := -int64(abi.Invalid)
	tests := []struct {
		name      string
		imp       string
		typ       uint32
		bad, good []uint32
	}{
		{"config_get key past the end", abi.ImportConfigGet, t4, []uint32{memEnd - 1, 8, outBuf, 256}, []uint32{sGreeting, 8, outBuf, 256}},
		{"config_get key wrapping around", abi.ImportConfigGet, t4, []uint32{0xFFFFFFFF, 8, outBuf, 256}, []uint32{sGreeting, 8, outBuf, 256}},
		{"config_get result buffer past the end", abi.ImportConfigGet, t4, []uint32{sGreeting, 8, memEnd - 4, 100}, []uint32{sGreeting, 8, outBuf, 100}},
		{"kv_put value past the end", abi.ImportKVPut, t6, []uint32{sItems, 5, sK, 1, memEnd - 2, 10}, []uint32{sItems, 5, sK, 1, sV, 1}},
		{"kv_put table past the end", abi.ImportKVPut, t6, []uint32{memEnd, 5, sK, 1, sV, 1}, []uint32{sItems, 5, sK, 1, sV, 1}},
		{"kv_get key past the end", abi.ImportKVGet, t6, []uint32{sItems, 5, memEnd - 1, 2, outBuf, 256}, []uint32{sItems, 5, sK, 1, outBuf, 256}},
		{"kv_scan cursor past the end", abi.ImportKVScan, t9, []uint32{sItems, 5, sK, 1, memEnd - 1, 4, 10, outBuf, 256}, []uint32{sItems, 5, sK, 0, sK, 0, 10, outBuf, 256}},
		{"blob_put value past the end", abi.ImportBlobPut, t6, []uint32{sRaw, 3, sK, 1, memEnd - 2, 10}, []uint32{sRaw, 3, sK, 1, sV, 1}},
		{"secret_get name past the end", abi.ImportSecretGet, t4, []uint32{memEnd - 3, 7, outBuf, 256}, []uint32{sAPIKey, 7, outBuf, 256}},
		{"secret_get result buffer wrapping around", abi.ImportSecretGet, t4, []uint32{sAPIKey, 7, 0xFFFFFFF0, 100}, []uint32{sAPIKey, 7, outBuf, 100}},
	}
	call := func(t *testing.T, imp string, typ uint32, args []uint32) int64 {
		t.Helper()
		d := e.compile(t, hostCallModule(imp, typ, args...))
		resp, err := e.invokeDigest("acme", d, Limits{}, "/")
		wantOK(t, resp, err)
		if len(resp.Body) != 8 {
			t.Fatalf("got body %x, want 8 bytes", resp.Body)
		}
		return int64(binary.LittleEndian.Uint64(resp.Body))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twin first: in bounds, the call reaches the host and succeeds.
			if got := call(t, tt.imp, tt.typ, tt.good); got < 0 {
				t.Fatalf("in bounds: got status %d, want a length or 0", got)
			}
			if got := call(t, tt.imp, tt.typ, tt.bad); got != invalid {
				t.Errorf("out of bounds: got %d, want %d (Invalid)", got, invalid)
			}
		})
	}
	if strings.Contains(e.logs.String(), "host call failed") {
		t.Errorf("a host call failed internally: %s", e.logs.String())
	}
}
