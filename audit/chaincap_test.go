package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// sized returns a decision record whose line, with sequence number seq and
// signed or not as signed says, is exactly n bytes long.
func sized(t *testing.T, n int, seq uint64, signed bool) Record {
	t.Helper()
	r := sampleDecision(3)
	r.Seq = seq
	if signed {
		r.Sig = make([]byte, sigSize)
	}
	r.Summary = ""
	line, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if n < len(line) {
		t.Fatalf("a record cannot be as short as %d bytes", n)
	}
	// A '"' takes two bytes, an 'x' one: the summary grows the line by
	// the escaped size, not by its length.
	pad := n - len(line)
	r.Summary = strings.Repeat(`"`, pad/2) + strings.Repeat("x", pad%2)
	r.Seq, r.Sig = 0, nil
	return r
}

// TestChainRecordCap: Append refuses a record whose line exceeds the cap
// with ErrRecordTooLarge and leaves the chain as it was: head, seq, and the
// count of unsigned records that decides when one must be signed.
func TestChainRecordCap(t *testing.T) {
	const limit = 2000
	for _, tc := range []struct {
		name   string
		size   int
		sign   bool
		refuse bool
	}{
		{"unsigned at the cap", limit, false, false},
		{"unsigned one over", limit + 1, false, true},
		{"signed at the cap", limit, true, false},
		{"signed one over", limit + 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSigner(t, 1)
			c := newLegacyChain(s, Head{})
			c.SetMaxRecordSize(limit)
			var log bytes.Buffer
			appendOK := func(r Record, sign bool) Record {
				t.Helper()
				rec, line, err := c.Append(r, sign)
				if err != nil {
					t.Fatal(err)
				}
				log.Write(line)
				log.WriteByte('\n')
				return rec
			}
			appendOK(Record{Kind: KindGenesis, Decision: "created"}, true)
			// MaxUnsigned-1 unsigned decisions: one more may go unsigned.
			for i := range MaxUnsigned - 1 {
				appendOK(sampleDecision(i), false)
			}
			head := c.Head()
			_, line, err := c.Append(sized(t, tc.size, head.Seq+1, tc.sign), tc.sign)
			if tc.refuse {
				if !errors.Is(err, ErrRecordTooLarge) || line != nil {
					t.Fatalf("Append of %d bytes: %v, want ErrRecordTooLarge", tc.size, err)
				}
				if c.Head() != head {
					t.Fatalf("a refused record moved the head from %v to %v", head, c.Head())
				}
				// Still MaxUnsigned-1 unsigned in a row: the next may be
				// unsigned.
				if rec := appendOK(sampleDecision(7), false); rec.Signed() || rec.Seq != head.Seq+1 || rec.Prev != head.Hash {
					t.Fatalf("after the refusal: seq %d (want %d), signed %t", rec.Seq, head.Seq+1, rec.Signed())
				}
			} else {
				if err != nil || len(line) != tc.size {
					t.Fatalf("Append of %d bytes: %v, line of %d", tc.size, err, len(line))
				}
				log.Write(line)
				log.WriteByte('\n')
			}
			appendOK(Record{Kind: KindBoot, Decision: "booted"}, true)
			if _, err := Verify(&log, s.PublicKey(), VerifyOptions{ExpectHead: ptr(c.Head())}); err != nil {
				t.Fatalf("the log does not verify: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestChainRecordCapDefault: without a cap, or with one out of range, the
// cap is the format's MaxRecordSize, refused with ErrRecordTooLarge too.
func TestChainRecordCapDefault(t *testing.T) {
	for _, n := range []int{0, -1, MaxRecordSize + 1} {
		c := newLegacyChain(testSigner(t, 1), Head{})
		c.SetMaxRecordSize(n)
		r := sampleDecision(1)
		r.Summary = strings.Repeat("x", MaxRecordSize)
		if _, _, err := c.Append(r, false); !errors.Is(err, ErrRecordTooLarge) || c.Head() != (Head{}) {
			t.Fatalf("cap %d: %v, head %v", n, err, c.Head())
		}
		r.Summary = strings.Repeat("x", 100<<10)
		if _, _, err := c.Append(r, false); err != nil {
			t.Fatalf("cap %d: a 100 KiB record refused: %v", n, err)
		}
	}
}

// TestEscapedLen: EscapedLen is the size of a string's encoding in a
// record, quotes excluded, for every byte.
func TestEscapedLen(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for _, s := range []string{"", "plain", `"\`, "\x00\x01\x1f", "\b\t\n\f\r", "\x7f", "é€\u2028", strings.Repeat("\"\x00", 100), string(all)} {
		if got, want := EscapedLen(s), len(appendString(nil, s))-2; got != want {
			t.Errorf("EscapedLen(%q) = %d, the record takes %d", s, got, want)
		}
	}
}
