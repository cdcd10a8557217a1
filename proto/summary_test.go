package proto_test

import (
	"testing"

	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/summary"
)

// TestSummaryCaps: every summary package summary makes fits the caps of
// the summary lines: as many lines, and a text (at most summary.MaxSize
// escaped bytes, never more raw) within MaxSummaryLen.
func TestSummaryCaps(t *testing.T) {
	if proto.MaxSummaryLines != summary.MaxLines {
		t.Errorf("MaxSummaryLines = %d, summary.MaxLines = %d", proto.MaxSummaryLines, summary.MaxLines)
	}
	if proto.MaxSummaryLen < summary.MaxSize {
		t.Errorf("MaxSummaryLen = %d, below summary.MaxSize = %d", proto.MaxSummaryLen, summary.MaxSize)
	}
	// A line at the cap of labels, round trip.
	l := proto.SummaryLine{Key: "k", Value: "0x0000000000000000000000000000000000000000"}
	for range proto.MaxSummaryLabels {
		l.Labels = append(l.Labels, proto.SummaryLabel{At: 42, End: 42, Text: " (x)"})
	}
	in := &proto.SignResponse{SignedTransaction: []byte{}, Status: proto.StatusPending, ApprovalID: "a", SummaryLines: []proto.SummaryLine{l}}
	b, err := proto.Marshal(1, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, m, err := proto.Unmarshal(b); err != nil || len(m.(*proto.SignResponse).SummaryLines[0].Labels) != proto.MaxSummaryLabels {
		t.Fatalf("round trip: %v", err)
	}
}
