//go:build wasip1

package fn

import (
	"encoding/binary"
	"runtime"
	"strings"
	"unsafe"

	"github.com/silo-run/silo/sdk/fn/abi"
)

//go:wasmimport silo take
func hostTake(outPtr, outCap uint32) int64

//go:wasmimport silo kv_get
func hostKVGet(tp, tl, kp, kl, op, oc uint32) int64

//go:wasmimport silo kv_put
func hostKVPut(tp, tl, kp, kl, vp, vl uint32) int64

//go:wasmimport silo kv_delete
func hostKVDelete(tp, tl, kp, kl uint32) int64

//go:wasmimport silo kv_add
func hostKVAdd(tp, tl, kp, kl uint32, delta int64, op, oc uint32) int64

//go:wasmimport silo kv_scan
func hostKVScan(tp, tl, pp, pl, ap, al, limit, op, oc uint32) int64

//go:wasmimport silo blob_get
func hostBlobGet(bp, bl, kp, kl, op, oc uint32) int64

//go:wasmimport silo blob_put
func hostBlobPut(bp, bl, kp, kl, vp, vl uint32) int64

//go:wasmimport silo blob_delete
func hostBlobDelete(bp, bl, kp, kl uint32) int64

//go:wasmimport silo blob_list
func hostBlobList(bp, bl, pp, pl, limit, op, oc uint32) int64

//go:wasmimport silo config_get
func hostConfigGet(kp, kl, op, oc uint32) int64

//go:wasmimport silo secret_get
func hostSecretGet(np, nl, op, oc uint32) int64

//go:wasmimport silo export_get
func hostExportGet(ep, el, kp, kl, op, oc uint32) int64

//go:wasmimport silo export_scan
func hostExportScan(ep, el, pp, pl, ap, al, limit, op, oc uint32) int64

//go:wasmimport silo log
func hostLogCall(level int32, mp, ml, ap, al uint32)

//go:wasmimport silo log_enabled
func hostLogEnabled(level int32) int32

// scratch receives host-call results; it grows to the largest result seen,
// capped so one big read does not pin memory forever.
var scratch = make([]byte, 4096)

const scratchKeep = 1 << 20

func sp(s string) (uint32, uint32) {
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bp(b []byte) (uint32, uint32) {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), uint32(len(b))
}

func out() (uint32, uint32) { return bp(scratch) }

// result turns a host return value into a fresh copy of the result.
func result(r int64) ([]byte, error) {
	if r < 0 {
		return nil, hostError(abi.Status(-r))
	}
	n := int(r)
	if n <= len(scratch) {
		return append([]byte(nil), scratch[:n]...), nil
	}
	return take(n), nil
}

func take(n int) []byte {
	b := make([]byte, n)
	p, c := bp(b)
	r := hostTake(p, c)
	runtime.KeepAlive(b)
	if r < 0 {
		return nil
	}
	if int(r) < n {
		b = b[:r]
	}
	if n > len(scratch) && n <= scratchKeep {
		scratch = make([]byte, n)
	}
	return b
}

// hostError fetches the safe message the host holds for a failed call.
func hostError(s abi.Status) error {
	msg := make([]byte, 256)
	p, c := bp(msg)
	n := hostTake(p, c)
	runtime.KeepAlive(msg)
	if n <= 0 {
		return &Error{Status: s}
	}
	return &Error{Status: s, Message: string(msg[:min(int(n), len(msg))])}
}

func status(r int64) error {
	if r < 0 {
		return hostError(abi.Status(-r))
	}
	return nil
}

func kvGet(table, key string) ([]byte, error) {
	tp, tl := sp(table)
	kp, kl := sp(key)
	op, oc := out()
	r := hostKVGet(tp, tl, kp, kl, op, oc)
	runtime.KeepAlive(table)
	runtime.KeepAlive(key)
	return result(r)
}

func kvPut(table, key string, v []byte) error {
	tp, tl := sp(table)
	kp, kl := sp(key)
	vp, vl := bp(v)
	r := hostKVPut(tp, tl, kp, kl, vp, vl)
	runtime.KeepAlive(table)
	runtime.KeepAlive(key)
	runtime.KeepAlive(v)
	return status(r)
}

func kvDelete(table, key string) error {
	tp, tl := sp(table)
	kp, kl := sp(key)
	r := hostKVDelete(tp, tl, kp, kl)
	runtime.KeepAlive(table)
	runtime.KeepAlive(key)
	return status(r)
}

func kvAdd(table, key string, delta int64) (int64, error) {
	tp, tl := sp(table)
	kp, kl := sp(key)
	op, oc := out()
	r := hostKVAdd(tp, tl, kp, kl, delta, op, oc)
	runtime.KeepAlive(table)
	runtime.KeepAlive(key)
	if r < 0 {
		return 0, hostError(abi.Status(-r))
	}
	if r != 8 {
		return 0, &Error{Status: abi.Internal, Message: "malformed kv_add result"}
	}
	return int64(binary.LittleEndian.Uint64(scratch)), nil
}

func kvScan(table, prefix, after string, limit int) ([]KV, error) {
	tp, tl := sp(table)
	pp, pl := sp(prefix)
	ap, al := sp(after)
	op, oc := out()
	r := hostKVScan(tp, tl, pp, pl, ap, al, uint32(clampLimit(limit)), op, oc)
	runtime.KeepAlive(table)
	runtime.KeepAlive(prefix)
	runtime.KeepAlive(after)
	b, err := result(r)
	if err != nil {
		return nil, err
	}
	return abi.DecodeKVsInPlace(b) // b is this call's own copy
}

