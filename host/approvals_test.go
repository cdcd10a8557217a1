package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// auditingFake is a fake enclave that keeps a real, signed audit chain, so
// that a host with a data directory persists the records of its answers,
// and answers everything else with answer.
type auditingFake struct {
	mu      sync.Mutex
	chain   *audit.Chain
	pub     []byte
	records [][]byte
	acked   uint64
	got     []proto.Message
	answer  func(m proto.Message) proto.Message
}

// fakeRun is the run id of fake enclaves.
var fakeRun = bytes.Repeat([]byte{0xfa}, proto.RunIDLen)

func newAuditingFake(t *testing.T) *auditingFake {
	t.Helper()
	s, err := audit.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &auditingFake{chain: audit.NewChain(s, audit.Head{}), pub: s.PublicKey()}
}

// record appends a signed decision record and returns its line and seq.
func (f *auditingFake) record(t *testing.T, decision string) ([]byte, uint64) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	digest := sha256.Sum256([]byte(decision))
	r, line, err := f.chain.Append(audit.Record{TimeMS: 1, Kind: audit.KindDecision, RequestDigest: digest[:],
		Client: "ed25519:test", Key: "hot-0", Summary: "test " + decision, Decision: decision}, true)
	if err != nil {
		t.Fatal(err)
	}
	f.records = append(f.records, line)
	return line, r.Seq
}

func (f *auditingFake) handle(m proto.Message) proto.Message {
	f.mu.Lock()
	if ar, ok := m.(*proto.AuditRequest); ok {
		defer f.mu.Unlock()
		h := f.chain.Head()
		if ar.Ack > f.acked && ar.Ack <= uint64(len(f.records)) {
			f.acked = ar.Ack
		}
		resp := &proto.AuditResponse{Key: f.pub, HeadSeq: h.Seq, HeadHash: h.Hash, Run: fakeRun, Acked: f.acked}
		if ar.From > 0 && ar.From <= uint64(len(f.records)) {
			resp.Records = f.records[ar.From-1:]
		}
		return resp
	}
	if _, ok := m.(*proto.HealthRequest); ok {
		f.mu.Unlock()
		return &proto.HealthResponse{State: "ephemeral"}
	}
	f.got = append(f.got, m)
	answer := f.answer
	f.mu.Unlock()
	return answer(m)
}

func (f *auditingFake) setAnswer(a func(proto.Message) proto.Message) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// received returns what the fake got besides audit requests, and forgets it.
func (f *auditingFake) received() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

// persisted returns the records the host serves from its log.
func persisted(t *testing.T, url string) []string {
	t.Helper()
	code, out := do(t, http.MethodGet, url+"/v1/audit?from=1", nil, nil)
	var ar api.AuditResponse
	if err := json.Unmarshal(out, &ar); code != 200 || err != nil {
		t.Fatalf("GET /v1/audit: %d %s", code, out)
	}
	var recs []string
	for _, r := range ar.Records {
		recs = append(recs, string(r))
	}
	return recs
}

func approvalsHost(t *testing.T) (*auditingFake, *host.Server, string) {
	t.Helper()
	sim := newSim(t)
	f := newAuditingFake(t)
	f.answer = func(proto.Message) proto.Message {
		return &proto.Error{Code: refusal.CodeInternal, Message: "no answer set"}
	}
	startFake(t, sim, f.handle)
	srv, url, _ := runHost(t, sim, t.TempDir())
	return f, srv, url
}

const pendingBody = `{"request_id":"r1","timestamp_ms":1,"key":"hot-0","eth_transaction":{"unsigned":"0x02c0"}}`

// pendingDigest is pendingBody's approval digest, as the enclave sends it
// with a pending answer.
var pendingDigest = api.ApprovalDigest([]byte(pendingBody))

