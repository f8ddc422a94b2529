package runtime

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
)

// cold invokes on a new instance: it closes acct's idle instances first
// (their snapshots stay).
func (e *env) cold(t testing.TB, acct silo.AccountID, req Request) (Response, error) {
	t.Helper()
	e.rt.Evict(acct)
	return e.invoke(t, acct, req)
}

// The Go guest can be restarted from a snapshot: its code changes no
// table and no data segment (the Go linker emits table.set, table.grow,
// memory.init and the like nowhere), its data segments are at constant
// offsets and its mutable globals are numbers. A module that sets a table
// element cannot.
func TestSnapshotRestartable(t *testing.T) {
	e := newEnv(t, Config{})
	if a := e.rt.artifacts[e.guest]; !a.restart || len(a.globals) == 0 {
		t.Fatalf("Go guest: restart %v, %d globals; want a restartable module with its mutable globals exported", a.restart, len(a.globals))
	}
	setsTable := hostileSpec{
		table:  []byte{0x70, 0x01, 0x01, 0x01},
		handle: cat(i32c(0), []byte{0xD0, 0x70, 0x26, 0x00}, returnOK()), // table.set 0 (ref.null func)
	}.build()
	d := e.compile(t, setsTable)
	if a := e.rt.artifacts[d]; a.restart {
		t.Fatal("a module that sets a table element was prepared for snapshots")
	}
	m, err := parseModule(setsTable)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := instrument(m, fuel, defaultCallStack)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := restartable(m, inst); err == nil || !strings.Contains(err.Error(), "changes tables") {
		t.Fatalf("restartable: %v, want an error naming the table change", err)
	}
	// Must: it still runs, from its init every time.
	for range 2 {
		resp, err := e.rt.Invoke(context.Background(), Invocation{Account: "acme", Function: "t", Digest: d, Host: e.hosts["acme"], Request: Request{Path: "/"}})
		wantOK(t, resp, err)
		e.rt.Evict("acme")
	}
	if s := e.rt.Stats(); s.Snapshots != 0 || s.SnapshotStarts != 0 {
		t.Fatalf("%d snapshots, %d starts from one; want none", s.Snapshots, s.SnapshotStarts)
	}
}

// An instance started from a snapshot answers every route of the test
// guest as an instance that ran its init does.
func TestSnapshotSameResponses(t *testing.T) {
	reqs := []Request{
		{Path: "/ping"},
		{Method: "POST", Path: "/echo", Params: map[string]string{"id": "7"}, Query: url.Values{"q": {"x"}}, Header: http.Header{"X-Test": {"h"}}, Body: []byte("body")},
		{Path: "/kv", Params: map[string]string{"key": "k1"}, Body: []byte("v1")},
		{Path: "/config"},
		{Path: "/secret"},
		{Path: "/export", Params: map[string]string{"key": "bad.example"}},
		{Path: "/now"},
		{Path: "/recurse", Query: url.Values{"n": {"200"}}},
		{Path: "/big", Query: url.Values{"n": {"100000"}}},
		{Path: "/log"},
		{Path: "/residue/get"},
		{Path: "/init/greeting"},
		{Path: "/panic"},
		{Path: "/trap"},
		{Path: "/exit"},
		{Path: "/nowhere"},
	}
	type result struct {
		Status int
		Header http.Header
		Body   string
		Code   silo.Code
	}
	run := func(cfg Config) ([]result, Stats) {
		e := newEnv(t, cfg)
		e.must(t, "acme", Request{Path: "/ping"}, 200)
		if _, err := e.cold(t, "acme", Request{Path: "/ping"}); err != nil { // the second instance: init, and the snapshot if on
			t.Fatal(err)
		}
		var out []result
		for _, req := range reqs {
			resp, err := e.cold(t, "acme", req)
			r := result{Status: resp.Status, Header: resp.Header, Body: string(resp.Body)}
			var se *silo.Error
			if errors.As(err, &se) {
				r.Code = se.Code
			} else if err != nil {
				t.Fatalf("%s: %v", req.Path, err)
			}
			out = append(out, r)
		}
		return out, e.rt.Stats()
	}
	fromInit, s := run(Config{SnapshotMemory: -1})
	if s.SnapshotStarts != 0 {
		t.Fatalf("snapshots off: %d instances started from one", s.SnapshotStarts)
	}
	fromSnapshot, s := run(Config{})
	if s.SnapshotStarts != int64(len(reqs)) {
		t.Fatalf("%d instances started from a snapshot, want %d (one per request)", s.SnapshotStarts, len(reqs))
	}
	if diff := cmp.Diff(fromInit, fromSnapshot); diff != "" {
		t.Errorf("responses (-from init +from a snapshot):\n%s", diff)
	}
	// The control: the routes tell things apart.
	if fromInit[0].Body != "pong" || fromInit[11].Body != "hello acme" || fromInit[14].Code != silo.CodeInternal {
		t.Fatalf("control: /ping %q, /init/greeting %q, /exit %v", fromInit[0].Body, fromInit[11].Body, fromInit[14].Code)
	}
}

