package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decoder turns the YAML node tree into a Stack, collecting diagnostics.
// Checks that need the whole file (references between sections) are queued
// in later and run once everything is decoded.
type decoder struct {
	file  string
	diags Diagnostics
	later []func(*Stack)
	// tooDeep stops the walk at the first node nested deeper than MaxDepth.
	tooDeep bool
}

func newDecoder(file string) *decoder { return &decoder{file: file} }

// fileName is the file's name as messages give it (bad.yaml for -f
// ./conf/bad.yaml), silo.yaml when the caller named none.
func (d *decoder) fileName() string {
	if d.file == "" {
		return "silo.yaml"
	}
	return filepath.Base(d.file)
}

func (d *decoder) at(line, col int, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: max(line, 1), Col: max(col, 1), Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.at(n.Line, n.Column, format, args...)
}

// known field names of each object, from the JSON tags of its Go type, so
// that silo.yaml, the canonical JSON and the JSON Schema share one vocabulary.
var (
	stackFields      = jsonFields(reflect.TypeFor[Stack]())
	paramFields      = jsonFields(reflect.TypeFor[Param]())
	functionFields   = jsonFields(reflect.TypeFor[Function]())
	tableFields      = jsonFields(reflect.TypeFor[Table]())
	routeFields      = jsonFields(reflect.TypeFor[Route]())
	scheduleFields   = jsonFields(reflect.TypeFor[Schedule]())
	productionFields = jsonFields(reflect.TypeFor[Production]())
	exportFields     = jsonFields(reflect.TypeFor[Export]())
	rolloutFields    = jsonFields(reflect.TypeFor[Rollout]())
	ringFields       = jsonFields(reflect.TypeFor[Ring]())
	selectorFields   = jsonFields(reflect.TypeFor[Selector]())
	gatesFields      = jsonFields(reflect.TypeFor[Gates]())
)

// jsonFields returns the JSON names of t's fields, skipping "-".
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) parse(data []byte) *Stack {
	if len(data) > MaxFileSize {
		d.at(1, 1, "the file is larger than %d KiB; silo.yaml is limited to 1 MiB", MaxFileSize>>10)
		return nil
	}
	if i := hasNUL(data); i >= 0 {
		line, col := position(data, i)
		d.at(line, col, "the file contains a NUL byte; silo.yaml must be UTF-8 text")
		return nil
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		line, col := position(data, i)
		d.at(line, col, "the file is not valid UTF-8; save silo.yaml as UTF-8 text")
		return nil
	}
	if i := deepAt(data); i >= 0 {
		line, col := position(data, i)
		d.at(line, col, "nesting is deeper than %d levels; silo.yaml needs far fewer", MaxDepth)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.at(1, 1, "the file is empty; start with \"version: 1\" and \"name: <app>\"")
		} else {
			d.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "the file holds more than one YAML document; silo.yaml must hold exactly one (remove the \"---\")")
		return nil
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.at(1, 1, "the file is empty; start with \"version: 1\" and \"name: <app>\"")
			return nil
		}
		root = root.Content[0]
	}
	if !d.check(root, 1) {
		return nil
	}
	st := d.stack(root)
	for _, f := range d.later {
		f(st)
	}
	return st
}

// yamlError turns a syntax error of the YAML parser into diagnostics.
func (d *decoder) yamlError(err error) {
	for _, msg := range strings.Split(err.Error(), "\n") {
		msg = strings.TrimSpace(msg)
		if msg == "" || msg == "yaml: unmarshal errors:" {
			continue
		}
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			d.at(line, 1, "YAML syntax: %s", m[2])
			continue
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		if strings.HasPrefix(msg, "exceeded max depth") {
			msg = fmt.Sprintf("nesting is deeper than %d levels", MaxDepth)
		}
		d.at(1, 1, "YAML syntax: %s", msg)
	}
}

