package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/keypath"
)

// MaxCommandSize caps the bytes of a command.
const MaxCommandSize = 1 << 20

// MaxValidity is the longest validity window a command may have:
// not_after_ms - not_before_ms.
const MaxValidity = 7 * 24 * time.Hour

// maxSafeInteger is 2^53 - 1, the largest integer every JSON reader keeps
// exactly; sequence numbers above it are refused.
const maxSafeInteger = 1<<53 - 1

// Kind names what a command does.
type Kind string

// The kinds of command the enclave acts on.
const (
	// KindKeyCreate derives a new signing key from the sealed seed
	// ([KeyCreateBody]).
	KindKeyCreate Kind = "key_create"
	// KindKeyImport imports an existing key, encrypted to the enclave
	// ([KeyImportBody]).
	KindKeyImport Kind = "key_import"
	// KindSealRotate re-seals the seed under a new data key, optionally
	// under a new KMS key ([SealRotateBody]).
	KindSealRotate Kind = "seal_rotate"
	// KindPolicyChange proposes a new policy document ([PolicyChangeBody]).
	KindPolicyChange Kind = "policy_change"
	// KindPolicyCancel cancels a pending, time-locked policy change
	// ([PolicyCancelBody]). It is a cancel kind: one admin suffices.
	KindPolicyCancel Kind = "policy_cancel"
	// KindUnfreeze lifts the freeze recorded by one audit record
	// ([UnfreezeBody]).
	KindUnfreeze Kind = "unfreeze"
	// KindFreeze freezes one key or every key at once ([FreezeBody]). It
	// only stops: by default one admin suffices ([Kind.OnlyStops]).
	KindFreeze Kind = "freeze"
)

// Kinds returns every kind this package knows, in a fixed order.
func Kinds() []Kind {
	return []Kind{KindKeyCreate, KindKeyImport, KindSealRotate, KindPolicyChange, KindPolicyCancel, KindUnfreeze, KindFreeze}
}

// Known reports whether k is one of [Kinds].
func (k Kind) Known() bool {
	_, ok := bodyCheckers[k]
	return ok
}

// IsCancel reports whether k only cancels something pending, so that any
// single admin may issue it ([Set.Threshold] is 1).
func (k Kind) IsCancel() bool { return k == KindPolicyCancel }

// OnlyStops reports whether k can only stop something: cancel a pending
// change, or freeze keys. Such a command cannot move funds, loosen the
// policy or lift a freeze, so one admin suffices unless the set raises the
// kind's threshold ([Set.Threshold]), and the enclave accepts it even when
// its memory of commands carried out is full. A compromised admin key can
// halt signing with one; it can do nothing else with it.
func (k Kind) OnlyStops() bool { return k == KindPolicyCancel || k == KindFreeze }

// bodyCheckers decodes and checks the body of each kind.
var bodyCheckers = map[Kind]func(json.RawMessage) error{
	KindKeyCreate:    func(b json.RawMessage) error { _, err := decodeKeyCreate(b); return err },
	KindKeyImport:    func(b json.RawMessage) error { _, err := decodeKeyImport(b); return err },
	KindSealRotate:   func(b json.RawMessage) error { _, err := decodeSealRotate(b); return err },
	KindPolicyChange: func(b json.RawMessage) error { _, err := decodePolicyChange(b); return err },
	KindPolicyCancel: func(b json.RawMessage) error { _, err := decodePolicyCancel(b); return err },
	KindUnfreeze:     func(b json.RawMessage) error { _, err := decodeUnfreeze(b); return err },
	KindFreeze:       func(b json.RawMessage) error { _, err := decodeFreeze(b); return err },
}

// Command is a parsed administrative command. [ParseCommand] returns one
// that is well formed; only [Set.Verify] says it is authorized.
type Command struct {
	// Kind is what the command does; always one of [Kinds].
	Kind Kind
	// GenesisHash binds the command to one deployment: the hash that
	// identifies the enclave's genesis configuration.
	GenesisHash [32]byte
	// NotBefore and NotAfter bound when the command is valid: from
	// NotBefore inclusive to NotAfter exclusive, millisecond precision.
	NotBefore, NotAfter time.Time
	// Body is the kind-specific body, exactly as in Raw; decode it with
	// the method named after the kind, such as [Command.KeyCreate].
	Body json.RawMessage
	// Raw is the exact bytes of the command, as signed.
	Raw []byte
	// Digest is SHA-256(Raw): the digest the admins signed, and the
	// command's identity (for the audit log and for refusing a command
	// executed already).
	Digest [32]byte
}

