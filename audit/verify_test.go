package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// modes are the two ways of checking signatures; every case must give the
// same answer in both.
var modes = []struct {
	name string
	opts VerifyOptions
}{
	{"checkpoints", VerifyOptions{}},
	{"all_signatures", VerifyOptions{AllSignatures: true, Workers: 3}},
}

// verifyBoth verifies data in both modes, checks that they agree, and
// returns the first mode's answer.
func verifyBoth(t *testing.T, data []byte, l *testLog, opts VerifyOptions) (*Report, error) {
	t.Helper()
	var reps []*Report
	var errs []error
	for _, m := range modes {
		o := opts
		o.AllSignatures, o.Workers = m.opts.AllSignatures, m.opts.Workers
		rep, err := Verify(bytes.NewReader(data), l.pub(), o)
		if rep != nil {
			rep.SignaturesChecked = 0
		}
		reps, errs = append(reps, rep), append(errs, err)
	}
	if errString(errs[0]) != errString(errs[1]) {
		t.Fatalf("the modes disagree:\n%s: %v\n%s: %v", modes[0].name, errs[0], modes[1].name, errs[1])
	}
	if (reps[0] == nil) != (reps[1] == nil) || reps[0] != nil && !sameReport(reps[0], reps[1]) {
		t.Fatalf("the modes disagree: %+v, %+v", reps[0], reps[1])
	}
	return reps[0], errs[0]
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sameReport(a, b *Report) bool {
	return a.Records == b.Records && a.FirstSeq == b.FirstSeq && a.LastSeq == b.LastSeq && a.Head == b.Head &&
		a.Signed == b.Signed && a.Rotated == b.Rotated && slices.Equal(a.Segments, b.Segments) &&
		reflect.DeepEqual(a.Warnings, b.Warnings) && a.WarningsOmitted == b.WarningsOmitted
}

// logs used by the tampering cases: 12 records, all signed or signed at
// seq 1, 4, 8, 12.
func signedLog(t testing.TB) *testLog { return newTestLog(t, testSigner(t, 1), 12, allSigned) }

func checkpointLog(t testing.TB) *testLog {
	return newTestLog(t, testSigner(t, 1), 12, func(seq uint64) bool { return seq%4 == 0 })
}

type tamperCase struct {
	name     string
	log      func(testing.TB) *testLog
	tamper   func(t testing.TB, l *testLog, lines [][]byte) [][]byte
	opts     func(l *testLog) VerifyOptions
	raw      func(data []byte) []byte // applied to the joined bytes
	kind     string
	seq      uint64
	line     int
	contains string
}

func tamperCases() []tamperCase {
	edit := func(i int, f func(*Record)) func(testing.TB, *testLog, [][]byte) [][]byte {
		return func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			relabel(t, lines, i, f)
			return lines
		}
	}
	replace := func(i int, old, new string) func(testing.TB, *testLog, [][]byte) [][]byte {
		return func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			if !bytes.Contains(lines[i], []byte(old)) {
				t.Fatalf("line %d has no %q", i+1, old)
			}
			lines[i] = bytes.Replace(lines[i], []byte(old), []byte(new), 1)
			return lines
		}
	}
	// fork returns the log's first n lines followed by a branch continuing
	// from record at: a boot record and decisions up to seq to.
	fork := func(t testing.TB, l *testLog, lines [][]byte, n int, at, to uint64) [][]byte {
		c := newLegacyChain(l.signer, Head{Seq: at, Hash: sha256.Sum256(l.lines[at-1])})
		out := lines[:n]
		for seq := at + 1; seq <= to; seq++ {
			r := Record{TimeMS: 1_700_000_100_000, Kind: KindBoot, Decision: "booted"}
			if seq > at+1 {
				r = sampleDecision(int(seq) + 100)
			}
			_, line, err := c.Append(r, true)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, line)
		}
		return out
	}
	other := func(t testing.TB) *Signer { return testSigner(t, 2) }
	return []tamperCase{
		{name: "edited summary", log: signedLog, tamper: edit(4, func(r *Record) { r.Summary = "value: 0 ETH\n" }),
			kind: Edited, seq: 5, line: 5, contains: "its signature does not verify"},
		{name: "edited decision", log: signedLog, tamper: edit(4, func(r *Record) { r.Decision = DecisionRefused }),
			kind: Edited, seq: 5, line: 5},
		{name: "edited rule", log: signedLog, tamper: edit(5, func(r *Record) { r.Rule = "" }),
			kind: Edited, seq: 6, line: 6},
		{name: "edited checkpoint", log: signedLog, tamper: edit(8, func(r *Record) { r.Checkpoint++ }),
			kind: Edited, seq: 9, line: 9, contains: "its signature does not verify"},
		{name: "removed checkpoint", log: signedLog, tamper: edit(8, func(r *Record) { r.Checkpoint = 0 }),
			kind: Edited, seq: 9, line: 9},
		{name: "edited approvers", log: signedLog, tamper: edit(6, func(r *Record) { r.Approvers = []string{"ed25519:cc", "ed25519:bb"} }),
			kind: Edited, seq: 7, line: 7},
		{name: "edited prev", log: signedLog, tamper: edit(6, func(r *Record) { r.Prev[0] ^= 1 }),
			kind: Edited, seq: 7, line: 7, contains: "nothing authenticates it"},
		{name: "edited whitespace", log: signedLog, tamper: replace(4, `"seq":5`, `"seq": 5`),
			kind: Malformed, seq: 5, line: 5, contains: "the line is JSON, but not a canonical record"},
		{name: "edited escape", log: signedLog, tamper: replace(4, `(Ethereum)\n`, `(Ethereum)\u000a`),
			kind: Malformed, seq: 5, line: 5},
		{name: "deleted line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return slices.Delete(lines, 5, 6) },
			kind: Missing, seq: 6, line: 6, contains: "record 6 is missing: record 7 follows record 5"},
		{name: "deleted lines", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return slices.Delete(lines, 5, 8) },
			kind: Missing, seq: 6, line: 6, contains: "records 6 to 8 are missing"},
		{name: "deleted first line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return lines[1:] },
			kind: Missing, seq: 1, line: 1},
		{name: "swapped lines", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			lines[4], lines[5] = lines[5], lines[4]
			return lines
		}, kind: Reordered, seq: 6, line: 5, contains: "record 6 comes before record 5, which is at line 6"},
		{name: "moved line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			moved := lines[2]
			return slices.Insert(slices.Delete(lines, 2, 3), 9, moved)
		}, kind: Reordered, seq: 4, line: 3},
		{name: "duplicated line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			return slices.Insert(lines, 5, bytes.Clone(lines[4]))
		}, kind: Reordered, seq: 5, line: 6, contains: "duplicate of line 5"},
		{name: "duplicated last line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			return append(lines, bytes.Clone(lines[11]))
		}, kind: Reordered, seq: 12, line: 13},
		{name: "truncated tail against the known head", log: signedLog,
			tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return lines[:9] },
			opts:   func(l *testLog) VerifyOptions { h := l.chain.Head(); return VerifyOptions{ExpectHead: &h} },
			kind:   Missing, seq: 10, line: 10, contains: "before the known head 12"},
		{name: "truncated to nothing against the known head", log: signedLog,
			tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return nil },
			opts:   func(l *testLog) VerifyOptions { h := l.chain.Head(); return VerifyOptions{ExpectHead: &h} },
			kind:   Missing, seq: 1, line: 1},
		{name: "fork appended", log: signedLog, tamper: func(t testing.TB, l *testLog, lines [][]byte) [][]byte {
			return fork(t, l, lines, 8, 5, 7)
		}, kind: Forked, seq: 6, line: 9, contains: "differs from the authentic record 6 at line 6"},
		{name: "fork spliced", log: signedLog, tamper: func(t testing.TB, l *testLog, lines [][]byte) [][]byte {
			b := fork(t, l, slices.Clone(lines), 5, 5, 7)
			return append(lines[:6], b[6])
		}, kind: Forked, seq: 7, line: 7, contains: "continues from a different record 6"},
		{name: "fork against the known head", log: signedLog, tamper: func(t testing.TB, l *testLog, lines [][]byte) [][]byte {
			return fork(t, l, lines, 5, 5, 7)
		}, opts: func(l *testLog) VerifyOptions {
			return VerifyOptions{ExpectHead: &Head{Seq: 7, Hash: sha256.Sum256(l.lines[6])}}
		}, kind: Forked, seq: 7, line: 7, contains: "the known head has"},
		{name: "forged signature on the last record", log: signedLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			relabel(t, lines, 11, func(r *Record) { r.Decision = DecisionRefused })
			rechain(t, lines, 11, other(t))
			return lines
		}, kind: BadSignature, seq: 12, line: 12},
		{name: "edited last record", log: signedLog, tamper: edit(11, func(r *Record) { r.Summary = "" }),
			kind: BadSignature, seq: 12, line: 12},
		{name: "forged record appended", log: signedLog, tamper: func(t testing.TB, l *testLog, lines [][]byte) [][]byte {
			c := newLegacyChain(other(t), l.chain.Head())
			_, line, err := c.Append(sampleDecision(13), true)
			if err != nil {
				t.Fatal(err)
			}
			return append(lines, line)
		}, kind: BadSignature, seq: 13, line: 13},
		{name: "garbage signature mid-log", log: signedLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			relabel(t, lines, 4, func(r *Record) { r.Sig = bytes.Repeat([]byte{7}, 64) })
			return lines
		}, kind: Edited, seq: 5, line: 5},
		{name: "signed by another key", log: signedLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			rechain(t, lines, 0, other(t))
			return lines
		}, kind: BadSignature, seq: 1, line: 1, contains: "signed by another key"},
		{name: "rewritten from record 3 with another key", log: signedLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			relabel(t, lines, 2, func(r *Record) { r.Decision = DecisionSigned })
			rechain(t, lines, 2, other(t))
			return lines
		}, kind: BadSignature, seq: 3, line: 3},
		{name: "first problem wins", log: signedLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			rechain(t, lines, 2, other(t))
			return slices.Delete(lines, 9, 10)
		}, kind: BadSignature, seq: 3, line: 3},
		{name: "line over the cap", log: signedLog, opts: func(*testLog) VerifyOptions { return VerifyOptions{MaxLineSize: 200} },
			kind: Malformed, seq: 1, line: 1, contains: "longer than 200 bytes"},
		{name: "line over the default cap", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			lines[2] = bytes.Repeat([]byte("x"), MaxRecordSize+1)
			return lines
		}, kind: Malformed, seq: 3, line: 3, contains: "longer than 4194304 bytes"},
		{name: "garbage line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			lines[3] = []byte("hello, auditor")
			return lines
		}, kind: Malformed, seq: 4, line: 4},
		{name: "binary garbage", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			lines[3] = []byte("\x00\xff\xfe{\"")
			return lines
		}, kind: Malformed, seq: 4, line: 4},
		{name: "empty line", log: signedLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			return slices.Insert(lines, 3, []byte{})
		}, kind: Malformed, seq: 4, line: 4},
		{name: "torn last line", log: signedLog, raw: func(b []byte) []byte { return b[:len(b)-1] },
			kind: Malformed, seq: 12, line: 12, contains: "no newline"},
		{name: "half a line", log: signedLog, raw: func(b []byte) []byte { return b[:len(b)-100] },
			kind: Malformed, seq: 12, line: 12},
		{name: "crlf", log: signedLog, raw: func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) },
			kind: Malformed, seq: 1, line: 1},
		{name: "wrong start hash", log: signedLog,
			tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return lines[5:] },
			opts:   func(*testLog) VerifyOptions { return VerifyOptions{FromSeq: 6, FromHash: [32]byte{1}} },
			kind:   Forked, seq: 6, line: 1, contains: "does not continue from the given start"},
		{name: "wrong start seq", log: signedLog,
			tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return lines[5:] },
			opts:   func(l *testLog) VerifyOptions { return VerifyOptions{FromSeq: 5, FromHash: sha256.Sum256(l.lines[3])} },
			kind:   Missing, seq: 5, line: 1},
		{name: "record before the start", log: signedLog,
			tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return lines[4:] },
			opts:   func(l *testLog) VerifyOptions { return VerifyOptions{FromSeq: 6, FromHash: sha256.Sum256(l.lines[4])} },
			kind:   Reordered, seq: 5, line: 1, contains: "before the log's start"},

		// Logs signed at checkpoints.
		{name: "unsigned record edited", log: checkpointLog, tamper: edit(4, func(r *Record) { r.Summary = "" }),
			kind: Edited, seq: 5, line: 5, contains: "which is authentic"},
		{name: "unsigned record before a signed one edited", log: checkpointLog, tamper: edit(6, func(r *Record) { r.Decision = DecisionSigned }),
			kind: Edited, seq: 7, line: 7},
		{name: "unsigned record's prev edited", log: checkpointLog, tamper: edit(5, func(r *Record) { r.Prev[31] ^= 0x80 }),
			kind: Edited, seq: 6, line: 6, contains: "nothing authenticates it"},
		{name: "unsigned record deleted", log: checkpointLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return slices.Delete(lines, 5, 6) },
			kind: Missing, seq: 6, line: 6},
		{name: "unsigned record duplicated", log: checkpointLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte {
			return slices.Insert(lines, 6, bytes.Clone(lines[5]))
		}, kind: Reordered, seq: 6, line: 7},
		{name: "unsigned tail", log: checkpointLog, tamper: func(_ testing.TB, _ *testLog, lines [][]byte) [][]byte { return lines[:10] },
			kind: Unsigned, seq: 9, line: 9, contains: "records 9 to 10 follow the last signed record"},
		{name: "unsigned record appended", log: checkpointLog, tamper: func(t testing.TB, l *testLog, lines [][]byte) [][]byte {
			r := sampleDecision(13)
			r.Seq, r.Prev = 13, l.chain.Head().Hash
			line, err := Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			return append(lines, line)
		}, kind: Unsigned, seq: 13, line: 13},
		{name: "unsigned copy with another seq's content", log: checkpointLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			dup := [][]byte{bytes.Clone(lines[5])}
			relabel(t, dup, 0, func(r *Record) { r.Rule = "none" })
			return append(lines, dup[0])
		}, kind: Edited, seq: 6, line: 13, contains: "nothing authenticates it"},
		{name: "checkpoint log signed by another key", log: checkpointLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			rechain(t, lines, 0, other(t))
			return lines
		}, kind: BadSignature, seq: 1, line: 1},
		{name: "checkpoint log rewritten from record 5", log: checkpointLog, tamper: func(t testing.TB, _ *testLog, lines [][]byte) [][]byte {
			relabel(t, lines, 4, func(r *Record) { r.Summary = "" })
			rechain(t, lines, 4, other(t))
			return lines
		}, kind: BadSignature, seq: 8, line: 8},
	}
}

