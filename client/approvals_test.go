package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/stamp"
)

func hexDigest(d [32]byte) string { return "0x" + hex.EncodeToString(d[:]) }

// pendingHost answers POST /v1/sign with 202; lie changes the digest.
func pendingHost(t *testing.T, lie bool) (*httptest.Server, *[]byte) {
	t.Helper()
	var mu sync.Mutex
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := stamp.Verify(r.Header.Get(stamp.Header), body); err != nil {
			fail(w, refusal.CodeUnauthorized, "", err.Error())
			return
		}
		mu.Lock()
		got = body
		mu.Unlock()
		d := api.ApprovalDigest(body)
		if lie {
			d[0] ^= 1
		}
		writeJSON(w, 202, api.PendingResponse{Status: api.StatusPendingApproval, ApprovalID: "a1b2", Digest: hexDigest(d),
			Summary: "request: EIP-1559 transaction\n", Quorum: 2, Approvals: []string{}, ExpiresAtMS: 5, AuditSeq: 3})
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestSignPending(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	srv, got := pendingHost(t, false)
	c, _ := New(srv.URL, s, nil)
	resp, err := c.SignTransaction(context.Background(), "hot-1", []byte{0x02, 0xc0})
	var pe *PendingError
	if resp != nil || !errors.As(err, &pe) {
		t.Fatalf("Sign of a pending request: %+v, %v; want a *PendingError", resp, err)
	}
	if pe.Pending.ApprovalID != "a1b2" || pe.Pending.Quorum != 2 || pe.Digest != api.ApprovalDigest(*got) || !bytes.Equal(pe.Body, *got) {
		t.Fatalf("pending error %+v", pe)
	}
	if p, ok := AsPending(err); !ok || p.ApprovalID != "a1b2" {
		t.Fatalf("AsPending: %+v %v", p, ok)
	}
	if !strings.Contains(err.Error(), "a1b2") || !strings.Contains(err.Error(), hexDigest(pe.Digest)) {
		t.Errorf("error %q does not name the approval and its digest", err)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		t.Error("a pending answer is an APIError")
	}
	if _, ok := AsPending(errors.New("x")); ok {
		t.Error("AsPending of another error")
	}
}

func TestSignPendingWrongDigest(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	srv, _ := pendingHost(t, true)
	c, _ := New(srv.URL, s, nil)
	_, err := c.SignTransaction(context.Background(), "hot-1", []byte{0x02, 0xc0})
	if _, ok := AsPending(err); ok || err == nil || !strings.Contains(err.Error(), "not the digest of the request sent") {
		t.Fatalf("a 202 with another request's digest: %v", err)
	}
}

func TestSign202NotPending(t *testing.T) {
	s := newSigner(t, stamp.Ed25519)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 202, map[string]string{"status": "queued", "approval_id": "a1"})
	}))
	defer srv.Close()
	c, _ := New(srv.URL, s, nil)
	_, err := c.SignTransaction(context.Background(), "hot-1", []byte{1})
	if _, ok := AsPending(err); ok || err == nil || !strings.Contains(err.Error(), "not a pending approval") {
		t.Fatalf("a 202 that is not a pending approval: %v", err)
	}
}

// approvalsHost serves GET /v1/approvals/{id} with info and POST
// /v1/approvals with answer, recording the bodies posted.
type approvalsHost struct {
	srv    *httptest.Server
	mu     sync.Mutex
	info   func(id string) (int, any)
	answer func(req *api.ApprovalRequest) (int, any)
	posted [][]byte
	stamps []string
}

func newApprovalsHost(t *testing.T) *approvalsHost {
	h := &approvalsHost{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/approvals/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		f := h.info
		h.mu.Unlock()
		status, v := f(r.PathValue("id"))
		writeJSON(w, status, v)
	})
	mux.HandleFunc("POST /v1/approvals", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := api.DecodeApprovalRequest(body)
		if err != nil {
			fail(w, refusal.CodeBadRequest, "", err.Error())
			return
		}
		h.mu.Lock()
		h.posted = append(h.posted, body)
		h.stamps = append(h.stamps, r.Header.Get(stamp.Header))
		f := h.answer
		h.mu.Unlock()
		status, v := f(req)
		writeJSON(w, status, v)
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *approvalsHost) setInfo(f func(id string) (int, any)) {
	h.mu.Lock()
	h.info = f
	h.mu.Unlock()
}

func (h *approvalsHost) setAnswer(f func(req *api.ApprovalRequest) (int, any)) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