// position returns the 1-based line and column (in runes) of byte offset i.
func position(data []byte, i int) (int, int) {
	before := data[:i]
	line := bytes.Count(before, []byte{'\n'}) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// check rejects what silo.yaml does not support anywhere: anchors, aliases,
// explicit tags and nesting deeper than MaxDepth. It reports false when the
// tree must not be decoded further.
func (d *decoder) check(n *yaml.Node, depth int) bool {
	if depth > MaxDepth {
		d.errorf(n, "nesting is deeper than %d levels; silo.yaml needs far fewer", MaxDepth)
		d.tooDeep = true
		return false
	}
	ok := true
	switch {
	case n.Kind == yaml.AliasNode:
		d.errorf(n, "anchors and aliases are not supported in silo.yaml; write the value out instead of *%s", clip(n.Value))
		ok = false
	case n.Anchor != "":
		d.errorf(n, "anchors and aliases are not supported in silo.yaml; remove &%s and write the value out", clip(n.Anchor))
		ok = false
	case n.Style&yaml.TaggedStyle != 0:
		d.errorf(n, "YAML tags are not supported in silo.yaml; remove %s (quote the value to make it a string)", clip(n.Tag))
		ok = false
	}
	for _, c := range n.Content {
		if !d.check(c, depth+1) {
			ok = false
			if d.tooDeep || len(d.diags) >= maxDiagnostics {
				return false
			}
		}
	}
	return ok
}

// field is one key and value of a mapping.
type field struct{ key, val *yaml.Node }

// entries returns the entries of mapping n in order, reporting duplicate and
// non-scalar keys. A null n is an empty mapping. what names n in messages.
func (d *decoder) entries(n *yaml.Node, what string) []field {
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping (key: value), not %s", what, describe(n))
		return nil
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	out := make([]field, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.errorf(k, "%s: keys must be plain names, not %s", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%s: duplicate key %q (first at line %d); remove one", what, clip(k.Value), first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, field{k, v})
	}
	return out
}

// object returns the fields of mapping n by name, reporting unknown ones with
// the nearest known name.
func (d *decoder) object(n *yaml.Node, what string, known []string) map[string]field {
	fs := d.entries(n, what)
	out := make(map[string]field, len(fs))
	for _, f := range fs {
		if !contains(known, f.key.Value) {
			d.errorf(f.key, "%s: unknown field %q%s; known fields: %s", what, clip(f.key.Value), suggest(f.key.Value, known), strings.Join(known, ", "))
			continue
		}
		out[f.key.Value] = f
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names the kind of a node for messages: "a list", "the number 5".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "empty"
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "an unexpected value"
}

// str returns the text of scalar n; numbers and booleans are taken as
// written.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s must be a string, not %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// text is str that also rejects numbers and booleans (for names and enums
// where YAML's typing would surprise: "on", 1.10).
func (d *decoder) text(n *yaml.Node, what string) (string, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!str" && !isNull(n) {
		d.errorf(n, "%s must be a string, not %s; quote it", what, describe(n))
		return "", false
	}
	return d.str(n, what)
}

func (d *decoder) integer(n *yaml.Node, what string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s must be a whole number, not %s", what, describe(n))
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	if err != nil {
		d.errorf(n, "%s %s is out of range", what, clip(n.Value))
		return 0, false
	}
	return int(v), true
}

func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return b, true
		}
	}
	d.errorf(n, "%s must be true or false, not %s", what, describe(n))
	return false, false
}

