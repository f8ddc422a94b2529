package platform

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
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
	if err := syscall.Kill(rs.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return RunningServer{}, false
	}
	return rs, true
}

// announce writes ServerFile naming this process's API at addr, and
// returns a func that removes it again unless another process has replaced
// it since.
func (p *Platform) announce(addr string) (remove func()) {
	path := filepath.Join(p.cfg.DataDir, ServerFile)
	rs := RunningServer{URL: "http://" + addr, Gateway: "http://" + p.Addr(), BaseDomain: p.cfg.BaseDomain, PID: os.Getpid()}
	b, _ := json.Marshal(rs)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil || os.Rename(tmp, path) != nil {
		os.Remove(tmp)
		p.cfg.Logger.Warn("cannot write the server file; other commands on this data dir will not find this server", "path", path)
		return func() {}
	}
	return func() {
		if cur, ok := Running(p.cfg.DataDir); ok && cur == rs || !ok {
			os.Remove(path)
		}
	}
}