// wireCommand is the JSON form of a command. Pointers tell a missing (or
// null) field from a zero one.
type wireCommand struct {
	Kind        *string         `json:"kind"`
	GenesisHash *string         `json:"genesis_hash"`
	NotBeforeMS *int64          `json:"not_before_ms"`
	NotAfterMS  *int64          `json:"not_after_ms"`
	Body        json.RawMessage `json:"body"`
}

// ParseCommand strictly parses a command and checks that it is well formed:
// every field present, a known kind, a body its kind's decoder accepts, and
// a validity window of at most [MaxValidity]. It does not check signatures,
// the deployment or the time: that is [Set.Verify]'s job. Errors wrap
// [ErrMalformed].
func ParseCommand(b []byte) (*Command, error) {
	var w wireCommand
	if err := strictjson.Unmarshal(b, &w, MaxCommandSize); err != nil {
		return nil, malformed("command: %v", err)
	}
	switch {
	case w.Kind == nil:
		return nil, malformed("command: kind is missing")
	case w.GenesisHash == nil:
		return nil, malformed("command: genesis_hash is missing")
	case w.NotBeforeMS == nil:
		return nil, malformed("command: not_before_ms is missing")
	case w.NotAfterMS == nil:
		return nil, malformed("command: not_after_ms is missing")
	case w.Body == nil:
		return nil, malformed("command: body is missing")
	}
	c := &Command{Kind: Kind(*w.Kind)}
	check, ok := bodyCheckers[c.Kind]
	if !ok {
		return nil, malformed("command: unknown kind %s", quote(*w.Kind))
	}
	gh, err := decodeHash(*w.GenesisHash)
	if err != nil {
		return nil, malformed("command: genesis_hash: %v", err)
	}
	c.GenesisHash = gh
	nb, na := *w.NotBeforeMS, *w.NotAfterMS
	if nb < 0 || nb > maxSafeInteger || na < 0 || na > maxSafeInteger {
		return nil, malformed("command: not_before_ms and not_after_ms must be 0 to 2^53-1")
	}
	if na <= nb {
		return nil, malformed("command: not_after_ms (%d) must be after not_before_ms (%d)", na, nb)
	}
	if na-nb > MaxValidity.Milliseconds() {
		return nil, malformed("command: valid for %v, at most %v allowed", time.Duration(na-nb)*time.Millisecond, MaxValidity)
	}
	c.NotBefore, c.NotAfter = time.UnixMilli(nb).UTC(), time.UnixMilli(na).UTC()
	if err := check(w.Body); err != nil {
		return nil, malformed("command: %s body: %v", c.Kind, err)
	}
	c.Body = bytes.Clone(w.Body)
	c.Raw = bytes.Clone(b)
	c.Digest = sha256.Sum256(b)
	return c, nil
}

// NewCommand returns the bytes of a command of the given kind, for the
// deployment genesisHash, valid from notBefore to notAfter (truncated to
// milliseconds), with body (one of the body types of this package, a
// pointer to one, or a json.RawMessage) encoded with encoding/json. The
// result is checked with [ParseCommand].
func NewCommand(kind Kind, genesisHash [32]byte, notBefore, notAfter time.Time, body any) ([]byte, error) {
	bj, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("admin: encoding the body: %w", err)
	}
	k, gh := string(kind), hex.EncodeToString(genesisHash[:])
	nb, na := notBefore.UnixMilli(), notAfter.UnixMilli()
	b, err := json.Marshal(wireCommand{Kind: &k, GenesisHash: &gh, NotBeforeMS: &nb, NotAfterMS: &na, Body: bj})
	if err != nil {
		return nil, fmt.Errorf("admin: encoding the command: %w", err)
	}
	if _, err := ParseCommand(b); err != nil {
		return nil, err
	}
	return b, nil
}

// KeyCreateBody is the body of a [KindKeyCreate] command:
//
//	{"key_id": "hot-1", "path": "m/44'/60'/0'/0/1"}
type KeyCreateBody struct {
	// KeyID names the new key: 1 to 64 of [A-Za-z0-9._-], starting with
	// a letter or digit, not starting with "0x".
	KeyID string `json:"key_id"`
	// Path is its BIP-32 derivation path from the seed, in the syntax of
	// keypath.ParsePath.
	Path string `json:"path"`
	// Parsed is Path parsed; set by the decoder, not part of the JSON.
	Parsed keypath.Path `json:"-"`
}

