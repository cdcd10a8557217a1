package proto

import "fmt"

// Messages of the enclave's state: the credentials it calls KMS with, its
// sealed seed, its sealed checkpoints and admin commands. The host carries
// and stores these blobs without being able to read or forge them.
const (
	TypeCredentialsRequest  Type = 12
	TypeCredentialsResponse Type = 13
	TypeUnsealRequest       Type = 14
	TypeUnsealResponse      Type = 15
	TypeCheckpointRequest   Type = 16
	TypeCheckpointResponse  Type = 17
	TypeAdminRequest        Type = 18
	TypeAdminResponse       Type = 19
)

// Size caps of the state messages.
const (
	MaxCredentialLen = 4096      // each of the access key id, secret and session token
	MaxSealedLen     = 16 << 10  // a sealed seed: KMS's ciphertext blob and the AES-GCM box
	MaxCheckpointLen = 768 << 10 // a sealed checkpoint (limit usage, keyring); within a frame
	MaxAdminLen      = 768 << 10 // an admin command envelope; a command's result
)

// CredentialsRequest pushes the AWS credentials the enclave signs its KMS
// requests with (the parent instance role's, from IMDSv2). The enclave
// keeps the latest that has not expired.
type CredentialsRequest struct {
	AccessKeyID     string `cbor:"1,keyasint"`
	SecretAccessKey string `cbor:"2,keyasint"`
	SessionToken    string `cbor:"3,keyasint"`
	ExpiresUnixMS   int64  `cbor:"4,keyasint"`
}

// String describes the credentials without their secret and token, so that
// a logged message shows none.
func (c CredentialsRequest) String() string {
	return fmt.Sprintf("credentials %s (expires %d)", c.AccessKeyID, c.ExpiresUnixMS)
}

// GoString is String.
func (c CredentialsRequest) GoString() string { return c.String() }

// Format prints String for every verb, so that no verb (%x, %d, %+v)
// prints the secret or the token.
func (c CredentialsRequest) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// CredentialsResponse acknowledges credentials.
type CredentialsResponse struct{}

// UnsealRequest asks a locked enclave to open its sealed seed, or, with
// Create and no Sealed, to make a new seed and answer it sealed (without
// starting to use it: the host stores the blob, then unseals it, so that
// no key is ever used whose seed is not stored).
type UnsealRequest struct {
	Create bool   `cbor:"1,keyasint"`
	Sealed []byte `cbor:"2,keyasint"`
	// AuditHead is the last record of the host's audit log (a JSON line),
	// empty for none: the boot record continues the chain from it.
	AuditHead []byte `cbor:"3,keyasint"`
	// Checkpoint is the latest sealed checkpoint the host holds, empty for
	// none.
	Checkpoint []byte `cbor:"4,keyasint"`
}

// UnsealResponse answers an UnsealRequest: for Create, the new sealed seed;
// else the enclave's audit key and how many keys it holds.
type UnsealResponse struct {
	Sealed   []byte `cbor:"1,keyasint"`
	AuditKey []byte `cbor:"2,keyasint"`
	Keys     uint32 `cbor:"3,keyasint"`
	// AuditRecord is the boot record (a JSON line), to be persisted like
	// any other.
	AuditRecord []byte `cbor:"4,keyasint"`
}

// CheckpointRequest acknowledges that the host has stored the checkpoint
// of generation Ack (0: none), and asks for a newer one if there is.
type CheckpointRequest struct {
	Ack uint64 `cbor:"1,keyasint"`
}

// CheckpointResponse carries the enclave's latest sealed checkpoint when
// it is newer than the one acknowledged (else Sealed is empty).
type CheckpointResponse struct {
	Generation uint64 `cbor:"1,keyasint"`
	Sealed     []byte `cbor:"2,keyasint"`
}

// AdminRequest carries an admin command envelope (admin-quorum signed
// JSON), forwarded by the host unchanged.
type AdminRequest struct {
	Envelope []byte `cbor:"1,keyasint"`
}

