package enclave_test

import (
	"context"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// TestSignRecordBeforePolicyChange: a policy change that comes while a
// sign request is decided, just before its record is appended, waits for
// that record (the request holds the read side of guard.mu from the
// decision to the record; the signature itself is made after). In the
// audit log the decision, made under version 1, precedes the record that
// puts version 2 in force. Were the record appended after the lock is
// released, the change would come into force in the 100 ms the hook
// waits, and its record would land between the decision and the
// decision's record.
func TestSignRecordBeforePolicyChange(t *testing.T) {
	f := newLimitGov(t, milliEther(1000))
	pol, err := policy.Compile(withVersion(f.doc, 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	change := &proto.AdminRequest{Envelope: f.admins.envelope(t, f.genesis, f.now, admin.KindPolicyChange,
		admin.PolicyChangeBody{Version: pol.Version(), PolicyHash: hex.EncodeToString(hashOf(pol)), Document: pol.Canonical()}, 0, 1)}
	body := f.body(t, "hot-0", transfer(t, 1, destA, milliEther(10)), f.now.UnixMilli())

	var once sync.Once
	var early atomic.Bool
	applied := make(chan proto.Message, 1)
	enclave.SetBeforeSignatureRecord(f.e, func() {
		once.Do(func() {
			go func() { applied <- f.e.Handle(context.Background(), change) }()
			select {
			case m := <-applied:
				early.Store(true)
				applied <- m
			case <-time.After(100 * time.Millisecond):
			}
		})
	})
	resp, ok := sendStamped(f.e, f.hot, body).(*proto.SignResponse)
	if !ok {
		t.Fatal("the request was not signed")
	}
	if _, rec := policyResult(t, <-applied); rec.Decision != "applied" {
		t.Fatalf("policy change: %s, want applied", rec.Decision)
	}
	if early.Load() {
		t.Error("the policy change came into force between a decision and its record")
	}
	signed, err := audit.Unmarshal(resp.AuditRecord)
	if err != nil {
		t.Fatal(err)
	}
	if signed.PolicyVersion != 1 {
		t.Fatalf("decided under policy version %d, want 1", signed.PolicyVersion)
	}
	for _, line := range recordsOf(t, f.e) {
		r, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == audit.KindPolicy && r.PolicyVersion == 2 && r.Seq < signed.Seq {
			t.Fatalf("version 2 came into force at record %d, before the record %d of a decision under version 1", r.Seq, signed.Seq)
		}
	}
}
