package host

import (
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/proto"
)

// PolicyResponse is the answer to GET /v1/policy.
type PolicyResponse struct {
	Version    uint64          `json:"version"`
	Hash       string          `json:"policy_hash"`
	Document   json.RawMessage `json:"document"`
	TimeLockMS int64           `json:"time_lock_ms"`
	Pending    []PendingPolicy `json:"pending"`
}

// PendingPolicy is a change waiting for its time lock.
type PendingPolicy struct {
	Version     uint64          `json:"version"`
	Hash        string          `json:"policy_hash"`
	EffectiveMS int64           `json:"effective_at_ms"`
	Signers     []string        `json:"signers"`
	Document    json.RawMessage `json:"document"`
}

// policy answers GET /v1/policy: the policy in force (as the enclave
// reports it; verify its hash against an attestation) and the pending
// changes.
func (s *Server) policy(w http.ResponseWriter, r *http.Request) string {
	resp, aerr := s.call(r.Context(), &proto.PolicyRequest{})
	if aerr != nil {
		return writeError(w, aerr)
	}
	pr, ok := resp.(*proto.PolicyResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	out := PolicyResponse{Version: pr.Version, Hash: hex.EncodeToString(pr.Hash[:]), Document: pr.Document, TimeLockMS: pr.TimeLockMS, Pending: []PendingPolicy{}}
	if !json.Valid(pr.Document) {
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "the enclave's policy document is not JSON"})
	}
	for _, p := range pr.Pending {
		if !json.Valid(p.Document) {
			return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "a pending policy document is not JSON"})
		}
		out.Pending = append(out.Pending, PendingPolicy{Version: p.Version, Hash: hex.EncodeToString(p.Hash[:]), EffectiveMS: p.EffectiveMS, Signers: p.Signers, Document: p.Document})
	}
	writeJSON(w, http.StatusOK, out)
	return "ok"
}
