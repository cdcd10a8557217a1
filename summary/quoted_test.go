package summary

import (
	"math/rand/v2"
	"testing"
)

// TestQuotedPrefixPlainASCII checks quotedPrefix's shortcut for printable
// ASCII against the rune-by-rune measure, at every budget around the
// string's length.
func TestQuotedPrefixPlainASCII(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 5))
	for range 500 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(0x80))
		}
		s := string(b)
		for budget := -1; budget <= len(s)+2; budget++ {
			n, all := quotedPrefix(s, budget)
			wn, wall := quotedPrefixRunes(s, budget)
			if budget < 0 {
				wn, wall = 0, false
			}
			if n != wn || all != wall {
				t.Fatalf("quotedPrefix(%q, %d) = %d, %v; rune by rune %d, %v", s, budget, n, all, wn, wall)
			}
		}
	}
}
