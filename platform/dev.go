package platform

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
)

// DevAccount returns the developer account ID for a user name: "dev-"
// followed by the name lower-cased, with every character that may not
// appear in an account ID replaced by '-', clipped to fit.
func DevAccount(user string) silo.AccountID {
	var b strings.Builder
	for _, r := range strings.ToLower(user) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "user"
	}
	if len(name) > 59 {
		name = strings.TrimRight(name[:59], "-")
	}
	return silo.AccountID(control.DeveloperPrefix + name)
}

// DevEvent is what the development loop reports.
type DevEvent struct {
	// Kind is "watching" (once, when the watcher is in place), "live" (a
	// build was applied and serves), "unchanged" (the sources changed but
	// built to the same release), or "failed" (the build or apply failed;
	// the last good version keeps serving).
	Kind    string
	Release string
	Plan    silo.Plan
	Err     error
	// Took is how long from the first file event of the batch to the new
	// version being live (or the failure).
	Took time.Duration
	// Files are the changed files that triggered the rebuild.
	Files []string
}

// Dev is the development loop of silo dev: it keeps one developer account
// running the app's sources as they are on disk.
type Dev struct {
	P       *Platform
	App     string         // the app's directory
	Account silo.AccountID // the developer account
	// Debounce is how long to wait for more file events before rebuilding.
	// Default 50ms.
	Debounce time.Duration
}

// Prepare makes sure a current release exists (deploying the app as the
// first one to a fresh installation), creates the developer account on
// first use, and applies the app's sources to it. It returns the first
// event (live or failed).
func (d *Dev) Prepare(ctx context.Context) (DevEvent, error) {
	start := time.Now()
	if _, err := d.P.Plane.CurrentRelease(ctx); errors.Is(err, silo.ErrNotFound) {
		if _, err := d.P.Deploy(ctx, d.App); err != nil {
			return DevEvent{Kind: "failed", Err: err}, err
		}
	} else if err != nil {
		return DevEvent{}, err
	}
	if _, err := d.P.EnsureAccount(ctx, control.CreateRequest{ID: string(d.Account), Kind: silo.KindDeveloper, Name: "developer"}); err != nil {
		return DevEvent{}, err
	}
	ev := d.apply(ctx, start, nil)
	if ev.Kind == "unchanged" {
		ev.Kind = "live" // it already ran these sources
	}
	return ev, nil
}

func (d *Dev) apply(ctx context.Context, start time.Time, files []string) DevEvent {
	plan, err := d.P.DeployTo(ctx, d.App, d.Account)
	ev := DevEvent{Release: plan.Release, Plan: plan, Err: err, Took: time.Since(start), Files: files}
	switch {
	case err != nil:
		ev.Kind = "failed"
	case !plan.Touches():
		ev.Kind = "unchanged"
	default:
		ev.Kind = "live"
	}
	return ev
}

// Watch watches the app's directory tree (hidden directories excluded) and,
// after each batch of changes to Go sources, silo.yaml, go.mod/go.sum or
// seed files, rebuilds and applies to the developer account, calling fn with
// the outcome. A failed build leaves the last good version serving. Watch
// returns nil when ctx is done.
func (d *Dev) Watch(ctx context.Context, fn func(DevEvent)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", d.App, err)
	}
	defer w.Close()
	add := func(root string) error {
		return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // vanished while walking
			}
			if !e.IsDir() {
				return nil
			}
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata") {
				return filepath.SkipDir
			}
			return w.Add(path)
		})
	}
	if err := add(d.App); err != nil {
		return fmt.Errorf("watch %s: %w", d.App, err)
	}
	fn(DevEvent{Kind: "watching"})
	debounce := d.Debounce
	if debounce <= 0 {
		debounce = 50 * time.Millisecond
	}
	var (
		pending []string
		first   time.Time
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			fn(DevEvent{Kind: "failed", Err: fmt.Errorf("watch: %w", err)})
		case ev := <-w.Events:
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && !strings.HasPrefix(filepath.Base(ev.Name), ".") {
					add(ev.Name)
				}
			}
			if !relevant(ev.Name) || ev.Op == fsnotify.Chmod {
				continue
			}
			if len(pending) == 0 {
				first = time.Now()
			}
			pending = append(pending, ev.Name)
			timer.Reset(debounce)
		case <-timer.C:
			files := dedupe(pending)
			pending = nil
			fn(d.apply(ctx, first, files))
		}
	}
}

// relevant reports whether a change to the file can change the app.
func relevant(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || strings.HasSuffix(base, "_test.go") {
		return false
	}
	switch filepath.Ext(base) {
	case ".go", ".yaml", ".yml", ".mod", ".sum", ".json", ".wasm", ".s":
		return true
	}
	return false
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
