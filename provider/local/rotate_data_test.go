package local_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/provider/providertest"
)

// TestDataReadsAcrossRotations: table values, blobs and log records (sealed
// under the storage key) and secrets read after a data-key rotation, after
// one stopped at each step, after a master-key rotation, and in a process
// that opens the directory afresh.
func TestDataReadsAcrossRotations(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stopAt := ""
	open := func() (*local.Provider, *logs.Store) {
		p, err := local.New(local.Config{Dir: dir, OnRotateStep: func(step string, _ silo.AccountID) error {
			if step == stopAt {
				return errors.New("stopped by the test")
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		lg, err := logs.Open(logs.Config{Dir: filepath.Join(dir, "logs"), Keys: logKeys(p)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lg.Close(); p.Close() })
		return p, lg
	}
	p, lg := open()
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	plant(t, p, lg, "acme")

	steps := []struct {
		name   string
		stopAt string
		rotate func() error
	}{
		{"data key", "", func() error { return p.RotateDataKey(ctx, "acme") }},
		{"data key stopped after added", local.StepDataKeyAdded, func() error { return p.RotateDataKey(ctx, "acme") }},
		{"data key stopped after resealed", local.StepDataKeyResealed, func() error { return p.RotateDataKey(ctx, "acme") }},
		{"data key completed", "", func() error { return p.RotateDataKey(ctx, "acme") }},
		{"master key", "", func() error { return p.RotateMasterKey(ctx) }},
	}
	for _, st := range steps {
		stopAt = st.stopAt
		err := st.rotate()
		if (err != nil) != (st.stopAt != "") {
			t.Fatalf("%s: rotate = %v", st.name, err)
		}
		stopAt = ""
		t.Run(st.name, func(t *testing.T) { wantPlanted(t, p, lg, "acme") })
	}
	lg.Close()
	p.Close() // bbolt lets one process hold a store file
	p2, lg2 := open()
	t.Run("another process", func(t *testing.T) { wantPlanted(t, p2, lg2, "acme") })
}
