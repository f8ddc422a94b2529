package server

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	silo "github.com/silo-run/silo"
)

// maxSeed bounds the uploaded seed files of one environment.
const maxSeed = 32 << 20

// WriteSeed writes uploaded seed files into a new temporary directory and
// returns it; remove it with os.RemoveAll when done.
//
// # Errors
//
// CodeInvalid for a path outside tables/*.json and buckets/<bucket>/...
func WriteSeed(files map[string][]byte) (string, error) {
	dir, err := os.MkdirTemp("", "silo-seed-*")
	if err != nil {
		return "", fmt.Errorf("seed temp dir: %w", err)
	}
	for name, b := range files {
		clean := path.Clean(name)
		parts := strings.Split(clean, "/")
		ok := clean == name && !strings.HasPrefix(clean, "/") && !strings.Contains(name, "\\") && len(parts) >= 2
		for _, p := range parts {
			ok = ok && p != ".." && p != "." && p != ""
		}
		ok = ok && seedKind(parts) != ""
		if !ok {
			os.RemoveAll(dir)
			return "", silo.Errorf(silo.CodeInvalid, "seed file %q is not tables/<table>.json or buckets/<bucket>/<key>", clip(name))
		}
		p := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("seed dir: %w", err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("seed file: %w", err)
		}
	}
	return dir, nil
}

// ReadSeed reads a local fixture directory into the files of a
// CreateEnvRequest: tables/*.json and every regular file under
// buckets/<bucket>/.
//
// # Errors
//
// As ScanSeed; CodeInvalid when dir holds more than 32 MiB of seed files.
func ReadSeed(dir string) (map[string][]byte, error) {
	lay, err := ScanSeed(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	total := 0
	for _, rel := range append(lay.Tables, lay.Objects...) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("read seed %s: %w", filepath.Join(dir, rel), err)
		}
		total += len(b)
		if total > maxSeed {
			return nil, silo.Errorf(silo.CodeInvalid, "seed directory %s holds more than %d MiB; seed large data after creating the environment", dir, maxSeed>>20)
		}
		out[rel] = b
	}
	return out, nil
}

// SeedLayout is what a fixture directory holds, by slash-separated path
// relative to it: the files silo loads into an account and those it
// ignores.
type SeedLayout struct {
	Tables  []string // tables/<table>.json: a JSON object of key → value
	Objects []string // buckets/<bucket>/<key>: one object each
	Ignored []string // every other file
}

// ScanSeed reads the layout of the fixture directory dir, in path order,
// without reading any file. It changes nothing, so a command can refuse a
// directory before it creates anything.
//
// # Errors
//
// CodeNotFound when dir is not a directory; CodeInvalid when it holds
// nothing silo loads, naming what silo expects and what dir holds instead
// (with the directory meant, when the layout sits one level deeper).
func ScanSeed(dir string) (SeedLayout, error) {
	var lay SeedLayout
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return lay, silo.Errorf(silo.CodeNotFound, "seed directory %s does not exist; it holds tables/<table>.json and buckets/<bucket>/...", dir)
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read seed directory %s: %w", dir, err)
		}
		if d.IsDir() {
			return nil
		}
		rel := filepath.ToSlash(mustRel(dir, p))
		switch seedKind(strings.Split(rel, "/")) {
		case "table":
			lay.Tables = append(lay.Tables, rel)
		case "object":
			if d.Type().IsRegular() {
				lay.Objects = append(lay.Objects, rel)
				return nil
			}
			lay.Ignored = append(lay.Ignored, rel)
		default:
			lay.Ignored = append(lay.Ignored, rel)
		}
		return nil
	})
	if err != nil {
		return lay, err
	}
	if len(lay.Tables)+len(lay.Objects) > 0 {
		return lay, nil
	}
	found := "no file"
	if len(lay.Ignored) > 0 {
		found = SeedList(lay.Ignored)
	}
	hint := ""
	for _, rel := range lay.Ignored {
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			if seedKind(parts[i:]) != "" {
				hint = fmt.Sprintf(": did you mean --seed %s?", filepath.Join(dir, filepath.FromSlash(strings.Join(parts[:i], "/"))))
				break
			}
		}
		if hint != "" {
			break
		}
	}
	return lay, silo.Errorf(silo.CodeInvalid, "seed directory %s holds nothing silo loads: it expects tables/<table>.json and buckets/<bucket>/<key>, and found %s%s", dir, found, hint)
}

// seedKind says what a seed file at path parts is: "table", "object", or
// "" for a file silo ignores.
func seedKind(parts []string) string {
	switch {
	case len(parts) == 2 && parts[0] == "tables" && strings.HasSuffix(parts[1], ".json") && parts[1] != ".json":
		return "table"
	case len(parts) >= 3 && parts[0] == "buckets":
		return "object"
	}
	return ""
}

// SeedList names up to five seed paths, and how many more there are.
func SeedList(paths []string) string {
	const show = 5
	if len(paths) <= show {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:show], ", "), len(paths)-show)
}

func mustRel(base, p string) string {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return rel
}
