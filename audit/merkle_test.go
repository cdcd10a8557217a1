package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refMTH is RFC 6962 §2.1's MTH, written from the RFC's text and nothing
// else of this package: the reference the Merkle code is checked against.
func refMTH(d [][]byte) []byte {
	switch n := len(d); n {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		h := sha256.Sum256(append([]byte{0x00}, d[0]...))
		return h[:]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		h := sha256.Sum256(bytes.Join([][]byte{{0x01}, refMTH(d[:k]), refMTH(d[k:])}, nil))
		return h[:]
	}
}

// refPath is RFC 6962 §2.1.1's PATH(m, D[n]).
func refPath(m int, d [][]byte) [][]byte {
	n := len(d)
	if n <= 1 {
		return nil
	}
	k := 1
	for k*2 < n {
		k *= 2
	}
	if m < k {
		return append(refPath(m, d[:k]), refMTH(d[k:]))
	}
	return append(refPath(m-k, d[k:]), refMTH(d[:k]))
}

func testLeaves(n int) [][]byte {
	d := make([][]byte, n)
	for i := range d {
		d[i] = []byte(fmt.Sprintf("leaf %d %s", i, strings.Repeat("x", i%7)))
	}
	return d
}

// TestMerkleRootCTVectors: the roots of the certificate-transparency test
// tree (the eight inputs of the C++ and Go implementations' tests) for
// every size from 1 to 8.
func TestMerkleRootCTVectors(t *testing.T) {
	inputs := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var leaves [][32]byte
	var data [][]byte
	for i, in := range inputs {
		b, _ := hex.DecodeString(in)
		data = append(data, b)
		leaves = append(leaves, LeafHash(b))
		if got := MerkleRoot(leaves); hex.EncodeToString(got[:]) != roots[i] {
			t.Errorf("size %d: root %x, want %s", i+1, got, roots[i])
		}
		if got := refMTH(data); hex.EncodeToString(got) != roots[i] {
			t.Errorf("size %d: the reference gives %x, want %s", i+1, got, roots[i])
		}
	}
	if got, want := MerkleRoot(nil), sha256.Sum256(nil); got != want {
		t.Errorf("empty tree %x", got)
	}
}

// TestMerkleRootAgainstReference: the compact range gives RFC 6962's root
// for every size from 0 to 300.
func TestMerkleRootAgainstReference(t *testing.T) {
	d := testLeaves(300)
	var c compactRange
	for n := 0; n <= len(d); n++ {
		if n > 0 {
			c.push(LeafHash(d[n-1]))
		}
		if got := c.root(); !bytes.Equal(got[:], refMTH(d[:n])) {
			t.Fatalf("size %d: root %x, want %x", n, got, refMTH(d[:n]))
		}
	}
}

// TestInclusionProofs: for every index of every tree of 1 to 70 leaves,
// the proof is RFC 6962's PATH and verifies; any change to the leaf, the
// index, the size, the root or a proof hash, or a proof one hash shorter
// or longer, fails.
func TestInclusionProofs(t *testing.T) {
	for n := 1; n <= 70; n++ {
		d := testLeaves(n)
		var root [32]byte
		copy(root[:], refMTH(d))
		for m := range n {
			proof, err := InclusionProof(d, m)
			if err != nil {
				t.Fatal(err)
			}
			want := refPath(m, d)
			if len(proof) != len(want) {
				t.Fatalf("n %d m %d: %d hashes, want %d", n, m, len(proof), len(want))
			}
			for i := range proof {
				if !bytes.Equal(proof[i][:], want[i]) {
					t.Fatalf("n %d m %d: hash %d differs from PATH", n, m, i)
				}
			}
			leaf := LeafHash(d[m])
			if err := VerifyInclusionProof(leaf, uint64(m), uint64(n), proof, root); err != nil {
				t.Fatalf("n %d m %d: %v", n, m, err)
			}
			fails := func(what string, leaf [32]byte, m, n uint64, proof [][32]byte, root [32]byte) {
				if VerifyInclusionProof(leaf, m, n, proof, root) == nil {
					t.Fatalf("n %d m %d: %s verifies", n, m, what)
				}
			}
			other := LeafHash(append(bytes.Clone(d[m]), '!'))
			fails("another leaf", other, uint64(m), uint64(n), proof, root)
			if n > 1 {
				fails("another index", leaf, uint64((m+1)%n), uint64(n), proof, root)
			}
			fails("an index beyond the size", leaf, uint64(n), uint64(n), proof, root)
			badRoot := root
			badRoot[5] ^= 1
			fails("another root", leaf, uint64(m), uint64(n), proof, badRoot)
			for i := range proof {
				p := bytes.Clone(flatten(proof))
				p[32*i+7] ^= 0x10
				fails(fmt.Sprintf("proof hash %d changed", i), leaf, uint64(m), uint64(n), unflatten(p), root)
			}
			if len(proof) > 0 {
				fails("a shorter proof", leaf, uint64(m), uint64(n), proof[:len(proof)-1], root)
			}
			fails("a longer proof", leaf, uint64(m), uint64(n), append(append([][32]byte(nil), proof...), root), root)
		}
	}
	if _, err := InclusionProof(testLeaves(3), 3); err == nil {
		t.Error("a proof for a leaf beyond the batch")
	}
}

