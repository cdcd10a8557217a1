package enclave_test

import (
	"context"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
)

// The time-driven transitions (Enclave.tick: owed freeze records, approval
// expiries, policy changes past their time lock, held requests decided
// again) run once per request, before every handler that reads or changes
// state time changes. These tests send no sign request and run no host
// that polls (each audit poll ticks too), so that only the request under
// test can have brought the state up to date.

// tickRequests is, for every request type of package proto, when the
// enclave ticks for it and a request of that type that changes nothing
// by itself. A request type added to package proto, or a route added to
// the enclave, must be added here, saying when it ticks.
var tickRequests = map[proto.Type]struct {
	when string
	m    proto.Message
}{
	proto.TypeHealthRequest:       {"before", &proto.HealthRequest{}},
	proto.TypeKeysRequest:         {"before", &proto.KeysRequest{}},
	proto.TypeSignRequest:         {"before", &proto.SignRequest{}},
	proto.TypeAttestRequest:       {"before", &proto.AttestRequest{}},
	proto.TypeAuditRequest:        {"after", &proto.AuditRequest{}},
	proto.TypeCredentialsRequest:  {"never", &proto.CredentialsRequest{}},
	proto.TypeUnsealRequest:       {"never", &proto.UnsealRequest{}},
	proto.TypeCheckpointRequest:   {"never", &proto.CheckpointRequest{}},
	proto.TypeAdminRequest:        {"before", &proto.AdminRequest{}},
	proto.TypeApprovalRequest:     {"before", &proto.ApprovalRequest{}},
	proto.TypePolicyRequest:       {"before", &proto.PolicyRequest{}},
	proto.TypeApprovalInfoRequest: {"before", &proto.ApprovalInfoRequest{}},
}

// TestTickRoutes: every request type of package proto is routed, each
// route says when it ticks, as tickRequests does; and a request of every
// type that ticks before its handler writes an owed freeze record, with
// no other request in between (one that never ticks writes none).
func TestTickRoutes(t *testing.T) {
	for typ := proto.Type(0); typ < 256; typ++ {
		want, listed := tickRequests[typ]
		if !proto.IsRequest(typ) {
			if listed || enclave.TickOf(typ) != "" {
				t.Errorf("type %d is not a request, but is routed or listed", typ)
			}
			continue
		}
		if !listed {
			t.Errorf("request type %d is not in tickRequests: say when it ticks", typ)
			continue
		}
		if got := enclave.TickOf(typ); got != want.when {
			t.Errorf("request type %d ticks %q, want %q", typ, got, want.when)
		}
		if want.m.Type() != typ {
			t.Fatalf("tickRequests[%d] is a message of type %d", typ, want.m.Type())
		}
	}
	for typ, r := range tickRequests {
		if r.when == "after" {
			continue // the audit poll: TestFreezeOwedUntilRoom
		}
		f, _ := newStatefulAdmins(t, func(*policy.KeyRule) {}, 0)
		head := auditHead(t, f.e)
		enclave.OweFreeze(f.e, "hot-0")
		f.e.Handle(context.Background(), r.m)
		recs := recordsFrom(t, f.e, head+1)
		switch r.when {
		case "before":
			if len(recs) != 1 || recs[0].Kind != audit.KindFreeze || recs[0].Key != "hot-0" {
				t.Errorf("after a request of type %d, records %+v: want the owed freeze's", typ, recs)
			}
		case "never":
			if len(recs) != 0 {
				t.Errorf("a request of type %d, which does not tick, appended %+v", typ, recs)
			}
		}
	}
}

// TestTickPolicyDue: a policy change whose time lock has ended is in force
// in the answer to health and to GET /v1/policy, each the first request
// after the lock ended.
func TestTickPolicyDue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       proto.Message
		version func(proto.Message) uint64
	}{
		{"health", &proto.HealthRequest{}, func(m proto.Message) uint64 { return m.(*proto.HealthResponse).PolicyVersion }},
		{"policy", &proto.PolicyRequest{}, func(m proto.Message) uint64 {
			pr := m.(*proto.PolicyResponse)
			if len(pr.Pending) != 0 {
				t.Errorf("policy info lists %d changes pending", len(pr.Pending))
			}
			return pr.Version
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGov(t)
			f.schedule(t, withDest(f.doc, 2, destA, destB, destC))
			recordsOf(t, f.e)
			f.host.stop() // no poll ticks from now on
			f.setNow(f.now.Add(31 * time.Minute))
			if v := tc.version(f.e.Handle(context.Background(), tc.m)); v != 2 {
				t.Fatalf("policy version %d in the answer, want 2", v)
			}
			if v := f.e.UserData().PolicyVersion; v != 2 {
				t.Fatalf("policy version %d in force, want 2", v)
			}
		})
	}
}

// TestTickApprovalExpiry: an approval request past its expiry is expired,
// with its record, by the approval info request that asks about it.
func TestTickApprovalExpiry(t *testing.T) {
	ap := newApprovers(t, 1)
	f := newGovWith(t, func(k *policy.KeyRule) { k.Approvals = ap.rule(1, milliEther(100)) })
	_, id := f.hold(t, milliEther(500))
	recordsOf(t, f.e)
	f.host.stop()
	head := auditHead(t, f.e)
	f.setNow(f.now.Add(enclave.ApprovalTTL))
	wantCode(t, f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: id}), refusal.CodeNotFound, "expired after")
	if st := enclave.ApprovalStatus(f.e, id); st != "" {
		t.Fatalf("approval %s is %q: not expired with its record", id, st)
	}
	recs := recordsFrom(t, f.e, head+1)
	if len(recs) != 1 || recs[0].Decision != "expired" {
		t.Fatalf("records %+v, want the expiry's", recs)
	}
}
