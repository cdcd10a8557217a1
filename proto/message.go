package proto

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Version is the protocol version carried in every envelope.
const Version = 1

// Type identifies the kind of a message on the wire. Numbers are never
// reused.
type Type uint16

// Message types.
const (
	TypeError          Type = 1
	TypeHealthRequest  Type = 2
	TypeHealthResponse Type = 3
	TypeKeysRequest    Type = 4
	TypeKeysResponse   Type = 5
	TypeSignRequest    Type = 6
	TypeSignResponse   Type = 7
	TypeAttestRequest  Type = 8
	TypeAttestResponse Type = 9
	TypeAuditRequest   Type = 10
	TypeAuditResponse  Type = 11
)

// String returns the type's snake_case name, or "Type(N)" for an unknown one.
func (t Type) String() string {
	if k := lookup(t); k != nil {
		return k.name
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Size caps, in bytes unless noted, enforced by both Marshal and Unmarshal.
const (
	MaxErrorCodeLen         = 64
	MaxErrorRuleLen         = 128
	MaxErrorMessageLen      = 1024
	MaxVersionLen           = 128      // HealthResponse.Version
	MaxStateLen             = 32       // HealthResponse.State
	MaxSummaryLen           = 64 << 10 // a summary's text: its lines, rendered
	MaxSummaryLines         = 200      // lines in a summary (summary.MaxLines)
	MaxSummaryLabels        = 8        // labels on one summary line
	MaxKeys                 = 1024
	MaxKeyIDLen             = 128
	MaxKeyPathLen           = 256
	MaxSignBodyLen          = 512 << 10
	MaxStampLen             = 2048
	MaxSignedTransactionLen = 256 << 10
	MaxNonceLen             = 512      // AttestRequest.Nonce (the NSM takes up to 1024)
	MaxAttestationLen       = 16 << 10 // AttestResponse.Document
	MaxAuditRecordLen       = 64 << 10 // one audit record (a JSON line)
	MaxAuditRecords         = 256      // records in one AuditResponse
	MaxAuditKeyLen          = 64       // the audit log's public key (AuditResponse, UnsealResponse)
	MaxStatusLen            = 32       // SignResponse.Status, ApprovalInfoResponse.Status
	MaxApprovalIDLen        = 64       // an approval id
	MaxApprovalBodyLen      = 16 << 10 // ApprovalRequest.Body (api.MaxApprovalBodySize)
	MaxApprovers            = 64       // approvers named in one answer
	MaxApproverLen          = 64       // an approver's name
	MaxPendingPolicies      = 16       // PolicyResponse.Pending (the enclave holds at most 8)
	MaxSigners              = 64       // admins who signed one pending policy change
	MaxSignerLen            = 64       // a signer's name
)

// A Message is one of the message types of this package: HealthRequest,
// SignResponse, and so on. Marshal accepts values and pointers of these
// types; Unmarshal returns pointers (*HealthRequest, ...).
type Message interface {
	Type() Type
}

// Error is the answer to a request that failed. It is also a Go error:
// Client.Call returns it as (nil, *Error).
type Error struct {
	Code    string `cbor:"1,keyasint"` // machine-readable, e.g. "bad_request", "policy_denied"
	Rule    string `cbor:"2,keyasint"` // the policy rule that refused, if any
	Message string `cbor:"3,keyasint"` // human-readable
	// AuditRecord is the audit record of a policy refusal (a JSON line);
	// empty for errors that decide nothing.
	AuditRecord []byte `cbor:"4,keyasint,omitempty"`
}

// Error returns "proto: remote error: CODE: MESSAGE", followed by
// " (rule RULE)" when Rule is set.
func (e *Error) Error() string {
	s := "proto: remote error: " + e.Code + ": " + e.Message
	if e.Rule != "" {
		s += " (rule " + e.Rule + ")"
	}
	return s
}

// HealthRequest asks the enclave for a HealthResponse.
type HealthRequest struct{}

// HealthResponse describes the running enclave.
type HealthResponse struct {
	Version       string `cbor:"1,keyasint"` // enclave build version
	StartedUnixMS int64  `cbor:"2,keyasint"`
	Keys          uint32 `cbor:"3,keyasint"` // number of signing keys loaded
	PolicyVersion uint64 `cbor:"4,keyasint"`
	AuditSeq      uint64 `cbor:"5,keyasint"` // latest decision sequence number
	UptimeMS      int64  `cbor:"6,keyasint"`
	// State is the enclave's key state: "locked" (waiting for its sealed
	// seed), "ready" (unsealed), or "ephemeral" (a seed drawn at start and
	// never sealed: tests and trials only). Omitted when empty.
	State string `cbor:"7,keyasint,omitempty"`
	// Run is the id of this run of the enclave process (RunIDLen random
	// bytes, new at every start); omitted when empty.
	Run []byte `cbor:"8,keyasint,omitempty"`
	// AuditFailing is the host's latest report that it cannot persist
	// audit records (AuditRequest.Failing), while the enclave refuses to
	// decide because of it; omitted when empty.
	AuditFailing string `cbor:"9,keyasint,omitempty"`

	// The fields below are for the host's metrics (docs/api.md,
	// "Metrics"), each omitted when zero, so that a host decodes the
	// answer of an enclave that predates them (upgrade the host first).

	// FrozenKeys is the number of signing keys a freeze holds (all of
	// them under a freeze of every key).
	FrozenKeys uint32 `cbor:"10,keyasint,omitempty"`
	// PendingApprovals is the number of sign requests held for approvals.
	PendingApprovals uint32 `cbor:"11,keyasint,omitempty"`
	// PendingPolicies is the number of policy changes waiting for their
	// time lock, and PolicyDueUnixMS when the first of them comes into
	// force (0 when none waits).
	PendingPolicies uint32 `cbor:"12,keyasint,omitempty"`
	PolicyDueUnixMS int64  `cbor:"13,keyasint,omitempty"`
	// KMS counts the enclave's KMS calls since it started, by operation
	// (at most one entry per KMSOp, in KMSOps order).
	KMS []KMSStats `cbor:"14,keyasint,omitempty"`
}

// KMS operations, as KMSStats names them.
const (
	KMSOpDecrypt         = "decrypt"
	KMSOpGenerateDataKey = "generate_data_key"
)

// KMSOps are the KMS operations the enclave calls, in the order
// HealthResponse.KMS lists them.
var KMSOps = [...]string{KMSOpDecrypt, KMSOpGenerateDataKey}

// KMSLatencyBoundsMS are the upper bounds, in milliseconds, of the
// buckets of KMSStats.Buckets but the last (which has no bound): a KMS
// call is a TLS round trip through the vsock-proxy, tens to hundreds of
// milliseconds, and the enclave gives up on an unseal after 2 minutes.
var KMSLatencyBoundsMS = [...]uint32{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// KMSStats counts the calls of one KMS operation since the enclave
// started: a histogram of their durations, and their failures.
type KMSStats struct {
	Op    string `cbor:"1,keyasint"` // one of KMSOps
	Calls uint64 `cbor:"2,keyasint"`
	// Errors are the calls that failed, AccessDenied those of them that
	// KMS refused (kms.ErrAccessDenied: the key policy, or the
	// attestation, does not allow this image).
	Errors       uint64 `cbor:"3,keyasint"`
	AccessDenied uint64 `cbor:"4,keyasint"`
	// SumMicros is the calls' total duration in microseconds.
	SumMicros uint64 `cbor:"5,keyasint"`
	// Buckets counts the calls by duration: Buckets[i] those of at most
	// KMSLatencyBoundsMS[i] (and more than the bound before), the last
	// those above every bound. Not cumulative; they add up to Calls.
	Buckets []uint64 `cbor:"6,keyasint"`
}

func (k KMSStats) validate() error {
	if !slices.Contains(KMSOps[:], k.Op) {
		return fmt.Errorf("kms: unknown operation %q", k.Op)
	}
	if len(k.Buckets) != len(KMSLatencyBoundsMS)+1 {
		return fmt.Errorf("kms %s: %d buckets, want %d", k.Op, len(k.Buckets), len(KMSLatencyBoundsMS)+1)
	}
	var n uint64
	for _, b := range k.Buckets {
		if n+b < n {
			return fmt.Errorf("kms %s: the buckets overflow", k.Op)
		}
		n += b
	}
	if n != k.Calls || k.Errors > k.Calls || k.AccessDenied > k.Errors {
		return fmt.Errorf("kms %s: %d calls, %d in the buckets, %d errors, %d denied: inconsistent", k.Op, k.Calls, n, k.Errors, k.AccessDenied)
	}
	return nil
}

// KeysRequest asks for the enclave's signing keys.
type KeysRequest struct{}

// KeysResponse lists the enclave's signing keys.
type KeysResponse struct {
	Keys []Key `cbor:"1,keyasint"`
}

// Key is one signing key.
type Key struct {
	ID      string   `cbor:"1,keyasint"`
	Address [20]byte `cbor:"2,keyasint"` // Ethereum address
	Path    string   `cbor:"3,keyasint"` // BIP-32 derivation path, e.g. m/44'/60'/0'/0/0
}

// SignRequest carries a client's sign request, forwarded by the host
// unchanged: the raw HTTP body and the raw X-Nitrosign-Stamp header value.
// The enclave verifies both; the host vouches for neither.
type SignRequest struct {
	Body  []byte `cbor:"1,keyasint"`
	Stamp string `cbor:"2,keyasint"`
}

// SignResponse is the result of a signed request.
type SignResponse struct {
	From              [20]byte `cbor:"1,keyasint"`           // address of the signing key
	Signature         [65]byte `cbor:"2,keyasint"`           // r || s || y-parity
	SignedTransaction []byte   `cbor:"3,keyasint"`           // empty when not a transaction
	TransactionHash   [32]byte `cbor:"4,keyasint"`           // zero when not a transaction
	AuditSeq          uint64   `cbor:"5,keyasint"`           // sequence number of the audit record
	Digest            [32]byte `cbor:"6,keyasint"`           // the hash that was signed
	AuditRecord       []byte   `cbor:"7,keyasint,omitempty"` // the decision's audit record (a JSON line)
	// Status is empty or "signed" for a signature, "pending_approval" for
	// a request that waits for approvals (no signature; see ApprovalID).
	Status string `cbor:"8,keyasint,omitempty"`
	// ApprovalID, SummaryLines, Quorum, Approvers and ExpiresMS describe
	// a pending request. (Key 10, the summary as text, is retired: the
	// lines carry it, and the host renders them.)
	ApprovalID string   `cbor:"9,keyasint,omitempty"`
	Quorum     uint32   `cbor:"11,keyasint,omitempty"`
	Approvers  []string `cbor:"12,keyasint,omitempty"`
	ExpiresMS  int64    `cbor:"13,keyasint,omitempty"`
	// AlreadyCounted answers an approval from an approver already counted:
	// nothing changed and no record was added; AuditSeq and AuditRecord
	// are the latest record about the request.
	AlreadyCounted bool `cbor:"14,keyasint,omitempty"`
	// ApprovalDigest is a pending request's approval digest (32 bytes,
	// api.ApprovalDigest of the request's compact form): what its
	// approvers sign. Empty on signatures.
	ApprovalDigest []byte `cbor:"15,keyasint,omitempty"`
	// SummaryLines is a pending request's summary (package summary), line
	// by line, with the policy's labels apart from the substance.
	SummaryLines []SummaryLine `cbor:"16,keyasint,omitempty"`
}

// SummaryLine is one line of a summary (summary.Line): Key, Value (what the
// request alone determines) and Labels (what the policy and the key store
// add when the line is shown).
type SummaryLine struct {
	Key    string         `cbor:"1,keyasint"`
	Value  string         `cbor:"2,keyasint"`
	Labels []SummaryLabel `cbor:"3,keyasint,omitempty"`
}

// SummaryLabel is a label of a summary line (summary.Label): Text is shown
// in place of the bytes At to End of the line's Value (inserted at At when
// End == At).
type SummaryLabel struct {
	At   uint32 `cbor:"1,keyasint"`
	End  uint32 `cbor:"2,keyasint"`
	Text string `cbor:"3,keyasint"`
}

// checkSummary checks summary lines: at most MaxSummaryLines, each with
// at most MaxSummaryLabels labels, in order, not overlapping, within the
// value and on its rune boundaries, and the text they render to (every
// line "key: value\n", labels in place) at most MaxSummaryLen bytes.
func checkSummary(lines []SummaryLine) error {
	if len(lines) > MaxSummaryLines {
		return fmt.Errorf("summary of %d lines, limit %d", len(lines), MaxSummaryLines)
	}
	size := 0
	for i, l := range lines {
		if len(l.Labels) > MaxSummaryLabels {
			return fmt.Errorf("summary line %d: %d labels, limit %d", i, len(l.Labels), MaxSummaryLabels)
		}
		if !utf8.ValidString(l.Key) || !utf8.ValidString(l.Value) {
			return fmt.Errorf("summary line %d is not valid UTF-8", i)
		}
		size += len(l.Key) + len(": ") + len(l.Value) + len("\n")
		at := uint32(0)
		for j, lb := range l.Labels {
			if lb.At < at || lb.End < lb.At || lb.End > uint32(len(l.Value)) ||
				!runeBoundary(l.Value, lb.At) || !runeBoundary(l.Value, lb.End) {
				return fmt.Errorf("summary line %d, label %d: bytes %d to %d out of order, past the value or within a character", i, j, lb.At, lb.End)
			}
			if !utf8.ValidString(lb.Text) {
				return fmt.Errorf("summary line %d, label %d is not valid UTF-8", i, j)
			}
			size += len(lb.Text) - int(lb.End-lb.At)
			at = lb.End
		}
		if size > MaxSummaryLen {
			return fmt.Errorf("summary of more than %d bytes, limit %d", size, MaxSummaryLen)
		}
	}
	return nil
}

func runeBoundary(s string, i uint32) bool { return int(i) == len(s) || utf8.RuneStart(s[i]) }

// AuditRequest is the host's side of the audit pipeline: it acknowledges
// that the host has persisted (written and fsynced) every audit record up to
// and including Ack (0: none yet), proving it with AckHash, the SHA-256 of
// record Ack's exact line; and it asks for the records from From on (0:
// none), at most MaxAuditRecords of them. The enclave releases an answer
// (a signature, a refusal, an approval) only once its record is
// acknowledged, so every sign request waits for this acknowledgement.
//
// With WaitMS > 0 and no record from From yet, the enclave holds the
// request until one is appended, or for WaitMS (at most MaxAuditWaitMS): the
// host long-polls, and records reach it as soon as they are made.
//
// Failing, when not empty, is the host's report that it cannot persist
// records (for example a full disk), with the reason: the enclave stops
// deciding requests at once, until a request with Failing empty.
//
// With Rotate, the enclave also appends a signed rotate record (the last
// record of a log segment, after the acknowledgement is applied) and returns
// it in AuditResponse.RotateRecord.
type AuditRequest struct {
	Ack     uint64 `cbor:"1,keyasint"`
	From    uint64 `cbor:"2,keyasint"`
	Rotate  bool   `cbor:"3,keyasint,omitempty"` // omitted when false
	AckHash []byte `cbor:"4,keyasint,omitempty"` // 32 bytes with Ack > 0
	WaitMS  uint32 `cbor:"5,keyasint,omitempty"`
	Failing string `cbor:"6,keyasint,omitempty"`
	// Run, when set, is the enclave run the host's acknowledgement and
	// fetch are meant for. An enclave of another run (it restarted) applies
	// neither, and answers with its state only, so that the host starts a
	// new generation for it.
	Run []byte `cbor:"7,keyasint,omitempty"`
}

// MaxAuditWaitMS caps AuditRequest.WaitMS.
const MaxAuditWaitMS = 5000

// MaxFailingLen caps AuditRequest.Failing.
const MaxFailingLen = 512

// RunIDLen is the length of an enclave run's id (AuditResponse.Run,
// HealthResponse.Run).
const RunIDLen = 16

// AuditResponse carries the enclave's audit state: its audit public key,
// the run it belongs to (Run: random, new at every start of the enclave
// process, so that the host starts a new generation of its log state for
// every run), its head, the last record the host acknowledged (Acked), and
// the records asked for (JSON lines, in sequence order). RotateRecord is the
// rotate record appended for AuditRequest.Rotate; it is empty (omitted) when
// none was asked for, or when the enclave refused to append one (its backlog
// of unacknowledged records is full).
type AuditResponse struct {
	Key          []byte   `cbor:"1,keyasint"`
	HeadSeq      uint64   `cbor:"2,keyasint"`
	HeadHash     [32]byte `cbor:"3,keyasint"`
	Records      [][]byte `cbor:"4,keyasint"`
	RotateRecord []byte   `cbor:"5,keyasint,omitempty"`
	Run          []byte   `cbor:"6,keyasint,omitempty"`
	Acked        uint64   `cbor:"7,keyasint,omitempty"`
}

// Type implements Message.
func (AuditRequest) Type() Type { return TypeAuditRequest }

// Type implements Message.
func (AuditResponse) Type() Type { return TypeAuditResponse }

func (a AuditRequest) validate() error {
	if len(a.AckHash) != 0 && len(a.AckHash) != 32 {
		return fmt.Errorf("ack hash is %d bytes, want 32", len(a.AckHash))
	}
	if a.WaitMS > MaxAuditWaitMS {
		return fmt.Errorf("wait of %d ms, limit %d", a.WaitMS, MaxAuditWaitMS)
	}
	if len(a.Run) != 0 && len(a.Run) != RunIDLen {
		return fmt.Errorf("run id is %d bytes, want %d", len(a.Run), RunIDLen)
	}
	return checkText("failing", a.Failing, MaxFailingLen)
}

func (a AuditResponse) validate() error {
	if len(a.Key) > MaxAuditKeyLen {
		return fmt.Errorf("key is %d bytes, limit %d", len(a.Key), MaxAuditKeyLen)
	}
	if len(a.Records) > MaxAuditRecords {
		return fmt.Errorf("%d records, limit %d", len(a.Records), MaxAuditRecords)
	}
	if len(a.Run) != 0 && len(a.Run) != RunIDLen {
		return fmt.Errorf("run id is %d bytes, want %d", len(a.Run), RunIDLen)
	}
	for i, r := range a.Records {
		// The record's name is formatted only for the error: every
		// record of every poll passes here.
		if checkBytes("record", r, MaxAuditRecordLen) != nil {
			return checkBytes(fmt.Sprintf("record %d", i), r, MaxAuditRecordLen)
		}
	}
	return checkBytes("rotate record", a.RotateRecord, MaxAuditRecordLen)
}

// AttestRequest asks for an attestation document carrying Nonce.
type AttestRequest struct {
	Nonce []byte `cbor:"1,keyasint"`
}

// AttestResponse carries an NSM attestation document (COSE_Sign1).
type AttestResponse struct {
	Document []byte `cbor:"1,keyasint"`
}

// Type implements Message.
func (AttestRequest) Type() Type { return TypeAttestRequest }

// Type implements Message.
func (AttestResponse) Type() Type { return TypeAttestResponse }

// Type implements Message.
func (Error) Type() Type { return TypeError }

// Type implements Message.
func (HealthRequest) Type() Type { return TypeHealthRequest }

// Type implements Message.
func (HealthResponse) Type() Type { return TypeHealthResponse }

// Type implements Message.
func (KeysRequest) Type() Type { return TypeKeysRequest }

// Type implements Message.
func (KeysResponse) Type() Type { return TypeKeysResponse }

// Type implements Message.
func (SignRequest) Type() Type { return TypeSignRequest }

// Type implements Message.
func (SignResponse) Type() Type { return TypeSignResponse }

// validate checks the caps that the CBOR decoder cannot express. Every
// message type implements it, so that Marshal never produces what Unmarshal
// refuses.
type validator interface {
	validate() error
}

func (e Error) validate() error {
	if e.Code == "" {
		return fmt.Errorf("code is empty")
	}
	return firstErr(
		checkText("code", e.Code, MaxErrorCodeLen),
		checkText("rule", e.Rule, MaxErrorRuleLen),
		checkText("message", e.Message, MaxErrorMessageLen),
		checkBytes("audit record", e.AuditRecord, MaxAuditRecordLen),
	)
}

func (HealthRequest) validate() error { return nil }

func (h HealthResponse) validate() error {
	if len(h.Run) != 0 && len(h.Run) != RunIDLen {
		return fmt.Errorf("run id is %d bytes, want %d", len(h.Run), RunIDLen)
	}
	if h.FrozenKeys > MaxKeys || h.PendingPolicies > MaxPendingPolicies {
		return fmt.Errorf("%d frozen keys, %d pending policies: limits %d, %d", h.FrozenKeys, h.PendingPolicies, MaxKeys, MaxPendingPolicies)
	}
	if (h.PendingPolicies == 0) != (h.PolicyDueUnixMS == 0) {
		return fmt.Errorf("%d pending policies, the first due at %d: both or neither", h.PendingPolicies, h.PolicyDueUnixMS)
	}
	if len(h.KMS) > len(KMSOps) {
		return fmt.Errorf("%d kms entries, limit %d", len(h.KMS), len(KMSOps))
	}
	for i, k := range h.KMS {
		if err := k.validate(); err != nil {
			return err
		}
		if i > 0 && slices.Index(KMSOps[:], k.Op) <= slices.Index(KMSOps[:], h.KMS[i-1].Op) {
			return fmt.Errorf("kms entries out of order (%s after %s)", k.Op, h.KMS[i-1].Op)
		}
	}
	return firstErr(
		checkText("audit failing", h.AuditFailing, MaxFailingLen),
		checkText("version", h.Version, MaxVersionLen),
		checkText("state", h.State, MaxStateLen),
	)
}

func (KeysRequest) validate() error { return nil }

func (k KeysResponse) validate() error {
	if len(k.Keys) > MaxKeys {
		return fmt.Errorf("%d keys, limit %d", len(k.Keys), MaxKeys)
	}
	for i, key := range k.Keys {
		if err := firstErr(
			checkText("id", key.ID, MaxKeyIDLen),
			checkText("path", key.Path, MaxKeyPathLen),
		); err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
	}
	return nil
}

func (s SignRequest) validate() error {
	return firstErr(
		checkBytes("body", s.Body, MaxSignBodyLen),
		checkText("stamp", s.Stamp, MaxStampLen),
	)
}

func (a AttestRequest) validate() error { return checkBytes("nonce", a.Nonce, MaxNonceLen) }

func (a AttestResponse) validate() error {
	if len(a.Document) == 0 {
		return fmt.Errorf("document is empty")
	}
	return checkBytes("document", a.Document, MaxAttestationLen)
}

func (s SignResponse) validate() error {
	if len(s.Approvers) > MaxApprovers {
		return fmt.Errorf("%d approvers, limit %d", len(s.Approvers), MaxApprovers)
	}
	for _, n := range s.Approvers {
		if err := checkText("approver", n, MaxApproverLen); err != nil {
			return err
		}
	}
	return firstErr(
		checkText("status", s.Status, MaxStatusLen),
		checkText("approval id", s.ApprovalID, MaxApprovalIDLen),
		checkSummary(s.SummaryLines),
		checkBytes("signed transaction", s.SignedTransaction, MaxSignedTransactionLen),
		checkBytes("audit record", s.AuditRecord, MaxAuditRecordLen),
		checkDigest("approval digest", s.ApprovalDigest),
	)
}

// checkDigest accepts an absent digest or one of 32 bytes.
func checkDigest(field string, b []byte) error {
	if len(b) != 0 && len(b) != 32 {
		return fmt.Errorf("%s is %d bytes, want 32", field, len(b))
	}
	return nil
}

func checkText(field, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes, limit %d", field, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	return nil
}

func checkBytes(field string, b []byte, limit int) error {
	if len(b) > limit {
		return fmt.Errorf("%s is %d bytes, limit %d", field, len(b), limit)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
