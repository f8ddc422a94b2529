package batch

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// sink keeps what it is written, batch by batch.
type sink struct {
	mu      sync.Mutex
	got     []int
	batches int
	block   chan struct{} // if set, Write waits for it
}

func (s *sink) write(vs []int) {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, vs...)
	s.batches++
}

func (s *sink) snapshot() ([]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got), s.batches
}

// waitFor polls until cond holds, or fails the test after a generous bound
// (never a timing assertion: only a hang fails).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s", what)
		}
	}
}

// TestWritesInBatchesInOrder: values reach Write in the order they were
// added, none lost, in far fewer calls than values (must); a full batch is
// written without waiting for Every (must), and values under a batch wait
// for Every or a Flush (must not be written at once).
func TestWritesInBatchesInOrder(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		flush     bool // Flush after adding, instead of waiting
		wantFirst bool // written before Flush or Every
	}{
		{"full batches go at once", 3 * 8, false, true},
		{"a part batch waits for Flush", 5, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			q := New(Config[int]{Write: s.write, Size: 8, Every: time.Hour})
			defer q.Close()
			for i := range tt.n {
				q.Add(i)
			}
			if tt.wantFirst {
				waitFor(t, "full batches written", func() bool { got, _ := s.snapshot(); return len(got) == tt.n })
			} else {
				time.Sleep(20 * time.Millisecond)
				if got, _ := s.snapshot(); len(got) != 0 {
					t.Fatalf("%d values written before Flush with Every an hour, want 0", len(got))
				}
			}
			if tt.flush {
				q.Flush() // writes before it returns
			}
			got, batches := s.snapshot()
			want := make([]int, tt.n)
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(got, want) {
				t.Fatalf("written %v, want %v", got, want)
			}
			if batches > tt.n/4+1 {
				t.Errorf("%d values in %d batches, want far fewer batches", tt.n, batches)
			}
		})
	}
}

// TestFullBatchWhileBothSignalsWait: when a batch fills before the writer
// first runs, both of its wake-ups are waiting; whichever it takes first,
// the full batch is written at once, not after Every (an hour here). One
// processor, so that the writer starts only once the batch is full; the
// trials cover both orders of the writer's first choice.
func TestFullBatchWhileBothSignalsWait(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for trial := range 20 {
		s := &sink{}
		q := New(Config[int]{Write: s.write, Size: 8, Every: time.Hour})
		for i := range 8 {
			q.Add(i)
		}
		waitFor(t, fmt.Sprintf("trial %d: a full batch written", trial), func() bool { got, _ := s.snapshot(); return len(got) == 8 })
		q.Close()
	}
}

// TestSleepsWhenIdle: with nothing pending the writer does not wake up
// (must not); a lone value is still written without a full batch and
// without Close (must).
func TestSleepsWhenIdle(t *testing.T) {
	s := &sink{}
	const every = 20 * time.Millisecond
	q := New(Config[int]{Write: s.write, Every: every})
	defer q.Close()
	q.Add(1)
	waitFor(t, "a lone value written", func() bool { got, _ := s.snapshot(); return len(got) == 1 })
	base := q.flushCount()
	time.Sleep(10 * every)
	if n := q.flushCount() - base; n != 0 {
		t.Errorf("an idle queue woke up %d times, want 0", n)
	}
	q.Add(2)
	waitFor(t, "a second lone value written", func() bool { got, _ := s.snapshot(); return len(got) == 2 })
	time.Sleep(10 * every)
	if n := q.flushCount() - base; n > 2 {
		t.Errorf("the queue woke up %d times for one value, want at most 2", n)
	}
}

