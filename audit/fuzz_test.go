package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
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
		if recordLen(&r, true) != len(line) || recordLen(&r, false) != len(appendRecord(nil, &r, false)) {
			t.Fatalf("recordLen %d, %d for a line of %d bytes", recordLen(&r, true), recordLen(&r, false), len(line))
		}
		if p.signed != r.Signed() || p.rec.Seq != r.Seq || p.rec.Prev != r.Prev || p.rec.Kind != r.Kind || p.rec.Checkpoint != r.Checkpoint || p.rec.Unacknowledged != r.Unacknowledged {
			t.Fatal("the fast parse reads other values")
		}
	})
}

// FuzzVerify: Verify never panics; both ways of checking signatures give
// the same answer; problems are *Errors; and an accepted log is canonical
// lines whose report matches them. Its seeds are small logs (see
// seedVerify); FuzzVerifyEdits fuzzes edits of full-size logs.
func FuzzVerify(f *testing.F) {
	pub := testSigner(f, 1).PublicKey() // the test logs' key
	shortMinimization()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkVerify(t, pub, data)
	})
}

// shortMinimization makes the fuzzer spend at most 2 s minimizing each new
// input, unless -fuzzminimizetime was given. The default, 60 s, is spent in
// full on a log of a kilobyte: the minimizer tries on the order of n²
// deletions of an n-byte input, and each candidate that still parses costs
// Ed25519 verifications, so the fuzzer sat at 0 execs/s for most of a run.
// (make fuzz passes the same value.)
func shortMinimization() {
	if fl := flag.Lookup("test.fuzzminimizetime"); fl != nil && fl.Value.String() == fl.DefValue {
		_ = fl.Value.Set("2s")
	}
}

// FuzzVerifyEdits: the checks of FuzzVerify, on a valid 12-record log (all
// signed, or signed at checkpoints, in the format before tree heads; or
// decisions in batches closed by tree heads) after the edits that script spells
// (see applyEdits): flipped, inserted and deleted bytes, deleted,
// duplicated and swapped lines, a cut. The input stays a few bytes however
// large the log, so the fuzzer's minimizer, which tries on the order of n²
// deletions of an n-byte input, is cheap; while its mutations of raw logs
// (FuzzVerify) mostly break the first line, these reach the checks of
// records deep in a chain: linkage, checkpoints, signatures.
func FuzzVerifyEdits(f *testing.F) {
	pub := testSigner(f, 1).PublicKey()
	logs := editLogs(f)
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) == 0 {
			return
		}
		checkVerify(t, pub, applyEdits(logs[int(script[0])%len(logs)], script[1:]))
	})
}

// editLogs are the logs FuzzVerifyEdits edits, by the first byte of its
// input: all signed, signed at checkpoints (the format before tree heads),
// and with tree heads.
func editLogs(t testing.TB) [3][]byte {
	return [3][]byte{signedLog(t).bytes(), checkpointLog(t).bytes(), treeLog(t).bytes()}
}

// treeLog is a 12-record log with tree heads: the genesis record and
// decisions, in batches closed after records 4 and 9 and at the end.
func treeLog(t testing.TB) *testLog {
	return newTreeLog(t, testSigner(t, 1), 12, func(seq uint64) bool { return seq == 4 || seq == 10 })
}

// An edit of applyEdits is editLen bytes: the operation, a position (big
// endian, modulo the log's length or its number of lines), and a value.
const (
	editLen  = 4
	maxEdits = 16
)