func TestSignPendingApproval(t *testing.T) {
	f, srv, url := approvalsHost(t)
	var line []byte
	var seq uint64
	f.setAnswer(func(proto.Message) proto.Message {
		line, seq = f.record(t, audit.DecisionPendingApproval)
		return &proto.SignResponse{Status: proto.StatusPending, ApprovalID: "a1b2", SummaryLines: testLines,
			Quorum: 2, ExpiresMS: 1700000000000, AuditSeq: seq, AuditRecord: line, ApprovalDigest: pendingDigest[:]}
	})
	code, out := do(t, http.MethodPost, url+"/v1/sign", []byte(pendingBody), map[string][]string{"X-Nitrosign-Stamp": {"s"}})
	if code != http.StatusAccepted {
		t.Fatalf("pending sign: %d %s, want 202", code, out)
	}
	var p api.PendingResponse
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	d := api.ApprovalDigest([]byte(pendingBody))
	want := api.PendingResponse{Status: api.StatusPendingApproval, ApprovalID: "a1b2", Digest: "0x" + hex.EncodeToString(d[:]),
		Summary: testLinesText, SummaryLines: testLinesJSON, Quorum: 2, Approvals: []string{}, ExpiresAtMS: 1700000000000, AuditSeq: seq}
	if !equalJSON(t, p, want) {
		t.Fatalf("pending answer %+v, want %+v", p, want)
	}
	if !strings.Contains(string(out), `"approvals":[]`) || strings.Contains(string(out), "signature") {
		t.Fatalf("pending answer %s: want approvals [] and no signature", out)
	}
	// The pending decision's record is on disk.
	if recs := persisted(t, url); len(recs) != 1 || recs[0] != string(line) {
		t.Fatalf("persisted records %q, want the pending decision's", recs)
	}

	// No record on disk, no answer: a pending answer is withheld too.
	host.SetAuditWriteFailure(srv, func() error { return errors.New("disk gone") })
	code, out = do(t, http.MethodPost, url+"/v1/sign", []byte(pendingBody), nil)
	if code != http.StatusServiceUnavailable || strings.Contains(string(out), "a1b2") {
		t.Fatalf("pending answer without a persisted record: %d %s, want 503", code, out)
	}
}

func TestSignUnknownStatusIsInternal(t *testing.T) {
	f, _, url := approvalsHost(t)
	f.setAnswer(func(proto.Message) proto.Message {
		line, seq := f.record(t, "signed")
		r := &proto.SignResponse{Status: "maybe", AuditSeq: seq, AuditRecord: line}
		r.Signature[0] = 1
		return r
	})
	code, out := do(t, http.MethodPost, url+"/v1/sign", []byte(pendingBody), nil)
	if code != 500 || strings.Contains(string(out), "signature") {
		t.Fatalf("unknown status: %d %s, want 500 and no signature", code, out)
	}
	// A pending answer without an id is no pending answer.
	f.setAnswer(func(proto.Message) proto.Message {
		line, seq := f.record(t, "pending_approval")
		return &proto.SignResponse{Status: proto.StatusPending, AuditSeq: seq, AuditRecord: line}
	})
	if code, out := do(t, http.MethodPost, url+"/v1/sign", []byte(pendingBody), nil); code != 500 {
		t.Fatalf("pending without an id: %d %s, want 500", code, out)
	}
}

