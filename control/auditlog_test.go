package control_test

import (
	"context"
	"testing"

	"github.com/silo-run/silo/store"
)

// TestAuditLogPageIsCapped: a page of the audit log holds at most 1000
// entries whatever limit asks (GET /v1/audit reads a larger limit as
// 1000, as docs/api.md says), and the next page, after the last entry
// given, holds the rest; a limit under 1000 is honoured.
func TestAuditLogPageIsCapped(t *testing.T) {
	ctx := context.Background()
	plane, st := open(t)
	err := st.Update(ctx, func(tx store.Tx) error {
		for range 1001 {
			if _, err := tx.AppendAudit(store.AuditEvent{Actor: "cli:ops", Action: "test.event"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after       int64
		limit, want int
	}{
		{0, 5000, 1000},
		{0, 0, 1000},
		{0, 7, 7},
		{1000, 5000, 1},
	} {
		es, err := plane.AuditLog(ctx, tc.after, tc.limit, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != tc.want {
			t.Errorf("AuditLog(after %d, limit %d): %d entries, want %d", tc.after, tc.limit, len(es), tc.want)
		}
	}
}
