package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

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
		b, a = asWritten(c.Type, k, b), asWritten(c.Type, k, a)
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

// asWritten is the JSON value v of a resource's attribute k as silo.yaml
// writes it: a function's memory as a size (64MiB), its timeout and a
// schedule's period as a duration (5s); any other value as it is.
func asWritten(t silo.ResourceType, k, v string) string {
	if t == silo.TypeSchedule && k == "every" {
		if u, err := strconv.Unquote(v); err == nil {
			if d, err := time.ParseDuration(u); err == nil {
				return shortDuration(d)
			}
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return v
	}
	switch {
	case t == silo.TypeFunction && k == "memory":
		for _, u := range []struct {
			name  string
			shift uint
		}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
			if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
				return strconv.FormatUint(n>>u.shift, 10) + u.name
			}
		}
		return v + " bytes"
	case t == silo.TypeFunction && k == "timeout":
		return shortDuration(time.Duration(n))
	}
	return v
}

// shortDuration is d without the zero units time.Duration's String adds
// (2m, not 2m0s; 1h, not 1h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
