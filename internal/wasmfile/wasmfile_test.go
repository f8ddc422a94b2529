package wasmfile

import (
	"strings"
	"testing"
)

const header = "\x00asm\x01\x00\x00\x00"

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		b    string
		want string // "" for a module
	}{
		{"type section", header + "\x01\x01\x00", ""},
		{"two sections", header + "\x01\x01\x00\x03\x01\x00", ""},
		{"custom section", header + "\x00\x05\x04name", ""},
		{"multi-byte size", header + "\x00\x81\x00\x00", ""},
		{"empty", "", "empty"},
		{"text", "hello, world", "magic"},
		{"short", "\x00as", "magic"},
		{"version 2", "\x00asm\x02\x00\x00\x00\x01\x01\x00", "version"},
		{"header only", header, "no sections"},
		{"truncated section", header + "\x01\x05\x00", "past the end"},
		{"unknown section", header + "\x0e\x01\x00", "unknown section"},
		{"size cut off", header + "\x01\x80", "malformed size"},
		{"size over 32 bits", header + "\x01\xff\xff\xff\xff\x7f", "malformed size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.b))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want a module", err)
			case tc.want != "" && err == nil:
				t.Errorf("got a module, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
