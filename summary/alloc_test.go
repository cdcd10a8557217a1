package summary

import (
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
)

// TestTxKind checks the request line's constants against the type's name,
// for every type byte.
func TestTxKind(t *testing.T) {
	for i := range 256 {
		ty := ethtx.Type(i)
		if got, want := txKind(ty), ty.String()+" transaction"; got != want {
			t.Errorf("txKind(%#x) = %q, want %q", i, got, want)
		}
	}
}

// TestChainTexts checks the chain line's texts made once against the
// text made each time before, for every named chain and a few others.
func TestChainTexts(t *testing.T) {
	for id, name := range chainNames {
		if got, want := chain(new(big.Int).SetUint64(id)), strconv.FormatUint(id, 10)+" ("+name+")"; got != want {
			t.Errorf("chain(%d) = %q, want %q", id, got, want)
		}
	}
	for _, id := range []*big.Int{nil, big.NewInt(0), big.NewInt(2), new(big.Int).Lsh(big.NewInt(1), 70)} {
		want := "none"
		if id != nil {
			want = id.String()
		}
		if got := chain(id); got != want {
			t.Errorf("chain(%v) = %q, want %q", id, got, want)
		}
	}
}

// TestBuilderLabelRoom checks that the labels carved from a builder's
// room stay each line's own: more labelled lines than the room holds,
// and an append to one line's labels, change no other line.
func TestBuilderLabelRoom(t *testing.T) {
	b := newBuilder(12, 4)
	for i := range 8 {
		b.addParts("l"+strconv.Itoa(i), part{value: "v", label: strconv.Itoa(i)})
	}
	s := b.doneText("digest", "0x00")
	s.Lines[0].Labels = append(s.Lines[0].Labels, Label{At: 1, End: 1, Text: "x"})
	for i, l := range s.Lines[:8] {
		if len(l.Labels) < 1 || l.Labels[0].Text != strconv.Itoa(i) {
			t.Fatalf("line %d labels %+v", i, l.Labels)
		}
		if i > 0 && len(l.Labels) != 1 {
			t.Fatalf("line %d labels %+v: the append to line 0 reached it", i, l.Labels)
		}
	}
	if got := s.String(); got != "l0: v0x\nl1: v1\nl2: v2\nl3: v3\nl4: v4\nl5: v5\nl6: v6\nl7: v7\ndigest: 0x00\n" {
		t.Errorf("String() = %q", got)
	}
}

// TestLabelText checks the label text made in one allocation against
// the text quoteWithin makes, for labels on both sides of every condition
// of the shortcut.
func TestLabelText(t *testing.T) {
	for _, l := range []string{"", "treasury", "ops \"hot\"", `back\slash`, "caf\u00e9", "tab\there", "line\nbreak", "\x7f", "\xff",
		strings.Repeat("a", MaxValueLen-quoteMarks), strings.Repeat("a", MaxValueLen-quoteMarks+1), strings.Repeat("a", MaxValueLen+10)} {
		if got, want := labelText(l), " ("+quoteWithin(l, MaxValueLen, "")+")"; got != want {
			t.Errorf("labelText(%q) = %q, want %q", l, got, want)
		}
	}
}
