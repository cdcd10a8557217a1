package host

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/nitrosign/nitrosign/audit"
)

// TestInspectLiveCutsToSignedRecord: the end of a live segment is its last
// signed record; unsigned records after it (the rest of a batch whose
// write did not complete) are cut with a torn line, so that the host hands
// a restarted enclave a record it recognizes as its own.
func TestInspectLiveCutsToSignedRecord(t *testing.T) {
	s, err := audit.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	c := audit.NewChainWith(s, audit.Head{}, audit.ChainOptions{OnAppend: func(_ audit.Record, line []byte) { lines = append(lines, line) }})
	c.Append(audit.Record{TimeMS: 1, Kind: audit.KindGenesis, Decision: "created"}, false)
	c.Append(audit.Record{TimeMS: 2, Kind: audit.KindDecision, Decision: audit.DecisionSigned}, false)
	c.CloseBatch(audit.Record{TimeMS: 2})
	c.Append(audit.Record{TimeMS: 3, Kind: audit.KindDecision, Decision: audit.DecisionSigned}, false)
	c.Append(audit.Record{TimeMS: 4, Kind: audit.KindDecision, Decision: audit.DecisionRefused}, false)
	c.CloseBatch(audit.Record{TimeMS: 4})
	if len(lines) != 6 {
		t.Fatalf("%d lines", len(lines))
	}
	var signedEnd int64
	for _, l := range lines[:3] {
		signedEnd += int64(len(l)) + 1
	}
	for _, tc := range []struct {
		name string
		keep int  // whole lines
		torn bool // and half of the next
		size int64
		last uint64
	}{
		{"whole", 6, false, -1, 6},
		{"tree head torn", 5, true, signedEnd, 3},
		{"tree head missing", 5, false, signedEnd, 3},
		{"one decision of the batch", 4, true, signedEnd, 3},
		{"only the first batch", 3, true, signedEnd, 3},
		{"only unsigned records", 0, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			keep := lines[:tc.keep]
			if tc.name == "only unsigned records" {
				keep = lines[1:2]
			}
			for _, l := range keep {
				b = append(append(b, l...), '\n')
			}
			if tc.torn {
				b = append(b, lines[tc.keep][:10]...)
			}
			path := filepath.Join(t.TempDir(), "live.log")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := inspectLive(f)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.size
			if want < 0 {
				want = int64(len(b))
			}
			if st.size != want || st.torn != int64(len(b))-want || st.last != tc.last {
				t.Fatalf("size %d torn %d last %d; want size %d last %d", st.size, st.torn, st.last, want, tc.last)
			}
		})
	}
}
