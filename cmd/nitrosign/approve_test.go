package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/summary"
)

const (
	approveTo     = "0x2222222222222222222222222222222222222222"
	approveKeyHex = "0x9bf111518107c76Da607BB6039489949B2951a10"
)

// approvalFixture is a sign request waiting for approvals: its exact body,
// and the state an honest host reports.
type approvalFixture struct {
	body    []byte
	tx      *ethtx.Tx
	pending api.PendingResponse
}

func txFixture(t *testing.T, data []byte) approvalFixture {
	t.Helper()
	to, _ := ethtx.ParseAddress(approveTo)
	if data != nil {
		to, _ = ethtx.ParseAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	}
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 7, GasLimit: 60000, To: &to,
		Value: new(big.Int).Mul(big.NewInt(15), big.NewInt(1e17)), MaxFeePerGas: big.NewInt(3e10), MaxPriorityFeePerGas: big.NewInt(1e9), Data: data}
	if data != nil {
		tx.Value = big.NewInt(0)
	}
	body, err := json.Marshal(&api.SignRequest{RequestID: "req-1", TimestampMS: 1700000000000, Key: "hot-0", EthTransaction: api.NewEthTransaction(tx.EncodeUnsigned())})
	if err != nil {
		t.Fatal(err)
	}
	var call calldata.Call
	if call, err = calldata.Decode(tx.Data); err != nil {
		t.Fatal(err)
	}
	addr, _ := ethtx.ParseAddress(approveKeyHex)
	// The enclave's summary: with the key's address and path.
	sum := summary.Transaction(tx, call, summary.Key{ID: "hot-0", Address: addr, Path: "m/44'/60'/0'/0/0"}, tx.SigningHash(), nil)
	return newFixture(body, apiLines(sum), tx)
}

func newFixture(body []byte, serverSummary []api.SummaryLine, tx *ethtx.Tx) approvalFixture {
	d := api.ApprovalDigest(body)
	text, _ := api.SummaryText(serverSummary)
	return approvalFixture{body: body, tx: tx, pending: api.PendingResponse{
		Status: api.StatusPendingApproval, ApprovalID: "a1b2", Digest: "0x" + hex.EncodeToString(d[:]), Summary: text, SummaryLines: serverSummary,
		Quorum: 2, Approvals: []string{}, ExpiresAtMS: 1700003600000, AuditSeq: 4, Request: string(body),
	}}
}

// apiLines is s as the host serves it.
func apiLines(s summary.Summary) []api.SummaryLine {
	out := make([]api.SummaryLine, len(s.Lines))
	for i, l := range s.Lines {
		out[i] = api.SummaryLine{Key: l.Key, Value: l.Value}
		for _, lb := range l.Labels {
			out[i].Labels = append(out[i].Labels, api.SummaryLabel{At: lb.At, End: lb.End, Text: lb.Text})
		}
	}
	return out
}

// line returns the server's line of that key, or fails the test.
func (f *approvalFixture) line(t *testing.T, key string) *api.SummaryLine {
	t.Helper()
	for i := range f.pending.SummaryLines {
		if f.pending.SummaryLines[i].Key == key {
			return &f.pending.SummaryLines[i]
		}
	}
	t.Fatalf("no %s line in the server's summary", key)
	return nil
}

// label puts a label after the address of the server's line of that key.
func (f *approvalFixture) label(t *testing.T, key, text string) {
	l := f.line(t, key)
	l.Labels = append(l.Labels, api.SummaryLabel{At: 42, End: 42, Text: text})
}

// approveHost is a fake nitrosign-host for the approval endpoints.
type approveHost struct {
	srv    *httptest.Server
	mu     sync.Mutex
	state  api.PendingResponse
	answer func(req *api.ApprovalRequest) (int, any)
	posted []*api.ApprovalRequest
}

