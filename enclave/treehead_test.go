package enclave_test

import (
	"testing"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
)

// checkedRecords returns the records of lines (consecutive records of a
// log) but the tree heads, each checked as a client could check it alone:
// a signed record (an event) by its signature, an unsigned one (a
// decision) by the tree head that covers it, which must be in lines,
// signed, and, when its whole batch is in lines, have the batch's root.
func checkedRecords(t testing.TB, lines [][]byte, key []byte) []audit.Record {
	t.Helper()
	recs := make([]audit.Record, len(lines))
	bySeq := map[uint64]int{}
	for i, line := range lines {
		r, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
		bySeq[r.Seq] = i
	}
	covered := map[uint64]bool{}
	for i, r := range recs {
		if !r.Signed() {
			continue
		}
		if _, err := audit.VerifyRecord(lines[i], key); err != nil {
			t.Fatal(err)
		}
		if r.Kind != audit.KindTreeHead {
			continue
		}
		th, err := audit.ParseTreeHead(lines[i], key)
		if err != nil {
			t.Fatal(err)
		}
		var batch [][]byte
		for s := th.First; s <= th.Last(); s++ {
			covered[s] = true
			if j, ok := bySeq[s]; ok {
				batch = append(batch, lines[j])
			}
		}
		if uint64(len(batch)) == th.Size {
			for k, line := range batch {
				proof, err := audit.InclusionProof(batch, k)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := audit.VerifyInclusion(line, lines[i], proof, key); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var out []audit.Record
	for _, r := range recs {
		switch {
		case r.Kind == audit.KindTreeHead:
			continue
		case !r.Signed() && !covered[r.Seq]:
			t.Fatalf("record %d is unsigned and no tree head among the %d records covers it", r.Seq, len(lines))
		}
		out = append(out, r)
	}
	return out
}

// hostLast returns the last record e's ackHost persisted, once it caught up
// with e's head: what a host hands a restarted enclave as its log's end
// (a tree head, as the host persists records up to a signed one).
func hostLast(t testing.TB, e *enclave.Enclave) []byte {
	t.Helper()
	l := recordsOf(t, e)
	return l[len(l)-1]
}