// AdminResponse is the result of an admin command: a JSON document for
// the operator, a new sealed seed the host must store (a re-wrap), and the
// command's audit record.
type AdminResponse struct {
	Result      []byte `cbor:"1,keyasint"`
	Sealed      []byte `cbor:"2,keyasint,omitempty"`
	AuditRecord []byte `cbor:"3,keyasint,omitempty"`
}

// Type implements Message.
func (CredentialsRequest) Type() Type { return TypeCredentialsRequest }

// Type implements Message.
func (CredentialsResponse) Type() Type { return TypeCredentialsResponse }

// Type implements Message.
func (UnsealRequest) Type() Type { return TypeUnsealRequest }

// Type implements Message.
func (UnsealResponse) Type() Type { return TypeUnsealResponse }

// Type implements Message.
func (CheckpointRequest) Type() Type { return TypeCheckpointRequest }

// Type implements Message.
func (CheckpointResponse) Type() Type { return TypeCheckpointResponse }

// Type implements Message.
func (AdminRequest) Type() Type { return TypeAdminRequest }

// Type implements Message.
func (AdminResponse) Type() Type { return TypeAdminResponse }

func (c CredentialsRequest) validate() error {
	return firstErr(
		checkText("access key id", c.AccessKeyID, MaxCredentialLen),
		checkText("secret access key", c.SecretAccessKey, MaxCredentialLen),
		checkText("session token", c.SessionToken, MaxCredentialLen),
	)
}

func (CredentialsResponse) validate() error { return nil }

func (u UnsealRequest) validate() error {
	return firstErr(
		checkBytes("sealed seed", u.Sealed, MaxSealedLen),
		checkBytes("audit head", u.AuditHead, MaxAuditRecordLen),
		checkBytes("checkpoint", u.Checkpoint, MaxCheckpointLen),
	)
}

func (u UnsealResponse) validate() error {
	if len(u.AuditKey) > MaxAuditKeyLen {
		return fmt.Errorf("audit key is %d bytes, limit %d", len(u.AuditKey), MaxAuditKeyLen)
	}
	return firstErr(
		checkBytes("sealed seed", u.Sealed, MaxSealedLen),
		checkBytes("audit record", u.AuditRecord, MaxAuditRecordLen),
	)
}

func (CheckpointRequest) validate() error { return nil }

func (c CheckpointResponse) validate() error {
	return checkBytes("checkpoint", c.Sealed, MaxCheckpointLen)
}

func (a AdminRequest) validate() error { return checkBytes("envelope", a.Envelope, MaxAdminLen) }

func (a AdminResponse) validate() error {
	return firstErr(
		checkBytes("result", a.Result, MaxAdminLen),
		checkBytes("sealed seed", a.Sealed, MaxSealedLen),
		checkBytes("audit record", a.AuditRecord, MaxAuditRecordLen),
	)
}

// Approval messages.
const (
	TypeApprovalRequest      Type = 20
	TypeApprovalInfoRequest  Type = 21
	TypeApprovalInfoResponse Type = 22
)

// Approval statuses of a SignResponse (Status): empty or "signed" for a
// signature; "pending_approval" for a request waiting for approvals
// (ApprovalID set, no signature).
const (
	StatusSigned  = "signed"
	StatusPending = "pending_approval"
)

// ApprovalRequest carries an approver's decision (the JSON body of POST
// /v1/approvals, forwarded unchanged). It is answered with a SignResponse:
// pending while the quorum is not met, signed once it is.
type ApprovalRequest struct {
	Body []byte `cbor:"1,keyasint"`
}

// ApprovalInfoRequest asks for a pending request's state.
type ApprovalInfoRequest struct {
	ID string `cbor:"1,keyasint"`
}