func flatten(p [][32]byte) []byte {
	var b []byte
	for _, h := range p {
		b = append(b, h[:]...)
	}
	return b
}

func unflatten(b []byte) [][32]byte {
	p := make([][32]byte, len(b)/32)
	for i := range p {
		copy(p[i][:], b[32*i:])
	}
	return p
}

// batches returns the tree heads of a log and, for each, its batch's lines.
func batches(t testing.TB, l *testLog) (heads [][]byte, lines [][][]byte) {
	t.Helper()
	for i, r := range l.recs {
		if r.Kind != KindTreeHead {
			continue
		}
		th, err := treeHeadOf(&l.recs[i])
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, l.lines[i])
		lines = append(lines, l.lines[th.First-1:th.Seq-1])
	}
	return heads, lines
}

// TestTreeLog: a log with tree heads verifies in both modes, every record
// but the heads is in exactly one batch, and each record's inclusion proof
// verifies against its head, and against no other.
func TestTreeLog(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 40, func(seq uint64) bool { return seq%7 == 3 || seq == 20 })
	for _, all := range []bool{false, true} {
		rep, err := Verify(bytes.NewReader(l.bytes()), s.PublicKey(), VerifyOptions{AllSignatures: all})
		if err != nil {
			t.Fatal(err)
		}
		if rep.TreeHeads == 0 || rep.RootsChecked != rep.TreeHeads || rep.Records != int64(len(l.lines)) {
			t.Fatalf("%+v", rep)
		}
	}
	heads, lines := batches(t, l)
	covered := 0
	for i, head := range heads {
		covered += len(lines[i])
		for j, line := range lines[i] {
			proof, err := InclusionProof(lines[i], j)
			if err != nil {
				t.Fatal(err)
			}
			rec, th, err := VerifyInclusion(line, head, proof, s.PublicKey())
			if err != nil {
				t.Fatalf("head %d record %d: %v", i, j, err)
			}
			if rec.Seq != th.First+uint64(j) {
				t.Fatalf("seq %d", rec.Seq)
			}
			if _, _, err := VerifyInclusion(line, head, proof, testSigner(t, 2).PublicKey()); err == nil {
				t.Fatal("verified under another key")
			}
			if i > 0 {
				if _, _, err := VerifyInclusion(line, heads[i-1], proof, s.PublicKey()); err == nil {
					t.Fatal("verified against another head")
				}
			}
			edited := bytes.Replace(bytes.Clone(line), []byte(`"time_ms":17`), []byte(`"time_ms":27`), 1)
			if !bytes.Equal(edited, line) {
				if _, _, err := VerifyInclusion(edited, head, proof, s.PublicKey()); err == nil {
					t.Fatal("an edited record verified")
				}
			}
		}
	}
	if covered+len(heads) != len(l.lines) {
		t.Fatalf("%d records in batches, %d heads, %d lines", covered, len(heads), len(l.lines))
	}
	if _, err := VerifyRecord(lines[0][1], s.PublicKey()); err == nil || !strings.Contains(err.Error(), "VerifyInclusion") {
		t.Fatalf("VerifyRecord of an unsigned decision: %v", err)
	}
	if _, err := ParseTreeHead(lines[0][0], s.PublicKey()); err == nil {
		t.Fatal("ParseTreeHead of a genesis record")
	}
}

// TestTreeLogTamperAnyByte: changing any byte of a log with tree heads is
// detected, whatever the byte.
func TestTreeLogTamperAnyByte(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 6, func(seq uint64) bool { return seq == 3 })
	data := l.bytes()
	for i := range data {
		for _, x := range []byte{0x01, 0x20} {
			c := bytes.Clone(data)
			c[i] ^= x
			// A small line cap: Verify allocates a read buffer of its size.
			if _, err := Verify(bytes.NewReader(c), s.PublicKey(), VerifyOptions{MaxLineSize: 4 << 10}); err == nil {
				t.Fatalf("byte %d ^ %#x undetected", i, x)
			}
		}
	}
}