func newApproveHost(t *testing.T, state api.PendingResponse) *approveHost {
	t.Helper()
	h := &approveHost{state: state}
	h.answer = func(req *api.ApprovalRequest) (int, any) {
		p := h.state
		p.Request, p.Approvals = "", []string{req.Approver}
		return 202, p
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/approvals/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		st := h.state
		h.mu.Unlock()
		if r.PathValue("id") != st.ApprovalID {
			reply(w, 404, api.ErrorResponse{Error: api.Error{Code: refusal.CodeNotFound, Message: "no such approval"}})
			return
		}
		reply(w, 200, st)
	})
	mux.HandleFunc("POST /v1/approvals", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req, err := api.DecodeApprovalRequest(b)
		if err != nil {
			reply(w, 400, api.ErrorResponse{Error: api.Error{Code: refusal.CodeBadRequest, Message: err.Error()}})
			return
		}
		h.mu.Lock()
		h.posted = append(h.posted, req)
		answer := h.answer
		h.mu.Unlock()
		status, v := answer(req)
		reply(w, status, v)
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *approveHost) posts() []*api.ApprovalRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*api.ApprovalRequest(nil), h.posted...)
}

func (h *approveHost) setAnswer(f func(req *api.ApprovalRequest) (int, any)) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// approverKey writes a fresh approver key and returns it and its file.
func approverKey(t *testing.T, scheme stamp.Scheme) (stamp.Signer, string) {
	t.Helper()
	s, err := stamp.GenerateSigner(scheme)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := stamp.MarshalPrivateKeyPEM(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "approver.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, path
}

// runCLI runs nitrosign with input on its standard input.
func runCLI(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(input)
	defer func() { stdin = old }()
	var out, errOut bytes.Buffer
	code = mainWithArgs(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkSignature checks that req is name's signature of the fixture's
// approval digest in domain.
func checkSignature(t *testing.T, req *api.ApprovalRequest, s stamp.Signer, f approvalFixture, decision, domain string) {
	t.Helper()
	sig, err := hex.DecodeString(strings.TrimPrefix(req.Signature, "0x"))
	if err != nil || req.ApprovalID != "a1b2" || req.Approver != "alice" || req.Decision != decision {
		t.Fatalf("posted %+v", req)
	}
	if err := admin.VerifyDigest(s.PublicKey(), domain, api.ApprovalDigest(f.body), sig); err != nil {
		t.Fatalf("the posted signature is not alice's %s of the request's approval digest: %v", decision, err)
	}
}

func TestApproveShowsLocalDecodeAndSigns(t *testing.T) {
	f := txFixture(t, nil)
	// The host's summary carries the policy's label: no difference in
	// substance.
	f.label(t, "to", ` ("treasury (cold)")`)
	h := newApproveHost(t, f.pending)
	s, keyFile := approverKey(t, stamp.Ed25519)
	code, out, errOut := runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 0 {
		t.Fatalf("approve exited %d: %s\n%s", code, errOut, out)
	}
	local, server, ok := strings.Cut(out, "== server's summary")
	if !ok {
		t.Fatalf("no server summary section:\n%s", out)
	}
	for _, want := range []string{
		"== LOCAL decoding of the request",
		"request: EIP-1559 transaction",
		"chain: 1 (Ethereum)",
		`from: key "hot-0" (its address is not known here)`,
		"to: " + approveTo + "\n",
		"value: 1.5 ETH",
		"call: none",
		fmt.Sprintf("digest: 0x%x", f.tx.SigningHash()),
		"approval digest: " + f.pending.Digest,
		"client request  req-1",
	} {
		if !strings.Contains(local, want) {
			t.Errorf("the local decoding lacks %q:\n%s", want, local)
		}
	}
	if !strings.Contains(server, `("treasury (cold)")`) || !strings.Contains(server, "agrees with the local decoding") || strings.Contains(out, "WARNING") {
		t.Errorf("server section:\n%s", server)
	}
	if !strings.Contains(out, "Recorded: 1 of 2 approvals (alice)") {
		t.Errorf("no recorded line:\n%s", out)
	}
	posts := h.posts()
	if len(posts) != 1 {
		t.Fatalf("%d approvals posted, want 1", len(posts))
	}
	checkSignature(t, posts[0], s, f, api.DecisionApprove, api.DomainApprove)

	// The last approval: the signed transaction is printed.
	h.setAnswer(func(*api.ApprovalRequest) (int, any) {
		return 200, api.SignResponse{From: approveKeyHex, Signature: "0x" + strings.Repeat("11", 65), SignedTransaction: "0x02f8ff", TransactionHash: "0x" + strings.Repeat("22", 32), AuditSeq: 9}
	})
	code, out, errOut = runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 0 || !strings.Contains(out, "Quorum met") || !strings.Contains(out, `"signed_transaction": "0x02f8ff"`) {
		t.Fatalf("quorum met: exit %d %s\n%s", code, errOut, out)
	}
}

func TestApproveRefusesLyingDigest(t *testing.T) {
	f := txFixture(t, nil)
	// The host shows this request but asks for a signature over another
	// request's approval digest.
	other := api.ApprovalDigest(bytes.Replace(f.body, []byte("req-1"), []byte("req-2"), 1))
	f.pending.Digest = "0x" + hex.EncodeToString(other[:])
	h := newApproveHost(t, f.pending)
	_, keyFile := approverKey(t, stamp.P256)
	code, out, errOut := runCLI(t, "yes\n", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice")
	if code != 1 || !strings.Contains(errOut, "not the digest of the request body") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("a lying digest: exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(out, "Type \"yes\"") {
		t.Errorf("the approver was asked to confirm a request with a lying digest:\n%s", out)
	}
	if n := len(h.posts()); n != 0 {
		t.Fatalf("%d approvals posted for a lying host", n)
	}
}

func TestApproveSummaryMismatch(t *testing.T) {
	f := txFixture(t, nil)
	// The host's summary shows another value (and so another digest).
	f.line(t, "value").Value = "0.015 ETH"
	h := newApproveHost(t, f.pending)
	_, keyFile := approverKey(t, stamp.Ed25519)
	code, out, errOut := runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 1 || !strings.Contains(out, "WARNING: THE SERVER'S SUMMARY DIFFERS") || !strings.Contains(out, `value: the server shows 0.015 ETH, the local decoding "1.5 ETH"`) {
		t.Fatalf("mismatch with --yes: exit %d %s\n%s", code, errOut, out)
	}
	if !strings.Contains(errOut, "refusing with --yes") || len(h.posts()) != 0 {
		t.Fatalf("--yes approved despite the mismatch: %s (%d posts)", errOut, len(h.posts()))
	}
	// A person who read both may still decide.
	code, out, errOut = runCLI(t, "yes\n", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice")
	if code != 0 || !strings.Contains(out, "WARNING") || len(h.posts()) != 1 {
		t.Fatalf("confirmed after the warning: exit %d %s (%d posts)", code, errOut, len(h.posts()))
	}

	// A different signing digest is named as such.
	f = txFixture(t, nil)
	f.line(t, "digest").Value = "0x" + strings.Repeat("ab", 32)
	h = newApproveHost(t, f.pending)
	code, out, _ = runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 1 || !strings.Contains(out, "signing digest: the server says 0x"+strings.Repeat("ab", 32)) {
		t.Fatalf("another signing digest: exit %d\n%s", code, out)
	}
	// And another signing key.
	f = txFixture(t, nil)
	f.line(t, "from").Labels[0].Text = " (key hot-9, m/44'/60'/0'/0/0)"
	h = newApproveHost(t, f.pending)
	code, out, _ = runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 1 || !strings.Contains(out, `not the key the request names ("hot-0")`) {
		t.Fatalf("another key: exit %d\n%s", code, out)
	}
	// So is a line the server hides.
	f = txFixture(t, nil)
	f.pending.SummaryLines = slices.DeleteFunc(f.pending.SummaryLines, func(l api.SummaryLine) bool { return l.Key == "call" })
	h = newApproveHost(t, f.pending)
	code, out, _ = runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 1 || !strings.Contains(out, "the server's summary has 8 lines, the local decoding 9") {
		t.Fatalf("a hidden line: exit %d\n%s", code, out)
	}
}

func TestApproveNeedsConfirmation(t *testing.T) {
	f := txFixture(t, nil)
	h := newApproveHost(t, f.pending)
	_, keyFile := approverKey(t, stamp.Ed25519)
	for _, tc := range []struct{ input, says string }{
		// A closed or empty standard input (a script without --yes) is
		// refused at once, and the refusal names --yes.
		{"", "standard input ended without an answer"},
		{"no\n", `the answer was "no"`},
		{"y\n", `the answer was "y"`},
		{"YES please\n", `the answer was "YES please"`},
		{"\n", `the answer was ""`},
		// Two approve lines pasted at once: the second is the answer to
		// the first, and the refusal says so.
		{"bin/nitrosign approve --id a1b2 --key approver-2.pem --name bob\n", `the answer was "bin/nitrosign approve --id a1b2 --key approver-2.pem --name bob"`},
		{strings.Repeat("x", 5000), `the answer was "` + strings.Repeat("x", 100) + `…"`},
	} {
		code, out, errOut := runCLI(t, tc.input, "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice")
		if code != 1 || !strings.Contains(out, `Type "yes" to approve (scripts: run with --yes instead): `) ||
			!strings.Contains(errOut, "not confirmed: ") || !strings.Contains(errOut, tc.says) || !strings.Contains(errOut, "--yes") ||
			!strings.Contains(errOut, "nothing was signed or sent") || strings.Count(errOut, "\n") != 1 {
			t.Fatalf("input %q: exit %d %s\n%s", tc.input, code, errOut, out)
		}
	}
	// A real standard input whose writer is gone: refused at once, not a
	// hang.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer r.Close()
	old := stdin
	stdin = r
	var out, errOut bytes.Buffer
	code := mainWithArgs([]string{"approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice"}, &out, &errOut)
	stdin = old
	if code != 1 || !strings.Contains(errOut.String(), "standard input ended without an answer") {
		t.Fatalf("closed standard input: exit %d %s", code, errOut.String())
	}
	if n := len(h.posts()); n != 0 {
		t.Fatalf("%d approvals posted without confirmation", n)
	}
	if code, _, errOut := runCLI(t, "yes\n", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice"); code != 0 || len(h.posts()) != 1 {
		t.Fatalf("confirmed: exit %d %s", code, errOut)
	}
}

func TestApproveReject(t *testing.T) {
	f := txFixture(t, nil)
	h := newApproveHost(t, f.pending)
	h.setAnswer(func(*api.ApprovalRequest) (int, any) {
		return 403, api.ErrorResponse{Error: api.Error{Code: refusal.CodeApprovalRejected, Rule: "approvals", Message: "rejected by alice"}}
	})
	s, keyFile := approverKey(t, stamp.P256)
	code, out, errOut := runCLI(t, "yes\n", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--reject")
	if code != 0 || !strings.Contains(out, `Type "yes" to reject`) || !strings.Contains(out, "Rejected: approval a1b2 will not be signed") {
		t.Fatalf("reject: exit %d %s\n%s", code, errOut, out)
	}
	posts := h.posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	checkSignature(t, posts[0], s, f, api.DecisionReject, api.DomainReject)
	// The same answer to an approval is a failure.
	if code, _, errOut := runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes"); code != 1 || !strings.Contains(errOut, "approval_rejected") {
		t.Fatalf("approval answered rejected: exit %d %s", code, errOut)
	}
}

func TestApproveUndecodable(t *testing.T) {
	body := []byte(`{"request_id":"r","timestamp_ms":1,"key":"hot-0","eth_transaction":{"unsigned":"0x05c0"}}`)
	f := newFixture(body, []api.SummaryLine{{Key: "request", Value: "something"}}, nil)
	h := newApproveHost(t, f.pending)
	_, keyFile := approverKey(t, stamp.Ed25519)
	code, _, errOut := runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
	if code != 1 || !strings.Contains(errOut, "does not decode here") || len(h.posts()) != 0 {
		t.Fatalf("undecodable approve: exit %d %s", code, errOut)
	}
	// Rejecting it is fine.
	code, out, errOut := runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes", "--reject")
	if code != 0 || !strings.Contains(out, "rejecting it anyway") || len(h.posts()) != 1 {
		t.Fatalf("undecodable reject: exit %d %s\n%s", code, errOut, out)
	}
}

func TestApproveMessages(t *testing.T) {
	mail, err := os.ReadFile(filepath.Join("..", "..", "docs", "examples", "mail.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, payload string
		want          []string
	}{
		{"personal", `"eth_personal_message":{"message":"0x6869"}`, []string{"request: EIP-191 personal message", `message: "hi" (2 bytes)`}},
		{"typed", `"eth_typed_data":` + string(bytes.TrimSpace(mail)), []string{"request: EIP-712 typed data", "primary type: Mail",
			"digest: 0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(`{"request_id":"r","timestamp_ms":1,"key":"` + approveKeyHex + `",` + tc.payload + `}`)
			loc, err := decodeLocally(body)
			if err != nil {
				t.Fatal(err)
			}
			// The enclave's summary names the key by its id and path.
			sum := apiLines(loc.sum)
			sum[1].Labels[0].Text = " (key hot-0, m/44'/60'/0'/0/0)"
			f := newFixture(body, sum, nil)
			h := newApproveHost(t, f.pending)
			code, out, errOut := runCLI(t, "", "approvals", "show", "--host", h.srv.URL, "--id", "a1b2")
			if code != 0 {
				t.Fatalf("approvals show: exit %d %s", code, errOut)
			}
			for _, want := range append(tc.want, "from: "+approveKeyHex+" (the signing key, named by its address)", "agrees with the local decoding") {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestApprovalsShowQuotesHostText(t *testing.T) {
	f := txFixture(t, nil)
	f.pending.SummaryLines = []api.SummaryLine{{Key: "request", Value: "EIP-1559 transaction\x1b[2J\rall good"}}
	f.pending.Approvals = []string{"bob\x1b[31m"}
	h := newApproveHost(t, f.pending)
	code, out, errOut := runCLI(t, "", "approvals", "show", "--host", h.srv.URL, "--id", "a1b2")
	if code != 0 {
		t.Fatalf("approvals show: exit %d %s", code, errOut)
	}
	if strings.ContainsAny(out, "\x1b\r") || !strings.Contains(out, `"request: EIP-1559 transaction\x1b[2J\rall good"`) || !strings.Contains(out, "WARNING") {
		t.Fatalf("host text reached the terminal unquoted:\n%q", out)
	}
}

func TestApproveUsage(t *testing.T) {
	for _, args := range [][]string{
		{"approve"},
		{"approve", "--id", "a1b2", "--name", "alice"},
		{"approve", "--id", "a1b2", "--key", "k.pem"},
		{"approvals"},
		{"approvals", "show"},
	} {
		if code, _, _ := runCLI(t, "", args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestSignPendingExitStatus(t *testing.T) {
	_, keyFile := approverKey(t, stamp.Ed25519) // any key: the fake host registers none
	var mu sync.Mutex
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if _, err := stamp.Verify(r.Header.Get(stamp.Header), b); err != nil {
			reply(w, 401, api.ErrorResponse{Error: api.Error{Code: refusal.CodeUnauthorized, Message: err.Error()}})
			return
		}
		mu.Lock()
		got = b
		mu.Unlock()
		f := newFixture(b, []api.SummaryLine{{Key: "request", Value: "EIP-1559 transaction"}}, nil)
		f.pending.Request = ""
		reply(w, 202, f.pending)
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "", "sign", "--host", srv.URL, "--client-key", keyFile, "--key", "hot-0", "--to", approveTo, "--value", "5", "--chain-id", "1")
	mu.Lock()
	d := api.ApprovalDigest(got)
	mu.Unlock()
	if code != 3 {
		t.Fatalf("pending sign: exit %d, want 3; %s\n%s", code, errOut, out)
	}
	var p api.PendingResponse
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.ApprovalID != "a1b2" || p.Status != api.StatusPendingApproval {
		t.Fatalf("pending sign output %s (%v)", out, err)
	}
	if !strings.Contains(errOut, "pending approval: approval a1b2") || !strings.Contains(errOut, fmt.Sprintf("0x%x", d)) || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("pending sign stderr %q", errOut)
	}
}

// TestApproveComparesStructures: the server's summary lines are compared
// with the local decoding's as structures: keys in order and values byte
// for byte, labels ignored as the fields they are, and a label that would
// make the server's text say another thing of the request reported.
func TestApproveComparesStructures(t *testing.T) {
	const evil = "0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516"
	usdc := abiCall(t, "a9059cbb", "0000000000000000000000002222222222222222222222222222222222222222", "000000000000000000000000000000000000000000000000000000000016e360")
	// units shows call.amount (1500000 raw units) as text.
	units := func(text string) func(t *testing.T, f *approvalFixture) {
		return func(t *testing.T, f *approvalFixture) {
			l := f.line(t, "call.amount")
			l.Labels = []api.SummaryLabel{{At: 0, End: len(l.Value), Text: text}}
		}
	}
	for _, tc := range []struct {
		name   string
		data   []byte // calldata: an ERC-20 transfer when set, else a plain ETH transfer
		change func(t *testing.T, f *approvalFixture)
		want   string // a difference reported; "" for agreement
	}{
		{name: "agrees", change: func(*testing.T, *approvalFixture) {}},
		{name: "agrees with labels and units", data: usdc, change: func(t *testing.T, f *approvalFixture) {
			f.label(t, "to", " (USDC token)")
			f.label(t, "call.to", ` ("treasury")`)
			units("1.5 USDC")(t, f)
		}},
		{name: "forged value with a legit label", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "to").Value = evil
			f.label(t, "to", ` ("treasury")`)
		}, want: `to: the server shows ` + evil + ` ("treasury"), the local decoding "` + approveTo + `"`},
		{name: "label smuggles an address", change: func(t *testing.T, f *approvalFixture) {
			f.label(t, "to", ` ("treasury, now at `+evil+`")`)
		}, want: `to: the label "` + ` (\"treasury, now at ` + evil + `\")" names an address`},
		{name: "label replaces the address", change: func(t *testing.T, f *approvalFixture) {
			l := f.line(t, "to")
			l.Labels = []api.SummaryLabel{{At: 0, End: 42, Text: "0xEvil…"}}
		}, want: `to: the label "0xEvil…" shows "` + approveTo + `", which is not that raw token amount in units`},
		{name: "label inside the value", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "to").Value = approveTo + ` ("treasury")`
		}, want: `to: the server shows ` + approveTo + ` ("treasury"), the local decoding "` + approveTo + `"`},
		{name: "label in the digest", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "digest").Labels = []api.SummaryLabel{{At: 42, End: 42, Text: " (ok)"}}
		}, want: `digest: the label " (ok)" does not follow an address`},
		{name: "forged units", data: usdc, change: units("9.9 USDC"), want: `call.amount: the label "9.9 USDC" shows "1500000 (raw units of 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)", which is not that raw token amount in units`},
		{name: "units without a token", data: usdc, change: units("1.5"), want: "which is not that raw token amount in units"},
		{name: "malformed labels", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "to").Labels = []api.SummaryLabel{{At: 50, End: 50, Text: "x"}}
		}, want: "line 5: malformed labels"},
		{name: "missing line", change: func(t *testing.T, f *approvalFixture) {
			f.pending.SummaryLines = f.pending.SummaryLines[:len(f.pending.SummaryLines)-2]
		}, want: "the server's summary names no signing digest"},
		{name: "extra line", change: func(t *testing.T, f *approvalFixture) {
			n := len(f.pending.SummaryLines)
			f.pending.SummaryLines = slices.Insert(f.pending.SummaryLines, n-1, api.SummaryLine{Key: "note", Value: "all good"})
		}, want: "the server's summary has 10 lines, the local decoding 9"},
		{name: "different key", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "nonce").Key = "nonce "
		}, want: `line 4: the server shows nonce : 7 where the local decoding shows "nonce: 7"`},
		{name: "different digest", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "digest").Value = "0x" + strings.Repeat("ab", 32)
		}, want: "signing digest: the server says 0x" + strings.Repeat("ab", 32)},
		{name: "from another key", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "from").Labels[0].Text = " (key hot-00, m/0)"
		}, want: `from: the server shows ` + approveKeyHex + ` (key hot-00, m/0), not the key the request names ("hot-0")`},
		{name: "from without the key", change: func(t *testing.T, f *approvalFixture) {
			f.line(t, "from").Labels = nil
		}, want: `not the key the request names ("hot-0")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := txFixture(t, tc.data)
			tc.change(t, &f)
			loc, err := decodeLocally(f.body)
			if err != nil {
				t.Fatal(err)
			}
			diffs := compareSummaries(loc, f.pending.SummaryLines)
			switch {
			case tc.want == "" && len(diffs) != 0:
				t.Fatalf("differences reported: %q", diffs)
			case tc.want != "" && !slices.ContainsFunc(diffs, func(d string) bool { return strings.Contains(d, tc.want) }):
				t.Fatalf("differences %q, want one saying %q", diffs, tc.want)
			}
			// The command: --yes approves only what agrees.
			h := newApproveHost(t, f.pending)
			_, keyFile := approverKey(t, stamp.Ed25519)
			code, out, errOut := runCLI(t, "", "approve", "--host", h.srv.URL, "--id", "a1b2", "--key", keyFile, "--name", "alice", "--yes")
			if agrees := tc.want == ""; agrees != (code == 0) || agrees != (len(h.posts()) == 1) || agrees == strings.Contains(out, "WARNING") {
				t.Fatalf("exit %d, %d posts: %s\n%s", code, len(h.posts()), errOut, out)
			}
		})
	}
}

// abiCall builds calldata: a selector then 32-byte words, in hex.
func abiCall(t *testing.T, selector string, words ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(selector + strings.Join(words, ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