// applyEdits returns a copy of log with the edits of script applied in
// order (at most maxEdits; a trailing partial edit is ignored).
func applyEdits(log, script []byte) []byte {
	data := bytes.Clone(log)
	for n := 0; len(script) >= editLen && n < maxEdits; n++ {
		op, pos, val := script[0], int(script[1])<<8|int(script[2]), script[3]
		script = script[editLen:]
		if len(data) == 0 {
			break
		}
		at := pos % len(data)
		lines := bytes.SplitAfter(data, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		k := pos % len(lines)
		switch op % 8 {
		case 0: // set a byte
			data[at] = val
		case 1: // flip bits of a byte
			data[at] ^= val | 1
		case 2: // delete a byte
			data = append(data[:at], data[at+1:]...)
		case 3: // insert a byte
			data = slices.Insert(data, at, val)
		case 4: // delete a line
			data = bytes.Join(slices.Delete(lines, k, k+1), nil)
		case 5: // duplicate a line
			data = bytes.Join(slices.Insert(lines, k, bytes.Clone(lines[k])), nil)
		case 6: // swap a line with the next
			if k+1 < len(lines) {
				lines[k], lines[k+1] = lines[k+1], lines[k]
				data = bytes.Join(lines, nil)
			}
		case 7: // cut
			data = data[:at]
		}
	}
	return data
}

// checkVerify is the body of FuzzVerify and FuzzVerifyEdits.
func checkVerify(t *testing.T, pub ed25519.PublicKey, data []byte) {
	var errs [2]error
	var reps [2]*Report
	for i, all := range []bool{false, true} {
		opts := verifyFuzzOptions
		opts.AllSignatures = all
		reps[i], errs[i] = Verify(bytes.NewReader(data), pub, opts)
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
}

// seedUnmarshal returns named seeds for FuzzUnmarshal: the golden line, the
// lines of a test log, and the refused near misses.
func seedUnmarshal(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{"valid_golden": []byte(goldenLine)}
	l := newTestLog(t, testSigner(t, 1), 6, func(seq uint64) bool { return seq%2 == 0 })
	for i, line := range l.lines {
		seeds["valid_log_line_"+string(rune('1'+i))] = line
	}
	tl := newTreeLog(t, testSigner(t, 1), 3, never)
	seeds["valid_tree_head"] = tl.lines[len(tl.lines)-1]
	seeds["valid_line_of_a_tree_head_with_a_bad_summary"] = bytes.Replace(tl.lines[len(tl.lines)-1], []byte(`"first: `), []byte(`" first: `), 1)
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

// seedVerify returns named seeds for FuzzVerify: small valid logs of
// compact records, and the tampering cases of TestVerifyTampering cut
// after the line Verify refuses (when that gives the same refusal), those
// that stay under maxVerifySeed. The fuzzer minimizes every input that
// finds new coverage, trying on the order of n² deletions of an n-byte
// input, each a full Verify in both modes: on the 8 KB logs of 12 records
// the seeds used to be, that took its whole minimization budget (60 s) per
// new input with every worker waiting, so FuzzVerify ran at 0 execs/s
// after its seeds. The cases left out are unit tests all the same, and
// FuzzVerifyEdits fuzzes full-size logs.
func seedVerify(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"valid_signed":      compactLog(t, 2, allSigned),
		"valid_checkpoints": compactLog(t, 3, func(seq uint64) bool { return seq != 2 }),
		"valid_empty":       {},
		"valid_tree_heads":  compactTreeLog(t, 3, 2),
	}
	// A tree head whose root is not its batch's, signed by the audit key
	// (only a faulty enclave writes one), and the same log with the
	// decision edited, which the head's root no longer matches.
	tl := compactTreeLog(t, 3, 0)
	seeds["bad_tree_head_edited_decision"] = bytes.Replace(tl, []byte(`"summary":"s"`), []byte(`"summary":"t"`), 1)
	pub := testSigner(t, 1).PublicKey()
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
		data = cutAfterRefusal(data, pub)
		if len(data) > maxVerifySeed {
			continue
		}
		if _, err := Verify(bytes.NewReader(data), pub, verifyFuzzOptions); err == nil {
			continue // refused only with the case's options
		}
		seeds["bad_"+tc.name] = data
	}
	return seeds
}

// compactLog returns a log of n short records, signed where sign says.
func compactLog(t testing.TB, n int, sign func(seq uint64) bool) []byte {
	l := &testLog{signer: testSigner(t, 1)}
	l.chain = newLegacyChain(l.signer, Head{})
	l.append(t, Record{TimeMS: 1, Kind: KindGenesis, Decision: "created"}, true)
	for i := 2; i <= n; i++ {
		l.append(t, Record{TimeMS: int64(i), Kind: KindDecision, Key: "k", Decision: DecisionSigned, Summary: "s"}, sign(uint64(i)))
	}
	return l.bytes()
}

// compactTreeLog returns a log of n short records with tree heads, the
// batch closed after record closeAt too (0: only at the end).
func compactTreeLog(t testing.TB, n int, closeAt uint64) []byte {
	l := &testLog{signer: testSigner(t, 1)}
	l.chain = NewChainWith(l.signer, Head{}, ChainOptions{OnAppend: func(r Record, line []byte) {
		l.recs = append(l.recs, r)
		l.lines = append(l.lines, line)
	}})
	l.appendTree(t, Record{TimeMS: 1, Kind: KindGenesis, Decision: "created"})
	for i := 2; i <= n; i++ {
		l.appendTree(t, Record{TimeMS: int64(i), Kind: KindDecision, Key: "k", Decision: DecisionSigned, Summary: "s"})
		if uint64(i) == closeAt {
			l.closeBatch(t)
		}
	}
	l.closeBatch(t)
	return l.bytes()
}

// seedVerifyEdits returns named seeds for FuzzVerifyEdits: each tampering
// kind, at a place in the log where it matters.
func seedVerifyEdits(t testing.TB) map[string][]byte {
	logs := editLogs(t)
	signed, checkpoints, tree := logs[0], logs[1], logs[2]
	// at returns the offset of the i-th occurrence (from 0, or counting
	// from the end if negative) of s in log.
	at := func(log []byte, s string, i int) int {
		var offs []int
		for o := 0; ; {
			j := bytes.Index(log[o:], []byte(s))
			if j < 0 {
				break
			}
			offs = append(offs, o+j)
			o += j + 1
		}
		if i < 0 {
			i += len(offs)
		}
		return offs[i]
	}
	edit := func(op byte, pos int, val byte) []byte { return []byte{op, byte(pos >> 8), byte(pos), val} }
	script := func(log byte, edits ...[]byte) []byte { return append([]byte{log}, slices.Concat(edits...)...) }
	const signedLogIdx, checkpointLogIdx, treeLogIdx = 0, 1, 2
	return map[string][]byte{
		"valid_tree_heads":                   script(treeLogIdx),
		"bad_tree_head_root_flipped":         script(treeLogIdx, edit(1, at(tree, `root: `, 1)+6, 1)),
		"bad_tree_head_deleted":              script(treeLogIdx, edit(4, 5, 0)),
		"bad_decision_in_a_batch_edited":     script(treeLogIdx, edit(1, at(tree, `"summary":"`, 6)+14, 2)),
		"bad_tree_head_sig_flipped":          script(treeLogIdx, edit(1, at(tree, `"sig":"`, -1)+20, 4)),
		"bad_records_after_the_last_head":    script(treeLogIdx, edit(4, 14, 0)),
		"valid_signed":                       script(signedLogIdx),
		"valid_checkpoints":                  script(checkpointLogIdx),
		"bad_forged_signature_on_last":       script(signedLogIdx, edit(1, at(signed, `"sig":"`, -1)+10, 4)),
		"bad_edited_unsigned_summary":        script(checkpointLogIdx, edit(1, at(checkpoints, `"summary":"`, 5)+12, 2)),
		"bad_edited_seq":                     script(checkpointLogIdx, edit(0, at(checkpoints, `"seq":`, 6)+6, '9')),
		"bad_edited_prev":                    script(signedLogIdx, edit(1, at(signed, `"prev":"`, 7)+20, 1)),
		"bad_deleted_line":                   script(checkpointLogIdx, edit(4, 5, 0)),
		"bad_duplicated_last_line":           script(checkpointLogIdx, edit(5, 11, 0)),
		"bad_swapped_lines":                  script(signedLogIdx, edit(6, 3, 0)),
		"bad_torn_last_line":                 script(checkpointLogIdx, edit(7, len(checkpoints)-40, 0)),
		"bad_unsigned_tail":                  script(checkpointLogIdx, edit(4, 11, 0)),
		"bad_inserted_space":                 script(signedLogIdx, edit(3, at(signed, `"kind":`, 4), ' ')),
		"bad_deleted_byte_in_checkpoint_sig": script(checkpointLogIdx, edit(2, at(checkpoints, `"sig":"`, 1)+30, 0)),
	}
}

// maxVerifySeed is the largest seed of FuzzVerify.
const maxVerifySeed = 1 << 10

// verifyFuzzOptions are the fuzz targets' options, but for the signature
// mode. The line cap is small because Verify allocates a read buffer of
// the cap's size per call, which at 64 KiB was most of the cost of a run
// on a small input; the fuzzed lines are far shorter, and the cap's path
// is the same at any size.
var verifyFuzzOptions = VerifyOptions{MaxLineSize: 4 << 10, Workers: 2}

// cutAfterRefusal returns data up to the end of the line Verify refuses,
// if Verify refuses that prefix the same way; otherwise data.
func cutAfterRefusal(data []byte, pub ed25519.PublicKey) []byte {
	_, err := Verify(bytes.NewReader(data), pub, verifyFuzzOptions)
	var e *Error
	if !errors.As(err, &e) || e.Line < 1 {
		return data
	}
	end := 0
	for range e.Line {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			return data
		}
		end += i + 1
	}
	cut := data[:end]
	if _, err2 := Verify(bytes.NewReader(cut), pub, verifyFuzzOptions); errString(err2) != errString(err) {
		return data
	}
	return cut
}