// KeyImportBody is the body of a [KindKeyImport] command:
//
//	{"key_id": "legacy-1", "encrypted_key": "<lowercase hex>"}
type KeyImportBody struct {
	// KeyID names the imported key, as in [KeyCreateBody].
	KeyID string `json:"key_id"`
	// EncryptedKey is the key material encrypted to the enclave,
	// lowercase hex of 1 to MaxEncryptedKeySize bytes. Its format is the
	// enclave's; this package treats it as opaque.
	EncryptedKey string `json:"encrypted_key"`
	// Blob is EncryptedKey decoded; set by the decoder, not part of the
	// JSON.
	Blob []byte `json:"-"`
}

// MaxEncryptedKeySize caps [KeyImportBody.Blob].
const MaxEncryptedKeySize = 64 << 10

// SealRotateBody is the body of a [KindSealRotate] command:
//
//	{}                                  (new data key, same KMS key)
//	{"kms_key_id": "arn:aws:kms:..."}   (new data key under a new KMS key)
type SealRotateBody struct {
	// KMSKeyID, if not empty, is the KMS key to seal under from now on
	// (key id, key ARN, alias name or alias ARN: 1 to 2048 of
	// [A-Za-z0-9:/_.-]). Empty (or absent) keeps the current KMS key and
	// only replaces the data key.
	KMSKeyID string `json:"kms_key_id,omitempty"`
}

// PolicyChangeBody is the body of a [KindPolicyChange] command:
//
//	{"version": 7, "policy_hash": "<64 lowercase hex>", "document": {...}}
//
// The decoder checks the form only. The caller must parse Document as a
// policy and refuse the command unless the policy's version and hash (as
// the policy package computes them) equal Version and Hash: they are what
// the admins saw and what the audit log records.
type PolicyChangeBody struct {
	// Version is the new policy's version, at least 1.
	Version uint64 `json:"version"`
	// PolicyHash is the new policy's hash, 64 lowercase hex digits.
	PolicyHash string `json:"policy_hash"`
	// Document is the new policy document, a JSON object.
	Document json.RawMessage `json:"document"`
	// Hash is PolicyHash decoded; set by the decoder, not part of the
	// JSON.
	Hash [32]byte `json:"-"`
}

// PolicyCancelBody is the body of a [KindPolicyCancel] command, naming the
// pending change to cancel by its version and hash:
//
//	{"version": 7, "policy_hash": "<64 lowercase hex>"}
type PolicyCancelBody struct {
	// Version is the pending policy's version, at least 1.
	Version uint64 `json:"version"`
	// PolicyHash is the pending policy's hash, 64 lowercase hex digits.
	PolicyHash string `json:"policy_hash"`
	// Hash is PolicyHash decoded; set by the decoder, not part of the
	// JSON.
	Hash [32]byte `json:"-"`
}

// UnfreezeBody is the body of a [KindUnfreeze] command:
//
//	{"freeze_seq": 1234}
//
// The caller must lift only the freeze recorded at FreezeSeq, and only if
// it is still in force, so that an unfreeze signed for an old freeze cannot
// undo a newer one.
type UnfreezeBody struct {
	// FreezeSeq is the audit sequence number of the record of the freeze
	// to lift, 1 to 2^53-1.
	FreezeSeq uint64 `json:"freeze_seq"`
}

// MaxFreezeReason caps [FreezeBody.Reason], in bytes.
const MaxFreezeReason = 256

// FreezeBody is the body of a [KindFreeze] command, naming one key or
// every key, with the reason the audit record keeps:
//
//	{"key_id": "hot-0", "reason": "suspected client compromise"}
//	{"all_keys": true, "reason": "incident 2026-12-07"}
//
// Exactly one of key_id and all_keys is present; all_keys, when present,
// is true (false is refused: leave it out), so that each freeze has one
// spelling. The caller must refuse a key it does not hold.
type FreezeBody struct {
	// KeyID is the key to freeze, as in [KeyCreateBody]; empty when
	// AllKeys.
	KeyID string `json:"key_id,omitempty"`
	// AllKeys freezes every key, those added later included, until the
	// freeze is lifted.
	AllKeys bool `json:"all_keys,omitempty"`
	// Reason says why, for the audit log and the refusals the freeze
	// causes: 1 to MaxFreezeReason bytes of printable UTF-8 (spaces
	// allowed, no control or format characters), not starting or ending
	// with a space.
	Reason string `json:"reason"`
}

// KeyCreate decodes the body of a [KindKeyCreate] command.
func (c *Command) KeyCreate() (*KeyCreateBody, error) {
	return decodeAs(c, KindKeyCreate, decodeKeyCreate)
}

