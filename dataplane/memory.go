package dataplane

// shrinkMin is the smallest high-water mark at which a directory map that
// emptied out is replaced (see shrink).
const shrinkMin = 256

// shrink returns m, or a copy of it sized for its entries when it holds a
// quarter or less of the most it held (*peak), and resets *peak. A Go map
// never gives back the table it grew to: a directory that held the views
// and keys of 1,000 tenants kept about 130 KiB of empty tables after they
// went idle. Called with d.mu held, by the sweep.
func shrink[K comparable, V any](m map[K]V, peak *int) map[K]V {
	if *peak < shrinkMin || len(m) > *peak/4 {
		return m
	}
	n := make(map[K]V, len(m))
	for k, v := range m {
		n[k] = v
	}
	*peak = len(m)
	return n
}

// grew records the size of a map after an insert (see shrink).
func grew(n int, peak *int) {
	if n > *peak {
		*peak = n
	}
}
