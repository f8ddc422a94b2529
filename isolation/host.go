package isolation

import (
	"context"
	"fmt"
	"log/slog"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// Host is the data plane of one function of one account, guarded by the
// decision point: every call is decided before it reaches a Data handle. It
// satisfies runtime.Host structurally. Safe for concurrent use.
//
// A tenant's Host holds two handles: its own account's Data and production's
// Data, and the production handle is used only for reads of exports. The
// production account's functions get a Host whose own handle is production's
// and which holds no other handle, so nothing in production can reach a
// tenant (I2).
type Host struct {
	pol  *Policy
	pr   Principal
	own  provider.Data
	prod provider.Data // nil for production's own functions
	log  *slog.Logger
}

// FunctionHost returns the guarded host for function fn of account acct.
// own is acct's Data; production is the production account's Data, used
// only to read exports, and ignored when acct is the production account.
// log receives guest log lines labelled with account and function; nil
// discards them.
func FunctionHost(pol *Policy, acct silo.AccountID, fn string, own, production provider.Data, log *slog.Logger) *Host {
	if acct == silo.ProductionID {
		production = nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Host{pol: pol, pr: Principal{Kind: PrincipalFunction, Account: acct, Name: fn}, own: own, prod: production, log: log}
}

// check decides one access to the host's own account, or returns the
// CodeForbidden error that says why not.
func (h *Host) check(act Action, t silo.ResourceType, name string) error {
	return h.checkIn(h.pr.Account, act, t, name)
}

func (h *Host) checkIn(acct silo.AccountID, act Action, t silo.ResourceType, name string) error {
	d := h.pol.Decide(Request{Principal: h.pr, Action: act, Resource: Resource{Account: acct, Type: t, Name: name}})
	if d.Allow {
		return nil
	}
	why := ""
	if len(d.Reasons) > 0 {
		why = d.Reasons[0]
	}
	fix := d.Fix
	if fix == "" {
		fix = "grant it in silo.yaml if it needs it"
		if act == ActExportRead {
			fix = fmt.Sprintf("grant it in silo.yaml (list %q under the function's exports) if it needs it", name)
		}
	}
	return silo.Errorf(silo.CodeForbidden, "function %s may not %s %s %q: %s; %s", h.pr.Name, act, t, name, why, fix)
}

// Get reads a key of a table of the host's account (table.read).
func (h *Host) Get(ctx context.Context, table, key string) ([]byte, error) {
	if err := h.check(ActTableRead, silo.TypeTable, table); err != nil {
		return nil, err
	}
	return h.own.Get(ctx, table, key)
}

// Put writes a key (table.write).
func (h *Host) Put(ctx context.Context, table, key string, v []byte) error {
	if err := h.check(ActTableWrite, silo.TypeTable, table); err != nil {
		return err
	}
	return h.own.Put(ctx, table, key, v)
}

// Add adds to the integer at key and returns the sum: it reads as well as
// writes (table.read and table.write).
func (h *Host) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	for _, act := range []Action{ActTableRead, ActTableWrite} {
		if err := h.check(act, silo.TypeTable, table); err != nil {
			return 0, err
		}
	}
	return h.own.Add(ctx, table, key, delta)
}

// Delete deletes a key (table.write).
func (h *Host) Delete(ctx context.Context, table, key string) error {
	if err := h.check(ActTableWrite, silo.TypeTable, table); err != nil {
		return err
	}
	return h.own.Delete(ctx, table, key)
}

// Scan lists keys of a table (table.read).
func (h *Host) Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error) {
	if err := h.check(ActTableRead, silo.TypeTable, table); err != nil {
		return nil, err
	}
	return h.own.Scan(ctx, table, prefix, after, limit)
}

// GetBlob reads a blob (blob.read).
func (h *Host) GetBlob(ctx context.Context, bucket, key string) ([]byte, error) {
	if err := h.check(ActBlobRead, silo.TypeBucket, bucket); err != nil {
		return nil, err
	}
	return h.own.GetBlob(ctx, bucket, key)
}

// PutBlob writes a blob (blob.write).
func (h *Host) PutBlob(ctx context.Context, bucket, key string, v []byte) error {
	if err := h.check(ActBlobWrite, silo.TypeBucket, bucket); err != nil {
		return err
	}
	return h.own.PutBlob(ctx, bucket, key, v)
}

