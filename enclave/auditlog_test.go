package enclave_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// manualFixture is a fixture whose host acknowledges nothing unless the
// test says so.
func manualFixture(t *testing.T, maxUnacked int, ackTimeout time.Duration) *fixture {
	t.Helper()
	hot, _ := stamp.GenerateSigner(stamp.Ed25519)
	other, _ := stamp.GenerateSigner(stamp.P256)
	f := &fixture{now: time.UnixMilli(1_800_000_000_000), hot: hot, other: other}
	f.setNow(f.now) // the clock the enclave reads
	var err error
	f.e, err = enclave.New(enclave.Config{
		Genesis:         genesisJSON(t, hot.PublicKey(), other.PublicKey()),
		Now:             f.clockNow,
		MaxUnackedAudit: maxUnacked,
		AuditAckTimeout: ackTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sendAsync sends a sign request whose answer waits for the host.
func (f *fixture) sendAsync(t *testing.T, s stamp.Signer, body []byte) <-chan proto.Message {
	t.Helper()
	h, err := stamp.Create(s, body)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan proto.Message, 1)
	go func() { ch <- f.e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: h}) }()
	return ch
}

// fetch asks for the records from seq from on.
func fetch(t *testing.T, e *enclave.Enclave, from uint64) *proto.AuditResponse {
	t.Helper()
	st, ok := e.Handle(context.Background(), &proto.AuditRequest{From: from}).(*proto.AuditResponse)
	if !ok {
		t.Fatal("audit request refused")
	}
	return st
}

// ack acknowledges records up to line's, with its hash.
func ack(t *testing.T, e *enclave.Enclave, line []byte) proto.Message {
	t.Helper()
	r, err := audit.Unmarshal(line)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(line)
	return e.Handle(context.Background(), &proto.AuditRequest{Ack: r.Seq, AckHash: h[:]})
}