func (h *approvalsHost) posts() ([][]byte, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.posted...), append([]string(nil), h.stamps...)
}

const approvalBody = `{"request_id":"r1","timestamp_ms":1,"key":"hot-0","eth_personal_message":{"message":"0x6869"}}`

func pendingState(id string) api.PendingResponse {
	return api.PendingResponse{Status: api.StatusPendingApproval, ApprovalID: id, Digest: hexDigest(api.ApprovalDigest([]byte(approvalBody))),
		Quorum: 2, Approvals: []string{}, Request: approvalBody}
}

func TestApprovalAndApprove(t *testing.T) {
	h := newApprovalsHost(t)
	h.setInfo(func(id string) (int, any) {
		if id != "a1b2" {
			return 404, api.ErrorResponse{Error: api.Error{Code: refusal.CodeNotFound, Message: "no " + id}}
		}
		return 200, pendingState(id)
	})
	c, _ := New(h.srv.URL, nil, nil) // approvers need no client key
	ctx := context.Background()
	p, err := c.Approval(ctx, "a1b2")
	if err != nil || p.Request != approvalBody {
		t.Fatalf("Approval: %+v %v", p, err)
	}
	d, err := CheckApproval(p)
	if err != nil || d != api.ApprovalDigest([]byte(approvalBody)) {
		t.Fatalf("CheckApproval: %x %v", d, err)
	}
	_, err = c.Approval(ctx, "nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != refusal.CodeNotFound {
		t.Fatalf("unknown approval: %v", err)
	}
	// Ids the host would refuse are refused here, unsent.
	for _, bad := range []string{"", "a/b", "a?b", "a b", strings.Repeat("a", 65)} {
		if _, err := c.Approval(ctx, bad); err == nil || !strings.Contains(err.Error(), "approval id") {
			t.Errorf("id %q: %v", bad, err)
		}
	}
	// A host that answers about another request.
	h.setInfo(func(string) (int, any) { return 200, pendingState("other") })
	if _, err := c.Approval(ctx, "a1b2"); err == nil {
		t.Fatal("an answer about another approval was accepted")
	}

	approver := newSigner(t, stamp.P256)
	req, err := NewApproval(approver, "alice", "a1b2", api.DecisionApprove, d)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h.setAnswer(func(r *api.ApprovalRequest) (int, any) {
		calls++
		if calls == 1 {
			p := pendingState(r.ApprovalID)
			p.Request, p.Approvals = "", []string{r.Approver}
			return 202, p
		}
		return 200, api.SignResponse{From: "0xaa", Signature: "0x11", SignedTransaction: "0x02ff", AuditSeq: 7}
	})
	sr, pending, err := c.Approve(ctx, req)
	if err != nil || sr != nil || pending == nil || strings.Join(pending.Approvals, ",") != "alice" {
		t.Fatalf("first approval: %+v %+v %v", sr, pending, err)
	}
	sr, pending, err = c.Approve(ctx, req)
	if err != nil || pending != nil || sr == nil || sr.SignedTransaction != "0x02ff" {
		t.Fatalf("quorum met: %+v %+v %v", sr, pending, err)
	}
	var sent api.ApprovalRequest
	posted, stamps := h.posts()
	if err := json.Unmarshal(posted[0], &sent); err != nil || sent != req || stamps[0] != "" {
		t.Fatalf("posted %s (stamp %q), want %+v unstamped", posted[0], stamps[0], req)
	}

	h.setAnswer(func(*api.ApprovalRequest) (int, any) {
		return 403, api.ErrorResponse{Error: api.Error{Code: refusal.CodeApprovalRejected, Rule: "approvals", Message: "rejected by bob"}}
	})
	if _, _, err := c.Approve(ctx, req); !errors.As(err, &ae) || ae.Code != refusal.CodeApprovalRejected || ae.Status != 403 {
		t.Fatalf("rejected: %v", err)
	}
	// Refused locally: nothing sent.
	before, _ := h.posts()
	bad := req
	bad.ApprovalID = ""
	if _, _, err := c.Approve(ctx, bad); err == nil {
		t.Fatal("an approval without an id was accepted")
	}
	if after, _ := h.posts(); len(after) != len(before) {
		t.Fatal("an approval without an id was sent")
	}
}

func TestCheckApprovalRefusesLyingHost(t *testing.T) {
	p := pendingState("a1b2")
	p.Request = strings.Replace(p.Request, "0x6869", "0x6868", 1) // another request, the same digest
	if _, err := CheckApproval(&p); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("a digest that is not the body's: %v", err)
	}
	p = pendingState("a1b2")
	p.Request = ""
	if _, err := CheckApproval(&p); err == nil {
		t.Fatal("no body to check was accepted")
	}
}

