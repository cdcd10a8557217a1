package enclave_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// TestAuditBacklog: the enclave keeps unacknowledged records for the host
// to fetch again, and stops deciding when too many are unacknowledged.
func TestAuditBacklog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A refusal is recorded too, and its record travels with the error.
	e, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 99, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.Error)
	if !ok || e.Code != api.CodePolicyDenied || len(e.AuditRecord) == 0 {
		t.Fatalf("refusal %+v without its audit record", e)
	}
	for range 3 {
		if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.SignResponse); !ok {
			t.Fatal("not signed")
		}
	}
	// Records 1 (boot) to 5 are pending; a host that lost them fetches them.
	st := f.e.Handle(ctx, &proto.AuditRequest{From: 1}).(*proto.AuditResponse)
	if st.HeadSeq != 5 || len(st.Records) != 5 || !bytes.Equal(st.Key, f.e.UserData().AuditKey) {
		t.Fatalf("audit state: head %d, %d records", st.HeadSeq, len(st.Records))
	}
	var log bytes.Buffer
	for _, r := range st.Records {
		log.Write(r)
		log.WriteByte('\n')
	}
	rep, err := audit.Verify(&log, st.Key, audit.VerifyOptions{ExpectHead: &audit.Head{Seq: st.HeadSeq, Hash: st.HeadHash}})
	if err != nil || rep.Records != 5 {
		t.Fatalf("the fetched log does not verify: %v", err)
	}
	// Acknowledge up to 3: only 4 and 5 remain to fetch.
	st = f.e.Handle(ctx, &proto.AuditRequest{Ack: 3, From: 1}).(*proto.AuditResponse)
	if len(st.Records) != 0 {
		t.Fatalf("records before the first pending one returned: %d", len(st.Records))
	}
	st = f.e.Handle(ctx, &proto.AuditRequest{From: 4}).(*proto.AuditResponse)
	if len(st.Records) != 2 {
		t.Fatalf("from 4: %d records, want 2", len(st.Records))
	}
}

func TestAuditBacklogFull(t *testing.T) {
	f := newFixtureWith(t, 3)
	// The boot record is 1 pending; two more decisions fill the backlog.
	for i := range 3 {
		resp := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
		if i < 2 {
			if _, ok := resp.(*proto.SignResponse); !ok {
				t.Fatalf("request %d: %+v", i, resp)
			}
			continue
		}
		if e, ok := resp.(*proto.Error); !ok || e.Code != api.CodeUnavailable {
			t.Fatalf("request over the backlog: %+v, want unavailable", resp)
		}
	}
	// Once the host acknowledges, deciding resumes.
	f.e.Handle(context.Background(), &proto.AuditRequest{Ack: 3})
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.SignResponse); !ok {
		t.Fatal("still refused after the acknowledgement")
	}
}

func TestAuditBacklogFromGenesis(t *testing.T) {
	hot, _ := stamp.GenerateSigner(stamp.Ed25519)
	other, _ := stamp.GenerateSigner(stamp.P256)
	var g map[string]any
	json.Unmarshal(genesisJSON(t, hot.PublicKey(), other.PublicKey()), &g)
	g["audit"] = map[string]int{"max_unacknowledged": 2}
	b, _ := json.Marshal(g)
	e, err := enclave.New(enclave.Config{Genesis: b})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, now: time.Now(), hot: hot}
	// The boot record plus one decision fill a backlog of 2.
	if _, ok := f.send(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), time.Now().UnixMilli())).(*proto.SignResponse); !ok {
		t.Fatal("first request refused")
	}
	if pe, ok := f.send(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), time.Now().UnixMilli())).(*proto.Error); !ok || pe.Code != api.CodeUnavailable {
		t.Fatalf("over the genesis backlog: %+v", pe)
	}
}
