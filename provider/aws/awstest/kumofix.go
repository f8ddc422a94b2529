package awstest

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// repairSnapshot mends what kumo v0.33.1 writes to its data dir but cannot
// read back: its Organizations service writes an account's
// JoinedTimestamp as a number of seconds but reads it as an RFC 3339
// string, and a snapshot that fails to read loses every account (the
// organization and its root, read before them, stay). It rewrites such
// numbers as strings before kumo starts on dir.
func repairSnapshot(dir string) error {
	path := filepath.Join(dir, "organizations.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var snap map[string]json.RawMessage
	if err := json.Unmarshal(b, &snap); err != nil {
		return err
	}
	var accounts map[string]map[string]any
	if raw, ok := snap["accounts"]; !ok || json.Unmarshal(raw, &accounts) != nil {
		return nil // nothing kumo would fail on
	}
	changed := false
	for _, a := range accounts {
		if secs, ok := a["JoinedTimestamp"].(float64); ok {
			whole := int64(secs)
			a["JoinedTimestamp"] = time.Unix(whole, int64((secs-float64(whole))*1e9)).UTC().Format(time.RFC3339Nano)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	raw, err := json.Marshal(accounts)
	if err != nil {
		return err
	}
	snap["accounts"] = raw
	out, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}
