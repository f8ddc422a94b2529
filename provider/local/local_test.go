package local_test

import (
	"testing"

	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

func newLocal(t testing.TB) *local.Provider {
	t.Helper()
	p, err := local.New(local.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) provider.Provider { return newLocal(t) })
}
