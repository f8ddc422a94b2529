//go:build !unix

package runtime

import "github.com/tetratelabs/wazero/experimental"

// mmapAllocator is nil off unix: linear memories stay on the Go heap.
var mmapAllocator experimental.MemoryAllocator
