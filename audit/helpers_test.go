package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// testSeed returns a 32-byte master seed made from b.
func testSeed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func testSigner(t testing.TB, b byte) *Signer {
	t.Helper()
	s, err := NewSigner(testSeed(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testLog is a log built with a Chain.
type testLog struct {
	signer *Signer
	chain  *Chain
	lines  [][]byte
	recs   []Record
}

// sampleDecision returns the i-th decision of a test log.
func sampleDecision(i int) Record {
	digest := sha256.Sum256([]byte(fmt.Sprint("request ", i)))
	r := Record{
		TimeMS:        1_700_000_000_000 + int64(i),
		Kind:          KindDecision,
		RequestDigest: digest[:],
		Client:        "ed25519:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
		Key:           "hot-0",
		Summary: fmt.Sprintf("chain: 1 (Ethereum)\nfrom: 0x9858EfFD232B4033E47d90003D41EC34EcaEda94 (hot-0)\n"+
			"to: 0x000000000000000000000000000000000000dEaD \"treasury\"\nvalue: %d.5 ETH\n", i%7),
		Decision:      DecisionSigned,
		Rule:          "",
		PolicyVersion: 3,
		Checkpoint:    uint64(i / 4), // as the enclave stamps it: from 0, never decreasing
	}
	switch i % 5 {
	case 1:
		r.Decision, r.Rule = DecisionRefused, "destination_allowlist"
	case 2:
		r.Decision, r.Approvers = DecisionApproved, []string{"ed25519:aa", "ed25519:bb"}
	}
	return r
}

// newTestLog builds a log of n records: a genesis record, then decisions,
// each signed when sign(seq) says so (the Chain's own rules apply too).
func newTestLog(t testing.TB, s *Signer, n int, sign func(seq uint64) bool) *testLog {
	t.Helper()
	l := &testLog{signer: s, chain: newLegacyChain(s, Head{})}
	l.append(t, Record{TimeMS: 1_700_000_000_000, Kind: KindGenesis, Decision: "created", Summary: "genesis\n"}, true)
	for i := 2; i <= n; i++ {
		l.append(t, sampleDecision(i), sign(uint64(i)))
	}
	return l
}

func allSigned(uint64) bool { return true }

func (l *testLog) append(t testing.TB, r Record, sign bool) {
	t.Helper()
	rec, line, err := l.chain.Append(r, sign)
	if err != nil {
		t.Fatal(err)
	}
	l.recs = append(l.recs, rec)
	l.lines = append(l.lines, line)
}

// bytes is the log file: each line and a newline.
func (l *testLog) bytes() []byte { return joinLines(l.lines) }

func joinLines(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, line := range lines {
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// copyLines returns a deep copy of the log's lines, to tamper with.
func (l *testLog) copyLines() [][]byte {
	out := make([][]byte, len(l.lines))
	for i, line := range l.lines {
		out[i] = bytes.Clone(line)
	}
	return out
}

func (l *testLog) pub() ed25519.PublicKey { return l.signer.PublicKey() }

// relabel re-encodes record i of lines after f changes it, keeping its
// signature (the host cannot sign).
func relabel(t testing.TB, lines [][]byte, i int, f func(*Record)) {
	t.Helper()
	r, err := Unmarshal(lines[i])
	if err != nil {
		t.Fatal(err)
	}
	f(&r)
	line, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	lines[i] = line
}

// resign re-signs record i with s and rechains every later record, re-signing
// the signed ones with s: what a host holding another key could do.
func rechain(t testing.TB, lines [][]byte, from int, s *Signer) {
	t.Helper()
	var prev [32]byte
	if from > 0 {
		prev = sha256.Sum256(lines[from-1])
	}
	for i := from; i < len(lines); i++ {
		r, err := Unmarshal(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		r.Prev = prev
		if r.Signed() {
			if err := signRecord(s, &r); err != nil {
				t.Fatal(err)
			}
		}
		line, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = line
		prev = sha256.Sum256(line)
	}
}

// wantError checks that err is an *Error of kind at seq and line whose
// message contains each of contains.
func wantError(t testing.TB, err error, kind string, seq uint64, line int, contains ...string) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("got %v (%T), want an *Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || e.Seq != seq || e.Line != line {
		t.Fatalf("got %s %d line %d: %v\nwant %s %d line %d", e.Kind, e.Seq, e.Line, err, kind, seq, line)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
	return e
}

// newLegacyChain returns a Chain that writes the format before tree heads:
// no batches, a record signed when asked, when it is not a decision, or
// when the MaxUnsigned records before it are unsigned. The tests of that
// format (which deployed hosts still hold) use it.
func newLegacyChain(s *Signer, from Head) *Chain {
	c := NewChain(s, from)
	c.legacy = true
	return c
}

// signRecord signs r as a Chain signs a record of its kind.
func signRecord(s *Signer, r *Record) error {
	r.Sig = nil
	sig, err := s.signMessage(append([]byte(signaturePrefix(r.Kind)), appendRecord(nil, r, false)...))
	r.Sig = sig
	return err
}

// newTreeLog builds a log in the format with tree heads: a genesis record,
// then decisions 2 to n, the batch closed after each seq closeAfter names
// and at the end (and by the Chain itself when a batch is full).
func newTreeLog(t testing.TB, s *Signer, n int, closeAfter func(seq uint64) bool) *testLog {
	t.Helper()
	l := &testLog{signer: s}
	l.chain = NewChainWith(s, Head{}, ChainOptions{OnAppend: func(r Record, line []byte) {
		l.recs = append(l.recs, r)
		l.lines = append(l.lines, line)
	}})
	l.appendTree(t, Record{TimeMS: 1_700_000_000_000, Kind: KindGenesis, Decision: "created", Summary: "genesis\n"})
	for i := 2; i <= n; i++ {
		l.appendTree(t, sampleDecision(i))
		if closeAfter(l.chain.Head().Seq) {
			l.closeBatch(t)
		}
	}
	l.closeBatch(t)
	return l
}

// appendTree appends r to a log built by newTreeLog (its OnAppend collects
// the lines).
func (l *testLog) appendTree(t testing.TB, r Record) {
	t.Helper()
	if _, _, err := l.chain.Append(r, false); err != nil {
		t.Fatal(err)
	}
}

func (l *testLog) closeBatch(t testing.TB) {
	t.Helper()
	if _, _, _, err := l.chain.CloseBatch(Record{TimeMS: 1_700_000_000_000, PolicyVersion: 3}); err != nil {
		t.Fatal(err)
	}
}

func never(uint64) bool { return false }