var corpora = map[string]func(testing.TB) map[string][]byte{
	"FuzzUnmarshal":   seedUnmarshal,
	"FuzzVerify":      seedVerify,
	"FuzzVerifyEdits": seedVerifyEdits,
	"FuzzVerifyProof": seedVerifyProof,
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./audit -run TestSeedCorpus -update-corpus. Files that are not
// seeds (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range corpora {
		fuzzseed.Sync(t, target, "seed_", '_', seeds(t), *updateCorpus, "go test ./audit -run TestSeedCorpus -update-corpus")
	}
}

// TestVerifySeedsSayWhatTheyAre: the valid seeds of FuzzVerify and
// FuzzVerifyEdits verify, the bad ones are refused.
func TestVerifySeedsSayWhatTheyAre(t *testing.T) {
	pub := testSigner(t, 1).PublicKey()
	logs := editLogs(t)
	check := func(target, name string, data []byte) {
		_, err := Verify(bytes.NewReader(data), pub, verifyFuzzOptions)
		if valid := strings.HasPrefix(name, "valid_"); valid != (err == nil) {
			t.Errorf("%s seed %s: err = %v", target, name, err)
		}
	}
	for name, data := range seedVerify(t) {
		check("FuzzVerify", name, data)
	}
	for name, script := range seedVerifyEdits(t) {
		check("FuzzVerifyEdits", name, applyEdits(logs[int(script[0])%len(logs)], script[1:]))
	}
}

