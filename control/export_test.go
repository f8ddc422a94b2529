package control

import (
	"testing"
	"time"
)

// SetProductionWait makes a first create wait at most d for another that
// is creating the production account, until t ends.
func SetProductionWait(t testing.TB, d time.Duration) {
	old := productionWait
	productionWait = d
	t.Cleanup(func() { productionWait = old })
}
