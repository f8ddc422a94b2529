package isolation_test

import (
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/runtime"
)

// Host must satisfy the runtime's consumer interface (checked here, in a
// test, so that the isolation package itself never imports the runtime).
var _ runtime.Host = (*isolation.Host)(nil)
