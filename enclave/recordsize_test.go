package enclave

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// TestAuditLogRecordCap: the enclave's audit log, new or continued from a
// head, refuses a record the host protocol cannot carry, leaves the chain
// as it was, and the refusal maps to 400 record_too_large.
func TestAuditLogRecordCap(t *testing.T) {
	s, err := audit.NewSigner(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		log  *auditLog
	}{
		{"new", newAuditLog(s, 16)},
		{"continued", newAuditLogFrom(s, 16, audit.Head{Seq: 41, Hash: [32]byte{9}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.log.head()
			r := audit.Record{TimeMS: 1, Kind: audit.KindDecision, Decision: audit.DecisionRefused, Summary: strings.Repeat("\x00", proto.MaxAuditRecordLen/6)}
			_, _, err := tc.log.append(r)
			if !errors.Is(err, audit.ErrRecordTooLarge) || tc.log.head() != head || len(tc.log.pending) != 0 {
				t.Fatalf("a record of %d escaped bytes: %v, head %v (was %v)", audit.EscapedLen(r.Summary), err, tc.log.head(), head)
			}
			pe := appendRefusal(err)
			if pe.Code != refusal.CodeBadRequest || pe.Rule != refusal.RuleRecordTooLarge || refusal.Status(pe.Code) != 400 ||
				!strings.Contains(pe.Msg, fmt.Sprintf("limit %d", proto.MaxAuditRecordLen)) || strings.Contains(pe.Msg, "enclave:") {
				t.Fatalf("answer %+v", pe)
			}
			r.Summary = strings.Repeat("x", proto.MaxAuditRecordLen-1024)
			line, seq, err := tc.log.append(r)
			if err != nil || seq != head.Seq+1 || len(line) > proto.MaxAuditRecordLen {
				t.Fatalf("a record of %d bytes: %v, seq %d", len(line), err, seq)
			}
		})
	}
	if pe := appendRefusal(fmt.Errorf("enclave: audit: %w", errors.New("disk on fire"))); pe.Code != refusal.CodeUnavailable || pe.Rule != refusal.RuleAudit {
		t.Fatalf("another append error: %+v", pe)
	}
}

func TestListWithin(t *testing.T) {
	item := strings.Repeat(`"`, 1000) // 2000 escaped bytes
	for _, tc := range []struct {
		name  string
		items []string
		shown int
	}{
		{"none", nil, 0},
		{"few", []string{"a", "b"}, 2},
		{"many", slices.Repeat([]string{item}, 20), maxEventList / (2000 + 2)},
		{"one too long", []string{strings.Repeat("x", maxEventList+1)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := listWithin(tc.items, "; ")
			if audit.EscapedLen(got) > maxEventList+100 {
				t.Fatalf("list of %d escaped bytes", audit.EscapedLen(got))
			}
			more := len(tc.items) - tc.shown
			if more == 0 {
				if got != strings.Join(tc.items, "; ") {
					t.Fatalf("got %.100q, want the whole list", got)
				}
				return
			}
			if !strings.HasSuffix(got, fmt.Sprintf("and %d more (see the policy document of that hash)", more)) {
				t.Fatalf("got …%q, want %d more", got[max(0, len(got)-80):], more)
			}
		})
	}
}

func TestClipMessage(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		clipped  bool
	}{
		{"short", "value 2 ETH exceeds the limit", false},
		{"at the cap", strings.Repeat("x", proto.MaxErrorMessageLen), false},
		{"over the cap", strings.Repeat("x", proto.MaxErrorMessageLen+1), true},
		{"runes across the cut", strings.Repeat("€", proto.MaxErrorMessageLen), true},
		{"invalid UTF-8", "bad \xff byte", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clipMessage(tc.in)
			if len(got) > proto.MaxErrorMessageLen || !utf8.ValidString(got) {
				t.Fatalf("%d bytes, valid UTF-8 %t", len(got), utf8.ValidString(got))
			}
			if clipped := strings.HasSuffix(got, fmt.Sprintf("... (%d bytes)", len(tc.in))); clipped != tc.clipped {
				t.Fatalf("clipped %t: %q", clipped, got[max(0, len(got)-40):])
			}
		})
	}
}