// KeyImport decodes the body of a [KindKeyImport] command.
func (c *Command) KeyImport() (*KeyImportBody, error) {
	return decodeAs(c, KindKeyImport, decodeKeyImport)
}

// SealRotate decodes the body of a [KindSealRotate] command.
func (c *Command) SealRotate() (*SealRotateBody, error) {
	return decodeAs(c, KindSealRotate, decodeSealRotate)
}

// PolicyChange decodes the body of a [KindPolicyChange] command.
func (c *Command) PolicyChange() (*PolicyChangeBody, error) {
	return decodeAs(c, KindPolicyChange, decodePolicyChange)
}

// PolicyCancel decodes the body of a [KindPolicyCancel] command.
func (c *Command) PolicyCancel() (*PolicyCancelBody, error) {
	return decodeAs(c, KindPolicyCancel, decodePolicyCancel)
}

// Unfreeze decodes the body of a [KindUnfreeze] command.
func (c *Command) Unfreeze() (*UnfreezeBody, error) {
	return decodeAs(c, KindUnfreeze, decodeUnfreeze)
}

// Freeze decodes the body of a [KindFreeze] command.
func (c *Command) Freeze() (*FreezeBody, error) {
	return decodeAs(c, KindFreeze, decodeFreeze)
}

// decodeAs decodes c's body with decode, refusing a command of another
// kind than k.
func decodeAs[T any](c *Command, k Kind, decode func(json.RawMessage) (*T, error)) (*T, error) {
	if err := c.want(k); err != nil {
		return nil, err
	}
	v, err := decode(c.Body)
	if err != nil {
		return nil, malformed("%s body: %v", c.Kind, err)
	}
	return v, nil
}

func (c *Command) want(k Kind) error {
	if c == nil {
		return errors.New("admin: nil command")
	}
	if c.Kind != k {
		return fmt.Errorf("admin: command is %s, not %s", quote(string(c.Kind)), k)
	}
	return nil
}

