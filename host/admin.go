package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/proto"
)

// admin forwards an admin command envelope (POST /v1/admin) to the enclave
// unchanged: the enclave verifies the admins' signatures; the host adds no
// authority. A command that re-wraps the seed returns a new sealed seed,
// stored (the previous one kept as seed.sealed.prev) before the answer;
// the command's audit record is persisted before the answer too, and the
// enclave answers only once the host has stored a checkpoint that holds
// the command (so that a restart cannot forget it was carried out): the
// checkpoint poll runs fast meanwhile.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) string {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, proto.MaxAdminLen))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return writeError(w, &api.Error{Code: refusal.CodeTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", proto.MaxAdminLen)})
		}
		return writeError(w, &api.Error{Code: refusal.CodeBadRequest, Message: "reading request body failed"})
	}
	if s.unsealer != nil {
		defer s.unsealer.adminInFlight()()
	}
	resp, aerr := s.call(r.Context(), &proto.AdminRequest{Envelope: body})
	if aerr != nil {
		return writeError(w, aerr)
	}
	ar, ok := resp.(*proto.AdminResponse)
	if !ok {
		return writeError(w, unexpected(resp))
	}
	if !json.Valid(ar.Result) {
		return writeError(w, &api.Error{Code: refusal.CodeInternal, Message: "the enclave's result is not JSON"})
	}
	if len(ar.Sealed) > 0 {
		if s.unsealer == nil {
			return writeError(w, &api.Error{Code: refusal.CodeUnavailable, Message: "the seed was re-wrapped, but this host has no data directory to store it in; the previous sealed seed stays valid"})
		}
		seed := filepath.Join(s.unsealer.dir, SealedSeedFile)
		if prev, err := readSmall(seed, proto.MaxSealedLen); err == nil {
			if err := writeFileSync(seed+".prev", prev, 0o600); err != nil {
				s.log.Error("keeping the previous sealed seed failed", "err", err)
				return writeError(w, &api.Error{Code: refusal.CodeUnavailable, Message: "storing the re-wrapped seed failed; the previous sealed seed stays in use"})
			}
		}
		if err := writeFileSync(seed, ar.Sealed, 0o600); err != nil {
			s.log.Error("storing the re-wrapped seed failed", "err", err)
			return writeError(w, &api.Error{Code: refusal.CodeUnavailable, Message: "storing the re-wrapped seed failed; the previous sealed seed stays in use"})
		}
	}
	if aerr := s.confirmAudit(r.Context(), ar.AuditRecord); aerr != nil {
		return writeError(w, aerr)
	}
	writeJSON(w, http.StatusOK, json.RawMessage(ar.Result))
	return "ok"
}
