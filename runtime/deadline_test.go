package runtime

import (
	"bytes"
	"context"
	"errors"
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/sdk/fn/abi"
)

// getThenPutModule's handle calls kv_get("items", "k") and then, whatever
// it answered, kv_put("items", "k", "v"), and answers 200. No checkpoint
// lies between the two calls (no function entry, no loop), so once the
// first call returns to the guest the second one is made.
func getThenPutModule() []byte {
	get := cat(i32c(sItems), i32c(5), i32c(sK), i32c(1), i32c(outBuf), i32c(256), callF(0), opDrop)
	put := cat(i32c(sItems), i32c(5), i32c(sK), i32c(1), i32c(sV), i32c(1), callF(1), opDrop)
	return hostileSpec{
		imports: cat(funcImport("silo", abi.ImportKVGet, 6), funcImport("silo", abi.ImportKVPut, 6)), nImport: 2,
		types:  [][]byte{functype(bytes.Repeat([]byte{0x7F}, 6), []byte{0x7E})},
		data:   boundsData,
		handle: cat(get, put, returnOK()),
	}.build()
}

// lateHost is an account's Host whose table reads fail: at once, or, when
// late is set, only after the invocation's context is done and the
// invocation has returned (as a call that retried until the deadline and
// came back after it). It counts the writes that reach it.
type lateHost struct {
	Host
	late     bool
	returned chan struct{} // closed once Invoke returned
	puts     atomic.Int32
}

var errAWSDown = silo.Errorf(silo.CodeUnavailable, "the account's data did not answer")

func (h *lateHost) Get(ctx context.Context, table, key string) ([]byte, error) {
	if !h.late {
		return nil, errAWSDown
	}
	<-ctx.Done()
	<-h.returned
	return nil, errors.Join(errAWSDown, ctx.Err())
}

func (h *lateHost) Put(ctx context.Context, table, key string, v []byte) error {
	h.puts.Add(1)
	return h.Host.Put(ctx, table, key, v)
}

// TestHostCallReturningLateStopsTheGuest: a table call that returns after
// the invocation's deadline does not return to the guest, which would act
// on its failure after its time (here: write to a table); the invocation
// timed out. Twin: a table call that fails in time returns to the guest,
// which writes and answers.
func TestHostCallReturningLateStopsTheGuest(t *testing.T) {
	e := newEnv(t, Config{})
	d := e.compile(t, getThenPutModule())
	invoke := func(h *lateHost) (Response, error) {
		return e.rt.Invoke(context.Background(), Invocation{
			Account: "acme", Function: "get-then-put", Digest: d, Limits: Limits{Timeout: 100 * time.Millisecond},
			Host: h, Request: Request{Path: "/"},
		})
	}

	late := &lateHost{Host: e.hosts["acme"], late: true, returned: make(chan struct{})}
	_, err := invoke(late)
	close(late.returned)
	wantCode(t, err, silo.CodeUnavailable)
	// The instance is discarded once the guest has stopped, or has
	// answered.
	for e.rt.Stats().Instances != 0 {
		goruntime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := late.puts.Load(); n != 0 {
		t.Errorf("the guest wrote %d times after its table call came back past the deadline; want it stopped at that call", n)
	}

	inTime := &lateHost{Host: e.hosts["acme"]}
	resp, err := invoke(inTime)
	wantOK(t, resp, err)
	if n := inTime.puts.Load(); n != 1 {
		t.Errorf("the guest wrote %d times after a table call failed in time; want 1", n)
	}
}