// number reads a number, or a percentage "20%" as a fraction (0.2) when
// percent is allowed.
func (d *decoder) number(n *yaml.Node, what string, percent bool) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, true
		}
	}
	if percent && n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.HasSuffix(n.Value, "%") {
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(n.Value, "%")), 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v / 100, true
		}
	}
	if percent {
		d.errorf(n, "%s must be a number or a percentage such as 20%%, not %s", what, describe(n))
	} else {
		d.errorf(n, "%s must be a number, not %s", what, describe(n))
	}
	return 0, false
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]*)$`)

// size reads a byte size with a binary unit: 512KiB, 64MiB, 1GiB.
func (d *decoder) size(n *yaml.Node, what string) (uint64, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s must be a size such as 64MiB, not %s", what, describe(n))
		return 0, false
	}
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		d.errorf(n, "%s %q is not a size; write a whole number and a unit: KiB, MiB or GiB (e.g. 64MiB)", what, clip(n.Value))
		return 0, false
	}
	shift := map[string]uint{"KiB": 10, "MiB": 20, "GiB": 30}
	sh, ok := shift[m[2]]
	if !ok {
		fix := ""
		switch strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(m[2]), "b"), "i")) {
		case "k":
			fix = "KiB"
		case "m", "":
			fix = "MiB"
		case "g":
			fix = "GiB"
		}
		if fix != "" {
			if m[2] == "" {
				d.errorf(n, "%s %s has no unit; write %s%s", what, m[1], m[1], fix)
			} else {
				d.errorf(n, "%s %q is not a size; write %s%s", what, clip(n.Value), m[1], fix)
			}
		} else {
			d.errorf(n, "%s %q is not a size; the unit must be KiB, MiB or GiB (e.g. 64MiB)", what, clip(n.Value))
		}
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil || v > math.MaxUint64>>sh {
		d.errorf(n, "%s %q is too large", what, clip(n.Value))
		return 0, false
	}
	return v << sh, true
}

// duration reads a Go duration: 500ms, 5s, 2m30s.
func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s must be a duration such as 5s, not %s", what, describe(n))
		return 0, false
	}
	if n.Tag == "!!int" {
		d.errorf(n, "%s %s has no unit; write %ss (or ms, m, h)", what, clip(n.Value), clip(n.Value))
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, "%s %q is not a duration; write a number and a unit such as 500ms, 5s, 2m or 1h", what, clip(n.Value))
		return 0, false
	}
	if v < 0 {
		d.errorf(n, "%s %q is negative", what, clip(n.Value))
		return 0, false
	}
	return v, true
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// name checks a resource name: 1-63 lower-case letters, digits, '-' and '_',
// starting with a letter.
func (d *decoder) name(n *yaml.Node, kind string) bool {
	if n.Kind == yaml.ScalarNode && nameRE.MatchString(n.Value) {
		return true
	}
	v := n.Value
	if n.Kind != yaml.ScalarNode {
		v = describe(n)
	}
	hint := ""
	if low := strings.ToLower(v); low != v && nameRE.MatchString(low) {
		hint = fmt.Sprintf(" (write %q)", low)
	}
	d.errorf(n, "invalid %s name %q: use 1-63 lower-case letters, digits, '-' and '_', starting with a letter%s", kind, clip(v), hint)
	return false
}

// names reads a list of names (config keys, secrets, exports) and returns
// it sorted, reporting duplicates.
func (d *decoder) names(n *yaml.Node, what, kind string) ([]string, []*yaml.Node) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list of %s names, such as [a, b], not %s", what, kind, describe(n))
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	seen := map[string]int{}
	for _, c := range n.Content {
		if !d.name(c, kind) {
			continue
		}
		if line, dup := seen[c.Value]; dup {
			d.errorf(c, "%s: %q is listed twice (first at line %d)", what, c.Value, line)
			continue
		}
		seen[c.Value] = c.Line
		out = append(out, c.Value)
		nodes = append(nodes, c)
	}
	sort.Strings(out)
	return out, nodes
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// missing reports a reference to a name not declared in m; where says
// where it should be declared.
func missing[V any](d *decoder, n *yaml.Node, m map[string]V, where, format string, args ...any) {
	if _, ok := m[n.Value]; ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	keys := sortedKeys(m)
	if len(keys) == 0 {
		d.errorf(n, "%s, which is not declared in %s (nothing is declared there)", msg, where)
		return
	}
	d.errorf(n, "%s, which is not declared in %s%s", msg, where, suggest(n.Value, keys))
}
