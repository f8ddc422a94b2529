package spec

// deepAt scans data in one pass and returns the offset where the nesting of
// flow collections ([ {) and block structure (indentation, "- " and "? "
// entries) first exceeds MaxDepth, or -1.
//
// # Notes
//
// It is an estimate that a YAML parser never needs to see a hostile
// 10,000-deep document: quotes, comments and brackets inside plain scalars
// are recognised only roughly. The exact limit is enforced on the parsed tree
// (decoder.check); this only keeps deep input from reaching the parser.
func deepAt(data []byte) int {
	flow := 0
	var indents []int
	var quote byte
	atLineStart := true
	for i := 0; i < len(data); i++ {
		c := data[i]
		if quote != 0 {
			switch {
			case quote == '"' && c == '\\':
				i++
			case c == quote:
				quote = 0
			}
			if c == '\n' {
				atLineStart = flow == 0
			}
			continue
		}
		if atLineStart {
			atLineStart = false
			col := 0
			for i < len(data) && data[i] == ' ' {
				i++
				col++
			}
			if i >= len(data) {
				break
			}
			if data[i] == '\n' || data[i] == '\r' || data[i] == '#' { // blank or comment line
				for i < len(data) && data[i] != '\n' {
					i++
				}
				atLineStart = true
				continue
			}
			for len(indents) > 0 && indents[len(indents)-1] >= col {
				indents = indents[:len(indents)-1]
			}
			indents = append(indents, col)
			// Compact nested entries on one line: "- - - x", "? - x".
			for i+1 < len(data) && (data[i] == '-' || data[i] == '?' || data[i] == ':') && (data[i+1] == ' ' || data[i+1] == '\t') {
				i += 2
				col += 2
				for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
					i++
					col++
				}
				indents = append(indents, col)
				if len(indents)+flow > MaxDepth {
					return i
				}
			}
			if len(indents)+flow > MaxDepth {
				return i
			}
			if i >= len(data) {
				break
			}
			c = data[i]
		}
		valueStart := i == 0 || isSpace(data[i-1]) ||
			flow > 0 && (data[i-1] == '[' || data[i-1] == '{' || data[i-1] == ',' || data[i-1] == ':')
		switch {
		case c == '\n':
			atLineStart = flow == 0
		case c == '#' && (i == 0 || isSpace(data[i-1])):
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case (c == '"' || c == '\'') && valueStart:
			quote = c
		case (c == '[' || c == '{') && valueStart:
			flow++
			if len(indents)+flow > MaxDepth {
				return i
			}
		case (c == ']' || c == '}') && flow > 0:
			flow--
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
