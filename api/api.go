// Package api defines the JSON types of nitrosign's client-facing HTTP API,
// and decodes sign requests strictly.
//
// Hot-wallet services POST requests to nitrosign-host, which forwards the body
// bytes unchanged to the enclave; the enclave decodes them with
// [DecodeSignRequest]. The host is not trusted, so this package is linked into
// the enclave and treats every body as hostile: size-capped, strict JSON (see
// internal/strictjson), every field validated, exactly one payload.
//
// # Endpoints
//
//	POST /v1/sign     SignRequest → 200 SignResponse | ErrorResponse
//	GET  /v1/keys     → 200 KeysResponse
//	GET  /v1/health   → 200 HealthResponse (liveness: whenever the host serves)
//	GET  /v1/ready    → 200 HealthResponse | 503 HealthResponse (readiness)
//
// POST bodies are stamped: see package stamp.
//
// # Errors
//
// Every refusal is an [ErrorResponse] whose error.code is one of the codes
// of package api/refusal, answered with the HTTP status refusal.Status
// gives, and whose error.rule, if any, is one of its rules. That package
// defines every code and rule once; docs/api.md lists them with their
// meaning. Callers branch on the code (and rule), never on the message.
package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// MaxBodySize caps a request body, in bytes.
const MaxBodySize = 256 << 10

// Limits on request fields.
const (
	MaxRequestIDLen = 128
	MaxKeyLen       = 128
)

// SignRequest is the body of POST /v1/sign.
//
// Exactly one payload field is set. Payload kinds are optional pointer
// fields, each listed in [SignRequest.payloads].
type SignRequest struct {
	// RequestID is unique per client: 1 to 128 characters of [A-Za-z0-9._:-].
	// The enclave refuses a request_id it has seen (replayed_request).
	RequestID string `json:"request_id"`
	// TimestampMS is the client's time of the request in Unix milliseconds;
	// the enclave refuses one outside its window (stale_request).
	TimestampMS int64 `json:"timestamp_ms"`
	// Key is the id of the signing key (see KeysResponse): 1 to 128
	// printable ASCII characters, no spaces.
	Key string `json:"key"`

	// EthTransaction asks for a signed Ethereum transaction.
	EthTransaction *EthTransaction `json:"eth_transaction,omitempty"`
	// EthTypedData asks for an EIP-712 signature over typed data.
	EthTypedData *EthTypedData `json:"eth_typed_data,omitempty"`
	// EthPersonalMessage asks for an EIP-191 personal_sign signature.
	EthPersonalMessage *EthPersonalMessage `json:"eth_personal_message,omitempty"`
}

// EthTypedData is EIP-712 typed data in eth_signTypedData_v4 JSON form
// ({"types", "primaryType", "domain", "message"}), kept as the exact bytes the
// client sent: the enclave decodes it itself (package ethmsg). The body's
// strict parsing already refused duplicate keys inside it.
type EthTypedData struct {
	JSON json.RawMessage
}

// UnmarshalJSON keeps the raw object.
func (t *EthTypedData) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return errors.New("eth_typed_data: must be a JSON object")
	}
	t.JSON = append(t.JSON[:0], b...)
	return nil
}

// MarshalJSON returns the raw object.
func (t EthTypedData) MarshalJSON() ([]byte, error) {
	if len(t.JSON) == 0 {
		return nil, errors.New("api: eth_typed_data: empty")
	}
	return t.JSON, nil
}

// EthPersonalMessage is a message for EIP-191 personal_sign: the enclave
// signs keccak256("\x19Ethereum Signed Message:\n" || len || message).
type EthPersonalMessage struct {
	// Message is the 0x-prefixed hex of the message bytes: at least one
	// byte (the rule of Unsigned), at most ethmsg.MaxPersonalMessage
	// (package api/request checks that cap).
	Message string `json:"message"`
}

// Bytes decodes Message, as EthTransaction.Bytes does.
func (m *EthPersonalMessage) Bytes() ([]byte, error) {
	if m == nil {
		return nil, errors.New("api: eth_personal_message: missing")
	}
	b, err := decodeHex(m.Message)
	if err != nil {
		return nil, fmt.Errorf("api: eth_personal_message.message: %w", err)
	}
	return b, nil
}

// EthTransaction is an Ethereum transaction to sign.
type EthTransaction struct {
	// Unsigned is the 0x-prefixed hex of the transaction as it is signed:
	// the typed envelope (type byte || RLP payload) without the signature
	// fields, or the EIP-155 RLP list for legacy transactions.
	Unsigned string `json:"unsigned"`
}

// NewEthTransaction returns the payload for an unsigned transaction.
func NewEthTransaction(unsigned []byte) *EthTransaction {
	return &EthTransaction{Unsigned: "0x" + hex.EncodeToString(unsigned)}
}

// Bytes decodes Unsigned: "0x" (lower case) followed by a non-empty, even
// number of hex digits of either case; nothing else, not even whitespace
// (the rule of every payload's byte string: see checkHex).
func (t *EthTransaction) Bytes() ([]byte, error) {
	if t == nil {
		return nil, errors.New("api: eth_transaction: missing")
	}
	b, err := decodeHex(t.Unsigned)
	if err != nil {
		return nil, fmt.Errorf("api: eth_transaction.unsigned: %w", err)
	}
	return b, nil
}

