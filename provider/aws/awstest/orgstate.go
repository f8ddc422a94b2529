package awstest

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
)

// frontState is what the management front knows beyond its kumo, as kept
// across restarts of an organization served with a directory (Serve).
type frontState struct {
	Statuses map[string]map[string]any    `json:"statuses"`
	Pending  map[string]int               `json:"pending"`
	Root     string                       `json:"root"`
	Accounts map[string]bool              `json:"accounts"`
	Parents  map[string]string            `json:"parents"`
	Closed   map[string]bool              `json:"closed"`
	Tags     map[string]map[string]string `json:"tags"`
	Names    map[string]string            `json:"names"`
	Failed   map[string]bool              `json:"failed"`
	Keys     map[string]string            `json:"keys"`
}

// keep makes the front keep its state in file from now on, and reads it
// from there if an earlier run left it; it reports whether it did.
func (f *front) keep(file string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stateFile = file
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	var st frontState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		f.t.Fatalf("read the organization kept in %s: %v; move the directory away to start a new one", filepath.Dir(file), err)
	}
	f.root = st.Root
	load(f.statuses, st.Statuses)
	load(f.pending, st.Pending)
	load(f.accounts, st.Accounts)
	load(f.parents, st.Parents)
	load(f.closed, st.Closed)
	load(f.tags, st.Tags)
	load(f.names, st.Names)
	load(f.failed, st.Failed)
	load(f.keys, st.Keys)
	return true
}

// load copies src into dst.
func load[V any](dst, src map[string]V) { maps.Copy(dst, src) }

// save writes the front's state to its file, if it keeps one (keep).
func (f *front) save() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stateFile == "" {
		return
	}
	b, err := json.Marshal(frontState{
		Statuses: f.statuses, Pending: f.pending, Root: f.root, Accounts: f.accounts, Parents: f.parents,
		Closed: f.closed, Tags: f.tags, Names: f.names, Failed: f.failed, Keys: f.keys,
	})
	if err == nil {
		tmp := f.stateFile + ".new"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, f.stateFile)
		}
	}
	if err != nil {
		f.t.Errorf("keep the organization's state in %s: %v", f.stateFile, err)
	}
}