func TestApprovalInfo(t *testing.T) {
	f, _, url := approvalsHost(t)
	body := []byte(pendingBody)
	info := &proto.ApprovalInfoResponse{ID: "a1b2", Status: api.StatusSigned, Body: body, Digest: api.ApprovalDigest(body),
		SummaryLines: testLines, Quorum: 2, Approvers: []string{"alice", "bob"}, ExpiresMS: 5, AuditSeq: 9,
		Result: &proto.SignResponse{SignedTransaction: []byte{0x02, 0x01}, AuditSeq: 9}}
	info.Result.Signature[64] = 1
	info.Result.From[19] = 0xaa
	var mu sync.Mutex
	f.setAnswer(func(proto.Message) proto.Message {
		mu.Lock()
		defer mu.Unlock()
		i := *info
		return &i
	})
	code, out := do(t, http.MethodGet, url+"/v1/approvals/a1b2", nil, nil)
	if code != 200 {
		t.Fatalf("GET approval: %d %s", code, out)
	}
	if got := f.received(); len(got) != 1 || got[0].(*proto.ApprovalInfoRequest).ID != "a1b2" {
		t.Fatalf("the enclave got %+v", got)
	}
	var p api.PendingResponse
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	d := api.ApprovalDigest(body)
	if p.Request != pendingBody || p.Digest != "0x"+hex.EncodeToString(d[:]) || p.Status != api.StatusSigned ||
		p.Quorum != 2 || strings.Join(p.Approvals, ",") != "alice,bob" || p.AuditSeq != 9 || p.ExpiresAtMS != 5 || p.Summary != testLinesText || !reflect.DeepEqual(p.SummaryLines, testLinesJSON) {
		t.Fatalf("approval state %+v", p)
	}
	if p.Result == nil || p.Result.SignedTransaction != "0x0201" || !strings.HasSuffix(p.Result.Signature, "01") ||
		!strings.EqualFold(p.Result.From, "0x00000000000000000000000000000000000000aa") {
		t.Fatalf("approval result %+v", p.Result)
	}

	// An enclave whose digest is not the body's: approvals would all fail.
	mu.Lock()
	info.Digest[0] ^= 1
	mu.Unlock()
	if code, out := do(t, http.MethodGet, url+"/v1/approvals/a1b2", nil, nil); code != 500 {
		t.Fatalf("wrong digest: %d %s, want 500", code, out)
	}
	mu.Lock()
	info.Digest[0] ^= 1
	info.ID = "other"
	mu.Unlock()
	if code, out := do(t, http.MethodGet, url+"/v1/approvals/a1b2", nil, nil); code != 500 {
		t.Fatalf("answer about another id: %d %s, want 500", code, out)
	}
	f.received()

	// Refused before forwarding.
	for _, path := range []string{"/v1/approvals/" + strings.Repeat("a", 65), "/v1/approvals/a%20b", "/v1/approvals/a1b2?x=1"} {
		if code, out := do(t, http.MethodGet, url+path, nil, nil); code != 400 {
			t.Errorf("GET %s: %d %s, want 400", path, code, out)
		}
	}
	if code, out := do(t, http.MethodGet, url+"/v1/approvals/", nil, nil); code != 404 {
		t.Errorf("GET /v1/approvals/: %d %s, want 404", code, out)
	}
	if got := f.received(); len(got) != 0 {
		t.Fatalf("the enclave got %d requests the host should have refused", len(got))
	}

	// Unknown or expired: the enclave's not_found.
	f.setAnswer(func(proto.Message) proto.Message {
		return &proto.Error{Code: refusal.CodeNotFound, Message: "no request waits for approval"}
	})
	if code, out := do(t, http.MethodGet, url+"/v1/approvals/zz", nil, nil); code != 404 || !strings.Contains(string(out), `"not_found"`) {
		t.Fatalf("unknown id: %d %s, want 404", code, out)
	}
}

func TestApprovalsMethods(t *testing.T) {
	_, _, url := approvalsHost(t)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/approvals", http.MethodPost},
		{http.MethodPost, "/v1/approvals/a1b2", http.MethodGet},
		{http.MethodDelete, "/v1/approvals/a1b2", http.MethodGet},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != tc.allow || !strings.Contains(string(b), refusal.CodeMethodNotAllowed) {
			t.Errorf("%s %s: %d Allow %q %s, want 405 Allow %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), b, tc.allow)
		}
	}
}

