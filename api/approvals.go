package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// Approvals: a request above a policy's approval threshold is not signed at
// once. POST /v1/sign answers 202 with a PendingResponse; approvers fetch
// the request (GET /v1/approvals/{id}), check it themselves (`nitrosign
// approve` decodes the transaction locally and shows its own summary), and
// sign ApprovalDigest(body) with their key; POST /v1/approvals carries each
// signature. Once the quorum is met, the enclave signs; the initiating
// client fetches the signature with GET /v1/approvals/{id}.

// Approval statuses.
const (
	StatusPendingApproval = "pending_approval"
	StatusSigned          = "signed"
	StatusRejected        = "rejected"
	StatusExpired         = "expired"
)

// Approval decisions.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Signing domains of approver signatures (see package admin: SignDigest and
// VerifyDigest): an approval and a rejection are different statements.
const (
	DomainApprove = "nitrosign approval v1\n"
	DomainReject  = "nitrosign rejection v1\n"
)

// MaxApprovalBodySize caps POST /v1/approvals bodies.
const MaxApprovalBodySize = 16 << 10

// Field caps of an approval, in bytes.
const (
	MaxApprovalIDLen        = 64  // approval_id
	MaxApproverLen          = 64  // approver: a name in the admin set
	MaxApprovalSignatureLen = 512 // signature, in hex: a signature of at most 256 bytes
)

// PendingResponse is the 202 answer to a sign request that needs approvals,
// and the state of one (GET /v1/approvals/{id}).
type PendingResponse struct {
	Status string `json:"status"`
	// ApprovalID names the pending request.
	ApprovalID string `json:"approval_id"`
	// Digest is what approvers sign: ApprovalDigest of the request body
	// (equally of Request, its compact form).
	Digest string `json:"digest"`
	// Summary is the enclave's canonical summary of the decoded request,
	// as text: SummaryLines rendered (SummaryText), as the audit record
	// keeps it.
	Summary string `json:"summary"`
	// SummaryLines is the same summary line by line, with what the policy
	// and the enclave's key store add (labels) apart from the substance.
	SummaryLines []SummaryLine `json:"summary_lines"`
	// Quorum is how many approvers must approve; Approvals names those who
	// did.
	Quorum    int      `json:"quorum"`
	Approvals []string `json:"approvals"`
	// ExpiresAtMS is when the request expires unless approved.
	ExpiresAtMS int64 `json:"expires_at_ms"`
	// AuditSeq is the sequence number of the latest audit record about it.
	AuditSeq uint64 `json:"audit_seq"`
	// AlreadyCounted is true in the answer to an approval (POST
	// /v1/approvals) from an approver already counted: nothing changed and
	// nothing was recorded (a replayed approval is harmless).
	AlreadyCounted bool `json:"already_counted,omitempty"`
	// Request is the client's request body in its compact form
	// (CompactRequest: the body as stamped, without insignificant
	// whitespace; GET only), for approvers to decode and check.
	Request string `json:"request,omitempty"`
	// Result is the signature, once approved (GET only).
	Result *SignResponse `json:"result,omitempty"`
}

// ApprovalRequest is the body of POST /v1/approvals.
type ApprovalRequest struct {
	ApprovalID string `json:"approval_id"`
	// Decision is "approve" or "reject".
	Decision string `json:"decision"`
	// Approver is the approver's name in the policy.
	Approver string `json:"approver"`
	// Signature is the approver's signature (hex) over Digest in the
	// decision's domain (DomainApprove or DomainReject): Ed25519, or P-256
	// ECDSA in ASN.1 DER.
	Signature string `json:"signature"`
}

// DecodeApprovalRequest strictly decodes a POST /v1/approvals body.
func DecodeApprovalRequest(b []byte) (*ApprovalRequest, error) {
	var r ApprovalRequest
	if err := strictjson.Unmarshal(b, &r, MaxApprovalBodySize); err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	if r.ApprovalID == "" || len(r.ApprovalID) > MaxApprovalIDLen {
		return nil, fmt.Errorf("approval: approval_id: want 1 to %d characters", MaxApprovalIDLen)
	}
	if r.Decision != DecisionApprove && r.Decision != DecisionReject {
		return nil, fmt.Errorf("approval: decision: want %q or %q", DecisionApprove, DecisionReject)
	}
	if r.Approver == "" || len(r.Approver) > MaxApproverLen {
		return nil, fmt.Errorf("approval: approver: want 1 to %d characters", MaxApproverLen)
	}
	if r.Signature == "" || len(r.Signature) > MaxApprovalSignatureLen {
		return nil, fmt.Errorf("approval: signature: want hex of at most %d bytes", MaxApprovalSignatureLen/2)
	}
	return &r, nil
}

