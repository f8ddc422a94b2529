//go:build !unix

package runtime

import "github.com/tetratelabs/wazero/experimental"

// haveMmap is false off unix: linear memories stay on the Go heap.
const haveMmap = false

func allocMmap(capacity, maximum, prefault uint64) experimental.LinearMemory {
	return &heapMemory{buf: make([]byte, 0, capacity)}
}