func TestApprovePost(t *testing.T) {
	f, srv, url := approvalsHost(t)
	signBody := []byte(pendingBody)
	approval := []byte(`{"approval_id":"a1b2","decision":"approve","approver":"alice","signature":"0x01"}`)
	var lines []string
	pendingAnswer := func(m proto.Message) proto.Message {
		switch m.(type) {
		case *proto.ApprovalRequest:
			line, seq := f.record(t, audit.DecisionPendingApproval)
			lines = append(lines, string(line))
			return &proto.SignResponse{Status: proto.StatusPending, ApprovalID: "a1b2", SummaryLines: testLines, Quorum: 2,
				Approvers: []string{"alice"}, ExpiresMS: 5, AuditSeq: seq, AuditRecord: line, ApprovalDigest: pendingDigest[:]}
		}
		return &proto.Error{Code: refusal.CodeInternal, Message: "unexpected"}
	}
	f.setAnswer(pendingAnswer)
	code, out := do(t, http.MethodPost, url+"/v1/approvals", approval, nil)
	if code != http.StatusAccepted {
		t.Fatalf("first approval: %d %s, want 202", code, out)
	}
	// One call: the digest comes with the enclave's answer, with no second
	// round trip to fetch it.
	got := f.received()
	if len(got) != 1 || !bytes.Equal(got[0].(*proto.ApprovalRequest).Body, approval) {
		t.Fatalf("the enclave got %+v, want the approval body unchanged, once", got)
	}
	var p api.PendingResponse
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	d := api.ApprovalDigest(signBody)
	if p.Status != api.StatusPendingApproval || p.ApprovalID != "a1b2" || strings.Join(p.Approvals, ",") != "alice" ||
		p.Quorum != 2 || p.Digest != "0x"+hex.EncodeToString(d[:]) || p.Request != "" || p.Result != nil {
		t.Fatalf("pending approval answer %+v", p)
	}

	// The quorum is met: the signature, its record persisted first.
	signedAnswer := func(proto.Message) proto.Message {
		line, seq := f.record(t, audit.DecisionApproved)
		lines = append(lines, string(line))
		r := &proto.SignResponse{SignedTransaction: []byte{0x02, 0xff}, AuditSeq: seq, AuditRecord: line, ApprovalID: "a1b2",
			Approvers: []string{"alice", "bob"}}
		r.Signature[0] = 0x11
		r.TransactionHash[0] = 0x22
		return r
	}
	f.setAnswer(signedAnswer)
	code, out = do(t, http.MethodPost, url+"/v1/approvals", approval, nil)
	var sr api.SignResponse
	if err := json.Unmarshal(out, &sr); code != 200 || err != nil || sr.SignedTransaction != "0x02ff" ||
		!strings.HasPrefix(sr.Signature, "0x11") || !strings.HasPrefix(sr.TransactionHash, "0x22") {
		t.Fatalf("quorum met: %d %s", code, out)
	}

	// A rejection: 403 approval_rejected, its record persisted.
	f.setAnswer(func(proto.Message) proto.Message {
		line, _ := f.record(t, audit.DecisionRejected)
		lines = append(lines, string(line))
		return &proto.Error{Code: refusal.CodeApprovalRejected, Rule: "approvals", Message: "rejected by bob", AuditRecord: line}
	})
	code, out = do(t, http.MethodPost, url+"/v1/approvals", approval, nil)
	var er api.ErrorResponse
	if err := json.Unmarshal(out, &er); code != 403 || err != nil || er.Error.Code != refusal.CodeApprovalRejected {
		t.Fatalf("rejected: %d %s, want 403 approval_rejected", code, out)
	}
	if recs := persisted(t, url); strings.Join(recs, "\n") != strings.Join(lines, "\n") {
		t.Fatalf("persisted records\n%q\nwant\n%q", recs, lines)
	}

	// Bad signatures and unknown ids are the enclave's to decide.
	for _, tc := range []struct {
		code   string
		status int
	}{{refusal.CodeUnauthorized, 401}, {refusal.CodeNotFound, 404}, {refusal.CodeBadRequest, 400}} {
		f.setAnswer(func(proto.Message) proto.Message { return &proto.Error{Code: tc.code, Message: "no"} })
		if code, out := do(t, http.MethodPost, url+"/v1/approvals", approval, nil); code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.code, code, out, tc.status)
		}
	}

	// Oversized: refused by the host.
	f.received()
	if code, out := do(t, http.MethodPost, url+"/v1/approvals", bytes.Repeat([]byte{' '}, api.MaxApprovalBodySize+1), nil); code != 413 {
		t.Fatalf("oversized approval: %d %s, want 413", code, out)
	}
	if got := f.received(); len(got) != 0 {
		t.Fatalf("an oversized approval reached the enclave")
	}

	// An answer without a digest still goes out, without one.
	f.setAnswer(func(m proto.Message) proto.Message {
		sr := pendingAnswer(m).(*proto.SignResponse)
		sr.ApprovalDigest = nil
		return sr
	})
	code, out = do(t, http.MethodPost, url+"/v1/approvals", approval, nil)
	p = api.PendingResponse{}
	if err := json.Unmarshal(out, &p); code != 202 || err != nil || p.Digest != "" || p.ApprovalID != "a1b2" {
		t.Fatalf("pending without a digest: %d %s", code, out)
	}

	// Metrics: by endpoint pattern, pending answers by their own outcome.
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`nitrosign_http_requests_total{endpoint="/v1/approvals",outcome="pending_approval"} 2`,
		`nitrosign_http_requests_total{endpoint="/v1/approvals",outcome="ok"} 1`,
		`nitrosign_http_requests_total{endpoint="/v1/approvals",outcome="approval_rejected"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// No record on disk, no answer: neither a signature nor a pending state.
	host.SetAuditWriteFailure(srv, func() error { return errors.New("disk gone") })
	for _, answer := range []func(proto.Message) proto.Message{pendingAnswer, signedAnswer} {
		f.setAnswer(answer)
		if code, out := do(t, http.MethodPost, url+"/v1/approvals", approval, nil); code != http.StatusServiceUnavailable {
			t.Fatalf("approval answer without a persisted record: %d %s, want 503", code, out)
		}
	}
}

func TestPendingMetrics(t *testing.T) {
	f, _, url := approvalsHost(t)
	f.setAnswer(func(m proto.Message) proto.Message {
		switch m.(type) {
		case *proto.ApprovalInfoRequest:
			return &proto.Error{Code: refusal.CodeNotFound, Message: "gone"}
		}
		line, seq := f.record(t, audit.DecisionPendingApproval)
		return &proto.SignResponse{Status: proto.StatusPending, ApprovalID: "x", AuditSeq: seq, AuditRecord: line, ApprovalDigest: pendingDigest[:]}
	})
	do(t, http.MethodPost, url+"/v1/sign", []byte(pendingBody), nil)
	do(t, http.MethodGet, url+"/v1/approvals/abc", nil, nil)
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`nitrosign_http_requests_total{endpoint="/v1/sign",outcome="pending_approval"} 1`,
		`nitrosign_sign_decisions_total{outcome="pending_approval",rule=""} 1`,
		// The id is not a label: the endpoint is the route's pattern.
		`nitrosign_http_requests_total{endpoint="/v1/approvals/{id}",outcome="not_found"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(x, y)
}

