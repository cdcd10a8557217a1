package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
)

// rotatedLog writes a log of key K, as a host stores it in dir: three
// sealed segments (records 1-4, 5-8, 9-11, each ending with a rotate
// record) and the live segment (12-13). It returns the audit key (hex), the
// files in order and the head after each segment.
func rotatedLog(t *testing.T, dir string) (string, []string, []audit.Head) {
	t.Helper()
	signer, err := audit.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pub := signer.PublicKey()
	name := filepath.Join(dir, fmt.Sprintf("audit-%x", pub[:8]))
	// Batches of decisions under tree heads; a rotate record closes the
	// open batch (its tree head comes before it) and ends a segment.
	var b bytes.Buffer
	chain := audit.NewChainWith(signer, audit.Head{}, audit.ChainOptions{OnAppend: func(_ audit.Record, line []byte) {
		b.Write(line)
		b.WriteByte('\n')
	}})
	var files []string
	var heads []audit.Head
	for i, n := range []int{4, 4, 3, 2} {
		b.Reset()
		first := chain.Head().Seq + 1
		// n records: decisions, then the tree head and (but in the live
		// segment) the rotate record.
		for j := range n - 1 {
			r := audit.Record{TimeMS: 1_700_000_000_000, Kind: audit.KindDecision, Decision: "signed", Summary: fmt.Sprintf("request %d.%d", i, j)}
			if j == n-2 && i < 3 {
				r = audit.Record{TimeMS: 1_700_000_000_000, Kind: audit.KindRotate, Decision: "rotated"}
			}
			if _, _, err := chain.Append(r, false); err != nil {
				t.Fatal(err)
			}
		}
		if i == 3 {
			if _, _, _, err := chain.CloseBatch(audit.Record{TimeMS: 1_700_000_000_000}); err != nil {
				t.Fatal(err)
			}
		}
		path := name + ".log"
		if i < 3 {
			path = fmt.Sprintf("%s-%020d-%020d.log", name, first, chain.Head().Seq)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
		heads = append(heads, chain.Head())
	}
	return hex.EncodeToString(pub), files, heads
}

func runVerify(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := mainWithArgs(append([]string{"audit", "verify"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAuditVerifyRotated(t *testing.T) {
	dir := t.TempDir()
	key, files, heads := rotatedLog(t, dir)
	// --dir finds the segments in order; --log takes them as given.
	code, out, errOut := runVerify("--dir", dir, "--audit-key", key, "--all-signatures")
	if code != 0 || !strings.Contains(out, "audit log intact: 13 records, seq 1..13") || !strings.Contains(out, "4 tree heads (4 roots checked)") || strings.Count(out, "\n") != 5 {
		t.Fatalf("--dir: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range files {
		if !strings.Contains(out, filepath.Base(f)) {
			t.Errorf("the report does not list %s:\n%s", filepath.Base(f), out)
		}
	}
	args := []string{"--audit-key", key, "--head", heads[3].String()}
	for _, f := range files {
		args = append(args, "--log", f)
	}
	if code, out, errOut := runVerify(args...); code != 0 || !strings.Contains(out, "intact: 13 records") {
		t.Fatalf("--log: exit %d\n%s%s", code, out, errOut)
	}
	// Segments verified before and since removed: --from their head.
	if code, out, errOut := runVerify("--audit-key", key, "--from", heads[1].String(), "--log", files[2], "--log", files[3]); code != 0 || !strings.Contains(out, "5 records, seq 9..13") {
		t.Fatalf("--from: exit %d\n%s%s", code, out, errOut)
	}
	// A range of segments that ends with a sealed one needs its head.
	if code, _, errOut := runVerify("--audit-key", key, "--log", files[0], "--log", files[1]); code != 1 || !strings.Contains(errOut, "rotated at record 8") {
		t.Fatalf("segments without the last: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runVerify("--audit-key", key, "--log", files[0], "--log", files[1], "--head", heads[1].String()); code != 0 {
		t.Fatalf("segments up to a known head: exit %d, %s", code, errOut)
	}
	// Usage errors.
	if code, _, _ := runVerify("--audit-key", key); code != 2 {
		t.Errorf("neither --log nor --dir: exit %d", code)
	}
	if code, _, _ := runVerify("--audit-key", key, "--dir", dir, "--log", files[0]); code != 2 {
		t.Errorf("--log and --dir: exit %d", code)
	}
	if code, _, errOut := runVerify("--audit-key", strings.Repeat("ab", 32), "--dir", dir); code != 1 || !strings.Contains(errOut, "no audit log of key") {
		t.Errorf("another key's log: exit %d, %s", code, errOut)
	}
}

// TestAuditVerifyRotatedTampered: each change to the segments is detected
// and the report names the file.
func TestAuditVerifyRotatedTampered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, files []string) // files: 3 sealed, then live
		flags  func(files []string) []string      // nil: --dir
		want   []string                           // in the one-line error
		file   int                                // the file the error names
	}{
		{
			name:   "middle segment dropped",
			change: func(t *testing.T, f []string) { os.Remove(f[1]) },
			want:   []string{"missing", "records 5 to 8 are missing"},
			file:   2,
		},
		{
			name:   "first segment dropped",
			change: func(t *testing.T, f []string) { os.Remove(f[0]) },
			want:   []string{"missing", "records 1 to 4 are missing"},
			file:   1,
		},
		{
			name:   "last sealed segment dropped",
			change: func(t *testing.T, f []string) { os.Remove(f[2]) },
			want:   []string{"missing", "records 9 to 11 are missing"},
			file:   3,
		},
		{
			name:   "segments given out of order",
			change: func(t *testing.T, f []string) {},
			flags:  func(f []string) []string { return []string{"--log", f[1], "--log", f[0], "--log", f[2], "--log", f[3]} },
			want:   []string{"reordered", "record 5 comes before record 1"},
			file:   1,
		},
		{
			name: "segments' contents swapped",
			change: func(t *testing.T, f []string) {
				a, _ := os.ReadFile(f[0])
				b, _ := os.ReadFile(f[1])
				os.WriteFile(f[0], b, 0o600)
				os.WriteFile(f[1], a, 0o600)
			},
			want: []string{"reordered", "comes before record 1"},
			file: 0,
		},
		{
			name: "segments renamed out of order",
			change: func(t *testing.T, f []string) {
				os.Rename(f[0], f[0]+".tmp")
				os.Rename(f[1], strings.Replace(f[0], "00000000000000000004.log", "00000000000000000003.log", 1)) // sorts first
				os.Rename(f[0]+".tmp", f[1])
			},
			want: []string{"reordered", "comes before record 1"},
			file: -1, // renamed
		},
		{
			name:   "rotate record cut from a sealed segment",
			change: func(t *testing.T, f []string) { dropLastLine(t, f[1], false) },
			want:   []string{"missing", "ends without a rotate record"},
			file:   1,
		},
		{
			name:   "last line of a sealed segment torn",
			change: func(t *testing.T, f []string) { dropLastLine(t, f[1], true) },
			want:   []string{"malformed"},
			file:   1,
		},
		{
			name: "sealed segment misnamed",
			change: func(t *testing.T, f []string) {
				os.Rename(f[2], strings.Replace(f[2], "00000000000000000011.log", "00000000000000000012.log", 1))
			},
			want: []string{"holds records 9 to 11, which its name does not say"},
			file: -1,
		},
		{
			name:   "live segment dropped after a sealed one",
			change: func(t *testing.T, f []string) {},
			flags:  func(f []string) []string { return []string{"--log", f[0], "--log", f[1], "--log", f[2]} },
			want:   []string{"missing", "rotated at record 11 but no later segment"},
			file:   2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key, files, _ := rotatedLog(t, dir)
			tc.change(t, files)
			args := []string{"--audit-key", key, "--dir", dir}
			if tc.flags != nil {
				args = append([]string{"--audit-key", key}, tc.flags(files)...)
			}
			code, out, errOut := runVerify(args...)
			t.Log(strings.ReplaceAll(errOut, dir+"/", ""))
			if code != 1 || strings.Count(errOut, "\n") != 1 || strings.Contains(out, "intact") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error %q does not say %q", errOut, w)
				}
			}
			if tc.file >= 0 && !strings.Contains(errOut, files[tc.file]+":") {
				t.Errorf("error %q does not name %s", errOut, files[tc.file])
			}
		})
	}
}

// dropLastLine removes the last line of the file at path, or only its last
// half (a torn write).
func dropLastLine(t *testing.T, path string, torn bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
	cut := start
	if torn {
		cut = start + (len(b)-start)/2
	}
	if err := os.WriteFile(path, b[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuditVerifyNoLiveSegment: a host stopped between sealing a segment
// and creating the next live one leaves no live segment: --dir verifies the
// sealed segments, as if the live one were empty, and says so.
func TestAuditVerifyNoLiveSegment(t *testing.T) {
	dir := t.TempDir()
	key, files, heads := rotatedLog(t, dir)
	os.Remove(files[3])
	code, out, errOut := runVerify("--dir", dir, "--audit-key", key)
	if code != 0 || !strings.Contains(out, "no live segment") || !strings.Contains(out, "11 records, seq 1..11") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// Against a head beyond it, the missing records are reported.
	code, _, errOut = runVerify("--dir", dir, "--audit-key", key, "--head", heads[3].String())
	if code != 1 || !strings.Contains(errOut, "missing") {
		t.Fatalf("against the head: exit %d, %s", code, errOut)
	}
}

// TestAuditVerifyWarnings: an intact log that records a rollback, or whose
// checkpoint generation goes down, exits 4 with each warning on stderr;
// warnings accepted by seq are still printed and no longer fail.
func TestAuditVerifyWarnings(t *testing.T) {
	signer, err := audit.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	chain := audit.NewChain(signer, audit.Head{})
	var b bytes.Buffer
	for _, r := range []audit.Record{
		{TimeMS: 1, Kind: audit.KindGenesis, Decision: "started", Summary: "genesis"},
		{TimeMS: 2, Kind: audit.KindDecision, Decision: "signed", Checkpoint: 2},
		{TimeMS: 3, Kind: audit.KindBoot, Decision: "started_with_rollback", Rule: refusal.RuleCheckpointRollback, Checkpoint: 2,
			Summary: "started; " + audit.RollbackNote(refusal.RuleCheckpointRollback, "record 2 says checkpoint generation 2, the checkpoint handed back is generation 1")},
		{TimeMS: 4, Kind: audit.KindDecision, Decision: "signed", Checkpoint: 1},
	} {
		_, line, err := chain.Append(r, true)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	key := hex.EncodeToString(signer.PublicKey())
	for _, tc := range []struct {
		name   string
		accept []string
		code   int
		want   []string
		not    []string
	}{
		{"warnings fail", nil, 4, []string{
			"warning: audit.log:3 (seq 3): rollback: the enclave detected at start: checkpoint_rollback (record 2 says checkpoint generation 2, the checkpoint handed back is generation 1)",
			"warning: audit.log:4 (seq 4): checkpoint_decrease: record 4 says checkpoint generation 1",
			"2 warning(s) above need investigating",
		}, nil},
		{"one accepted", []string{"3"}, 4, []string{"warning (accepted): audit.log:3 (seq 3): rollback", "warning: audit.log:4", "1 warning(s)"}, nil},
		{"all accepted", []string{"3", "4"}, 0, []string{"warning (accepted): audit.log:3", "warning (accepted): audit.log:4"}, []string{"need investigating"}},
		{"an accepted seq without a warning", []string{"3", "4", "2"}, 0, []string{"note: --accept-warning 2: no warning at that seq"}, nil},
		{"not a seq", []string{"x"}, 2, []string{"want a record sequence number"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--audit-key", key, "--log", path}
			for _, a := range tc.accept {
				args = append(args, "--accept-warning", a)
			}
			code, out, errOut := runVerify(args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			if tc.code != 2 && !strings.Contains(out, "audit log intact: 4 records") {
				t.Errorf("stdout:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(errOut, w) {
					t.Errorf("stderr has %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestAuditProve: `audit prove` prints a proof of a record of a rotated
// log that `audit check-proof` accepts with the audit key, and refuses
// under another key, once the record is edited, and for a record that no
// signature covers.
func TestAuditProve(t *testing.T) {
	dir := t.TempDir()
	key, _, _ := rotatedLog(t, dir)
	var out, errOut bytes.Buffer
	// Record 9 is a decision in the third segment's batch (10 is its tree head).
	if code := mainWithArgs([]string{"audit", "prove", "--dir", dir, "--audit-key", key, "--seq", "9"}, &out, &errOut); code != 0 {
		t.Fatalf("prove: exit %d: %s", code, errOut.String())
	}
	proofFile := filepath.Join(t.TempDir(), "proof.json")
	if err := os.WriteFile(proofFile, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(file, k string) (int, string) {
		var o, e bytes.Buffer
		code := mainWithArgs([]string{"audit", "check-proof", "--audit-key", k, "--proof", file}, &o, &e)
		return code, o.String() + e.String()
	}
	if code, msg := check(proofFile, key); code != 0 || !strings.Contains(msg, "proof holds: record 9 (decision, signed) is leaf") {
		t.Fatalf("check-proof: exit %d: %s", code, msg)
	}
	if code, msg := check(proofFile, strings.Repeat("ab", 32)); code != 1 {
		t.Fatalf("check-proof under another key: exit %d: %s", code, msg)
	}
	edited := bytes.Replace(out.Bytes(), []byte(`request 2.0`), []byte(`request 2.1`), 1)
	if bytes.Equal(edited, out.Bytes()) {
		t.Fatal("nothing edited")
	}
	os.WriteFile(proofFile, edited, 0o600)
	if code, msg := check(proofFile, key); code != 1 {
		t.Fatalf("check-proof of an edited record: exit %d: %s", code, msg)
	}
	// A rotate record is in no tree: its own signature proves it.
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"audit", "prove", "--dir", dir, "--audit-key", key, "--seq", "4"}, &out, &errOut); code != 0 {
		t.Fatalf("prove of a rotate record: exit %d: %s", code, errOut.String())
	}
	os.WriteFile(proofFile, out.Bytes(), 0o600)
	if code, msg := check(proofFile, key); code != 0 || !strings.Contains(msg, "record 4 (rotate, rotated) is signed by the audit key itself") {
		t.Fatalf("check-proof of a rotate record: exit %d: %s", code, msg)
	}
	out.Reset()
	errOut.Reset()
	if code := mainWithArgs([]string{"audit", "prove", "--dir", dir, "--audit-key", key, "--seq", "99"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no signature covers record 99") {
		t.Fatalf("prove of a record not in the log: exit %d: %s%s", code, out.String(), errOut.String())
	}
}