// A snapshot holds what its account's init read (here its greeting,
// through a host call) and is never used for another account, not even
// for that account's first instances (which take none of their own); instances
// of one account share it, with the random state the Go runtime drew at
// init.
func TestSnapshotNotSharedAcrossAccounts(t *testing.T) {
	e := newEnv(t, Config{})
	greeting := Request{Path: "/init/greeting"}
	random := Request{Path: "/init/rand"}
	e.must(t, "acme", greeting, 200)
	// acme's second instance takes the snapshot.
	if resp, err := e.cold(t, "acme", greeting); err != nil || string(resp.Body) != "hello acme" {
		t.Fatalf("acme: %q, %v", resp.Body, err)
	}
	acmeRand := e.must(t, "acme", random, 200)
	// Must not: globex's instances run their own init.
	for range 2 {
		resp, err := e.cold(t, "globex", greeting)
		if err != nil || string(resp.Body) != "hello globex" {
			t.Fatalf("globex's instance: %q, %v; want hello globex", resp.Body, err)
		}
		if got := e.must(t, "globex", random, 200); got == acmeRand {
			t.Fatalf("globex drew acme's init-time random number %s", got)
		}
	}
	if s := e.rt.Stats(); s.SnapshotStarts != 0 || s.Snapshots != 2 {
		t.Fatalf("%d snapshots, %d starts from one; want 2 and 0", s.Snapshots, s.SnapshotStarts)
	}
	// Must: a new instance of either account starts from its own.
	for _, acct := range []silo.AccountID{"acme", "globex"} {
		resp, err := e.cold(t, acct, greeting)
		if err != nil || string(resp.Body) != "hello "+string(acct) {
			t.Fatalf("%s from its snapshot: %q, %v", acct, resp.Body, err)
		}
	}
	if s := e.rt.Stats(); s.SnapshotStarts != 2 {
		t.Fatalf("%d starts from a snapshot, want 2", s.SnapshotStarts)
	}
	resp, err := e.cold(t, "acme", random)
	if err != nil || string(resp.Body) != acmeRand {
		t.Fatalf("acme from its snapshot drew %q (%v), want the snapshotted instance's %s (the documented sharing)", resp.Body, err, acmeRand)
	}
}

// A snapshot is never used for another artifact: two modules with the same
// shape whose data differ each answer with their own.
func TestSnapshotNotSharedAcrossArtifacts(t *testing.T) {
	e := newEnv(t, Config{})
	module := func(body byte) []byte {
		return hostileSpec{
			data:   []byte{0xC8, 0x01, 0x00, 0x01, body}, // abi.Response{Status: 200, Body: body}
			handle: cat([]byte{0x42}, sleb(int64(dataAddr)<<32|5)),
		}.build()
	}
	a, b := e.compile(t, module('A')), e.compile(t, module('B'))
	if !e.rt.artifacts[a].restart || !e.rt.artifacts[b].restart {
		t.Fatal("the modules were not prepared for snapshots")
	}
	body := func(d string) string {
		e.rt.Evict("acme")
		resp, err := e.invokeDigest("acme", d, Limits{}, "/")
		if err != nil {
			t.Fatal(err)
		}
		return string(resp.Body)
	}
	if got := body(a) + body(a); got != "AA" { // the second takes the snapshot
		t.Fatalf("module A: %q", got)
	}
	// Must not: B's instances do not start from A's snapshot.
	if got := body(b) + body(b); got != "BB" {
		t.Fatalf("module B's first instances answered %q, want BB", got)
	}
	// Must: each starts from its own afterwards.
	if got := body(a) + body(b); got != "AB" {
		t.Fatalf("from their snapshots: %q, want AB", got)
	}
	if s := e.rt.Stats(); s.SnapshotStarts != 2 {
		t.Fatalf("%d starts from a snapshot, want 2", s.SnapshotStarts)
	}
}

// What a request writes is never in a snapshot: the snapshot is taken
// before the first request, so the next new instance does not see it.
func TestSnapshotHoldsNoRequestState(t *testing.T) {
	e := newEnv(t, Config{})
	set := Request{Path: "/residue/set", Query: url.Values{"m": {"secret-of-request-1"}}}
	get := Request{Path: "/residue/get"}
	e.must(t, "acme", set, 200)
	// Must: the warm instance keeps it (the marker is there to be found).
	if got := e.must(t, "acme", get, 200); got != "secret-of-request-1" {
		t.Fatalf("warm instance: %q", got)
	}
	// Must not: a new instance, the first of which takes the snapshot and
	// the others start from it.
	for i := range 3 {
		resp, err := e.cold(t, "acme", get)
		if err != nil || string(resp.Body) != "" {
			t.Fatalf("new instance %d: %q, %v; want nothing", i, resp.Body, err)
		}
		e.must(t, "acme", set, 200)
	}
	if s := e.rt.Stats(); s.SnapshotStarts != 2 {
		t.Fatalf("%d starts from a snapshot, want 2", s.SnapshotStarts)
	}
}

