package logs

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestReadIsInTimeOrder: a batch written out of time order (as concurrent
// requests' lines and their access lines are) reads in time order (must),
// with equal times in the file's order (must not reorder them), and Last
// keeps the latest by time, not the last in the file.
func TestReadIsInTimeOrder(t *testing.T) {
	s := openStore(t, Config{})
	at := func(ms int) time.Time { return time.Date(2026, 12, 7, 9, 0, 0, ms*int(time.Millisecond), time.UTC) }
	write := func(es ...Entry) {
		t.Helper()
		for i := range es {
			es[i].Account = "acme"
		}
		if err := s.AppendAll(es); err != nil {
			t.Fatal(err)
		}
	}
	write(Entry{Time: at(2), Msg: "c"}, Entry{Time: at(0), Msg: "a"}, Entry{Time: at(1), Msg: "b1"},
		Entry{Time: at(1), Msg: "b2"}, Entry{Time: at(3), Msg: "d"})

	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{}, "[a b1 b2 c d]"},
		{Query{Last: 2}, "[c d]"},
		{Query{Since: at(1), Last: 3}, "[b2 c d]"},
	} {
		es, err := s.Read("acme", tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(messages(es)); got != tc.want {
			t.Errorf("Read(%+v) = %s, want %s", tc.q, got, tc.want)
		}
	}

	// Many lines at two times, interleaved: each time's lines keep the
	// file's order (an unstable sort reorders them).
	var many []Entry
	var want []string
	for i := range 64 {
		many = append(many, Entry{Account: "globex", Time: at(10 + i%2), Msg: fmt.Sprint(i)})
	}
	for _, odd := range []int{0, 1} {
		for i := odd; i < 64; i += 2 {
			want = append(want, fmt.Sprint(i))
		}
	}
	if err := s.AppendAll(many); err != nil {
		t.Fatal(err)
	}
	if es, err := s.Read("globex", Query{}); err != nil || fmt.Sprint(messages(es)) != fmt.Sprint(want) {
		t.Errorf("equal times: read %v, %v; want %v", messages(es), err, want)
	}

	// Follow: the retained lines in time order, then each poll's.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- FollowWith(ctx, s.Dir(), nil, "acme", Query{Last: 3}, 5*time.Millisecond, func(e Entry) error {
			got <- e.Msg
			return nil
		})
	}()
	next := func(n int) string {
		t.Helper()
		var out []string
		for range n {
			select {
			case m := <-got:
				out = append(out, m)
			case <-time.After(30 * time.Second):
				t.Fatalf("follow gave %v, then nothing for 30 s", out)
			}
		}
		return fmt.Sprint(out)
	}
	if g := next(3); g != "[b2 c d]" {
		t.Errorf("follow began with %s, want [b2 c d]", g)
	}
	write(Entry{Time: at(5), Msg: "f"}, Entry{Time: at(4), Msg: "e"})
	if g := next(2); g != "[e f]" {
		t.Errorf("follow's next poll gave %s, want [e f]", g)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func messages(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Msg
	}
	return out
}