// approvalDigestDomain tags approval digests. Version 2 digests the
// request's compact form (CompactRequest); version 1 digested the exact
// bytes, which obliged the enclave to keep every pending body whole,
// padding and all.
const approvalDigestDomain = "nitrosign approval digest v2\n"

// CompactRequest returns the compact form of a JSON request body: the body
// with every insignificant whitespace outside strings removed
// (json.Compact), nothing else changed (no key is reordered, no string or
// number rewritten, no character escaped). Two bodies with the same compact
// form differ only in whitespace that no JSON decoder reads, so they are
// the same request; and the compact form is its own compact form, so
// whoever holds either computes the same approval digest. It fails on a
// body that is not JSON.
func CompactRequest(body []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, body); err != nil {
		return nil, fmt.Errorf("request: not JSON: %w", err)
	}
	return b.Bytes(), nil
}

// ApprovalDigest is what approvers sign for a request:
//
//	SHA-256("nitrosign approval digest v2\n" || SHA-256(CompactRequest(body)))
//
// The body (which names the key and carries the unsigned transaction or
// message, its request id and time) binds an approval to that request
// only; its compact form makes the digest the same whether computed from
// the exact body the client stamped (the client, the host) or from the
// compact form the enclave keeps and shows approvers (GET
// /v1/approvals/{id}). A body that is not JSON, which no pending request
// has, is digested as it is (it is no JSON's compact form, so its digest is
// no request's).
func ApprovalDigest(body []byte) [32]byte {
	if c, err := CompactRequest(body); err == nil {
		body = c
	}
	h := sha256.Sum256(body)
	return sha256.Sum256(append([]byte(approvalDigestDomain), h[:]...))
}

// SummaryLine is one line of a summary (package summary): Key, Value (what
// the request alone determines, as a decoding without the policy computes
// it) and Labels (what the policy and the enclave's key store add: an
// address's label or token name, an amount in a token's units, the
// signing key's id and path).
type SummaryLine struct {
	Key    string         `json:"key"`
	Value  string         `json:"value"`
	Labels []SummaryLabel `json:"labels,omitempty"`
}

// SummaryLabel is a label of a summary line: Text is shown in place of the
// bytes At to End of the line's Value (UTF-8 byte offsets), or inserted at
// At when End equals At.
type SummaryLabel struct {
	At   int    `json:"at"`
	End  int    `json:"end"`
	Text string `json:"text"`
}

// Shown is the line's value as shown, its labels in place; an error when
// the labels are out of order, overlap, or fall outside the value or
// within a character.
func (l SummaryLine) Shown() (string, error) {
	var b strings.Builder
	at := 0
	for i, lb := range l.Labels {
		if lb.At < at || lb.End < lb.At || lb.End > len(l.Value) || !runeBoundary(l.Value, lb.At) || !runeBoundary(l.Value, lb.End) {
			return "", fmt.Errorf("summary line %q, label %d: bytes %d to %d out of order, past the value or within a character", l.Key, i, lb.At, lb.End)
		}
		b.WriteString(l.Value[at:lb.At])
		b.WriteString(lb.Text)
		at = lb.End
	}
	b.WriteString(l.Value[at:])
	return b.String(), nil
}

func runeBoundary(s string, i int) bool { return i == len(s) || utf8.RuneStart(s[i]) }

// SummaryText renders summary lines as the audit record's text: "key:
// value\n" each, labels in place.
func SummaryText(lines []SummaryLine) (string, error) {
	var b strings.Builder
	for _, l := range lines {
		v, err := l.Shown()
		if err != nil {
			return "", err
		}
		b.WriteString(l.Key + ": " + v + "\n")
	}
	return b.String(), nil
}
