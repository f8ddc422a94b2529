package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// NewRelease makes a content-addressed release from a stack and its built
// artifacts: the same stack and artifacts always give the same ID.
func NewRelease(st *spec.Stack, artifacts map[string]string, now time.Time) (Release, store.Release, error) {
	return newRelease(st, artifacts, now, false)
}

// NewProbeRelease is NewRelease for a build of silo verify --probe: the
// release is marked as one (store.Release.Probe), so it runs only in the
// probe's throwaway accounts (store.CheckShip), and its ID differs from
// that of a release of the same app built otherwise.
func NewProbeRelease(st *spec.Stack, artifacts map[string]string, now time.Time) (Release, store.Release, error) {
	return newRelease(st, artifacts, now, true)
}

func newRelease(st *spec.Stack, artifacts map[string]string, now time.Time, probe bool) (Release, store.Release, error) {
	stackJSON, err := json.Marshal(st)
	if err != nil {
		return Release{}, store.Release{}, fmt.Errorf("encode stack: %w", err)
	}
	h := sha256.New()
	h.Write(stackJSON)
	names := make([]string, 0, len(artifacts))
	for k := range artifacts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(h, "\x00%s=%s", k, artifacts[k])
	}
	if probe {
		h.Write([]byte("\x00probe"))
	}
	id := "r-" + hex.EncodeToString(h.Sum(nil))[:16]
	return Release{ID: id, Stack: st, Artifacts: artifacts, Probe: probe},
		store.Release{ID: id, Stack: stackJSON, Artifacts: artifacts, Created: now.UTC(), Probe: probe}, nil
}

// LoadRelease decodes a stored release.
func LoadRelease(r store.Release) (Release, error) {
	var st spec.Stack
	if err := json.Unmarshal(r.Stack, &st); err != nil {
		return Release{}, silo.Errorf(silo.CodeInternal, "release %s is unreadable: %w", r.ID, err)
	}
	return Release{ID: r.ID, Stack: &st, Artifacts: r.Artifacts, Probe: r.Probe}, nil
}
