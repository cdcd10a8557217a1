package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/proto"
)

// Approvals (docs/api.md). A sign request above a policy's approval
// threshold is answered 202 with the pending request's state; approvers
// fetch it (GET /v1/approvals/{id}), check it on their own machines and
// send their signed decisions (POST /v1/approvals), which the host forwards
// unchanged. As everywhere else, the host adds no authority: the enclave
// verifies every approver signature, and every answer that carries an audit
// record is released only once the record is on disk.

// outcomePending is the metrics outcome of a 202 answer.
const outcomePending = api.StatusPendingApproval

// maxApprovalIDLen caps an approval id (as the enclave's protocol does).
const maxApprovalIDLen = proto.MaxApprovalIDLen

// validApprovalID reports whether id is 1 to 64 characters of
// [A-Za-z0-9._:-], so that no id needs escaping anywhere.
func validApprovalID(id string) bool {
	if id == "" || len(id) > maxApprovalIDLen {
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

// signPending answers a sign request the enclave did not sign at once: 202
// with the pending request's state when it waits for approvals. Its audit
// record is already persisted. body is the client's raw request body, of
// which approvers sign the approval digest (api.ApprovalDigest, over its
// compact form: the enclave computes it from the compact form it keeps,
// and gets the same digest).
func (s *Server) signPending(w http.ResponseWriter, sr *proto.SignResponse, body []byte, start time.Time) string {
	if sr.Status != proto.StatusPending || sr.ApprovalID == "" {
		s.log.Error("the enclave answered a sign request with an unknown status", "status", sr.Status)
		s.metrics.decided(refusal.CodeInternal, "", start)
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: fmt.Sprintf("unexpected answer from the enclave (status %q)", sr.Status)})
	}
	// The enclave says which digest the approvers sign; it is the digest of
	// the body the client sent (its compact form), which the host checks:
	// a digest that is not the request's would make every approval fail.
	d := api.ApprovalDigest(body)
	if !bytes.Equal(sr.ApprovalDigest, d[:]) {
		s.log.Error("the enclave's approval digest is not the digest of the request", "approval_id", sr.ApprovalID)
		s.metrics.decided(refusal.CodeInternal, "", start)
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "unexpected answer from the enclave (the approval digest is not the request's)"})
	}
	out := pendingJSON(sr)
	writeJSON(w, http.StatusAccepted, out)
	s.metrics.decided(outcomePending, "", start)
	return outcomePending
}

// approve forwards an approver's decision (POST /v1/approvals) to the
// enclave unchanged and relays its answer: 200 with the signature once the
// quorum is met, 202 with the pending state while it is not, or a refusal
// (approval_rejected, 403, once an approver rejected the request).
func (s *Server) approve(w http.ResponseWriter, r *http.Request) string {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxApprovalBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return writeError(w, &api.Error{Code: refusal.CodeTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", api.MaxApprovalBodySize)})
		}
		return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: "reading request body failed"})
	}
	resp, aerr := s.call(r.Context(), &proto.ApprovalRequest{Body: body})
	if aerr != nil {
		return writeError(w, aerr)
	}
	sr, ok := resp.(*proto.SignResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	// The decision (and any signature) is released only once its audit
	// record is on disk.
	if aerr := s.confirmAudit(r.Context(), sr.AuditRecord); aerr != nil {
		return writeError(w, aerr)
	}
	switch sr.Status {
	case "", proto.StatusSigned:
		writeJSON(w, http.StatusOK, signJSON(sr))
		return "ok"
	case proto.StatusPending:
		if sr.ApprovalID == "" {
			return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "unexpected answer from the enclave (a pending request without an id)"})
		}
		out := pendingJSON(sr)
		out.AlreadyCounted = sr.AlreadyCounted
		writeJSON(w, http.StatusAccepted, out)
		return outcomePending
	default:
		s.log.Error("the enclave answered an approval with an unknown status", "status", sr.Status)
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: fmt.Sprintf("unexpected answer from the enclave (status %q)", sr.Status)})
	}
}