// TestApprovalsRealEnclave runs the whole flow against an in-process
// enclave whose policy needs 2 of 3 approvers above 0.5 ETH: the client's
// request is pending, the approvers fetch it, check its digest, approve
// through the host, and the client fetches the signature; every decision's
// record is in the host's log, which verifies.
func TestApprovalsRealEnclave(t *testing.T) {
	sim := newSim(t)
	clientKey, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"alice", "bob", "carol"}
	approvers := make([]stamp.Signer, len(names))
	rule := &stateful.ApprovalRule{Quorum: 2, Above: []stateful.ApprovalThreshold{{ChainID: 1, Asset: "native", Amount: "500000000000000000"}}}
	for i := range approvers {
		if approvers[i], err = stamp.GenerateSigner(stamp.Ed25519); err != nil {
			t.Fatal(err)
		}
		rule.Approvers = append(rule.Approvers, stateful.Approver{Name: names[i], Scheme: "ed25519", PublicKey: hex.EncodeToString(approvers[i].PublicKey().Key)})
	}
	doc := devstack.ExamplePolicy(clientKey.PublicKey())
	doc.Keys[0].Approvals = rule
	pol, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	g, err := json.Marshal(genesis.Config{Format: genesis.FormatVersion, Keys: []genesis.Key{{ID: devstack.ExampleKeyID, Path: devstack.ExampleKeyPath}}, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	e, err := enclave.New(enclave.Config{Genesis: g})
	if err != nil {
		t.Fatal(err)
	}
	l, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	dir := t.TempDir()
	_, url, _ := runHost(t, sim, dir)

	c, _ := client.New(url, clientKey, nil)
	bg := context.Background()
	// Below the threshold: signed at once.
	if _, err := c.SignTransaction(bg, devstack.ExampleKeyID, transferTx(1)); err != nil {
		t.Fatal(err)
	}
	// Above: pending.
	_, err = c.SignTransaction(bg, devstack.ExampleKeyID, transferTx(75e16))
	var pe *client.PendingError
	if !errors.As(err, &pe) || pe.Pending.Quorum != 2 || len(pe.Pending.Approvals) != 0 || pe.Pending.AuditSeq == 0 {
		t.Fatalf("0.75 ETH: %v, want pending", err)
	}
	id := pe.Pending.ApprovalID
	if rep := verifyLog(t, dir, e.UserData().AuditKey); rep.LastSeq < pe.Pending.AuditSeq {
		t.Fatalf("pending answer with audit_seq %d released; the log ends at %d", pe.Pending.AuditSeq, rep.LastSeq)
	}

	approver, _ := client.New(url, nil, nil)
	p, err := approver.Approval(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := client.CheckApproval(p)
	if err != nil || digest != pe.Digest || p.Request != string(pe.Body) || !strings.Contains(p.Summary, "value: 0.75 ETH") {
		t.Fatalf("approval state %+v: %v", p, err)
	}
	// The initiating client's key is no approver; a signature over another
	// digest does not count.
	bad, _ := client.NewApproval(approvers[0], "alice", id, api.DecisionApprove, sha256.Sum256([]byte("other")))
	var ae *client.APIError
	if _, _, err := approver.Approve(bg, bad); !errors.As(err, &ae) || ae.Code != refusal.CodeUnauthorized {
		t.Fatalf("a signature over another digest: %v", err)
	}
	a0, _ := client.NewApproval(approvers[0], "alice", id, api.DecisionApprove, digest)
	sr, pending, err := approver.Approve(bg, a0)
	if err != nil || sr != nil || pending == nil || strings.Join(pending.Approvals, ",") != "alice" || pending.Digest != hexDigest(digest) {
		t.Fatalf("first approval: %+v %+v %v", sr, pending, err)
	}
	// A captured approval POST replayed 50 times byte for byte: counted
	// once, one record; each answer says it was already counted.
	replay, err := json.Marshal(a0)
	if err != nil {
		t.Fatal(err)
	}
	before := e.Handle(bg, &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
	for range 50 {
		code, out := do(t, http.MethodPost, url+"/v1/approvals", replay, nil)
		var p api.PendingResponse
		if err := json.Unmarshal(out, &p); code != http.StatusAccepted || err != nil || !p.AlreadyCounted || strings.Join(p.Approvals, ",") != "alice" {
			t.Fatalf("replayed approval: %d %s", code, out)
		}
	}
	if after := e.Handle(bg, &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq; after != before {
		t.Fatalf("50 replayed approvals appended %d records", after-before)
	}
	a1, _ := client.NewApproval(approvers[1], "bob", id, api.DecisionApprove, digest)
	sr, pending, err = approver.Approve(bg, a1)
	if err != nil || pending != nil || sr == nil || sr.SignedTransaction == "" {
		t.Fatalf("second approval: %+v %+v %v", sr, pending, err)
	}
	if rep := verifyLog(t, dir, e.UserData().AuditKey); rep.LastSeq < sr.AuditSeq {
		t.Fatalf("signature with audit_seq %d released; the log ends at %d", sr.AuditSeq, rep.LastSeq)
	}
	// The client fetches it.
	wctx, wcancel := context.WithTimeout(bg, 10*time.Second)
	defer wcancel()
	got, err := c.WaitApproval(wctx, id, 0)
	if err != nil || got.Signature != sr.Signature || got.SignedTransaction != sr.SignedTransaction {
		t.Fatalf("WaitApproval: %+v %v, want %+v", got, err, sr)
	}

	// Another request, rejected by carol: 403, recorded.
	_, err = c.SignTransaction(bg, devstack.ExampleKeyID, transferTx(8e17))
	if !errors.As(err, &pe) {
		t.Fatalf("0.8 ETH: %v, want pending", err)
	}
	p, err = approver.Approval(bg, pe.Pending.ApprovalID)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ = client.CheckApproval(p)
	r2, _ := client.NewApproval(approvers[2], "carol", p.ApprovalID, api.DecisionReject, digest)
	if _, _, err := approver.Approve(bg, r2); !errors.As(err, &ae) || ae.Code != refusal.CodeApprovalRejected || ae.Status != 403 {
		t.Fatalf("rejection: %v", err)
	}
	if _, err := c.WaitApproval(wctx, p.ApprovalID, 0); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("WaitApproval after the rejection: %v", err)
	}
	head := e.Handle(bg, &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
	if rep := verifyLog(t, dir, e.UserData().AuditKey); rep.LastSeq != head {
		t.Fatalf("the log ends at %d, the enclave's head is %d", rep.LastSeq, head)
	}
}

func hexDigest(d [32]byte) string { return "0x" + hex.EncodeToString(d[:]) }

// TestPendingDigestOfPaddedBody: the 202's approval digest, computed from
// the raw body forwarded, is the digest of its compact form, which is what
// the enclave keeps and shows approvers: padding changes nothing.
func TestPendingDigestOfPaddedBody(t *testing.T) {
	f, _, url := approvalsHost(t)
	f.setAnswer(func(proto.Message) proto.Message {
		line, seq := f.record(t, audit.DecisionPendingApproval)
		return &proto.SignResponse{Status: proto.StatusPending, ApprovalID: "a1b2", Quorum: 2, AuditSeq: seq, AuditRecord: line, ApprovalDigest: pendingDigest[:]}
	})
	padded := "{" + strings.Repeat(" \n\t", 1000) + pendingBody[1:] + "\n"
	code, out := do(t, http.MethodPost, url+"/v1/sign", []byte(padded), map[string][]string{"X-Nitrosign-Stamp": {"s"}})
	var p api.PendingResponse
	if code != http.StatusAccepted || json.Unmarshal(out, &p) != nil {
		t.Fatalf("pending sign: %d %s", code, out)
	}
	compact, err := api.CompactRequest([]byte(padded))
	if err != nil || string(compact) != pendingBody {
		t.Fatalf("compact form %q, %v (the fixture body must be compact)", compact, err)
	}
	if d := api.ApprovalDigest(compact); p.Digest != "0x"+hex.EncodeToString(d[:]) {
		t.Fatalf("digest %s, want the compact form's %x", p.Digest, d)
	}
}

// TestPendingDigestMismatch: a pending answer whose approval digest is not
// the request's is not relayed: every approval over it would fail.
func TestPendingDigestMismatch(t *testing.T) {
	f, _, url := approvalsHost(t)
	other := api.ApprovalDigest([]byte(`{"other":1}`))
	f.setAnswer(func(proto.Message) proto.Message {
		line, seq := f.record(t, audit.DecisionPendingApproval)
		return &proto.SignResponse{Status: proto.StatusPending, ApprovalID: "a1b2", Quorum: 2, AuditSeq: seq, AuditRecord: line, ApprovalDigest: other[:]}
	})
	code, out := do(t, http.MethodPost, url+"/v1/sign", []byte(pendingBody), map[string][]string{"X-Nitrosign-Stamp": {"s"}})
	if code != http.StatusInternalServerError || !strings.Contains(string(out), "approval digest") {
		t.Fatalf("pending with another digest: %d %s, want 500", code, out)
	}
}

// testLines is a summary of three lines: one plain, one with a label after
// an address, one with an amount shown in a token's units.
var testLines = []proto.SummaryLine{
	{Key: "request", Value: "EIP-1559 transaction"},
	{Key: "to", Value: "0x2222222222222222222222222222222222222222", Labels: []proto.SummaryLabel{{At: 42, End: 42, Text: ` ("treasury")`}}},
	{Key: "call.amount", Value: "1500000 (raw units of 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)", Labels: []proto.SummaryLabel{{At: 0, End: 65, Text: "1.5 USDC"}}},
}

// testLinesJSON and testLinesText are testLines as the host serves them.
var (
	testLinesJSON = []api.SummaryLine{
		{Key: "request", Value: "EIP-1559 transaction"},
		{Key: "to", Value: "0x2222222222222222222222222222222222222222", Labels: []api.SummaryLabel{{At: 42, End: 42, Text: ` ("treasury")`}}},
		{Key: "call.amount", Value: "1500000 (raw units of 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)", Labels: []api.SummaryLabel{{At: 0, End: 65, Text: "1.5 USDC"}}},
	}
	testLinesText = "request: EIP-1559 transaction\nto: 0x2222222222222222222222222222222222222222 (\"treasury\")\ncall.amount: 1.5 USDC\n"
)