// waitRecords waits until the enclave's head reaches seq.
func waitRecords(t *testing.T, e *enclave.Enclave, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for fetch(t, e, 0).HeadSeq < seq {
		if time.Now().After(deadline) {
			t.Fatalf("the enclave's head did not reach %d", seq)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReleaseOnlyAfterAck: a signature leaves the enclave only once the
// host has acknowledged its record, and the tree head that covers it, with
// the exact hash; an acknowledgement naming another record, or beyond the
// head, changes nothing, and one of the record alone releases nothing.
func TestReleaseOnlyAfterAck(t *testing.T) {
	f := manualFixture(t, 0, time.Minute)
	answer := f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	waitRecords(t, f.e, 2)
	// The fetch closes the batch: the boot record, the decision, their
	// tree head.
	st := fetch(t, f.e, 1)
	if len(st.Records) != 3 || len(st.Run) != proto.RunIDLen {
		t.Fatalf("%d records, run %x", len(st.Records), st.Run)
	}
	if th, err := audit.ParseTreeHead(st.Records[2], st.Key); err != nil || th.First != 1 || th.Size != 2 {
		t.Fatalf("tree head %+v, %v", th, err)
	}
	// Not yet acknowledged: no answer.
	select {
	case m := <-answer:
		t.Fatalf("answered before the acknowledgement: %T", m)
	case <-time.After(50 * time.Millisecond):
	}
	bad := sha256.Sum256([]byte("another record"))
	for _, tc := range []struct {
		name string
		req  *proto.AuditRequest
		want string
	}{
		{"wrong hash", &proto.AuditRequest{Ack: 2, AckHash: bad[:]}, "not this enclave's"},
		{"no hash", &proto.AuditRequest{Ack: 2}, "without the record's hash"},
		{"beyond the head", &proto.AuditRequest{Ack: 4, AckHash: bad[:]}, "beyond"},
		{"max uint64", &proto.AuditRequest{Ack: math.MaxUint64, AckHash: bad[:]}, "beyond"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, f.e.Handle(context.Background(), tc.req), refusal.CodeBadRequest, tc.want)
			if got := fetch(t, f.e, 1); got.Acked != 0 || len(got.Records) != 3 {
				t.Fatalf("a refused acknowledgement changed the state: acked %d, %d records", got.Acked, len(got.Records))
			}
		})
	}
	select {
	case m := <-answer:
		t.Fatalf("answered after a refused acknowledgement: %T", m)
	default:
	}
	// The decision's record alone, without the tree head that signs it:
	// persisted, but not authenticated on the host's disk; no answer.
	ack(t, f.e, st.Records[1])
	select {
	case m := <-answer:
		t.Fatalf("answered before the tree head was acknowledged: %T", m)
	case <-time.After(50 * time.Millisecond):
	}
	if got := fetch(t, f.e, 1); got.Acked != 2 || len(got.Records) != 1 {
		t.Fatalf("after acknowledging the record: acked %d, %d records kept", got.Acked, len(got.Records))
	}
	ack(t, f.e, st.Records[2])
	sr, ok := (<-answer).(*proto.SignResponse)
	if !ok || !bytes.Equal(sr.AuditRecord, st.Records[1]) || sr.AuditSeq != 2 {
		t.Fatalf("answer after the acknowledgement: %+v", sr)
	}
	if got := fetch(t, f.e, 1); got.Acked != 3 || len(got.Records) != 0 {
		t.Fatalf("after the acknowledgement: acked %d, %d records kept", got.Acked, len(got.Records))
	}
}

// TestNoAckNoSignature: a host that never acknowledges obtains no
// signature, and the enclave stops deciding once the oldest record has
// waited too long, instead of piling up records until the backlog cap.
func TestNoAckNoSignature(t *testing.T) {
	f := manualFixture(t, 0, 100*time.Millisecond)
	for i := range 20 {
		resp := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
		pe, ok := resp.(*proto.Error)
		if !ok || pe.Code != refusal.CodeUnavailable || pe.Rule != refusal.RuleAudit {
			t.Fatalf("request %d without acknowledgements: %#v", i, resp)
		}
	}
	// The first request's record was made (and its signature withheld);
	// after that the stall stops deciding: far fewer than 20 records.
	if head := fetch(t, f.e, 0).HeadSeq; head > 3 {
		t.Fatalf("%d records made for a host that acknowledges nothing", head)
	}
	pe := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.Error)
	if !strings.Contains(pe.Message, "has not acknowledged audit record 1") {
		t.Fatalf("stall refusal: %s", pe.Message)
	}
	// Once the host acknowledges, deciding resumes.
	startAcks(t, f.e)
	signEventually(t, f, "still refused after acknowledgements")
}

// signEventually sends requests until one is signed, failing after 10 s
// with why.
func signEventually(t *testing.T, f *fixture, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
		if _, ok := resp.(*proto.SignResponse); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %#v", why, resp)
		}
	}
}

// TestHostFailingStopsDeciding: when the host reports that it cannot
// persist, the enclave stops deciding at once (health says why), and
// resumes when the host says it can again.
func TestHostFailingStopsDeciding(t *testing.T) {
	f := newFixture(t)
	f.host.pause()
	head0 := fetch(t, f.e, 0).HeadSeq
	f.e.Handle(context.Background(), &proto.AuditRequest{Failing: "writing the audit log: no space left on device"})
	pe, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.Error)
	if !ok || pe.Code != refusal.CodeUnavailable || pe.Rule != refusal.RuleAudit || !strings.Contains(pe.Message, "no space left") {
		t.Fatalf("while the host fails: %#v", pe)
	}
	if h := f.e.Handle(context.Background(), &proto.HealthRequest{}).(*proto.HealthResponse); !strings.Contains(h.AuditFailing, "no space") {
		t.Fatalf("health does not say the host fails: %+v", h)
	}
	if head := fetch(t, f.e, 0).HeadSeq; head != head0 {
		t.Fatalf("a refused request made a record: head %d, was %d", head, head0)
	}
	f.host.resume() // its next poll reports nothing failing
	signEventually(t, f, "still refused after the host recovered")
}