// TestOneWakeUpPerBatch: a lone value is written when its Every has passed
// (must), and the writer goroutine wakes up once for it (must not wake
// up a second time: the value starts the batch's timer itself instead of
// waking the writer to start it); a full batch is one wake-up too, and
// leaves no timer running to wake the writer again.
func TestOneWakeUpPerBatch(t *testing.T) {
	wakes := func(q *Queue[int]) int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.wakes
	}
	s := &sink{}
	const every = 20 * time.Millisecond
	q := New(Config[int]{Write: s.write, Every: every})
	defer q.Close()
	for i := 1; i <= 3; i++ {
		q.Add(i)
		waitFor(t, fmt.Sprintf("lone value %d written", i), func() bool { got, _ := s.snapshot(); return len(got) == i })
		time.Sleep(3 * every)
		if n := wakes(q); n != i {
			t.Fatalf("after %d lone values the writer woke up %d times, want %d", i, n, i)
		}
	}

	// A full batch. The batch's first value starts its timer, so a
	// trial counts only if the four values were added before it fired
	// (one batch written): a slow machine may take another trial.
	const slow = 200 * time.Millisecond
	for trial := 0; ; trial++ {
		s := &sink{}
		q := New(Config[int]{Write: s.write, Size: 4, Every: slow})
		for i := range 4 {
			q.Add(i)
		}
		waitFor(t, "a full batch written", func() bool { got, _ := s.snapshot(); return len(got) == 4 })
		time.Sleep(3 * slow) // a timer left running fires meanwhile
		n := wakes(q)
		q.Close()
		if _, batches := s.snapshot(); batches != 1 {
			if trial == 5 {
				t.Fatalf("the timer fired before four values were added in %d trials", trial+1)
			}
			continue
		}
		if n != 1 {
			t.Errorf("a full batch woke the writer %d times, want 1", n)
		}
		return
	}
}

// TestDropsOverMaxPending: while Write is stuck, values past MaxPending
// are dropped and counted (must), and the ones before them are written
// once it returns (must not be lost).
func TestDropsOverMaxPending(t *testing.T) {
	s := &sink{block: make(chan struct{})}
	var mu sync.Mutex
	dropped := 0
	q := New(Config[int]{Write: s.write, Size: 1, MaxPending: 4, Dropped: func(n int) {
		mu.Lock()
		dropped += n
		mu.Unlock()
	}})
	q.Add(0) // taken by the writer, which blocks in Write
	waitFor(t, "the writer took the first value", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.pending) == 0
	})
	for i := 1; i <= 10; i++ {
		q.Add(i)
	}
	close(s.block)
	q.Close()
	got, _ := s.snapshot()
	if want := []int{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped != 6 {
		t.Errorf("%d dropped, want 6", dropped)
	}
}

// TestAddWaitingDropsNothing: AddWaiting past MaxPending waits for the
// stuck Write (must not return while it is stuck, must not drop), then
// every value is written in order (must).
func TestAddWaitingDropsNothing(t *testing.T) {
	s := &sink{block: make(chan struct{})}
	dropped := 0
	q := New(Config[int]{Write: s.write, Size: 1, MaxPending: 4, Dropped: func(n int) { dropped += n }})
	q.AddWaiting(0) // taken by the writer, which blocks in Write
	waitFor(t, "the writer took the first value", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.pending) == 0
	})
	done := make(chan struct{})
	go func() {
		for i := 1; i <= 10; i++ {
			q.AddWaiting(i)
		}
		close(done)
	}()
	waitFor(t, "MaxPending values waiting", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.pending) == 4
	})
	select {
	case <-done:
		t.Fatal("AddWaiting returned past MaxPending while Write was stuck")
	case <-time.After(20 * time.Millisecond):
	}
	close(s.block)
	<-done
	q.Close()
	got, _ := s.snapshot()
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	if dropped != 0 {
		t.Errorf("%d dropped, want 0", dropped)
	}
}

// TestClose: Close writes what is pending (must) and drops what comes
// after it (must not be written); a second Close is harmless.
func TestClose(t *testing.T) {
	s := &sink{}
	q := New(Config[int]{Write: s.write, Every: time.Hour})
	q.Add(1)
	q.Close()
	q.Add(2)
	q.Close()
	if got, _ := s.snapshot(); !slices.Equal(got, []int{1}) {
		t.Errorf("written %v, want [1]", got)
	}
	unused := New(Config[int]{Write: s.write})
	unused.Close() // never started: nothing to stop
}

// TestFlushKeepsOrderUnderConcurrency: flushes from several goroutines
// while one adds keep the values in order and lose none.
func TestFlushKeepsOrderUnderConcurrency(t *testing.T) {
	s := &sink{}
	q := New(Config[int]{Write: s.write, Size: 3, Every: time.Millisecond})
	const n = 5000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					q.Flush()
				}
			}
		})
	}
	for i := range n {
		q.Add(i)
	}
	close(stop)
	wg.Wait()
	q.Close()
	got, _ := s.snapshot()
	if len(got) != n {
		t.Fatalf("%d written, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("value %d is %d: out of order", i, v)
		}
	}
}
