package runtime

import (
	"context"
	"log/slog"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// DataHost is a Host built from provider data planes: the account's own
// provider.Data plus read-only views of the production exports it may read.
// It adds no authorization of its own: Data must already be the account's,
// and Exports only those granted to it.
type DataHost struct {
	Data     provider.Data           // the account's data plane
	Exports  map[string]ExportSource // production exports granted to the account, by name
	Logger   *slog.Logger            // receives guest log lines; nil discards them
	Account  silo.AccountID          // attached to log lines
	Function string                  // attached to log lines
}

// ExportSource is where a production export's data lives: a table of the
// production account's data plane. DataHost only reads it.
type ExportSource struct {
	Data  provider.Data
	Table string
}

var _ Host = (*DataHost)(nil)

// Get reads key from the account's table.
func (h *DataHost) Get(ctx context.Context, table, key string) ([]byte, error) {
	return h.Data.Get(ctx, table, key)
}

// Put writes key in the account's table.
func (h *DataHost) Put(ctx context.Context, table, key string, v []byte) error {
	return h.Data.Put(ctx, table, key, v)
}

// Add adds to the integer at key in the account's table.
func (h *DataHost) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	return h.Data.Add(ctx, table, key, delta)
}

// Delete removes key from the account's table.
func (h *DataHost) Delete(ctx context.Context, table, key string) error {
	return h.Data.Delete(ctx, table, key)
}

// Scan lists the account's table.
func (h *DataHost) Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error) {
	return h.Data.Scan(ctx, table, prefix, after, limit)
}

// GetBlob reads a blob of the account's bucket.
func (h *DataHost) GetBlob(ctx context.Context, bucket, key string) ([]byte, error) {
	return h.Data.GetBlob(ctx, bucket, key)
}

// PutBlob writes a blob of the account's bucket.
func (h *DataHost) PutBlob(ctx context.Context, bucket, key string, v []byte) error {
	return h.Data.PutBlob(ctx, bucket, key, v)
}

// DeleteBlob removes a blob of the account's bucket.
func (h *DataHost) DeleteBlob(ctx context.Context, bucket, key string) error {
	return h.Data.DeleteBlob(ctx, bucket, key)
}

// ListBlobs lists the account's bucket.
func (h *DataHost) ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error) {
	return h.Data.ListBlobs(ctx, bucket, prefix, limit)
}

// Config reads the account's configuration value key.
func (h *DataHost) Config(ctx context.Context, key string) (string, error) {
	return h.Data.Config(ctx, key)
}

// Secret decrypts the account's secret name.
func (h *DataHost) Secret(ctx context.Context, name string) ([]byte, error) {
	return h.Data.Secret(ctx, name)
}

func (h *DataHost) export(name string) (ExportSource, error) {
	e, ok := h.Exports[name]
	if !ok || e.Data == nil {
		return ExportSource{}, silo.Errorf(silo.CodeNotFound, "export %q is not shared with this account; declare it in the production section of silo.yaml", name)
	}
	return e, nil
}

// ExportGet reads key from the export's table.
func (h *DataHost) ExportGet(ctx context.Context, export, key string) ([]byte, error) {
	e, err := h.export(export)
	if err != nil {
		return nil, err
	}
	return e.Data.Get(ctx, e.Table, key)
}

// ExportScan scans the export's table.
func (h *DataHost) ExportScan(ctx context.Context, export, prefix, after string, limit int) ([]provider.KV, error) {
	e, err := h.export(export)
	if err != nil {
		return nil, err
	}
	return e.Data.Scan(ctx, e.Table, prefix, after, limit)
}

// Enabled reports whether Logger keeps lines at level (LevelEnabler).
func (h *DataHost) Enabled(ctx context.Context, level slog.Level) bool {
	return h.Logger != nil && h.Logger.Enabled(ctx, level)
}

// Log writes the line to Logger with the account and function.
func (h *DataHost) Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) {
	if h.Logger == nil {
		return
	}
	as := make([]slog.Attr, 0, len(attrs)+2)
	as = append(as, slog.String("account", string(h.Account)), slog.String("function", h.Function))
	for k, v := range attrs {
		as = append(as, slog.String(k, v))
	}
	h.Logger.LogAttrs(ctx, level, msg, as...)
}