// DeleteBlob deletes a blob (blob.write).
func (h *Host) DeleteBlob(ctx context.Context, bucket, key string) error {
	if err := h.check(ActBlobWrite, silo.TypeBucket, bucket); err != nil {
		return err
	}
	return h.own.DeleteBlob(ctx, bucket, key)
}

// ListBlobs lists blob keys (blob.read).
func (h *Host) ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error) {
	if err := h.check(ActBlobRead, silo.TypeBucket, bucket); err != nil {
		return nil, err
	}
	return h.own.ListBlobs(ctx, bucket, prefix, limit)
}

// Config reads a config value (config.read).
func (h *Host) Config(ctx context.Context, key string) (string, error) {
	if err := h.check(ActConfigRead, silo.TypeConfig, key); err != nil {
		return "", err
	}
	return h.own.Config(ctx, key)
}

// Secret decrypts a secret of the host's account (secret.read).
func (h *Host) Secret(ctx context.Context, name string) ([]byte, error) {
	if err := h.check(ActSecretRead, silo.TypeSecret, name); err != nil {
		return nil, err
	}
	return h.own.Secret(ctx, name)
}

// export decides export.read on a production export and resolves it to the
// production resource and the handle to read it through.
func (h *Host) export(name string) (provider.Data, exportTarget, error) {
	if err := h.checkIn(silo.ProductionID, ActExportRead, silo.TypeExport, name); err != nil {
		return nil, exportTarget{}, err
	}
	t, target, ok := h.pol.Export(name)
	if !ok {
		return nil, exportTarget{}, silo.Errorf(silo.CodeNotFound, "production has no export %q", name)
	}
	d := h.prod
	if h.pr.Account == silo.ProductionID {
		d = h.own
	}
	if d == nil {
		return nil, exportTarget{}, silo.Errorf(silo.CodeUnavailable, "production exports are not available to function %s right now", h.pr.Name)
	}
	return d, exportTarget{Type: t, Name: target}, nil
}

// ExportGet reads one key of a production export, read-only (export.read).
// For a table export key is a table key, for a bucket export a blob key; a
// config export has no keys and ignores key.
func (h *Host) ExportGet(ctx context.Context, export, key string) ([]byte, error) {
	d, t, err := h.export(export)
	if err != nil {
		return nil, err
	}
	switch t.Type {
	case silo.TypeTable:
		return d.Get(ctx, t.Name, key)
	case silo.TypeBucket:
		return d.GetBlob(ctx, t.Name, key)
	case silo.TypeConfig:
		v, err := d.Config(ctx, t.Name)
		return []byte(v), err
	}
	return nil, silo.Errorf(silo.CodeNotFound, "production has no export %q", export)
}

// ExportScan lists a production table export (pairs) or bucket export (keys
// only; Value is nil), read-only (export.read).
func (h *Host) ExportScan(ctx context.Context, export, prefix, after string, limit int) ([]provider.KV, error) {
	d, t, err := h.export(export)
	if err != nil {
		return nil, err
	}
	switch t.Type {
	case silo.TypeTable:
		return d.Scan(ctx, t.Name, prefix, after, limit)
	case silo.TypeBucket:
		keys, err := d.ListBlobs(ctx, t.Name, prefix, limit)
		if err != nil {
			return nil, err
		}
		out := make([]provider.KV, 0, len(keys))
		for _, k := range keys {
			if k > after {
				out = append(out, provider.KV{Key: k})
			}
		}
		return out, nil
	}
	return nil, silo.Errorf(silo.CodeInvalid, "export %q is a config value; read it with ExportGet", export)
}

// Enabled reports whether the host's logger keeps lines at level, so that
// the runtime can skip decoding a line that would be dropped
// (runtime.LevelEnabler).
func (h *Host) Enabled(ctx context.Context, level slog.Level) bool {
	return h.log.Enabled(ctx, level)
}

// Log records a guest log line in the account's own log, labelled with the
// account and function. It reaches no resource, so it is not decided.
func (h *Host) Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) {
	var buf [8]slog.Attr // a line's attributes, on the stack when they fit
	as := append(buf[:0], slog.String("account", string(h.pr.Account)), slog.String("function", h.pr.Name))
	for k, v := range attrs {
		if k == "account" || k == "function" {
			k = "guest." + k // a guest cannot relabel its lines
		}
		as = append(as, slog.String(k, v))
	}
	h.log.LogAttrs(ctx, level, msg, as...)
}
