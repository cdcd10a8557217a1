package enclave_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
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

// TestAuditRotate: at the host's request the enclave appends a signed
// rotate record, keeps it until acknowledged like any record, and the next
// record continues the chain in a new segment.
func TestAuditRotate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.SignResponse); !ok {
		t.Fatal("not signed")
	}
	// Records 1 (boot) and 2 are persisted; the host asks for a rotation.
	st := f.e.Handle(ctx, &proto.AuditRequest{Ack: 2, Rotate: true}).(*proto.AuditResponse)
	if len(st.RotateRecord) == 0 || st.HeadSeq != 3 {
		t.Fatalf("rotation: head %d, rotate record %q", st.HeadSeq, st.RotateRecord)
	}
	r, err := audit.VerifyRecord(st.RotateRecord, st.Key)
	if err != nil {
		t.Fatalf("the rotate record does not verify alone: %v", err)
	}
	if r.Kind != audit.KindRotate || r.Decision != "rotated" || r.Seq != 3 || r.PolicyVersion != 7 || r.TimeMS != f.now.UnixMilli() {
		t.Fatalf("rotate record %+v", r)
	}
	rotate := st.RotateRecord
	// Not acknowledged yet: a host that lost it fetches it again.
	st = f.e.Handle(ctx, &proto.AuditRequest{From: 3}).(*proto.AuditResponse)
	if len(st.Records) != 1 || !bytes.Equal(st.Records[0], rotate) || st.RotateRecord != nil {
		t.Fatalf("from 3 after the rotation: %d records", len(st.Records))
	}
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(2)), f.now.UnixMilli())).(*proto.SignResponse); !ok {
		t.Fatal("not signed after the rotation")
	}
	all := f.e.Handle(ctx, &proto.AuditRequest{From: 3}).(*proto.AuditResponse)
	if len(all.Records) != 2 {
		t.Fatalf("%d pending records, want 2 (the rotate record and the decision)", len(all.Records))
	}
	// The two segments verify as such: ...3 (rotate) | 4.
	dir := t.TempDir()
	seg1 := filepath.Join(dir, "1.log")
	seg2 := filepath.Join(dir, "2.log")
	os.WriteFile(seg1, append(append([]byte{}, rotate...), '\n'), 0o600)
	os.WriteFile(seg2, append(append([]byte{}, all.Records[1]...), '\n'), 0o600)
	rep, err := audit.VerifyFiles([]string{seg1, seg2}, all.Key, audit.VerifyOptions{FromSeq: 3, FromHash: r.Prev})
	if err != nil || rep.LastSeq != 4 || len(rep.Segments) != 2 {
		t.Fatalf("the rotated segments do not verify: %v %+v", err, rep)
	}
	// A request without Rotate appends nothing.
	if st := f.e.Handle(ctx, &proto.AuditRequest{}).(*proto.AuditResponse); st.HeadSeq != 4 || st.RotateRecord != nil {
		t.Fatalf("a plain audit request changed the log: head %d", st.HeadSeq)
	}
}

// TestAuditRotateBacklogFull: with the backlog full the enclave appends no
// rotate record (the host retries once it has caught up).
func TestAuditRotateBacklogFull(t *testing.T) {
	f := newFixtureWith(t, 2)
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.SignResponse); !ok {
		t.Fatal("not signed")
	}
	st := f.e.Handle(context.Background(), &proto.AuditRequest{Rotate: true}).(*proto.AuditResponse)
	if st.RotateRecord != nil || st.HeadSeq != 2 {
		t.Fatalf("rotated with a full backlog: head %d", st.HeadSeq)
	}
	st = f.e.Handle(context.Background(), &proto.AuditRequest{Ack: 2, Rotate: true}).(*proto.AuditResponse)
	if st.RotateRecord == nil || st.HeadSeq != 3 {
		t.Fatalf("no rotation once acknowledged: head %d", st.HeadSeq)
	}
}
