//go:build unix && !linux

package runtime

const mapNoReserve = 0

func populate([]byte) {}

// zeroWritten zeroes b (see memory_linux.go).
func zeroWritten(b []byte) { clear(b) }

// touchedPages cannot tell here (see memory_linux.go).
func touchedPages([]byte) []bool { return nil }

// No memfd here: snapshots are copied into new memories.
func imageFile(string, int) ([]byte, int, error) { return nil, -1, errNoCOW }
func mapCOW([]byte, int, int64) error            { return errNoCOW }
func mapAnon(dst []byte) error                   { clear(dst); return nil }
func closeImageFile(int)                         {}
