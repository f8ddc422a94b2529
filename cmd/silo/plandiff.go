package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	silo "github.com/silo-run/silo"
)

// printChangeDetail writes, under a plan line, each attribute of c that
// changes, as before → after, and a warning when the change destroys data.
func printChangeDetail(w io.Writer, c silo.Change) {
	var before, after map[string]string
	if c.Current != nil {
		before = flatten(c.Current.Spec)
	}
	if c.Desired != nil {
		after = flatten(c.Desired.Spec)
	}
	keys := make([]string, 0, len(before)+len(after))
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, inB := before[k]
		a, inA := after[k]
		switch {
		case inB && inA && a != b:
			fmt.Fprintf(w, "        %s: %s → %s\n", k, b, a)
		case inA && !inB && c.Op != silo.OpCreate:
			fmt.Fprintf(w, "        %s: (none) → %s\n", k, a)
		case inA && !inB:
			fmt.Fprintf(w, "        %s: %s\n", k, a)
		case inB && !inA && c.Op != silo.OpDelete:
			fmt.Fprintf(w, "        %s: %s → (none)\n", k, b)
		}
	}
	if c.DestroysData() {
		fmt.Fprintf(w, "        ! destroys the %s's data in this account\n", c.Type)
	}
}

// flatten turns a resource's canonical JSON spec into attribute paths
// (tables.notes, config[0]) and their JSON values.
func flatten(raw json.RawMessage) map[string]string {
	out := map[string]string{}
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			if len(t) == 0 && prefix != "" {
				out[prefix] = "{}"
			}
			for k, x := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
		case []any:
			if len(t) == 0 && prefix != "" {
				out[prefix] = "[]"
			}
			for i, x := range t {
				walk(prefix+"["+strconv.Itoa(i)+"]", x)
			}
		default:
			b, _ := json.Marshal(t)
			if prefix == "" {
				prefix = "value"
			}
			out[prefix] = string(b)
		}
	}
	walk("", v)
	return out
}
