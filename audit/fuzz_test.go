package audit

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// FuzzUnmarshal: Unmarshal never panics; whatever it accepts re-marshals to
// the same bytes; the verifier's fast parse agrees with it; and the grammar
// alone refuses non-canonical lines (the re-encode check never has to).
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := Unmarshal(line)
		var p parsed
		fastErr := parseLine(line, &p, false)
		if len(line) <= MaxRecordSize && errString(err) != errString(fastErr) {
			t.Fatalf("Unmarshal: %v\nfast parse: %v", err, fastErr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			if strings.Contains(err.Error(), "re-encodes") {
				t.Fatalf("only the re-encode check refused %q: %v", line, err)
			}
			return
		}
		again, err := Marshal(r)
		if err != nil {
			t.Fatalf("accepted %q, but Marshal refuses it: %v", line, err)
		}
		if !bytes.Equal(again, line) {
			t.Fatalf("accepted a non-canonical line:\n  in %q\n out %q", line, again)
		}
		if r.Hash() != sha256.Sum256(line) {
			t.Fatal("Hash is not the hash of the line")
		}
		if p.signed != r.Signed() || p.rec.Seq != r.Seq || p.rec.Prev != r.Prev || p.rec.Kind != r.Kind || p.rec.Checkpoint != r.Checkpoint || p.rec.Unacknowledged != r.Unacknowledged {
			t.Fatal("the fast parse reads other values")
		}
	})
}

// FuzzVerify: Verify never panics; both ways of checking signatures give
// the same answer; problems are *Errors; and an accepted log is canonical
// lines whose report matches them.
func FuzzVerify(f *testing.F) {
	pub := testSigner(f, 1).PublicKey() // the test logs' key
	f.Fuzz(func(t *testing.T, data []byte) {
		var errs [2]error
		var reps [2]*Report
		for i, all := range []bool{false, true} {
			reps[i], errs[i] = Verify(bytes.NewReader(data), pub, VerifyOptions{MaxLineSize: 64 << 10, AllSignatures: all, Workers: 2})
			if (reps[i] == nil) == (errs[i] == nil) {
				t.Fatalf("report %v and error %v", reps[i], errs[i])
			}
		}
		if errString(errs[0]) != errString(errs[1]) {
			t.Fatalf("the modes disagree:\n%v\n%v", errs[0], errs[1])
		}
		if errs[0] != nil {
			e, ok := errs[0].(*Error)
			if !ok || e.Err == nil || e.Line < 1 {
				t.Fatalf("error %#v", errs[0])
			}
			return
		}
		if !sameReport(reps[0], reps[1]) {
			t.Fatalf("the modes disagree: %+v, %+v", reps[0], reps[1])
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if int64(len(lines)) != reps[0].Records {
			t.Fatalf("%d lines, %d records", len(lines), reps[0].Records)
		}
		var head Head
		for i, line := range lines {
			line = bytes.TrimSuffix(line, []byte("\n"))
			r, err := Unmarshal(line)
			if err != nil {
				t.Fatalf("line %d accepted by Verify, refused by Unmarshal: %v", i+1, err)
			}
			again, err := Marshal(r)
			if err != nil || !bytes.Equal(again, line) {
				t.Fatalf("line %d does not re-marshal identically: %v", i+1, err)
			}
			if r.Seq != uint64(i+1) || r.Prev != head.Hash {
				t.Fatalf("line %d: seq %d, prev %x", i+1, r.Seq, r.Prev)
			}
			head = Head{Seq: r.Seq, Hash: sha256.Sum256(line)}
		}
		if reps[0].Head != head {
			t.Fatalf("report head %v, want %v", reps[0].Head, head)
		}
	})
}

// seedUnmarshal returns named seeds for FuzzUnmarshal: the golden line, the
// lines of a test log, and the refused near misses.
func seedUnmarshal(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{"valid_golden": []byte(goldenLine)}
	l := newTestLog(t, testSigner(t, 1), 6, func(seq uint64) bool { return seq%2 == 0 })
	for i, line := range l.lines {
		seeds["valid_log_line_"+string(rune('1'+i))] = line
	}
	r := goldenRecord
	r.Summary = "a\"b\\c\x00\x01\b\t\n\f\r\x1f\x7f€\u2028<>&/"
	line, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	seeds["valid_escapes"] = line
	seeds["valid_checkpoint"] = []byte(goldenCheckpointLine)
	for _, tc := range unmarshalRefuseCases() {
		seeds["bad_"+tc.name] = []byte(tc.line)
	}
	return seeds
}

// seedVerify returns named seeds for FuzzVerify: small valid logs and every
// tampering case of TestVerifyTampering (small enough to keep).
func seedVerify(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"valid_signed":      signedLog(t).bytes(),
		"valid_checkpoints": checkpointLog(t).bytes(),
		"valid_empty":       {},
		"valid_rollback":    rollbackLog(t).bytes(),
	}
	for _, tc := range tamperCases() {
		l := tc.log(t)
		lines := l.copyLines()
		if tc.tamper != nil {
			lines = tc.tamper(t, l, lines)
		}
		data := joinLines(lines)
		if tc.raw != nil {
			data = tc.raw(data)
		}
		if len(data) > 16<<10 {
			continue // keep the corpus small
		}
		seeds["bad_"+tc.name] = data
	}
	return seeds
}

var corpora = map[string]func(testing.TB) map[string][]byte{
	"FuzzUnmarshal": seedUnmarshal,
	"FuzzVerify":    seedVerify,
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./audit -run TestSeedCorpus -update-corpus. Files that are not
// seeds (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range corpora {
		fuzzseed.Sync(t, target, "seed_", '_', seeds(t), *updateCorpus, "go test ./audit -run TestSeedCorpus -update-corpus")
	}
}