// TestAuditBacklog: the enclave keeps unacknowledged records for the host
// to fetch again, and stops deciding when too many are unacknowledged.
func TestAuditBacklog(t *testing.T) {
	f := manualFixture(t, 3, time.Minute)
	// The boot record is 1 pending; two decisions waiting for their
	// acknowledgement fill the backlog.
	a1 := f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	a2 := f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(2)), f.now.UnixMilli()))
	// answers waits for both answers, of records 2 and 3.
	answers := func() {
		seqs := map[uint64]bool{}
		for range 2 {
			select {
			case m := <-a1:
				if sr, ok := m.(*proto.SignResponse); ok {
					seqs[sr.AuditSeq] = true
				}
			case m := <-a2:
				if sr, ok := m.(*proto.SignResponse); ok {
					seqs[sr.AuditSeq] = true
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no answer")
			}
		}
		if !seqs[2] || !seqs[3] {
			t.Fatalf("answers of records %v, want 2 and 3", seqs)
		}
	}
	waitRecords(t, f.e, 3)
	pe, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.Error)
	if !ok || pe.Code != refusal.CodeUnavailable || !strings.Contains(pe.Message, "too many audit records") {
		t.Fatalf("request over the backlog: %#v", pe)
	}
	// A host that lost the records fetches them, with the tree head that
	// closes their batch (a tree head takes no room in the backlog); they
	// verify.
	st := fetch(t, f.e, 1)
	if st.HeadSeq != 4 || len(st.Records) != 4 || !bytes.Equal(st.Key, f.e.UserData().AuditKey) {
		t.Fatalf("audit state: head %d, %d records", st.HeadSeq, len(st.Records))
	}
	var log bytes.Buffer
	for _, r := range st.Records {
		log.Write(r)
		log.WriteByte('\n')
	}
	if rep, err := audit.Verify(&log, st.Key, audit.VerifyOptions{ExpectHead: &audit.Head{Seq: st.HeadSeq, Hash: st.HeadHash}}); err != nil || rep.Records != 4 || rep.RootsChecked != 1 {
		t.Fatalf("the fetched log does not verify: %v", err)
	}
	// Acknowledge up to 2: no answer leaves (the tree head is not
	// persisted), 3 and 4 remain to fetch.
	ack(t, f.e, st.Records[1])
	if st := fetch(t, f.e, 1); len(st.Records) != 2 || !bytes.Equal(st.Records[0], fetch(t, f.e, 3).Records[0]) {
		t.Fatalf("after acknowledging 2: %d records", len(st.Records))
	}
	select {
	case <-a1:
		t.Fatal("answered before the tree head was acknowledged")
	case <-a2:
		t.Fatal("answered before the tree head was acknowledged")
	case <-time.After(50 * time.Millisecond):
	}
	ack(t, f.e, st.Records[3])
	answers()
	startAcks(t, f.e)
	if _, ok := f.send(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli())).(*proto.SignResponse); !ok {
		t.Fatal("still refused after the acknowledgements")
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
	f.sendAsync(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), time.Now().UnixMilli()))
	waitRecords(t, e, 2)
	if pe, ok := f.send(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), time.Now().UnixMilli())).(*proto.Error); !ok || pe.Code != refusal.CodeUnavailable {
		t.Fatalf("over the genesis backlog: %+v", pe)
	}
	ack(t, e, fetch(t, e, 2).Records[0])
}