func TestVerifyTampering(t *testing.T) {
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.log(t)
			lines := l.copyLines()
			if tc.tamper != nil {
				lines = tc.tamper(t, l, lines)
			}
			data := joinLines(lines)
			if tc.raw != nil {
				data = tc.raw(data)
			}
			var opts VerifyOptions
			if tc.opts != nil {
				opts = tc.opts(l)
			}
			rep, err := verifyBoth(t, data, l, opts)
			if err == nil {
				t.Fatalf("accepted: %+v", rep)
			}
			if rep != nil {
				t.Fatal("a report with an error")
			}
			e := wantError(t, err, tc.kind, tc.seq, tc.line, tc.contains)
			if e.Path != "" || !errors.Is(err, e.Err) {
				t.Fatalf("path %q", e.Path)
			}
		})
	}
}

func TestVerifyTruncatedWithoutKnownHead(t *testing.T) {
	l := signedLog(t)
	rep, err := verifyBoth(t, joinLines(l.lines[:9]), l, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 9 || rep.Head != (Head{Seq: 9, Hash: sha256.Sum256(l.lines[8])}) {
		t.Fatalf("report %+v", rep)
	}
	// Against a known head that is not the end, the log may go on.
	h := Head{Seq: 9, Hash: sha256.Sum256(l.lines[8])}
	if _, err := verifyBoth(t, l.bytes(), l, VerifyOptions{ExpectHead: &h}); err != nil {
		t.Fatal(err)
	}
	h.Hash[0] ^= 1
	_, err = verifyBoth(t, l.bytes(), l, VerifyOptions{ExpectHead: &h})
	wantError(t, err, Forked, 9, 9)
}

func TestVerifyValid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		l      *testLog
		signed int64
	}{
		{"all signed", signedLog(t), 12},
		{"checkpoints", checkpointLog(t), 4},
		{"one record", newTestLog(t, testSigner(t, 1), 1, allSigned), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.l.chain.Head()
			for _, m := range modes {
				opts := m.opts
				opts.ExpectHead = &head
				rep, err := Verify(bytes.NewReader(tc.l.bytes()), tc.l.pub(), opts)
				if err != nil {
					t.Fatal(err)
				}
				n := int64(len(tc.l.lines))
				want := Report{Records: n, FirstSeq: 1, LastSeq: uint64(n), Head: head, Signed: tc.signed, Segments: rep.Segments}
				if !sameReport(rep, &want) {
					t.Fatalf("%s: report %+v, want %+v", m.name, rep, want)
				}
				if m.opts.AllSignatures && rep.SignaturesChecked != tc.signed || !m.opts.AllSignatures && rep.SignaturesChecked != 1 {
					t.Errorf("%s: %d signatures checked", m.name, rep.SignaturesChecked)
				}
				if len(rep.Segments) != 1 || rep.Segments[0] != (Segment{Records: n, FirstSeq: 1, Head: head}) {
					t.Errorf("segments %+v", rep.Segments)
				}
			}
		})
	}
}

