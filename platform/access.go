package platform

import (
	"log/slog"
	"strconv"

	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/logs"
)

// accessLog writes the gateway's access log into each account's own log,
// where silo logs shows it next to the functions' lines: one line per
// authenticated request, "GET /findings 200" with the function, the request
// ID, the status, duration and release as attributes (never a body, a query
// string or a key).
type accessLog struct {
	logs   *logs.Store
	logger *slog.Logger
}

func (a accessLog) WriteAccess(entries []gateway.AccessEntry) {
	es := make([]logs.Entry, len(entries))
	for i, e := range entries {
		level := slog.LevelInfo
		switch {
		case e.Status >= 500:
			level = slog.LevelError
		case e.Status >= 400:
			level = slog.LevelWarn
		}
		status := strconv.Itoa(e.Status)
		es[i] = logs.Entry{
			Time: e.Time, Level: logs.LevelString(level), Account: e.Account, Function: e.Function, RequestID: e.RequestID,
			Msg: e.Method + " " + e.Path + " " + status,
			Attrs: map[string]string{
				"source": "gateway", "status": status, "release": e.Release,
				"duration_ms": strconv.FormatFloat(float64(e.Duration.Microseconds())/1000, 'f', 3, 64),
			},
		}
	}
	// One write per account: the lines of accounts deleted after these
	// requests are dropped, as their logs went with them.
	if err := a.logs.AppendAll(es); err != nil {
		a.logger.Error("platform: write access log", "error", err)
	}
}