// TestAuditRotate: at the host's request the enclave appends a signed
// rotate record, keeps it until acknowledged like any record, and the next
// record continues the chain in a new segment.
func TestAuditRotate(t *testing.T) {
	f := manualFixture(t, 0, time.Minute)
	ctx := context.Background()
	f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	waitRecords(t, f.e, 2)
	// Records 1 (boot), 2 and their tree head 3 are persisted; the host
	// asks for a rotation.
	three := fetch(t, f.e, 2).Records[1]
	h := sha256.Sum256(three)
	st := f.e.Handle(ctx, &proto.AuditRequest{Ack: 3, AckHash: h[:], Rotate: true}).(*proto.AuditResponse)
	if len(st.RotateRecord) == 0 || st.HeadSeq != 4 {
		t.Fatalf("rotation: head %d, rotate record %q", st.HeadSeq, st.RotateRecord)
	}
	r, err := audit.VerifyRecord(st.RotateRecord, st.Key)
	if err != nil {
		t.Fatalf("the rotate record does not verify alone: %v", err)
	}
	if r.Kind != audit.KindRotate || r.Decision != "rotated" || r.Seq != 4 || r.PolicyVersion != 7 || r.TimeMS != f.now.UnixMilli() {
		t.Fatalf("rotate record %+v", r)
	}
	rotate := st.RotateRecord
	// Not acknowledged yet: a host that lost it fetches it again. It is
	// in no batch (a batch never spans segments): no tree head follows.
	st = fetch(t, f.e, 4)
	if len(st.Records) != 1 || !bytes.Equal(st.Records[0], rotate) || st.RotateRecord != nil {
		t.Fatalf("from 4 after the rotation: %d records", len(st.Records))
	}
	f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(2)), f.now.UnixMilli()))
	waitRecords(t, f.e, 5)
	all := fetch(t, f.e, 4)
	if len(all.Records) != 3 {
		t.Fatalf("%d pending records, want 3 (the rotate record, the decision, its tree head)", len(all.Records))
	}
	// The two segments verify as such: ...4 (rotate) | 5, 6 (the
	// decision's tree head); each tree's records are in its segment.
	dir := t.TempDir()
	seg1 := filepath.Join(dir, "1.log")
	seg2 := filepath.Join(dir, "2.log")
	os.WriteFile(seg1, append(append([]byte{}, rotate...), '\n'), 0o600)
	var rest []byte
	for _, l := range all.Records[1:] {
		rest = append(append(rest, l...), '\n')
	}
	os.WriteFile(seg2, rest, 0o600)
	rep, err := audit.VerifyFiles([]string{seg1, seg2}, all.Key, audit.VerifyOptions{FromSeq: 4, FromHash: r.Prev})
	if err != nil || rep.LastSeq != 6 || len(rep.Segments) != 2 || rep.RootsChecked != 1 {
		t.Fatalf("the rotated segments do not verify: %v %+v", err, rep)
	}
	// A request without Rotate appends nothing.
	if st := fetch(t, f.e, 0); st.HeadSeq != 6 || st.RotateRecord != nil {
		t.Fatalf("a plain audit request changed the log: head %d", st.HeadSeq)
	}
	ack(t, f.e, all.Records[2])
}

// TestAuditRotateBacklogFull: with the backlog full the enclave appends no
// rotate record (the host retries once it has caught up).
func TestAuditRotateBacklogFull(t *testing.T) {
	f := manualFixture(t, 2, time.Minute)
	f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	waitRecords(t, f.e, 2)
	st := f.e.Handle(context.Background(), &proto.AuditRequest{Rotate: true}).(*proto.AuditResponse)
	if st.RotateRecord != nil || st.HeadSeq != 2 {
		t.Fatalf("rotated with a full backlog: head %d", st.HeadSeq)
	}
	h := sha256.Sum256(fetch(t, f.e, 2).Records[1]) // closes the batch: record 2's tree head
	st = f.e.Handle(context.Background(), &proto.AuditRequest{Ack: 3, AckHash: h[:], Rotate: true}).(*proto.AuditResponse)
	if st.RotateRecord == nil || st.HeadSeq != 4 {
		t.Fatalf("no rotation once acknowledged: head %d", st.HeadSeq)
	}
}

// TestAuditLongPoll: a host waiting for records gets one as soon as it is
// appended.
func TestAuditLongPoll(t *testing.T) {
	f := manualFixture(t, 0, time.Minute)
	got := make(chan *proto.AuditResponse, 1)
	go func() {
		got <- f.e.Handle(context.Background(), &proto.AuditRequest{From: 2, WaitMS: proto.MaxAuditWaitMS}).(*proto.AuditResponse)
	}()
	f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	select {
	case st := <-got:
		if len(st.Records) != 2 {
			t.Fatalf("long poll: %d records, want the decision and its tree head", len(st.Records))
		}
		ack(t, f.e, st.Records[1])
	case <-time.After(4 * time.Second):
		t.Fatal("the long poll did not return with the new record")
	}
}