// TestChainClosesFullBatches: without CloseBatch, the chain closes a batch
// at MaxBatch records, and the log verifies with every root checked.
func TestChainClosesFullBatches(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 600, never)
	var heads []uint64
	for _, r := range l.recs {
		if r.Kind == KindTreeHead {
			heads = append(heads, r.Seq)
		}
	}
	if want := []uint64{MaxBatch + 1, 2 * (MaxBatch + 1), uint64(len(l.recs))}; fmt.Sprint(heads) != fmt.Sprint(want) {
		t.Fatalf("tree heads at %v, want %v", heads, want)
	}
	rep, err := Verify(bytes.NewReader(l.bytes()), s.PublicKey(), VerifyOptions{})
	if err != nil || rep.RootsChecked != 3 {
		t.Fatalf("%+v %v", rep, err)
	}
	// From the middle of a batch: its head's root cannot be checked, the
	// others are.
	from := uint64(100)
	rep, err = Verify(bytes.NewReader(joinLines(l.lines[from-1:])), s.PublicKey(), VerifyOptions{FromSeq: from, FromHash: sha256.Sum256(l.lines[from-2])})
	if err != nil || rep.TreeHeads != 3 || rep.RootsChecked != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
	if _, _, ok, err := l.chain.CloseBatch(Record{}); ok || err != nil {
		t.Fatalf("closing an empty batch: %v %v", ok, err)
	}
	if _, _, err := l.chain.Append(Record{Kind: KindTreeHead, TimeMS: 1}, true); err == nil {
		t.Fatal("appended a tree head record")
	}
}

// TestLegacyThenTreeHeads: a log of the format before tree heads, continued
// by an enclave that writes tree heads from its boot record on, verifies.
func TestLegacyThenTreeHeads(t *testing.T) {
	s := testSigner(t, 1)
	old := newTestLog(t, s, 10, func(seq uint64) bool { return seq%3 == 0 || seq == 10 })
	l := &testLog{signer: s}
	l.chain = NewChainWith(s, old.chain.Head(), ChainOptions{OnAppend: func(r Record, line []byte) {
		l.recs = append(l.recs, r)
		l.lines = append(l.lines, line)
	}})
	l.appendTree(t, Record{TimeMS: 1_700_000_000_100, Kind: KindBoot, Decision: "started", Summary: "boot\n"})
	for i := 11; i < 20; i++ {
		l.appendTree(t, sampleDecision(i))
	}
	l.closeBatch(t)
	all := append(old.bytes(), l.bytes()...)
	rep, err := Verify(bytes.NewReader(all), s.PublicKey(), VerifyOptions{})
	if err != nil || rep.TreeHeads != 1 || rep.RootsChecked != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	th, err := ParseTreeHead(l.lines[len(l.lines)-1], s.PublicKey())
	if err != nil || th.First != 11 || th.PrevHead != old.chain.Head().Hash {
		t.Fatalf("%+v %v", th, err)
	}
}

// forgeHead re-signs the tree head at index i of l's lines with the audit
// key after fn changed it (as only a faulty enclave could), fixing the
// chain after it, and returns the log.
func forgeHead(t *testing.T, l *testLog, i int, fn func(th *TreeHead)) []byte {
	t.Helper()
	lines := l.copyLines()
	prev := l.recs[i].Prev
	for j := i; j < len(lines); j++ {
		r, err := Unmarshal(lines[j])
		if err != nil {
			t.Fatal(err)
		}
		r.Prev = prev
		if j == i {
			th, err := treeHeadOf(&r)
			if err != nil {
				t.Fatal(err)
			}
			fn(&th)
			r.Summary = th.summary()
		}
		if r.Signed() {
			if err := signRecord(l.signer, &r); err != nil {
				t.Fatal(err)
			}
		}
		lines[j], _ = Marshal(r)
		prev = sha256.Sum256(lines[j])
	}
	return joinLines(lines)
}

