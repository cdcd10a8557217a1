package host

import (
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/proto"
)

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
	out := api.PolicyResponse{Version: pr.Version, Hash: hex.EncodeToString(pr.Hash[:]), Document: pr.Document, TimeLockMS: pr.TimeLockMS, Pending: []api.PendingPolicy{}}
	if !json.Valid(pr.Document) {
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "the enclave's policy document is not JSON"})
	}
	for _, p := range pr.Pending {
		if !json.Valid(p.Document) {
			return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "a pending policy document is not JSON"})
		}
		out.Pending = append(out.Pending, api.PendingPolicy{Version: p.Version, Hash: hex.EncodeToString(p.Hash[:]), EffectiveMS: p.EffectiveMS, Signers: p.Signers, Document: p.Document})
	}
	writeJSON(w, http.StatusOK, out)
	return "ok"
}
