package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
)

// RefusalData is the data of a [jsonrpc.CodeRefused] error (and of a
// [jsonrpc.CodeEnclaveUnavailable] error when the host said why): the
// host's error object, whose code and rule are those of package
// api/refusal.
type RefusalData struct {
	Code    string `json:"code"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message,omitempty"`
}

// PendingData is the data of a [jsonrpc.CodeApprovalPending] error: how to
// follow the request (nitrosign_approval [approval_id]; `nitrosign
// approvals show --id`), the approval digest the approvers sign, when the
// request expires, and the approvals it has.
type PendingData struct {
	ApprovalID  string   `json:"approval_id"`
	Digest      string   `json:"digest"`
	ExpiresAtMS int64    `json:"expires_at_ms"`
	Quorum      int      `json:"quorum"`
	Approvals   []string `json:"approvals"`
}

// finishFunc turns a checked signature into the method's result.
type finishFunc func(ctx context.Context, resp *api.SignResponse, sig ethtx.Signature) (any, *jsonrpc.Error)

// pendingRequest is a request that waits for approvals, remembered so
// that nitrosign_approval can check its signature against what was asked
// and answer in the form of the method that asked.
type pendingRequest struct {
	from    ethtx.Address
	req     *api.SignRequest
	finish  finishFunc
	expires time.Time
}

// sign signs req as from through the enclave: from must be an attested
// key; the answer is checked before finish makes it the result. A request
// that needs approvals waits up to ApprovalTimeout; later, when not nil,
// makes the finish (given the approval id) that replaces finish for its
// answer to nitrosign_approval.
func (a *Agent) sign(ctx context.Context, from ethtx.Address, req *api.SignRequest, finish finishFunc, later func(approvalID string) finishFunc) (any, *jsonrpc.Error) {
	info := infoFrom(ctx)
	info.account = from.Hex()
	_, known, err := a.enclaveFor(ctx, from)
	if err != nil {
		return nil, attestationFailed(err)
	}
	if !known {
		return nil, unknownAccount(from)
	}
	req.Key = from.Hex()
	resp, err := a.cfg.Client.Sign(ctx, req)
	var pe *client.PendingError
	if errors.As(err, &pe) {
		p := &pe.Pending
		info.approvalID = p.ApprovalID
		fin := finish
		if later != nil {
			fin = later(p.ApprovalID)
		}
		a.remember(p.ApprovalID, &pendingRequest{from: from, req: req, finish: fin, expires: time.UnixMilli(p.ExpiresAtMS)})
		return a.wait(ctx, p, &pendingRequest{from: from, req: req, finish: finish})
	}
	if err != nil {
		return nil, a.mapError(ctx, err)
	}
	return a.check(ctx, from, req, resp, finish)
}

// check checks resp against req with the enclave as last attested, and
// returns finish's result.
func (a *Agent) check(ctx context.Context, from ethtx.Address, req *api.SignRequest, resp *api.SignResponse, finish finishFunc) (any, *jsonrpc.Error) {
	info := infoFrom(ctx)
	info.auditSeq = resp.AuditSeq
	e, err := a.current()
	if err != nil {
		return nil, attestationFailed(err)
	}
	if err := e.CheckRequestSignature(resp, req); err != nil {
		a.log.Error("a signature from the host failed its check: not returned", "account", from.Hex(), "audit_seq", resp.AuditSeq, "err", err)
		return nil, jsonrpc.NewError(jsonrpc.CodeAttestationFailed, "agent: the signature failed its check against the attested enclave", nil)
	}
	got, _ := ethtx.ParseAddress(resp.From) // CheckRequestSignature parsed it
	if got != from {
		a.log.Error("the host answered with a signature by another key: not returned", "account", from.Hex(), "signer", resp.From)
		return nil, jsonrpc.NewError(jsonrpc.CodeAttestationFailed, "agent: the signature is by another key than the one asked for", nil)
	}
	sigBytes, _ := hex.DecodeString(strings.TrimPrefix(resp.Signature, "0x")) // checked
	return finish(ctx, resp, ethtx.Signature(sigBytes))
}