// checkHex applies the one rule for a payload's byte string (the
// transaction's unsigned bytes, the personal message): "0x" (lower case)
// followed by a non-empty, even number of hex digits of either case;
// nothing else, not even whitespace. It returns the digits. "0x" alone is
// refused for every payload: no transaction is empty, and an empty personal
// message signs nothing anyone could have read. [SignRequest.Validate]
// checks the rule without decoding; [decodeHex] decodes, once, what it
// accepts (package api/request does, through the payloads' Bytes).
func checkHex(s string) (string, error) {
	digits, ok := strings.CutPrefix(s, "0x")
	switch {
	case !ok:
		return "", errors.New(`must start with "0x"`)
	case digits == "":
		return "", errors.New("is empty")
	case len(digits)%2 != 0:
		return "", fmt.Errorf("odd number of hex digits (%d)", len(digits))
	}
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", errors.New("is not hex")
		}
	}
	return digits, nil
}

// decodeHex decodes a payload's byte string under checkHex's rule, with
// checkHex's errors. It leaves the digits to hex.DecodeString, which
// accepts exactly the digits checkHex does (of either case), rather than
// read them twice: the first error of either is "is not hex".
func decodeHex(s string) ([]byte, error) {
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok || digits == "" || len(digits)%2 != 0 {
		_, err := checkHex(s)
		return nil, err
	}
	b, err := hex.DecodeString(digits)
	if err != nil {
		return nil, errors.New("is not hex")
	}
	return b, nil
}

// DecodeSignRequest parses and validates a POST /v1/sign body. Every error is
// an [*Error]: code too_large for a body over [MaxBodySize], bad_request
// otherwise, with a message naming the field ("request_id: ...").
func DecodeSignRequest(body []byte) (*SignRequest, error) {
	if len(body) > MaxBodySize {
		return nil, &Error{Code: refusal.CodeTooLarge, Message: fmt.Sprintf("body is %d bytes, limit %d", len(body), MaxBodySize)}
	}
	var req SignRequest
	if err := strictjson.Unmarshal(body, &req, MaxBodySize); err != nil {
		return nil, &Error{Code: refusal.CodeBadRequest, Message: strings.TrimPrefix(err.Error(), "strictjson: "), err: err}
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return &req, nil
}

// Validate checks the fields of r as [DecodeSignRequest] does; clients call
// it before sending. Errors are [*Error] with code bad_request.
func (r *SignRequest) Validate() error {
	if err := checkRequestID(r.RequestID); err != nil {
		return badRequest("request_id", err)
	}
	if r.TimestampMS <= 0 {
		return badRequest("timestamp_ms", fmt.Errorf("must be positive Unix milliseconds, got %d", r.TimestampMS))
	}
	if err := checkKey(r.Key); err != nil {
		return badRequest("key", err)
	}
	// The names are listed only for the refusal: counting them first
	// spares the accepted request the list's allocation.
	if r.payloadCount() != 1 {
		present := r.payloads()
		msg := "none"
		if len(present) > 0 {
			msg = strings.Join(present, ", ")
		}
		return &Error{Code: refusal.CodeBadRequest, Message: fmt.Sprintf("exactly one payload required (%s), got %s", strings.Join(payloadNames, ", "), msg)}
	}
	if r.EthTransaction != nil {
		if _, err := checkHex(r.EthTransaction.Unsigned); err != nil {
			return badRequest("eth_transaction.unsigned", err)
		}
	}
	if r.EthPersonalMessage != nil {
		if _, err := checkHex(r.EthPersonalMessage.Message); err != nil {
			return badRequest("eth_personal_message.message", err)
		}
	}
	if r.EthTypedData != nil && (len(r.EthTypedData.JSON) == 0 || r.EthTypedData.JSON[0] != '{') {
		return badRequest("eth_typed_data", errors.New("must be a JSON object"))
	}
	return nil
}

// payloadNames lists every payload field, in the order of the struct.
var payloadNames = []string{"eth_transaction", "eth_typed_data", "eth_personal_message"}

// payloadCount is len(r.payloads()), without making the list.
func (r *SignRequest) payloadCount() int {
	n := 0
	for _, set := range [...]bool{r.EthTransaction != nil, r.EthTypedData != nil, r.EthPersonalMessage != nil} {
		if set {
			n++
		}
	}
	return n
}

// payloads returns the names of the payload fields that are set. Each new
// payload kind adds a line here, one to payloadCount and a name to
// payloadNames.
func (r *SignRequest) payloads() []string {
	var present []string
	if r.EthTransaction != nil {
		present = append(present, "eth_transaction")
	}
	if r.EthTypedData != nil {
		present = append(present, "eth_typed_data")
	}
	if r.EthPersonalMessage != nil {
		present = append(present, "eth_personal_message")
	}
	return present
}

func checkRequestID(id string) error {
	if id == "" || len(id) > MaxRequestIDLen {
		return fmt.Errorf("must be 1 to %d characters, got %d", MaxRequestIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fmt.Errorf("character %d is not one of [A-Za-z0-9._:-]", i)
		}
	}
	return nil
}

func checkKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("must be 1 to %d characters, got %d", MaxKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("character %d is not printable ASCII (space excluded)", i)
		}
	}
	return nil
}

