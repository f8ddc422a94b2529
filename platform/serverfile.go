package platform

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/silo-run/silo/internal/durable"
)

// ServerFile, in the data dir, names the control-plane API that a running
// silo up or silo server serves for that data dir, so that other commands
// on the same data dir go through it rather than open its stores beside it
// (an account's table store can be open in one process at a time).
const ServerFile = "server.json"

// RunningServer is what ServerFile holds.
type RunningServer struct {
	URL        string `json:"url"`                   // http://host:port of the API
	Gateway    string `json:"gateway,omitempty"`     // http://host:port of the gateway
	BaseDomain string `json:"base_domain,omitempty"` // tenant acme is acme.<BaseDomain>
	PID        int    `json:"pid"`
}

// Running returns the server ServerFile in dataDir names, if the file is
// there and its process is alive. The caller should still check that the
// URL answers (a PID can be reused).
func Running(dataDir string) (RunningServer, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, ServerFile))
	if err != nil {
		return RunningServer{}, false
	}
	var rs RunningServer
	if json.Unmarshal(b, &rs) != nil || rs.URL == "" || rs.PID <= 0 {
		return RunningServer{}, false
	}
	return rs, alive(rs.PID)
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// announce writes ServerFile naming this process's API at addr, and
// returns a func that takes it back unless another server has replaced it
// since. Several servers share a data dir on one PostgreSQL store: the
// file names the last one started, and taking it back names again the
// server it named before, if that one still runs, so that commands on the
// data dir keep finding a server while one does.
func (p *Platform) announce(addr string) (remove func()) {
	path := filepath.Join(p.cfg.DataDir, ServerFile)
	rs := RunningServer{URL: "http://" + addr, Gateway: "http://" + p.Addr(), BaseDomain: p.cfg.BaseDomain, PID: os.Getpid()}
	prev, hadPrev := Running(p.cfg.DataDir)
	if err := writeServerFile(path, rs); err != nil {
		p.cfg.Logger.Warn("cannot write the server file; other commands on this data dir will not find this server", "path", path)
		return func() {}
	}
	return func() {
		if cur, ok := Running(p.cfg.DataDir); ok && cur != rs {
			return // another server's now
		}
		if hadPrev && prev != rs && alive(prev.PID) && writeServerFile(path, prev) == nil {
			return
		}
		os.Remove(path)
	}
}

// writeServerFile replaces the file at path with rs, atomically; the
// directory is not synced: after a power loss no server runs, whatever the
// file says.
func writeServerFile(path string, rs RunningServer) error {
	b, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, durable.Options{NoDirSync: true})
}
