package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSegments writes lines as segment files split after each index in
// cuts, and returns their paths in order.
func writeSegments(t *testing.T, lines [][]byte, cuts ...int) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	from := 0
	for i, cut := range append(cuts, len(lines)) {
		p := filepath.Join(dir, "seg"+string(rune('a'+i))+".log")
		if err := os.WriteFile(p, joinLines(lines[from:cut]), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		from = cut
	}
	return paths
}

// TestProveFiles: every record of a log with tree heads, over two segments,
// gets a proof that VerifyProof accepts, survives a JSON round trip, names
// the record, and fails once anything in it changes; a signed record in no
// tree is proved by its own signature; a record nothing signs has none.
func TestProveFiles(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 30, func(seq uint64) bool { return seq%9 == 4 })
	l.appendTree(t, Record{TimeMS: 1_700_000_000_031, Kind: KindRotate, Decision: "rotated", Summary: "rotated\n"})
	rot := len(l.lines)
	for i := 32; i <= 40; i++ {
		l.appendTree(t, sampleDecision(i))
		if i == 36 {
			l.closeBatch(t)
		}
	}
	// The decisions after the last tree head are the unsigned tail.
	var lastHead uint64
	for _, r := range l.recs {
		if r.Kind == KindTreeHead {
			lastHead = r.Seq
		}
	}
	if lastHead == uint64(len(l.recs)) {
		t.Fatal("no unsigned tail")
	}
	paths := writeSegments(t, l.lines, rot)
	other := testSigner(t, 2).PublicKey()
	for _, r := range l.recs {
		p, err := ProveFiles(paths, s.PublicKey(), r.Seq)
		if r.Seq > lastHead {
			if err == nil || !strings.Contains(err.Error(), "no signature covers") {
				t.Fatalf("record %d of the unsigned tail: %v", r.Seq, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("record %d (%s): %v", r.Seq, r.Kind, err)
		}
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseProof(data)
		if err != nil {
			t.Fatal(err)
		}
		rec, th, err := VerifyProof(q, s.PublicKey())
		if err != nil || rec.Seq != r.Seq || !bytes.Equal([]byte(q.Record), l.lines[r.Seq-1]) {
			t.Fatalf("record %d: %v (proved %d)", r.Seq, err, rec.Seq)
		}
		if r.Signed() && th != nil && r.Kind != KindDecision && p.TreeHead == "" {
			t.Fatalf("record %d", r.Seq)
		}
		if _, _, err := VerifyProof(q, other); err == nil {
			t.Fatalf("record %d: verified under another key", r.Seq)
		}
		// Any change of any byte of the record or the head, or of any
		// path element, is caught.
		for i := range q.Record {
			e := *q
			e.Record = q.Record[:i] + string(q.Record[i]^0x01) + q.Record[i+1:]
			if _, _, err := VerifyProof(&e, s.PublicKey()); err == nil {
				t.Fatalf("record %d: byte %d of the record changed, still verified", r.Seq, i)
			}
		}
		for i := range q.Path {
			e := *q
			e.Path = append([]string(nil), q.Path...)
			e.Path[i] = strings.Repeat("0", 64)
			if _, _, err := VerifyProof(&e, s.PublicKey()); err == nil {
				t.Fatalf("record %d: path[%d] changed, still verified", r.Seq, i)
			}
		}
		if q.TreeHead != "" {
			e := *q
			e.Index++
			if _, _, err := VerifyProof(&e, s.PublicKey()); err == nil {
				t.Fatalf("record %d: a wrong index verified", r.Seq)
			}
			e = *q
			e.TreeHead = ""
			if _, _, err := VerifyProof(&e, s.PublicKey()); err == nil && !r.Signed() {
				t.Fatalf("record %d: verified without its tree head", r.Seq)
			}
		}
	}
	if _, err := ProveFiles(paths, s.PublicKey(), 1000); err == nil {
		t.Fatal("a record beyond the log was proved")
	}
}

// TestParseProofStrict: unknown members, wrong types and trailing data are
// refused.
func TestParseProofStrict(t *testing.T) {
	for _, in := range []string{
		`{"record":"x","index":0,"size":0,"path":[],"extra":1}`,
		`{"record":1}`,
		`{"record":"x"} {}`,
		`{"record":"x","record":"y"}`,
		`[]`,
	} {
		if _, err := ParseProof([]byte(in)); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}
