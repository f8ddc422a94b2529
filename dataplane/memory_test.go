package dataplane

import (
	"reflect"
	"testing"
)

// TestShrink: a map down to a quarter of its peak is replaced by a copy
// with the same entries; one above a quarter, or that never grew large, is
// kept.
func TestShrink(t *testing.T) {
	same := func(a, b map[int]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	m, peak := map[int]string{}, 0
	for i := range 1000 {
		m[i] = "v"
		grew(len(m), &peak)
	}
	for i := range 700 {
		delete(m, i)
	}
	// Must not: 300 of 1,000 is more than a quarter.
	if got := shrink(m, &peak); !same(got, m) || peak != 1000 {
		t.Fatalf("300 of a peak of 1000: replaced %v, peak %d; want kept, 1000", !same(got, m), peak)
	}
	for i := 700; i < 900; i++ {
		delete(m, i)
	}
	// Must: 100 of 1,000 is replaced, with the same entries.
	got := shrink(m, &peak)
	if same(got, m) || peak != 100 || !reflect.DeepEqual(got, m) {
		t.Fatalf("100 of a peak of 1000: replaced %v, peak %d, same entries %v; want replaced, 100, true", !same(got, m), peak, reflect.DeepEqual(got, m))
	}
	// Must not: a small map is left alone even when empty.
	small, sp := map[int]string{1: "a"}, 0
	grew(len(small), &sp)
	delete(small, 1)
	if got := shrink(small, &sp); !same(got, small) {
		t.Error("a map that never held shrinkMin entries was replaced")
	}
}