// approvalInfo answers GET /v1/approvals/{id}: the pending (or decided)
// request, with the client's body in its compact form (as the enclave
// keeps it) for approvers to decode and check, and the signature once it
// was signed.
func (s *Server) approvalInfo(w http.ResponseWriter, r *http.Request) string {
	if r.URL.RawQuery != "" {
		return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: "GET /v1/approvals/{id} takes no query parameters"})
	}
	id := r.PathValue("id")
	if !validApprovalID(id) {
		return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: fmt.Sprintf("approval id: want 1 to %d characters of [A-Za-z0-9._:-]", maxApprovalIDLen)})
	}
	resp, aerr := s.call(r.Context(), &proto.ApprovalInfoRequest{ID: id})
	if aerr != nil {
		return writeError(w, aerr)
	}
	info, ok := resp.(*proto.ApprovalInfoResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	if info.ID != id {
		s.log.Error("the enclave answered about another approval", "asked", id, "got", info.ID)
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "unexpected answer from the enclave (another approval id)"})
	}
	// The body travels as a JSON string: it must be valid UTF-8 to reach
	// approvers byte for byte (the enclave accepted only such bodies).
	if len(info.Body) == 0 || !utf8.Valid(info.Body) {
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "unexpected answer from the enclave (the request body is missing or not UTF-8)"})
	}
	// Approvers sign the digest of the body: one that is not the body's
	// would make every approval fail.
	d := api.ApprovalDigest(info.Body)
	if d != info.Digest {
		s.log.Error("the enclave's approval digest is not the digest of the request it holds", "approval_id", id)
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "unexpected answer from the enclave (the approval digest is not the request's)"})
	}
	lines, text := summaryJSON(info.SummaryLines)
	out := api.PendingResponse{
		Status:       info.Status,
		ApprovalID:   info.ID,
		Digest:       hex0x(d[:]),
		Summary:      text,
		SummaryLines: lines,
		Quorum:       int(info.Quorum),
		Approvals:    approvers(info.Approvers),
		ExpiresAtMS:  info.ExpiresMS,
		AuditSeq:     info.AuditSeq,
		Request:      string(info.Body),
	}
	if info.Result != nil {
		res := signJSON(info.Result)
		out.Result = &res
	}
	writeJSON(w, http.StatusOK, out)
	return "ok"
}

// pendingJSON is the JSON form of a pending SignResponse, without Digest.
func pendingJSON(sr *proto.SignResponse) api.PendingResponse {
	lines, text := summaryJSON(sr.SummaryLines)
	return api.PendingResponse{
		Status:       proto.StatusPending,
		ApprovalID:   sr.ApprovalID,
		Summary:      text,
		SummaryLines: lines,
		Quorum:       int(sr.Quorum),
		Approvals:    approvers(sr.Approvers),
		ExpiresAtMS:  sr.ExpiresMS,
		AuditSeq:     sr.AuditSeq,
		Digest:       digestHex(sr.ApprovalDigest),
	}
}

// digestHex is the 0x-hex of an approval digest the enclave sent, "" when it
// sent none (proto checks that one it sends has 32 bytes).
func digestHex(d []byte) string {
	if len(d) == 0 {
		return ""
	}
	return hex0x(d)
}

// approvers returns names, never nil: the answer lists none as [].
func approvers(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// signJSON is the JSON form of a signature, as POST /v1/sign answers it.
func signJSON(sr *proto.SignResponse) api.SignResponse {
	out := api.SignResponse{
		From:      ethtx.Address(sr.From).Hex(),
		Signature: hex0x(sr.Signature[:]),
		Digest:    hex0x(sr.Digest[:]),
		AuditSeq:  sr.AuditSeq,
	}
	if len(sr.SignedTransaction) > 0 {
		out.SignedTransaction = hex0x(sr.SignedTransaction)
		out.TransactionHash = hex0x(sr.TransactionHash[:])
	}
	return out
}

// summaryJSON is the enclave's summary lines in the JSON of the API, never
// nil, and their text (api.SummaryText). proto.Unmarshal checked the
// lines' labels, so the text cannot fail; were it to, the text would say
// so rather than show a partial summary.
func summaryJSON(in []proto.SummaryLine) ([]api.SummaryLine, string) {
	out := make([]api.SummaryLine, len(in))
	for i, l := range in {
		out[i] = api.SummaryLine{Key: l.Key, Value: l.Value}
		for _, lb := range l.Labels {
			out[i].Labels = append(out[i].Labels, api.SummaryLabel{At: int(lb.At), End: int(lb.End), Text: lb.Text})
		}
	}
	text, err := api.SummaryText(out)
	if err != nil {
		text = "(the summary's lines are malformed: " + err.Error() + ")\n"
	}
	return out, text
}