// ApprovalInfoResponse describes a pending (or decided) request: the
// client's body, the digest approvers sign, the summary, the quorum and
// the approvers so far, and the signature once approved.
type ApprovalInfoResponse struct {
	ID        string        `cbor:"1,keyasint"`
	Status    string        `cbor:"2,keyasint"`
	Body      []byte        `cbor:"3,keyasint"`
	Digest    [32]byte      `cbor:"4,keyasint"`
	Quorum    uint32        `cbor:"6,keyasint"`
	Approvers []string      `cbor:"7,keyasint"`
	ExpiresMS int64         `cbor:"8,keyasint"`
	AuditSeq  uint64        `cbor:"9,keyasint"`
	Result    *SignResponse `cbor:"10,keyasint,omitempty"`
	// SummaryLines is the request's summary, line by line (key 5, the
	// summary as text, is retired: the host renders the lines).
	SummaryLines []SummaryLine `cbor:"11,keyasint,omitempty"`
}

// Type implements Message.
func (ApprovalRequest) Type() Type { return TypeApprovalRequest }

// Type implements Message.
func (ApprovalInfoRequest) Type() Type { return TypeApprovalInfoRequest }

// Type implements Message.
func (ApprovalInfoResponse) Type() Type { return TypeApprovalInfoResponse }

func (a ApprovalRequest) validate() error { return checkBytes("body", a.Body, MaxApprovalBodyLen) }

func (a ApprovalInfoRequest) validate() error { return checkText("id", a.ID, MaxApprovalIDLen) }

func (a ApprovalInfoResponse) validate() error {
	if len(a.Approvers) > MaxApprovers {
		return fmt.Errorf("%d approvers, limit %d", len(a.Approvers), MaxApprovers)
	}
	for _, n := range a.Approvers {
		if err := checkText("approver", n, MaxApproverLen); err != nil {
			return err
		}
	}
	if a.Result != nil {
		if err := a.Result.validate(); err != nil {
			return err
		}
	}
	return firstErr(
		checkText("id", a.ID, MaxApprovalIDLen),
		checkText("status", a.Status, MaxStatusLen),
		checkBytes("body", a.Body, MaxSignBodyLen),
		checkSummary(a.SummaryLines),
	)
}

// Policy messages.
const (
	TypePolicyRequest  Type = 23
	TypePolicyResponse Type = 24
)

// PolicyRequest asks for the policy in force and the pending changes.
type PolicyRequest struct{}

// PolicyResponse carries the policy in force (canonical JSON), its version
// and hash, the time lock, and the changes waiting for it.
type PolicyResponse struct {
	Document   []byte          `cbor:"1,keyasint"`
	Version    uint64          `cbor:"2,keyasint"`
	Hash       [32]byte        `cbor:"3,keyasint"`
	TimeLockMS int64           `cbor:"4,keyasint"`
	Pending    []PendingPolicy `cbor:"5,keyasint"`
}

// PendingPolicy is a policy change waiting for its time lock.
type PendingPolicy struct {
	Document    []byte   `cbor:"1,keyasint"`
	Version     uint64   `cbor:"2,keyasint"`
	Hash        [32]byte `cbor:"3,keyasint"`
	EffectiveMS int64    `cbor:"4,keyasint"`
	Signers     []string `cbor:"5,keyasint"`
}

// Type implements Message.
func (PolicyRequest) Type() Type { return TypePolicyRequest }

// Type implements Message.
func (PolicyResponse) Type() Type { return TypePolicyResponse }

func (PolicyRequest) validate() error { return nil }

func (p PolicyResponse) validate() error {
	if len(p.Pending) > MaxPendingPolicies {
		return fmt.Errorf("%d pending policies, limit %d", len(p.Pending), MaxPendingPolicies)
	}
	total := len(p.Document)
	for _, pp := range p.Pending {
		total += len(pp.Document)
		if len(pp.Signers) > MaxSigners {
			return fmt.Errorf("%d signers, limit %d", len(pp.Signers), MaxSigners)
		}
		for _, s := range pp.Signers {
			if err := checkText("signer", s, MaxSignerLen); err != nil {
				return err
			}
		}
	}
	if total > MaxCheckpointLen {
		return fmt.Errorf("policy documents of %d bytes, limit %d", total, MaxCheckpointLen)
	}
	return nil
}
