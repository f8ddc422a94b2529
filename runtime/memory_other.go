//go:build unix && !linux

package runtime

const mapNoReserve = 0

func populate([]byte) {}

// zeroWritten zeroes b (see memory_linux.go).
func zeroWritten(b []byte) { clear(b) }

// touchedPages cannot tell here (see memory_linux.go).
func touchedPages([]byte) []bool { return nil }