// FuzzVerifyProof: a proof from untrusted bytes is refused with an error or
// verified, never panics, and a proof that verifies proves a record signed
// by the key (itself, or through a tree head whose batch holds it). Its
// seeds (seedVerifyProof) are the proofs of every record of a small log.
func FuzzVerifyProof(f *testing.F) {
	pub := testSigner(f, 1).PublicKey()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			return
		}
		rec, th, err := VerifyProof(p, pub)
		if err != nil {
			return
		}
		if th == nil && !rec.Signed() {
			t.Fatalf("an unsigned record %d verified without a tree head", rec.Seq)
		}
		if th != nil && (rec.Seq < th.First || rec.Seq > th.Last()) {
			t.Fatalf("record %d verified outside the batch %d..%d", rec.Seq, th.First, th.Last())
		}
	})
}

// seedVerifyProof: the proof of every record of a log of two batches, and
// of its genesis record by its own signature.
func seedVerifyProof(t testing.TB) map[string][]byte {
	s := testSigner(t, 1)
	l := newTreeLog(t, s, 6, func(seq uint64) bool { return seq == 3 })
	heads, lines := batches(t, l)
	seeds := map[string][]byte{}
	for i, head := range heads {
		for j := range lines[i] {
			path, err := InclusionProof(lines[i], j)
			if err != nil {
				t.Fatal(err)
			}
			p := Proof{Record: string(lines[i][j]), TreeHead: string(head), Index: uint64(j), Size: uint64(len(lines[i])), Path: []string{}}
			for _, h := range path {
				p.Path = append(p.Path, hex.EncodeToString(h[:]))
			}
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			seeds[fmt.Sprintf("batch%d_leaf%d", i, j)] = data
		}
	}
	data, _ := json.Marshal(Proof{Record: string(l.lines[0]), Path: []string{}})
	seeds["self_signed_genesis"] = data
	return seeds
}
