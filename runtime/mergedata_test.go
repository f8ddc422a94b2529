package runtime

import (
	"bytes"
	"testing"
)

// dataSection encodes active data segments on memory 0 at i32.const offsets.
func dataSection(segs ...struct {
	off  int32
	data string
}) []byte {
	b := appendU32(nil, uint32(len(segs)))
	for _, s := range segs {
		b = append(b, 0x00, 0x41)
		b = appendSLEB(b, int64(s.off))
		b = append(b, 0x0B)
		b = appendU32(b, uint32(len(s.data)))
		b = append(b, s.data...)
	}
	return b
}

type segT = struct {
	off  int32
	data string
}

// mergeData joins disjoint segments with small gaps into what writes the
// same bytes, in any order; it leaves overlapping segments (whose order
// matters) and large gaps alone.
func TestMergeData(t *testing.T) {
	got := mergeData(dataSection(segT{20, "cd"}, segT{10, "ab"}, segT{10000, "far"}), 16)
	want := dataSection(segT{10, "ab\x00\x00\x00\x00\x00\x00\x00\x00cd"}, segT{10000, "far"})
	if !bytes.Equal(got, want) {
		t.Errorf("merged:\n got %q\nwant %q", got, want)
	}
	overlapping := dataSection(segT{10, "abcd"}, segT{12, "XY"})
	if got := mergeData(overlapping, 16); !bytes.Equal(got, overlapping) {
		t.Errorf("overlapping segments were changed: %q", got)
	}
	passive := append(appendU32(nil, 2), 0x01, 0x01, 'a', 0x01, 0x01, 'b')
	if got := mergeData(passive, 16); !bytes.Equal(got, passive) {
		t.Errorf("passive segments were changed: %q", got)
	}
}

// dataEnd is the end of the highest constant-offset segment: what a new
// memory gets prefaulted up to. A section it does not understand gives 0
// (nothing prefaulted).
func TestDataEnd(t *testing.T) {
	passive := append(appendU32(nil, 2), 0x01, 0x01, 'a', 0x01, 0x01, 'b')
	for _, tc := range []struct {
		name string
		data []byte // nil: no data section
		want uint64
	}{
		{"segments", dataSection(segT{20, "cd"}, segT{10000, "far"}, segT{10, "ab"}), 10003},
		{"one", dataSection(segT{0, "x"}), 1},
		{"passive", passive, 0},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &module{}
			if tc.data != nil {
				m.sections = []section{{id: 1, body: []byte{0}}, {id: 11, body: tc.data}}
			}
			if got := dataEnd(m); got != tc.want {
				t.Errorf("dataEnd = %d, want %d", got, tc.want)
			}
		})
	}
	// The Go guest: its data segments end within its first megabytes.
	m, err := parseModule(guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	if end := dataEnd(m); end < 64<<10 || end > 16<<20 {
		t.Errorf("the Go guest's data ends at %d bytes; want between 64 KiB and 16 MiB", end)
	} else {
		t.Logf("Go guest data ends at %d bytes", end)
	}
}