func blobGet(bucket, key string) ([]byte, error) {
	bpp, bl := sp(bucket)
	kp, kl := sp(key)
	op, oc := out()
	r := hostBlobGet(bpp, bl, kp, kl, op, oc)
	runtime.KeepAlive(bucket)
	runtime.KeepAlive(key)
	return result(r)
}

func blobPut(bucket, key string, v []byte) error {
	bpp, bl := sp(bucket)
	kp, kl := sp(key)
	vp, vl := bp(v)
	r := hostBlobPut(bpp, bl, kp, kl, vp, vl)
	runtime.KeepAlive(bucket)
	runtime.KeepAlive(key)
	runtime.KeepAlive(v)
	return status(r)
}

func blobDelete(bucket, key string) error {
	bpp, bl := sp(bucket)
	kp, kl := sp(key)
	r := hostBlobDelete(bpp, bl, kp, kl)
	runtime.KeepAlive(bucket)
	runtime.KeepAlive(key)
	return status(r)
}

func blobList(bucket, prefix string, limit int) ([]string, error) {
	bpp, bl := sp(bucket)
	pp, pl := sp(prefix)
	op, oc := out()
	r := hostBlobList(bpp, bl, pp, pl, uint32(clampLimit(limit)), op, oc)
	runtime.KeepAlive(bucket)
	runtime.KeepAlive(prefix)
	b, err := result(r)
	if err != nil {
		return nil, err
	}
	return abi.DecodeStrings(b)
}

// configSeen holds config values returned before (key, value pairs), so a
// value read again costs the host call but no allocation. The host is still
// asked every time: a value changed by a deploy is seen at once.
var configSeen []string

const configSeenMax = 64 // pairs

func configGet(key string) (string, error) {
	kp, kl := sp(key)
	op, oc := out()
	r := hostConfigGet(kp, kl, op, oc)
	runtime.KeepAlive(key)
	if r < 0 || int(r) > len(scratch) {
		b, err := result(r)
		return string(b), err
	}
	v := scratch[:r]
	for i := 0; i < len(configSeen); i += 2 {
		if configSeen[i] == key {
			if configSeen[i+1] != string(v) {
				configSeen[i+1] = string(v)
			}
			return configSeen[i+1], nil
		}
	}
	s := string(v)
	if len(configSeen) < 2*configSeenMax {
		configSeen = append(configSeen, strings.Clone(key), s)
	}
	return s, nil
}

func secretGet(name string) ([]byte, error) {
	np, nl := sp(name)
	op, oc := out()
	r := hostSecretGet(np, nl, op, oc)
	runtime.KeepAlive(name)
	b, err := result(r)
	if r > 0 && int(r) <= len(scratch) {
		clear(scratch[:r]) // do not leave the secret in the shared buffer
	}
	return b, err
}

func exportGet(export, key string) ([]byte, error) {
	ep, el := sp(export)
	kp, kl := sp(key)
	op, oc := out()
	r := hostExportGet(ep, el, kp, kl, op, oc)
	runtime.KeepAlive(export)
	runtime.KeepAlive(key)
	return result(r)
}

func exportScan(export, prefix, after string, limit int) ([]KV, error) {
	ep, el := sp(export)
	pp, pl := sp(prefix)
	ap, al := sp(after)
	op, oc := out()
	r := hostExportScan(ep, el, pp, pl, ap, al, uint32(clampLimit(limit)), op, oc)
	runtime.KeepAlive(export)
	runtime.KeepAlive(prefix)
	runtime.KeepAlive(after)
	b, err := result(r)
	if err != nil {
		return nil, err
	}
	return abi.DecodeKVsInPlace(b) // b is this call's own copy
}

// logAttrs and logVal are the encoding buffers of log lines, reused: the
// host copies a line before the call returns.
var logAttrs, logVal []byte

func hostLog(level int32, msg string, kv []any) {
	logAttrs, logVal = appendLogAttrs(logAttrs[:0], logVal, kv)
	mp, ml := sp(msg)
	ap, al := bp(logAttrs)
	hostLogCall(level, mp, ml, ap, al)
	runtime.KeepAlive(msg)
	if cap(logAttrs) > scratchKeep || cap(logVal) > scratchKeep {
		logAttrs, logVal = nil, nil
	}
}

func logEnabled(level int32) bool { return hostLogEnabled(level) != 0 }

// Guest exports.

var (
	reqBuf  []byte // the buffer silo_alloc hands out for the next request
	respBuf []byte // the encoded response of the last call; valid until the next call
)

//go:wasmexport silo_abi_v1
func siloABIv1() {}

// silo_alloc hands out a fresh buffer for each request: the request's
// strings and body alias it (see serve), so it is never reused.
//
//go:wasmexport silo_alloc
func siloAlloc(size uint32) uint32 {
	reqBuf = make([]byte, size)
	p, _ := bp(reqBuf)
	return p
}

//go:wasmexport handle
func handle(ptr, n uint32) uint64 { return Serve(ptr, n, handler) }

// Serve runs h on the request the host placed at (ptr, n) and returns the
// packed location of the encoded response. Use it to export extra handlers:
//
//	//go:wasmexport list
//	func list(ptr, n uint32) uint64 { return fn.Serve(ptr, n, listHandler) }
func Serve(ptr, n uint32, h Handler) uint64 {
	if int(n) > len(reqBuf) {
		n = 0 // not the buffer silo_alloc handed out: decoding fails (400)
	}
	req := reqBuf[:n]
	reqBuf = nil
	if len(respBuf) > scratchKeep {
		respBuf = nil
	}
	respBuf = serve(h, req, respBuf[:0])
	p, l := bp(respBuf)
	return uint64(p)<<32 | uint64(l)
}

func clampLimit(n int) int {
	if n <= 0 || n > 1<<20 {
		return 1 << 20
	}
	return n
}
