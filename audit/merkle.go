package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"strconv"
	"strings"
)

// Merkle trees over batches of records, as RFC 6962 §2.1 (and RFC 9162
// §2.1) hash them: a leaf is SHA-256(0x00 || line), an interior node
// SHA-256(0x01 || left || right), and a tree of n leaves splits at the
// largest power of two below n. The leaves of a batch are the record lines
// (without newline, sig included) of records First to First+Size-1; the
// tree head record that closes the batch comes right after them and is a
// leaf of no tree.

// MaxBatch is the most records one tree head covers. The enclave closes a
// batch at the latest when it holds MaxBatch records, so that a batch and
// its head fit in one proto.AuditResponse (256 records), and a verifier
// needs to keep only the last MaxBatch leaves to check a root.
const MaxBatch = 255

// TreeHeadPrefix is prepended to a tree head record's canonical encoding
// without its sig member to make the message the audit key signs: a
// signature over a tree head can never be taken for one over a record
// (SignaturePrefix), nor the other way round.
const TreeHeadPrefix = "nitrosign audit tree head v1\n"

// KindTreeHead is the kind of the record that closes a batch: it carries
// the batch's Merkle root and is signed. DecisionClosed is its decision.
const (
	KindTreeHead   = "tree_head"
	DecisionClosed = "closed"
)

// LeafHash returns the RFC 6962 leaf hash of a record line:
// SHA-256(0x00 || line).
func LeafHash(line []byte) [32]byte {
	var out [32]byte
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(line)
	h.Sum(out[:0])
	return out
}

// leafHasher computes leaf hashes without allocating. The digest is
// written to its own sum, not to the caller's out: through the hash.Hash
// interface the compiler cannot tell that Sum keeps no reference, so a
// caller's array passed to it would be moved to the heap, once per leaf.
type leafHasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// leafPrefix is the domain-separation byte of a leaf hash.
var leafPrefix = []byte{0}

func (l *leafHasher) leaf(line []byte, out *[32]byte) {
	if l.h == nil {
		l.h = sha256.New()
	}
	l.h.Reset()
	l.h.Write(leafPrefix)
	l.h.Write(line)
	*out = [32]byte(l.h.Sum(l.sum[:0]))
}