// wait polls the pending request p until it is signed, rejected or
// expired, or ApprovalTimeout passes (then CodeApprovalPending).
func (a *Agent) wait(ctx context.Context, p *api.PendingResponse, pr *pendingRequest) (any, *jsonrpc.Error) {
	deadline := time.Now().Add(a.cfg.ApprovalTimeout)
	for {
		if !time.Now().Before(deadline) {
			return nil, pendingErr(p)
		}
		t := time.NewTimer(min(a.cfg.ApprovalPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, pendingErr(p)
		case <-t.C:
		}
		res, next, jerr := a.poll(ctx, p.ApprovalID, pr)
		if res != nil || jerr != nil {
			return res, jerr
		}
		p = next
	}
}

// poll asks the host once about the approval id of pr: the result once
// signed (checked), a refusal once rejected or expired, else the pending
// state.
func (a *Agent) poll(ctx context.Context, id string, pr *pendingRequest) (any, *api.PendingResponse, *jsonrpc.Error) {
	p, err := a.cfg.Client.Approval(ctx, id)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == refusal.CodeNotFound:
		a.ended(id)
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeRefused, "agent: the request expired before it was approved",
			RefusalData{Code: refusal.CodeNotFound, Rule: refusal.RuleApprovals, Message: fmt.Sprintf("approval %s expired or is unknown to the host", id)})
	case err != nil:
		return nil, nil, a.mapError(ctx, err)
	case p.Status == api.StatusSigned && p.Result != nil:
		a.forget(id)
		res, jerr := a.check(ctx, pr.from, pr.req, p.Result, pr.finish)
		if jerr != nil && a.cfg.Proxy != nil {
			// Not sent, and never will be by this agent (it forgot the
			// request): a nonce held for it is released. After a
			// broadcast, the proxy has settled the nonce already.
			a.cfg.Proxy.ApprovalEnded(id)
		}
		return res, nil, jerr
	case p.Status == api.StatusRejected:
		a.ended(id)
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeRefused, "agent: an approver rejected the request",
			RefusalData{Code: refusal.CodeApprovalRejected, Rule: refusal.RuleApprovals})
	case p.Status == api.StatusExpired:
		a.ended(id)
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeRefused, "agent: the request expired before it was approved",
			RefusalData{Code: refusal.CodeNotFound, Rule: refusal.RuleApprovals, Message: fmt.Sprintf("approval %s expired", id)})
	}
	return nil, p, nil
}

// approval answers nitrosign_approval [id]: the result of a request this
// agent sent that waited for approvals.
func (a *Agent) approval(ctx context.Context, id string) (any, *jsonrpc.Error) {
	info := infoFrom(ctx)
	info.approvalID = id
	a.pmu.Lock()
	pr := a.pending[id]
	a.pmu.Unlock()
	if pr == nil {
		return nil, invalidParams("unknown approval id %q: not a request this agent sent (or it was answered already)", id)
	}
	info.account = pr.from.Hex()
	res, p, jerr := a.poll(ctx, id, pr)
	if res != nil || jerr != nil {
		return res, jerr
	}
	return nil, pendingErr(p)
}

// remember keeps pr for nitrosign_approval, dropping expired entries, and
// the oldest when maxPending are kept; the proxy is told that the
// approvals dropped ended (a send it holds can no longer be sent through
// the agent).
func (a *Agent) remember(id string, pr *pendingRequest) {
	var dropped []string
	a.pmu.Lock()
	now := time.Now()
	for k, v := range a.pending {
		if now.After(v.expires) {
			delete(a.pending, k)
			dropped = append(dropped, k)
		}
	}
	if len(a.pending) >= maxPending {
		var oldest string
		for k, v := range a.pending {
			if oldest == "" || v.expires.Before(a.pending[oldest].expires) {
				oldest = k
			}
		}
		delete(a.pending, oldest)
		dropped = append(dropped, oldest)
	}
	a.pending[id] = pr
	a.pmu.Unlock()
	if a.cfg.Proxy != nil {
		for _, k := range dropped {
			a.cfg.Proxy.ApprovalEnded(k)
		}
	}
}