// Snapshots are per memory cap, dropped once unused for SnapshotTimeout,
// and bounded by SnapshotMemory.
func TestSnapshotLimits(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour, SnapshotTimeout: 2 * time.Hour})
	ping := Request{Path: "/ping"}
	e.must(t, "acme", ping, 200)
	e.rt.Evict("acme")
	e.must(t, "acme", ping, 200)
	// Another memory cap: its own snapshot.
	small := Limits{MemoryPages: 256}
	for range 3 {
		e.rt.Evict("acme")
		if resp, err := e.invokeLim(t, "acme", small, ping); err != nil || resp.Status != 200 {
			t.Fatalf("256 pages: %v", err)
		}
	}
	if s := e.rt.Stats(); s.Snapshots != 2 || s.SnapshotStarts != 1 {
		t.Fatalf("%d snapshots, %d starts; want 2 and 1", s.Snapshots, s.SnapshotStarts)
	}
	// Must not: kept while used within the timeout.
	e.rt.sweep(time.Now().Add(time.Hour + time.Minute))
	if s := e.rt.Stats(); s.Snapshots != 2 {
		t.Fatalf("before the timeout: %d snapshots, want 2", s.Snapshots)
	}
	// Must: dropped after it.
	e.rt.sweep(time.Now().Add(2*time.Hour + time.Minute))
	if s := e.rt.Stats(); s.Snapshots != 0 {
		t.Fatalf("after the timeout: %d snapshots, want 0", s.Snapshots)
	}

	tiny := newEnv(t, Config{SnapshotMemory: 1 << 20}) // a Go guest's takes ≈ 1.8 MiB
	tiny.must(t, "acme", ping, 200)
	tiny.rt.Evict("acme")
	tiny.must(t, "acme", ping, 200)
	if s := tiny.rt.Stats(); s.Snapshots != 0 {
		t.Fatalf("over SnapshotMemory: %d snapshots kept, want 0", s.Snapshots)
	}
}

// TestSnapStoreWants: the second start of a key within the timeout takes
// a snapshot, the first does not, and a start of another account,
// artifact, memory cap or clock grant is a first start of its own key.
func TestSnapStoreWants(t *testing.T) {
	st := newSnapStore(1 << 20)
	now := time.Now()
	k := snapKey{acct: "acme", digest: "d1", pages: 16}
	others := []snapKey{
		{acct: "globex", digest: "d1", pages: 16},
		{acct: "acme", digest: "d2", pages: 16},
		{acct: "acme", digest: "d1", pages: 17},
		{acct: "acme", digest: "d1", pages: 16, clock: true},
	}
	for i, want := range []bool{false, true, false, true} {
		if got := st.wants(k, now); got != want {
			t.Fatalf("start %d of %v: wants %v, want %v", i+1, k, got, want)
		}
	}
	for _, o := range others {
		if st.wants(o, now) {
			t.Fatalf("first start of %v wants a snapshot", o)
		}
	}
	st.trim(now.Add(time.Nanosecond))
	if st.wants(k, now) {
		t.Fatalf("start of %v after its record was trimmed wants a snapshot", k)
	}
}

// TestSnapStoreKeepsNoAccountString: what wants records does not keep
// the account's string reachable. The gateway's account ID is a slice of
// the request's Host header or path; kept for SnapshotTimeout, one per
// tenant, each kept the heap span under it from being freed after a
// serving peak (benchmarks-dataplane.md, "Eleventh round"). Fails if the
// store records the key itself.
func TestSnapStoreKeepsNoAccountString(t *testing.T) {
	st := newSnapStore(1 << 20)
	collected := make(chan struct{})
	func() {
		host := []byte("tenant-with-a-long-name.localhost:8080")
		acct := silo.AccountID(host[:23]) // a string of its own, as a request's is
		goruntime.AddCleanup(unsafe.StringData(string(acct)), func(struct{}) { close(collected) }, struct{}{})
		st.wants(snapKey{acct: acct, digest: "d1", pages: 16}, time.Now())
	}()
	for range 20 {
		goruntime.GC()
		select {
		case <-collected:
			if len(st.seen) != 1 {
				t.Fatalf("the store holds %d records, want 1", len(st.seen))
			}
			return
		default:
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("the account's string is still reachable after 20 collections: the store keeps it")
}
