package enclave

import (
	"context"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/proto"
)

// UserData returns what this enclave commits to in its attestation
// documents (see package attestation/userdata).
func (e *Enclave) UserData() userdata.UserData { return e.userData(e.v.Load()) }

// userData is UserData for vault v; a locked enclave (v nil) commits to no
// keys and no audit log.
func (e *Enclave) userData(v *vault) userdata.UserData {
	var ks []userdata.Key
	var head audit.Head
	var auditKey []byte
	if v != nil {
		for _, k := range v.keys.list {
			ks = append(ks, userdata.Key{ID: k.id, Address: k.addr, Path: k.path})
		}
		head, auditKey = v.audit.head(), v.audit.key
	}
	return userdata.UserData{
		Version:       Version,
		KeysHash:      userdata.KeysHash(ks),
		KeyCount:      uint64(len(ks)),
		PolicyHash:    e.guard.inForce().pol.Hash(),
		PolicyVersion: e.guard.inForce().pol.Version(),
		AuditSeq:      head.Seq,
		AuditHead:     head.Hash,
		AuditKey:      auditKey,
	}
}

// attest asks the NSM for a document carrying the caller's nonce, the
// enclave's identity key and its user data.
func (e *Enclave) attest(ctx context.Context, v *vault, m *proto.AttestRequest) (proto.Message, error) {
	if e.nsm == nil {
		return nil, refuse(refusal.CodeUnavailable, "this enclave has no NSM to attest with")
	}
	ud, err := userdata.Marshal(e.userData(v))
	if err != nil {
		return nil, refuse(refusal.CodeInternal, "%v", err)
	}
	doc, err := e.nsm.Attest(ctx, nsmRequest(m.Nonce, ud, e.identity))
	if err != nil {
		e.log.Error("attestation failed", "err", err)
		return nil, refuse(refusal.CodeUnavailable, "the NSM did not attest: %v", err)
	}
	return &proto.AttestResponse{Document: doc}, nil
}

func nsmRequest(nonce, ud, pub []byte) nsm.AttestRequest {
	return nsm.AttestRequest{Nonce: nonce, UserData: ud, PublicKey: pub}
}