func TestVerifyEmpty(t *testing.T) {
	l := signedLog(t)
	rep, err := Verify(strings.NewReader(""), l.pub(), VerifyOptions{})
	if err != nil || rep.Records != 0 || rep.Head != (Head{}) || rep.FirstSeq != 0 {
		t.Fatalf("%+v, %v", rep, err)
	}
	from := Head{Seq: 4, Hash: sha256.Sum256(l.lines[3])}
	rep, err = Verify(strings.NewReader(""), l.pub(), VerifyOptions{FromSeq: 5, FromHash: from.Hash, ExpectHead: &from})
	if err != nil || rep.Head != from {
		t.Fatalf("%+v, %v", rep, err)
	}
	other := Head{Seq: 4, Hash: [32]byte{9}}
	_, err = Verify(strings.NewReader(""), l.pub(), VerifyOptions{FromSeq: 5, FromHash: from.Hash, ExpectHead: &other})
	wantError(t, err, Forked, 4, 0, "the known head has")
}

// TestVerifyCheckpointWindows crosses several checkpoints: a log verifies
// with a handful of signature checks, and a rewrite deep in it is found at
// its first record.
func TestVerifyCheckpointWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("long log")
	}
	s := testSigner(t, 1)
	l := newTestLog(t, s, 3000, func(seq uint64) bool { return seq%3 == 0 })
	rep, err := verifyBoth(t, l.bytes(), l, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 3000 || rep.Signed != 1001 {
		t.Fatalf("report %+v", rep)
	}
	quick, err := Verify(bytes.NewReader(l.bytes()), l.pub(), VerifyOptions{})
	if err != nil || quick.SignaturesChecked > 4 {
		t.Fatalf("%d signatures checked, %v", quick.SignaturesChecked, err)
	}
	lines := l.copyLines()
	rechain(t, lines, 1999, testSigner(t, 2))
	_, err = verifyBoth(t, joinLines(lines), l, VerifyOptions{})
	wantError(t, err, BadSignature, 2001, 2001)
}