// TestBadTreeHeads: a tree head the records do not give, though signed by
// the audit key, is refused as bad_tree_head; one that is not signed by it
// as bad_signature.
func TestBadTreeHeads(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 12, func(seq uint64) bool { return seq == 4 || seq == 9 })
	second := -1
	for i, r := range l.recs {
		if r.Kind == KindTreeHead && i > 5 {
			second = i
			break
		}
	}
	for _, tc := range []struct {
		name string
		fn   func(th *TreeHead)
	}{
		{"root", func(th *TreeHead) { th.Root[0] ^= 1 }},
		{"prev_head", func(th *TreeHead) { th.PrevHead[31] ^= 1 }},
		{"gap", func(th *TreeHead) { th.First++; th.Size-- }},
		{"overlap", func(th *TreeHead) { th.First--; th.Size++ }},
	} {
		data := forgeHead(t, l, second, tc.fn)
		_, err := Verify(bytes.NewReader(data), s.PublicKey(), VerifyOptions{})
		var e *Error
		if !errors.As(err, &e) || e.Kind != BadTreeHead || e.Seq != l.recs[second].Seq {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The same change without re-signing: the head's signature fails.
	lines := l.copyLines()
	r, _ := Unmarshal(lines[second])
	th, _ := treeHeadOf(&r)
	th.Root[0] ^= 1
	r.Summary = th.summary()
	lines[second], _ = Marshal(r)
	_, err := Verify(bytes.NewReader(joinLines(lines[:second+1])), s.PublicKey(), VerifyOptions{})
	var e *Error
	if !errors.As(err, &e) || e.Kind != BadSignature {
		t.Errorf("an edited root: %v", err)
	}
}

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/tree_head_log.jsonl")

// TestTreeHeadVector: the log in testdata/tree_head_log.jsonl (master seed
// 32 bytes of 0x01: genesis, decisions 2 to 5 closed after record 3 and at
// the end) is what the Chain writes, byte for byte, and verifies; its
// heads' roots are the RFC 6962 roots of their batches, recomputed here by
// the reference implementation. docs/audit.md quotes its first head.
func TestTreeHeadVector(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 5, func(seq uint64) bool { return seq == 3 })
	path := filepath.Join("testdata", "tree_head_log.jsonl")
	if *updateVectors {
		if err := os.WriteFile(path, l.bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.bytes(), want) {
		t.Fatalf("the Chain writes another log than %s (go test ./audit -run TestTreeHeadVector -update-vectors)", path)
	}
	if _, err := Verify(bytes.NewReader(want), s.PublicKey(), VerifyOptions{AllSignatures: true}); err != nil {
		t.Fatal(err)
	}
	heads, lines := batches(t, l)
	for i, head := range heads {
		th, err := ParseTreeHead(head, s.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(th.Root[:], refMTH(lines[i])) {
			t.Errorf("head %d: root %x, reference %x", i, th.Root, refMTH(lines[i]))
		}
	}
}

// TestTreeHeadsAndRotation: a rotate record closes the open batch and is in
// none, so every tree's records are in one segment: each segment verifies
// alone with every root checked, and the two in order as one log.
func TestTreeHeadsAndRotation(t *testing.T) {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 5, never) // ends with a tree head
	for i := 6; i <= 8; i++ {
		l.appendTree(t, sampleDecision(i))
	}
	l.appendTree(t, Record{TimeMS: 1_700_000_000_009, Kind: KindRotate, Decision: "rotated", Summary: "rotated\n"})
	rot := len(l.lines)
	if r := l.recs[rot-2]; r.Kind != KindTreeHead {
		t.Fatalf("the record before the rotate record is a %s record", r.Kind)
	}
	for i := 10; i <= 12; i++ {
		l.appendTree(t, sampleDecision(i))
	}
	l.closeBatch(t)
	dir := t.TempDir()
	seg1, seg2 := filepath.Join(dir, "1.log"), filepath.Join(dir, "2.log")
	os.WriteFile(seg1, joinLines(l.lines[:rot]), 0o600)
	os.WriteFile(seg2, joinLines(l.lines[rot:]), 0o600)
	rep, err := VerifyFiles([]string{seg1, seg2}, s.PublicKey(), VerifyOptions{})
	if err != nil || rep.TreeHeads != 3 || rep.RootsChecked != 3 {
		t.Fatalf("%+v %v", rep, err)
	}
	head := Head{Seq: uint64(rot), Hash: sha256.Sum256(l.lines[rot-1])}
	rep, err = VerifyFiles([]string{seg2}, s.PublicKey(), VerifyOptions{FromSeq: head.Seq + 1, FromHash: head.Hash})
	if err != nil || rep.TreeHeads != 1 || rep.RootsChecked != 1 {
		t.Fatalf("the second segment alone: %+v %v", rep, err)
	}
	th, err := ParseTreeHead(l.lines[len(l.lines)-1], s.PublicKey())
	if err != nil || th.First != head.Seq+1 || th.PrevHead != head.Hash {
		t.Fatalf("%+v %v", th, err)
	}
}