func (a *Agent) forget(id string) {
	a.pmu.Lock()
	delete(a.pending, id)
	a.pmu.Unlock()
}

// ended forgets the approval id, which ended without a signature
// (rejected, expired, unknown to the host), and tells the proxy, which
// releases the nonce of a send it held for it.
func (a *Agent) ended(id string) {
	a.forget(id)
	if a.cfg.Proxy != nil {
		a.cfg.Proxy.ApprovalEnded(id)
	}
}

func pendingErr(p *api.PendingResponse) *jsonrpc.Error {
	approvals := p.Approvals
	if approvals == nil {
		approvals = []string{}
	}
	return jsonrpc.NewError(jsonrpc.CodeApprovalPending,
		fmt.Sprintf("agent: the request waits for approvals (%d of %d); follow it with nitrosign_approval [%q]", len(p.Approvals), p.Quorum, p.ApprovalID),
		PendingData{ApprovalID: p.ApprovalID, Digest: p.Digest, ExpiresAtMS: p.ExpiresAtMS, Quorum: p.Quorum, Approvals: approvals})
}

// mapError maps an error of the client to the wallet's JSON-RPC error: a
// refusal the host or enclave answered is CodeRefused with its code and
// rule; a 5xx, a network failure or no answer is CodeEnclaveUnavailable.
func (a *Agent) mapError(ctx context.Context, err error) *jsonrpc.Error {
	info := infoFrom(ctx)
	var ae *client.APIError
	if errors.As(err, &ae) {
		info.rule, info.code = ae.Rule, ae.Code
		if ae.Code == "" || ae.Status >= 500 {
			var data any
			if ae.Code != "" {
				data = RefusalData{Code: ae.Code, Rule: ae.Rule, Message: ae.Message}
			}
			return jsonrpc.NewError(jsonrpc.CodeEnclaveUnavailable, fmt.Sprintf("agent: the enclave is unavailable (HTTP %d): retry later", ae.Status), data)
		}
		msg := "agent: refused: " + ae.Code
		if ae.Rule != "" {
			msg += " (rule " + ae.Rule + ")"
		}
		return jsonrpc.NewError(jsonrpc.CodeRefused, msg, RefusalData{Code: ae.Code, Rule: ae.Rule, Message: ae.Message})
	}
	if ctx.Err() != nil {
		return jsonrpc.NewError(jsonrpc.CodeEnclaveUnavailable, "agent: the request was cancelled before the host answered", nil)
	}
	a.log.Warn("the host did not answer", "err", err)
	return jsonrpc.NewError(jsonrpc.CodeEnclaveUnavailable, "agent: the host did not answer: retry later", nil)
}

func attestationFailed(err error) *jsonrpc.Error {
	return jsonrpc.NewError(jsonrpc.CodeAttestationFailed, "agent: the enclave is not attested: "+strings.TrimPrefix(err.Error(), "agent: "), nil)
}

func unknownAccount(a ethtx.Address) *jsonrpc.Error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "agent: unknown account "+a.Hex()+": not a key the enclave attests", nil)
}

func invalidParams(format string, args ...any) *jsonrpc.Error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "agent: "+fmt.Sprintf(format, args...), nil)
}

// messageSignature is a message or typed-data signature as JSON-RPC
// callers expect it: 0x-hex of r || s || v with v = 27 + y-parity.
func messageSignature(_ context.Context, _ *api.SignResponse, sig ethtx.Signature) (any, *jsonrpc.Error) {
	sig[64] += 27
	return "0x" + hex.EncodeToString(sig[:]), nil
}
