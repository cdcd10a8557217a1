package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/stamp"
)

// PendingError is what [Client.Sign] returns when the host answers 202: the
// request exceeds a policy's approval threshold and waits for approvers.
// It is not a refusal: the enclave holds the request, and signs it once the
// quorum approves (fetch the signature with [Client.Approval] or
// [Client.WaitApproval]).
type PendingError struct {
	// Pending is the host's answer.
	Pending api.PendingResponse
	// Digest is the approval digest of the body sent (api.ApprovalDigest,
	// over its compact form), computed by the client; Sign checked that
	// the host's Pending.Digest is the same.
	Digest [32]byte
	// Body is the exact stamped request body sent.
	Body []byte
}

// Error describes the pending request.
func (e *PendingError) Error() string {
	return fmt.Sprintf("client: the request waits for approvals (approval %s, %d needed, digest 0x%x)", e.Pending.ApprovalID, e.Pending.Quorum, e.Digest)
}

// AsPending returns the pending request if err is (or wraps) a
// [*PendingError].
func AsPending(err error) (*api.PendingResponse, bool) {
	var pe *PendingError
	if errors.As(err, &pe) {
		return &pe.Pending, true
	}
	return nil, false
}

// pendingError checks a 202 answer to body and returns its PendingError,
// or an error if the host's digest is not the body's.
func pendingError(p *api.PendingResponse, body []byte) error {
	d := api.ApprovalDigest(body)
	if got, err := parseDigest(p.Digest); err != nil || got != d {
		return fmt.Errorf("client: the host answered that approval %s is pending, with approval digest %q, which is not the digest of the request sent (0x%x)", p.ApprovalID, p.Digest, d)
	}
	return &PendingError{Pending: *p, Digest: d, Body: body}
}

// parseDigest decodes a 0x-prefixed 32-byte hex digest.
func parseDigest(s string) ([32]byte, error) {
	var d [32]byte
	h, ok := strings.CutPrefix(s, "0x")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != len(d) {
		return d, fmt.Errorf("digest %q is not 0x and 64 hex digits", s)
	}
	copy(d[:], b)
	return d, nil
}

// Errors of WaitApproval.
var (
	ErrRejected = errors.New("client: an approver rejected the request")
	ErrExpired  = errors.New("client: the request expired before it was approved")
)

// Approval fetches the state of a pending (or decided) request: GET
// /v1/approvals/{id}. Its Request is the client's body in its compact form
// (api.CompactRequest: as stamped, without insignificant whitespace), for
// approvers to decode and check themselves (see [CheckApproval]); its
// Result is the signature once the quorum approved (or once the policy in
// force no longer requires approvals for it). An unknown or expired id is an
// [*APIError] with code not_found. Approval needs no signer.
func (c *Client) Approval(ctx context.Context, id string) (*api.PendingResponse, error) {
	if !validApprovalID(id) {
		return nil, fmt.Errorf("client: approval id: want 1 to %d characters of [A-Za-z0-9._:-]", api.MaxApprovalIDLen)
	}
	var resp api.PendingResponse
	if err := c.get(ctx, "/v1/approvals/"+id, &resp); err != nil {
		return nil, err
	}
	if resp.ApprovalID != id {
		return nil, fmt.Errorf("client: asked for approval %q, the host answered about %q", id, resp.ApprovalID)
	}
	return &resp, nil
}

// validApprovalID reports whether id is 1 to 64 characters of
// [A-Za-z0-9._:-], as the host requires: such an id needs no escaping.
func validApprovalID(id string) bool {
	if id == "" || len(id) > api.MaxApprovalIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Approve sends an approver's decision (POST /v1/approvals; see
// [NewApproval]). While more approvals are needed the host answers 202 and
// Approve returns the pending state; once the quorum is met it returns the
// signature. A rejection is an [*APIError] with code approval_rejected
// (also the answer to a reject decision, which ends the request); a
// signature that does not verify is unauthorized. Approve needs no signer:
// the approver's signature is in req.
func (c *Client) Approve(ctx context.Context, req api.ApprovalRequest) (*api.SignResponse, *api.PendingResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, fmt.Errorf("client: encoding approval: %w", err)
	}
	if _, err := api.DecodeApprovalRequest(body); err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	var resp api.SignResponse
	var pending api.PendingResponse
	accepted, err := c.postAccept(ctx, "/v1/approvals", body, "", &resp, &pending)
	if err != nil {
		return nil, nil, err
	}
	if accepted {
		return nil, &pending, nil
	}
	if resp.Signature == "" || resp.From == "" {
		return nil, nil, errors.New("client: approval answer lacks from or signature")
	}
	return &resp, nil, nil
}

// WaitApproval polls Approval every interval (at least 250 ms) until the
// request is signed, and returns the signature; ErrRejected or ErrExpired
// when it will never be, or ctx's error.
func (c *Client) WaitApproval(ctx context.Context, id string, interval time.Duration) (*api.SignResponse, error) {
	interval = max(interval, 250*time.Millisecond)
	for {
		p, err := c.Approval(ctx, id)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Code == refusal.CodeNotFound:
			return nil, fmt.Errorf("%w (approval %s: %s)", ErrExpired, id, ae.Message)
		case err != nil:
			return nil, err
		case p.Status == api.StatusSigned && p.Result != nil:
			return p.Result, nil
		case p.Status == api.StatusRejected:
			return nil, ErrRejected
		case p.Status == api.StatusExpired:
			return nil, ErrExpired
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// CheckApproval recomputes the approval digest of a fetched request from
// its body (p.Request, the compact form) and returns it, or an error if
// the host's p.Digest is not that digest. Approvers sign what it returns,
// never the host's digest: it binds the approval to the request body they
// decoded (the digest of a body and of its compact form are the same, and
// two bodies with the same compact form differ only in whitespace no
// decoder reads).
func CheckApproval(p *api.PendingResponse) ([32]byte, error) {
	if p.Request == "" {
		return [32]byte{}, fmt.Errorf("client: approval %s: the host sent no request body to check", p.ApprovalID)
	}
	d := api.ApprovalDigest([]byte(p.Request))
	got, err := parseDigest(p.Digest)
	if err != nil || got != d {
		return d, fmt.Errorf("client: approval %s: the host's approval digest %q is not the digest of the request body it sent (0x%x): refusing", p.ApprovalID, p.Digest, d)
	}
	return d, nil
}

// NewApproval signs an approver's decision (api.DecisionApprove or
// api.DecisionReject) on approval id, whose approval digest is digest
// (from [CheckApproval]), as approver with signer (admin.SignDigest in the
// decision's domain).
func NewApproval(signer stamp.Signer, approver, id, decision string, digest [32]byte) (api.ApprovalRequest, error) {
	var domain string
	switch decision {
	case api.DecisionApprove:
		domain = api.DomainApprove
	case api.DecisionReject:
		domain = api.DomainReject
	default:
		return api.ApprovalRequest{}, fmt.Errorf("client: decision %q: want %q or %q", decision, api.DecisionApprove, api.DecisionReject)
	}
	sig, err := admin.SignDigest(signer, domain, digest)
	if err != nil {
		return api.ApprovalRequest{}, fmt.Errorf("client: %w", err)
	}
	return api.ApprovalRequest{ApprovalID: id, Decision: decision, Approver: approver, Signature: "0x" + hex.EncodeToString(sig)}, nil
}