// decodeBody strictly decodes a body into v, wrapping errors.
func decodeBody(b json.RawMessage, v any) error {
	if err := strictjson.Unmarshal(b, v, MaxCommandSize); err != nil {
		return err
	}
	return nil
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkKeyID(id string) error {
	if !keyIDPattern.MatchString(id) {
		return fmt.Errorf("key_id %s: want 1 to 64 of [A-Za-z0-9._-], starting with a letter or digit", quote(id))
	}
	if len(id) >= 2 && id[:2] == "0x" {
		return fmt.Errorf("key_id %s: must not start with 0x (that is how addresses are told apart)", quote(id))
	}
	return nil
}

func decodeKeyCreate(b json.RawMessage) (*KeyCreateBody, error) {
	var v KeyCreateBody
	if err := decodeBody(b, &v); err != nil {
		return nil, err
	}
	if err := checkKeyID(v.KeyID); err != nil {
		return nil, err
	}
	p, err := keypath.ParsePath(v.Path)
	if err != nil {
		return nil, fmt.Errorf("path: %v", err)
	}
	v.Parsed = p
	return &v, nil
}

func decodeKeyImport(b json.RawMessage) (*KeyImportBody, error) {
	var v KeyImportBody
	if err := decodeBody(b, &v); err != nil {
		return nil, err
	}
	if err := checkKeyID(v.KeyID); err != nil {
		return nil, err
	}
	if v.EncryptedKey == "" || len(v.EncryptedKey) > 2*MaxEncryptedKeySize {
		return nil, fmt.Errorf("encrypted_key: want 1 to %d bytes in hex", MaxEncryptedKeySize)
	}
	blob, err := decodeLowerHex(v.EncryptedKey)
	if err != nil {
		return nil, fmt.Errorf("encrypted_key: %v", err)
	}
	v.Blob = blob
	return &v, nil
}

var kmsKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9:/_.-]+$`)

// maxKMSKeyIDLen is KMS's cap on a key id (a key ARN, alias ARN, id or
// alias name).
const maxKMSKeyIDLen = 2048

func decodeSealRotate(b json.RawMessage) (*SealRotateBody, error) {
	var v SealRotateBody
	if err := decodeBody(b, &v); err != nil {
		return nil, err
	}
	if v.KMSKeyID != "" && (len(v.KMSKeyID) > maxKMSKeyIDLen || !kmsKeyIDPattern.MatchString(v.KMSKeyID)) {
		return nil, fmt.Errorf("kms_key_id %s: want 1 to %d of [A-Za-z0-9:/_.-]", quote(v.KMSKeyID), maxKMSKeyIDLen)
	}
	return &v, nil
}

func decodePolicyChange(b json.RawMessage) (*PolicyChangeBody, error) {
	var v PolicyChangeBody
	if err := decodeBody(b, &v); err != nil {
		return nil, err
	}
	if v.Version == 0 {
		return nil, fmt.Errorf("version: missing or 0, want at least 1")
	}
	h, err := decodeHash(v.PolicyHash)
	if err != nil {
		return nil, fmt.Errorf("policy_hash: %v", err)
	}
	v.Hash = h
	if len(v.Document) == 0 || v.Document[0] != '{' {
		return nil, fmt.Errorf("document: missing or not a JSON object")
	}
	return &v, nil
}

func decodePolicyCancel(b json.RawMessage) (*PolicyCancelBody, error) {
	var v PolicyCancelBody
	if err := decodeBody(b, &v); err != nil {
		return nil, err
	}
	if v.Version == 0 {
		return nil, fmt.Errorf("version: missing or 0, want at least 1")
	}
	h, err := decodeHash(v.PolicyHash)
	if err != nil {
		return nil, fmt.Errorf("policy_hash: %v", err)
	}
	v.Hash = h
	return &v, nil
}

func decodeUnfreeze(b json.RawMessage) (*UnfreezeBody, error) {
	var v UnfreezeBody
	if err := decodeBody(b, &v); err != nil {
		return nil, err
	}
	if v.FreezeSeq == 0 || v.FreezeSeq > maxSafeInteger {
		return nil, fmt.Errorf("freeze_seq: missing or out of range, want 1 to 2^53-1")
	}
	return &v, nil
}

// wireFreeze is the JSON form of a [FreezeBody]: pointers tell an absent
// member from an empty one.
type wireFreeze struct {
	KeyID   *string `json:"key_id"`
	AllKeys *bool   `json:"all_keys"`
	Reason  *string `json:"reason"`
}

func decodeFreeze(b json.RawMessage) (*FreezeBody, error) {
	var w wireFreeze
	if err := decodeBody(b, &w); err != nil {
		return nil, err
	}
	var v FreezeBody
	switch {
	case w.KeyID != nil && w.AllKeys != nil:
		return nil, fmt.Errorf("key_id and all_keys: give one, not both")
	case w.AllKeys != nil && !*w.AllKeys:
		return nil, fmt.Errorf("all_keys: false is not a spelling of a freeze; give key_id instead")
	case w.AllKeys != nil:
		v.AllKeys = true
	case w.KeyID != nil:
		if err := checkKeyID(*w.KeyID); err != nil {
			return nil, err
		}
		v.KeyID = *w.KeyID
	default:
		return nil, fmt.Errorf("key_id or all_keys is missing: name the key to freeze, or all_keys true")
	}
	if w.Reason == nil {
		return nil, fmt.Errorf("reason is missing: say why, for the audit log")
	}
	if err := checkReason(*w.Reason); err != nil {
		return nil, err
	}
	v.Reason = *w.Reason
	return &v, nil
}

// checkReason checks a freeze's reason: 1 to MaxFreezeReason bytes of
// printable UTF-8, no leading or trailing space. Printable (unicode.IsPrint)
// leaves out control characters, so that a reason cannot forge a line of
// a log, and format characters such as bidirectional overrides, so that it
// reads as it is.
func checkReason(r string) error {
	switch {
	case r == "":
		return fmt.Errorf("reason is empty: say why, for the audit log")
	case len(r) > MaxFreezeReason:
		return fmt.Errorf("reason is %d bytes, at most %d allowed", len(r), MaxFreezeReason)
	case !utf8.ValidString(r):
		return fmt.Errorf("reason is not valid UTF-8")
	case strings.TrimSpace(r) != r:
		return fmt.Errorf("reason %s starts or ends with white space", quote(r))
	}
	for i, c := range r {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("reason: character %U at byte %d is not printable", c, i)
		}
	}
	return nil
}

// decodeHash decodes 64 lowercase hex digits.
func decodeHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("want 64 lowercase hex digits, got %d characters", len(s))
	}
	b, err := decodeLowerHex(s)
	if err != nil {
		return h, err
	}
	copy(h[:], b)
	return h, nil
}

// decodeLowerHex decodes lowercase hex, refusing upper case so that every
// value has one spelling.
func decodeLowerHex(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, fmt.Errorf("not lowercase hex (character %d)", i)
		}
	}
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(s))
	}
	return hex.DecodeString(s)
}

// quote quotes an attacker-chosen string for an error message, escaped and
// truncated.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
