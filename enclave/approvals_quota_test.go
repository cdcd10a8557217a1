package enclave_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// twoClients is an enclave whose hot-0 two clients may use, with
// approvals above 0.1 ETH.
type twoClients struct {
	*fixture
	second stamp.Signer
	ap     *approverKeys
}

func newTwoClients(t testing.TB) *twoClients {
	t.Helper()
	hot, _ := stamp.GenerateSigner(stamp.Ed25519)
	second, _ := stamp.GenerateSigner(stamp.Ed25519)
	ap := newApproverSet(t, "alice", "bob")
	doc := policy.Document{
		Version: 1,
		Clients: []policy.Client{
			{Name: "hot-client", Scheme: "ed25519", PublicKey: hex.EncodeToString(hot.PublicKey().Key), Keys: []string{"hot-0"}},
			{Name: "second-client", Scheme: "ed25519", PublicKey: hex.EncodeToString(second.PublicKey().Key), Keys: []string{"hot-0"}},
		},
		Keys: []policy.KeyRule{{
			Key: "hot-0", Chains: []uint64{1},
			NativeTransfers: &policy.NativeTransfers{
				Destinations:         []policy.Destination{{Address: destA, Label: "A"}, {Address: destB, Label: "B"}},
				MaxPerTransactionWei: ether(1).String(),
			},
			KeyConfig: stateful.KeyConfig{Approvals: ap.rule(2, milliEther(100))},
		}},
	}
	pol, _ := json.Marshal(doc)
	g, _ := json.Marshal(map[string]any{
		"format": 1,
		"keys":   []map[string]string{{"id": "hot-0", "path": "m/44'/60'/0'/0/0"}},
		"policy": json.RawMessage(pol),
	})
	f := &fixture{now: time.UnixMilli(1_800_000_000_000), hot: hot}
	f.setNow(f.now)
	var err error
	f.e, err = enclave.New(enclave.Config{Genesis: g, Now: f.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	f.host = startAcks(t, f.e)
	return &twoClients{fixture: f, second: second, ap: ap}
}

// padded is body with whitespace before its first key, to api.MaxBodySize
// bytes in all.
func padded(body []byte) []byte {
	return append([]byte("{"+strings.Repeat(" ", api.MaxBodySize-len(body))), body[1:]...)
}

// TestApprovalQuotaPerClient: one client filling its share of the
// approvals store (each request whitespace-padded to the largest body,
// which is charged by its compact form) is refused more, naming the quota,
// and does not stop another client's request from being held.
func TestApprovalQuotaPerClient(t *testing.T) {
	f := newTwoClients(t)
	for range enclave.MaxPendingPerClient {
		wantPending(t, f.send(t, f.hot, padded(f.body(t, "hot-0", transfer(t, 1, destB, milliEther(500)), f.now.UnixMilli()))))
	}
	pe, ok := f.send(t, f.hot, padded(f.body(t, "hot-0", transfer(t, 1, destB, milliEther(500)), f.now.UnixMilli()))).(*proto.Error)
	if !ok || pe.Code != refusal.CodeUnavailable || pe.Rule != refusal.RuleApprovals || !strings.Contains(pe.Message, "this client's approvals quota is full") {
		t.Fatalf("beyond the client's quota: %#v", pe)
	}
	// Another client is held.
	body := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(500)), f.now.UnixMilli())
	id := wantPending(t, f.send(t, f.second, body)).ApprovalID
	// Approvers see the compact form, and their digest is the padded body's.
	ai := info(t, f.e, id)
	if string(ai.Body) != string(body) || ai.Digest != api.ApprovalDigest(body) {
		t.Fatalf("the held request: %q", ai.Body)
	}
	// Once the first client's requests expire, it is held again.
	f.setNow(f.now.Add(enclave.ApprovalTTL + time.Second))
	wantPending(t, f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destB, milliEther(500)), f.now.UnixMilli())))
}

// TestApprovalPaddedBodyIsCompact: a whitespace-padded request is kept and
// shown in its compact form, with the padded body's approval digest, and
// approvals over that digest sign it.
func TestApprovalPaddedBodyIsCompact(t *testing.T) {
	f := newTwoClients(t)
	compact := f.body(t, "hot-0", transfer(t, 1, destB, milliEther(500)), f.now.UnixMilli())
	body := padded(compact)
	id := wantPending(t, f.send(t, f.hot, body)).ApprovalID
	ai := info(t, f.e, id)
	if string(ai.Body) != string(compact) || ai.Digest != api.ApprovalDigest(body) || ai.Digest != api.ApprovalDigest(compact) {
		t.Fatalf("the held request: %d bytes, digest %x", len(ai.Body), ai.Digest)
	}
	wantPending(t, f.ap.decide(t, f.e, id, 0, body, false), "alice")  // over the padded body
	wantSignedApproved(t, f.ap.decide(t, f.e, id, 1, ai.Body, false)) // over the compact form
}

// BenchmarkPendingMemory reports the heap a request held for approvals
// takes (bytes/pending), for a request as a client makes it and for one
// whitespace-padded to the largest body (256 KiB): the store keeps the
// compact form, so both take about the same. It includes the replay
// window's entry for the request id; the records the test host keeps are
// subtracted.
func BenchmarkPendingMemory(b *testing.B) {
	for _, tc := range []struct {
		name string
		pad  bool
	}{{"normal", false}, {"padded-256KiB", true}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newTwoClients(b)
			const n = enclave.MaxPendingPerClient
			bodies := make([][]byte, n)
			var total float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f.setNow(f.now.Add(enclave.ApprovalTTL + time.Second)) // the last round's expire
				for j := range bodies {
					bodies[j] = f.body(b, "hot-0", transfer(b, 1, destB, milliEther(500)), f.now.UnixMilli())
					if tc.pad {
						bodies[j] = padded(bodies[j])
					}
				}
				// Settle, so that the last round's requests are dropped.
				f.e.Handle(context.Background(), &proto.ApprovalInfoRequest{ID: "settle"})
				recordsOf(b, f.e)
				kept0 := hostBytes(f.host)
				before := heap()
				b.StartTimer()
				for _, body := range bodies {
					if sr, ok := f.send(b, f.hot, body).(*proto.SignResponse); !ok || sr.Status != proto.StatusPending {
						b.Fatalf("not held: %#v", sr)
					}
				}
				b.StopTimer()
				recordsOf(b, f.e)
				for j := range bodies {
					bodies[j] = nil
				}
				total += float64(heap()-before-(hostBytes(f.host)-kept0)) / n
			}
			b.ReportMetric(total/float64(b.N), "bytes/pending")
		})
	}
}

// heap is the live heap after a collection.
func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// hostBytes is what the test host keeps of the records it persisted.
func hostBytes(h *ackHost) int64 {
	var n int64
	for _, l := range h.records() {
		n += int64(len(l)) + 24
	}
	return n
}
