package spec

import (
	"fmt"
	"sort"
	"strings"

	silo "github.com/silo-run/silo"
)

// Diagnostic is one problem found in a silo.yaml, at a 1-based line and
// column.
type Diagnostic struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Col, d.Message)
}

// Diagnostics is every problem found in a silo.yaml, sorted by position. It
// is the error type of Parse and Load for an invalid file.
type Diagnostics []Diagnostic

// Error returns one line per diagnostic: file:line:col: message.
func (ds *Diagnostics) Error() string {
	lines := make([]string, len(*ds))
	for i, d := range *ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes the diagnostics a user-facing error: silo.UserMessage and
// silo.ErrorCode find a *silo.Error with code CodeInvalid whose message is
// every diagnostic, so each command and the API show them the same way.
func (ds *Diagnostics) Unwrap() error {
	return &silo.Error{Code: silo.CodeInvalid, Message: ds.Error()}
}

func (ds Diagnostics) sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Message < b.Message
	})
}

// Suggest returns ` (did you mean "x"?)` for the candidate nearest to s, or
// "" when none is near enough: the hint spec errors give, for names typed
// elsewhere (a secret name on the command line).
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

// suggest returns ` (did you mean "x"?)` for the candidate nearest to s, or
// "" when none is near enough. Near is a small edit distance, or one name
// holding the other (plan / plan_name).
func suggest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := distance(ls, lc)
		if d > max(2, len(s)/2) {
			if len(ls) < 3 || len(lc) < 3 || !strings.Contains(ls, lc) && !strings.Contains(lc, ls) {
				continue
			}
		}
		if d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance of a and b, giving up early on long
// strings (names are short).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