func badRequest(field string, err error) *Error {
	return &Error{Code: refusal.CodeBadRequest, Message: field + ": " + err.Error(), err: err}
}

// SignResponse is the 200 answer to POST /v1/sign. All byte strings are
// 0x-prefixed lower-case hex.
type SignResponse struct {
	// From is the address of the signing key.
	From string `json:"from"`
	// Signature is 65 bytes: r || s || y-parity (0 or 1), s low (EIP-2).
	Signature string `json:"signature"`
	// SignedTransaction is the transaction with its signature, ready to
	// broadcast; set for eth_transaction.
	SignedTransaction string `json:"signed_transaction,omitempty"`
	// TransactionHash is the hash of SignedTransaction; set for
	// eth_transaction.
	TransactionHash string `json:"transaction_hash,omitempty"`
	// Digest is the 32-byte hash that was signed: the transaction's signing
	// hash, the EIP-712 digest, or the EIP-191 personal-message hash.
	Digest string `json:"digest,omitempty"`
	// AuditSeq is the sequence number of the audit record of this decision.
	AuditSeq uint64 `json:"audit_seq"`
}

// KeysResponse is the answer to GET /v1/keys.
type KeysResponse struct {
	Keys []Key `json:"keys"`
}

// Key describes one signing key.
type Key struct {
	// ID is what SignRequest.Key names.
	ID string `json:"id"`
	// Address is the 0x-prefixed EIP-55 Ethereum address.
	Address string `json:"address"`
	// Path is the BIP-32 derivation path, such as m/44'/60'/0'/0/0.
	Path string `json:"path"`
}

// AttestationResponse is the answer to GET /v1/attestation?nonce=HEX: an
// NSM attestation document (COSE_Sign1, CBOR) in standard base64, whose
// user_data commits to the enclave's keys and policy (package
// attestation/userdata).
type AttestationResponse struct {
	Document string `json:"document"`
}

// AuditResponse is the answer to GET /v1/audit?from=SEQ: audit records
// (package audit) in sequence order, each the exact JSON object the enclave
// signed.
type AuditResponse struct {
	Records []json.RawMessage `json:"records"`
}

// Health statuses.
const (
	StatusOK       = "ok"       // the host and the enclave answer
	StatusDegraded = "degraded" // the host answers but the enclave does not, or is not ready
)

// HealthResponse is the answer to GET /v1/health (always HTTP 200: the
// host serves) and GET /v1/ready (HTTP 503 when degraded).
type HealthResponse struct {
	// Status is StatusOK or StatusDegraded.
	Status string `json:"status"`
	// Enclave is what the enclave reports; nil when it did not answer.
	Enclave *EnclaveHealth `json:"enclave,omitempty"`
	// Error says why the status is degraded.
	Error *Error `json:"error,omitempty"`
}

// EnclaveHealth is the enclave's own view of its state, for dashboards. It is
// not attested: use GET /v1/attestation to verify the enclave.
type EnclaveHealth struct {
	// Version is the enclave build's version string.
	Version string `json:"version"`
	// State is the enclave's key state: "ready", "locked" (its sealed seed
	// is not unsealed yet: it cannot sign), or "ephemeral" (a seed that is
	// never sealed: tests and trials only).
	State string `json:"state,omitempty"`
	// Keys is the number of signing keys.
	Keys int `json:"keys"`
	// PolicyVersion is the version of the active policy.
	PolicyVersion uint64 `json:"policy_version"`
	// AuditSeq is the sequence number of the latest audit record.
	AuditSeq uint64 `json:"audit_seq"`
	// StartedAtMS is when the enclave started, in Unix milliseconds.
	StartedAtMS int64 `json:"started_at_ms"`
	// UptimeMS is how long the enclave has been running, in milliseconds.
	UptimeMS int64 `json:"uptime_ms"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error is a refusal, as sent on the wire and as a Go error.
type Error struct {
	// Code is one of the codes of package api/refusal; callers branch on it.
	Code string `json:"code"`
	// Rule names the rule that refused (one of package api/refusal), for
	// policy_denied and some others.
	Rule string `json:"rule,omitempty"`
	// Message explains the refusal to a human.
	Message string `json:"message"`

	err error // the cause, when the error was made locally
}

// Error returns "api: <message> (<code>[, rule <rule>])".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("api: ")
	if e.Message != "" {
		b.WriteString(e.Message)
		b.WriteString(" (")
	}
	b.WriteString(e.Code)
	if e.Rule != "" {
		b.WriteString(", rule ")
		b.WriteString(e.Rule)
	}
	if e.Message != "" {
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the local cause of e, if any.
func (e *Error) Unwrap() error { return e.err }

// Status returns the HTTP status for e's code.
func (e *Error) Status() int { return refusal.Status(e.Code) }