// nodeHash returns SHA-256(0x01 || l || r).
func nodeHash(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// compactRange accumulates the leaves of a tree from its first: it keeps
// the roots of the perfect subtrees its size decomposes into, largest
// first, so that a leaf costs one node hash on average and the root
// O(log n).
type compactRange struct {
	nodes [][32]byte
	size  uint64
}

func (c *compactRange) push(leaf [32]byte) {
	c.nodes = append(c.nodes, leaf)
	for s := c.size; s&1 == 1; s >>= 1 {
		n := len(c.nodes)
		c.nodes[n-2] = nodeHash(c.nodes[n-2], c.nodes[n-1])
		c.nodes = c.nodes[:n-1]
	}
	c.size++
}

// root returns the RFC 6962 Merkle tree hash of the leaves pushed (that of
// the empty tree, SHA-256 of nothing, when there are none).
func (c *compactRange) root() [32]byte {
	if len(c.nodes) == 0 {
		return sha256.Sum256(nil)
	}
	acc := c.nodes[len(c.nodes)-1]
	for i := len(c.nodes) - 2; i >= 0; i-- {
		acc = nodeHash(c.nodes[i], acc)
	}
	return acc
}

func (c *compactRange) reset() {
	c.nodes = c.nodes[:0]
	c.size = 0
}

// MerkleRoot returns the RFC 6962 Merkle tree hash of the given leaf
// hashes.
func MerkleRoot(leaves [][32]byte) [32]byte {
	var c compactRange
	for _, l := range leaves {
		c.push(l)
	}
	return c.root()
}

// splitPoint is the largest power of two below n (n >= 2).
func splitPoint(n int) int {
	return 1 << (bits.Len(uint(n-1)) - 1)
}

// InclusionProof returns the RFC 6962 audit path (RFC 9162 §2.1.3.1) of
// leaf index in the tree of the given batch of record lines: the hashes
// that, with the leaf, recompute the root. The batch is the lines of the
// records a tree head covers (records First to First+Size-1, in order);
// index is the record's seq minus First.
func InclusionProof(batch [][]byte, index int) ([][32]byte, error) {
	if index < 0 || index >= len(batch) {
		return nil, fmt.Errorf("audit: leaf %d outside a batch of %d records", index, len(batch))
	}
	leaves := make([][32]byte, len(batch))
	for i, line := range batch {
		leaves[i] = LeafHash(line)
	}
	return inclusionPath(index, leaves), nil
}

// inclusionPath is RFC 6962's PATH(m, D[n]).
func inclusionPath(m int, leaves [][32]byte) [][32]byte {
	n := len(leaves)
	if n <= 1 {
		return nil
	}
	k := splitPoint(n)
	if m < k {
		return append(inclusionPath(m, leaves[:k]), MerkleRoot(leaves[k:]))
	}
	return append(inclusionPath(m-k, leaves[k:]), MerkleRoot(leaves[:k]))
}

// VerifyInclusionProof checks that leaf is leaf index of a tree of size
// leaves whose root is root, given its audit path: RFC 9162 §2.1.3.2.
func VerifyInclusionProof(leaf [32]byte, index, size uint64, proof [][32]byte, root [32]byte) error {
	if index >= size {
		return fmt.Errorf("audit: leaf %d outside a tree of %d", index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return errors.New("audit: inclusion proof too long")
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return errors.New("audit: inclusion proof too short")
	}
	if r != root {
		return errors.New("audit: inclusion proof does not lead to the tree head's root")
	}
	return nil
}

// TreeHead is what a tree head record states: the batch it closes
// (records First to First+Size-1, so the head itself is record
// First+Size), the Merkle root of their lines, and PrevHead, the hash of
// record First-1: the previous tree head, or for the first batch of an
// enclave run the record the run continued from (all zero at the start of
// a log). The heads of a log thus form a chain of their own: a verifier
// holding only head records (or a witness) can link them.
type TreeHead struct {
	Seq      uint64 // the head record's own sequence number
	First    uint64
	Size     uint64
	Root     [32]byte
	PrevHead [32]byte
}

// summary is the canonical summary of a tree head record: four lines
// "first: N", "size: N", "root: HEX", "prev_head: HEX", each ending in a
// newline, numbers in decimal without leading zeros, hex in lower case.
func (t TreeHead) summary() string {
	b := make([]byte, 0, 180)
	b = append(b, "first: "...)
	b = strconv.AppendUint(b, t.First, 10)
	b = append(b, "\nsize: "...)
	b = strconv.AppendUint(b, t.Size, 10)
	b = append(b, "\nroot: "...)
	b = hex.AppendEncode(b, t.Root[:])
	b = append(b, "\nprev_head: "...)
	b = hex.AppendEncode(b, t.PrevHead[:])
	b = append(b, '\n')
	return string(b)
}

// treeHeadOf checks that rec (whose signature the caller checks) is a
// well-formed tree head record and returns what it states: the summary
// exactly as summary writes it, First+Size equal to its own seq, a size
// from 1 to MaxBatch, decision DecisionClosed and no client, key, rule,
// request digest or approvers.
func treeHeadOf(rec *Record) (TreeHead, error) {
	bad := func(format string, args ...any) (TreeHead, error) {
		return TreeHead{}, fmt.Errorf("audit: record %d: malformed tree head: %s", rec.Seq, fmt.Sprintf(format, args...))
	}
	switch {
	case rec.Kind != KindTreeHead:
		return bad("kind %s", quote(rec.Kind))
	case rec.Decision != DecisionClosed || rec.Client != "" || rec.Key != "" || rec.Rule != "" || len(rec.RequestDigest) != 0 || len(rec.Approvers) != 0:
		return bad("decision must be %q, and client, key, rule, request_digest and approvers empty", DecisionClosed)
	}
	t := TreeHead{Seq: rec.Seq}
	lines := strings.Split(rec.Summary, "\n")
	if len(lines) != 5 || lines[4] != "" {
		return bad("the summary is not four lines")
	}
	field := func(line, name string) (string, bool) {
		return strings.CutPrefix(line, name+": ")
	}
	num := func(s string) (uint64, bool) {
		d := decoder{b: []byte(s)}
		v := d.uint(MaxSafeInteger, "n")
		return v, d.err == nil && d.i == len(s)
	}
	hx := func(s string, dst *[32]byte) bool {
		d := decoder{b: []byte(s)}
		d.hexInto(dst[:])
		return d.err == nil && d.i == len(s)
	}
	var ok1, ok2, ok3, ok4 bool
	if s, ok := field(lines[0], "first"); ok {
		t.First, ok1 = num(s)
	}
	if s, ok := field(lines[1], "size"); ok {
		t.Size, ok2 = num(s)
	}
	if s, ok := field(lines[2], "root"); ok {
		ok3 = hx(s, &t.Root)
	}
	if s, ok := field(lines[3], "prev_head"); ok {
		ok4 = hx(s, &t.PrevHead)
	}
	switch {
	case !(ok1 && ok2 && ok3 && ok4):
		return bad("the summary is not first, size, root and prev_head")
	case t.Summary() != rec.Summary:
		return bad("the summary is not in canonical form")
	case t.Size == 0 || t.Size > MaxBatch:
		return bad("size %d outside 1..%d", t.Size, MaxBatch)
	case t.First == 0 || t.First+t.Size != rec.Seq:
		return bad("records %d to %d do not end right before the head (seq %d)", t.First, t.First+t.Size-1, rec.Seq)
	}
	return t, nil
}

// Summary returns the tree head record's summary text.
func (t TreeHead) Summary() string { return t.summary() }

// Last is the sequence number of the batch's last record.
func (t TreeHead) Last() uint64 { return t.First + t.Size - 1 }

// ParseTreeHead checks a tree head record line on its own (canonical,
// signed by pub under TreeHeadPrefix, well formed) and returns what it
// states. The root is checked against the records by Verify, or against
// one record by VerifyInclusion.
func ParseTreeHead(line []byte, pub ed25519.PublicKey) (TreeHead, error) {
	rec, err := VerifyRecord(line, pub)
	if err != nil {
		return TreeHead{}, err
	}
	if rec.Kind != KindTreeHead {
		return TreeHead{}, fmt.Errorf("audit: record %d is a %s record, not a tree head", rec.Seq, quote(rec.Kind))
	}
	return treeHeadOf(&rec)
}

// VerifyInclusion checks one record line against a signed tree head
// record line and the record's inclusion proof (InclusionProof over the
// head's batch): that the head is signed by pub, that the record's seq is
// in the head's batch, and that the proof leads from the record's leaf
// hash to the head's root. It is how a client checks the record of its
// own answer without the whole log; the record's position (seq, prev) is
// part of its line, so the proof also fixes where it stands.
func VerifyInclusion(line, head []byte, proof [][32]byte, pub ed25519.PublicKey) (Record, TreeHead, error) {
	t, err := ParseTreeHead(head, pub)
	if err != nil {
		return Record{}, TreeHead{}, err
	}
	rec, err := Unmarshal(line)
	if err != nil {
		return Record{}, TreeHead{}, err
	}
	if rec.Seq < t.First || rec.Seq > t.Last() {
		return Record{}, TreeHead{}, fmt.Errorf("audit: record %d is not in the batch of tree head %d (records %d to %d)", rec.Seq, t.Seq, t.First, t.Last())
	}
	if err := VerifyInclusionProof(LeafHash(line), rec.Seq-t.First, t.Size, proof, t.Root); err != nil {
		return Record{}, TreeHead{}, fmt.Errorf("audit: record %d in tree head %d: %s", rec.Seq, t.Seq, strings.TrimPrefix(err.Error(), "audit: "))
	}
	return rec, t, nil
}
