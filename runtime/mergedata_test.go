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