func TestVerifyOptionsRefused(t *testing.T) {
	l := signedLog(t)
	for _, tc := range []struct {
		name string
		pub  []byte
		opts VerifyOptions
		want string
	}{
		{"short key", l.pub()[:31], VerifyOptions{}, "public key of 31 bytes"},
		{"hash without seq", l.pub(), VerifyOptions{FromHash: [32]byte{1}}, "FromHash must be zero"},
		{"head before start", l.pub(), VerifyOptions{FromSeq: 5, FromHash: [32]byte{1}, ExpectHead: &Head{Seq: 3}}, "before the log's start"},
		{"negative cap", l.pub(), VerifyOptions{MaxLineSize: -1}, "negative"},
		{"seq too large", l.pub(), VerifyOptions{FromSeq: MaxSafeInteger + 1}, "above"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(l.bytes()), tc.pub, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, ok := err.(*Error); ok {
				t.Fatal("a usage error reported as a log problem")
			}
		})
	}
	if _, err := VerifyFiles(nil, l.pub(), VerifyOptions{}); err == nil {
		t.Fatal("no files accepted")
	}
}

func TestVerifyReadError(t *testing.T) {
	l := signedLog(t)
	boom := errors.New("disk on fire")
	r := iotest.TimeoutReader(bytes.NewReader(l.bytes()))
	_, err := Verify(r, l.pub(), VerifyOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "audit: reading the log") {
		t.Fatalf("error %v", err)
	}
	_, err = Verify(iotest.ErrReader(boom), l.pub(), VerifyOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if _, ok := err.(*Error); ok {
		t.Fatal("an I/O error reported as a log problem")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Seq: 5, Line: 7, Kind: Edited, Err: errors.New("audit: record 5 was changed")}
	if got, want := e.Error(), "audit: line 7 (seq 5): edited: record 5 was changed"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	e.Path = "seg.log"
	if got, want := e.Error(), "audit: seg.log:7 (seq 5): edited: record 5 was changed"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// rotatedLog builds a log of 30 records rotated after records 10 and 20,
// written to three files.
func rotatedLog(t *testing.T) (*testLog, []string) {
	s := testSigner(t, 1)
	l := &testLog{signer: s, chain: newLegacyChain(s, Head{})}
	l.append(t, Record{TimeMS: 1, Kind: KindGenesis, Decision: "created"}, true)
	for seq := 2; seq <= 30; seq++ {
		if seq%10 == 0 && seq < 30 {
			l.append(t, Record{TimeMS: int64(seq), Kind: KindRotate, Decision: "rotated", Summary: "segment ends\n"}, false)
			continue
		}
		l.append(t, sampleDecision(seq), seq%4 == 0 || seq == 30)
	}
	dir := t.TempDir()
	var paths []string
	for i, name := range []string{"audit-1.log", "audit-11.log", "audit.log"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, joinLines(l.lines[10*i:10*i+10]), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return l, paths
}

func TestVerifyFiles(t *testing.T) {
	l, paths := rotatedLog(t)
	head := l.chain.Head()
	for _, m := range modes {
		rep, err := VerifyFiles(paths, l.pub(), m.opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Records != 30 || rep.Head != head || rep.Rotated || len(rep.Segments) != 3 {
			t.Fatalf("report %+v", rep)
		}
		for i, seg := range rep.Segments {
			want := Segment{Path: paths[i], Records: 10, FirstSeq: uint64(10*i + 1), Head: Head{Seq: uint64(10*i + 10), Hash: sha256.Sum256(l.lines[10*i+9])}}
			if seg != want {
				t.Fatalf("segment %d: %+v, want %+v", i, seg, want)
			}
		}
	}
	// The concatenation is the same log.
	if rep, err := Verify(bytes.NewReader(l.bytes()), l.pub(), VerifyOptions{}); err != nil || rep.Head != head {
		t.Fatalf("concatenated: %+v, %v", rep, err)
	}
	// A segment alone, continuing from the previous one's head.
	prev := Head{Seq: 10, Hash: sha256.Sum256(l.lines[9])}
	segHead := Head{Seq: 20, Hash: sha256.Sum256(l.lines[19])}
	rep, err := VerifyFiles(paths[1:2], l.pub(), VerifyOptions{FromSeq: prev.Seq + 1, FromHash: prev.Hash, ExpectHead: &segHead})
	if err != nil || !rep.Rotated || rep.Head != segHead {
		t.Fatalf("one segment: %+v, %v", rep, err)
	}
	// The first two segments, a closed range, against the second's head.
	if _, err := VerifyFiles(paths[:2], l.pub(), VerifyOptions{ExpectHead: &segHead}); err != nil {
		t.Fatal(err)
	}
	// The live segment may be empty just after a rotation.
	empty := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = VerifyFiles([]string{paths[0], paths[1], empty}, l.pub(), VerifyOptions{})
	if err != nil || rep.Head != segHead || rep.Segments[2].Records != 0 || rep.Segments[2].Head != segHead {
		t.Fatalf("empty live segment: %+v, %v", rep, err)
	}

	truncated := filepath.Join(t.TempDir(), "audit-11.log")
	if err := os.WriteFile(truncated, joinLines(l.lines[10:19]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		paths []string
		opts  VerifyOptions
		kind  string
		seq   uint64
		path  string
		line  int
	}{
		{"missing middle segment", []string{paths[0], paths[2]}, VerifyOptions{}, Missing, 11, paths[2], 1},
		{"missing first segment", paths[1:], VerifyOptions{}, Missing, 1, paths[1], 1},
		{"missing last segment", paths[:2], VerifyOptions{}, Missing, 21, paths[1], 11},
		{"missing last segment against the known head", paths[:2], VerifyOptions{ExpectHead: &head}, Missing, 21, paths[1], 11},
		{"segments out of order", []string{paths[0], paths[2], paths[1]}, VerifyOptions{}, Reordered, 21, paths[2], 1},
		{"segment truncated", []string{paths[0], truncated, paths[2]}, VerifyOptions{}, Missing, 20, truncated, 10},
		{"segment repeated", []string{paths[0], paths[1], paths[1], paths[2]}, VerifyOptions{}, Reordered, 11, paths[1], 1},
		{"empty middle file", []string{paths[0], empty, paths[1], paths[2]}, VerifyOptions{}, Missing, 11, empty, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range modes {
				opts := tc.opts
				opts.AllSignatures = m.opts.AllSignatures
				_, err := VerifyFiles(tc.paths, l.pub(), opts)
				e := wantError(t, err, tc.kind, tc.seq, tc.line)
				if e.Path != tc.path {
					t.Fatalf("path %s, want %s (%v)", e.Path, tc.path, err)
				}
			}
		})
	}
	if _, err := VerifyFiles([]string{paths[0], filepath.Join(t.TempDir(), "nope")}, l.pub(), VerifyOptions{}); err == nil ||
		!strings.HasPrefix(err.Error(), "audit: reading ") {
		t.Fatalf("missing file: %v", err)
	}
}