func TestNewApprovalDomains(t *testing.T) {
	d := api.ApprovalDigest([]byte(approvalBody))
	for _, scheme := range []stamp.Scheme{stamp.Ed25519, stamp.P256} {
		s := newSigner(t, scheme)
		for decision, domain := range map[string]string{api.DecisionApprove: api.DomainApprove, api.DecisionReject: api.DomainReject} {
			req, err := NewApproval(s, "alice", "a1b2", decision, d)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := hex.DecodeString(strings.TrimPrefix(req.Signature, "0x"))
			if err != nil || req.Decision != decision || req.Approver != "alice" || req.ApprovalID != "a1b2" {
				t.Fatalf("%s: %+v", decision, req)
			}
			if err := admin.VerifyDigest(s.PublicKey(), domain, d, sig); err != nil {
				t.Errorf("%s %s: %v", scheme, decision, err)
			}
			other := api.DomainReject
			if domain == api.DomainReject {
				other = api.DomainApprove
			}
			if admin.VerifyDigest(s.PublicKey(), other, d, sig) == nil {
				t.Errorf("%s %s: the signature also verifies in the other domain", scheme, decision)
			}
		}
	}
	if _, err := NewApproval(newSigner(t, stamp.Ed25519), "alice", "a1b2", "maybe", d); err == nil {
		t.Error("decision maybe accepted")
	}
}

func TestWaitApproval(t *testing.T) {
	h := newApprovalsHost(t)
	var mu sync.Mutex
	polls := 0
	h.setInfo(func(id string) (int, any) {
		mu.Lock()
		defer mu.Unlock()
		polls++
		p := pendingState(id)
		if polls > 1 {
			p.Status = api.StatusSigned
			p.Result = &api.SignResponse{From: "0xaa", Signature: "0x11", AuditSeq: 9}
		}
		return 200, p
	})
	c, _ := New(h.srv.URL, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sr, err := c.WaitApproval(ctx, "a1b2", 0)
	mu.Lock()
	n := polls
	mu.Unlock()
	if err != nil || sr.AuditSeq != 9 || n != 2 {
		t.Fatalf("WaitApproval: %+v %v after %d polls", sr, err, n)
	}
	h.setInfo(func(id string) (int, any) {
		p := pendingState(id)
		p.Status = api.StatusRejected
		return 200, p
	})
	if _, err := c.WaitApproval(ctx, "a1b2", 0); !errors.Is(err, ErrRejected) {
		t.Fatalf("rejected: %v", err)
	}
	h.setInfo(func(id string) (int, any) {
		return 404, api.ErrorResponse{Error: api.Error{Code: refusal.CodeNotFound, Message: "expired"}}
	})
	if _, err := c.WaitApproval(ctx, "a1b2", 0); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	h.setInfo(func(id string) (int, any) { return 200, pendingState(id) })
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := c.WaitApproval(short, "a1b2", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("still pending at the deadline: %v", err)
	}
}

// TestCheckApprovalCompactForm: the host shows approvers the compact form
// of the client's body (as the enclave keeps it); its approval digest is
// the digest of the body the client sent, padded or not, so that the
// client's check of a 202 and the approver's check agree. A request that
// differs in anything but insignificant whitespace has another digest.
func TestCheckApprovalCompactForm(t *testing.T) {
	sent := " {\n  \"request_id\": \"r1\",\n  \"timestamp_ms\": 1,\n  \"key\": \"hot-0\",\n  \"eth_personal_message\": {\"message\": \"0x6869\"}\n}\n"
	compact, err := api.CompactRequest([]byte(sent))
	if err != nil || string(compact) != approvalBody {
		t.Fatalf("compact form %q, %v", compact, err)
	}
	p := pendingState("a1b2")
	p.Digest = hexDigest(api.ApprovalDigest([]byte(sent)))
	if err := pendingError(&p, []byte(sent)); !errors.As(err, new(*PendingError)) {
		t.Fatalf("a 202 for the padded body: %v", err)
	}
	d, err := CheckApproval(&p)
	if err != nil || d != api.ApprovalDigest([]byte(sent)) {
		t.Fatalf("CheckApproval of the compact form: %x %v", d, err)
	}
	p.Request = strings.Replace(approvalBody, `"r1"`, `"r 1"`, 1)
	if _, err := CheckApproval(&p); err == nil {
		t.Fatal("a request that differs inside a string passed the check")
	}
}
