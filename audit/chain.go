package audit

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// KeyInfo is the HKDF info string that derives the audit key from the
// enclave's master seed.
const KeyInfo = "nitrosign audit key v1"

// MinSeedSize is the shortest master seed NewSigner accepts.
const MinSeedSize = 32

// Signer holds the enclave's audit signing key. Its String, GoString and
// LogValue show only the public key, so that printing or logging a Signer
// by mistake reveals nothing.
type Signer struct {
	mu   sync.Mutex
	priv ed25519.PrivateKey // nil once destroyed
	pub  ed25519.PublicKey
}

// NewSigner derives the audit key from the enclave's master seed: the
// Ed25519 private key whose seed is HKDF-SHA256(secret = seed, salt = empty,
// info = KeyInfo, length = 32). The same master seed always gives the same
// key, so the audit key, and the public key that attestation documents
// commit to, survive restarts; it is independent of every other key derived
// from the master seed. seed is not retained or modified; the derived
// intermediate is zeroed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) < MinSeedSize {
		return nil, fmt.Errorf("audit: master seed of %d bytes, want at least %d", len(seed), MinSeedSize)
	}
	k, err := hkdf.Key(sha256.New, seed, nil, KeyInfo, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("audit: deriving the audit key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(k)
	clear(k)
	return &Signer{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// PublicKey returns the audit public key, which verifiers pin and which the
// enclave's attestation commits to.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), s.pub...)
}

// Destroy overwrites the private key; the Signer signs no more after it.
// (Go may have copied the key while it was in use: this is the best Go
// allows.)
func (s *Signer) Destroy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.priv)
	s.priv = nil
}

// String describes the Signer by its public key only.
func (s *Signer) String() string {
	return "audit.Signer{public key " + hex.EncodeToString(s.pub) + "}"
}

// GoString is String, so that %#v shows no key material either.
func (s *Signer) GoString() string { return s.String() }

// LogValue logs the Signer as its public key.
func (s *Signer) LogValue() slog.Value {
	return slog.StringValue(hex.EncodeToString(s.pub))
}

// sign signs the record's message and sets r.Sig.
func (s *Signer) sign(r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.priv == nil {
		return errors.New("audit: the signer was destroyed")
	}
	r.Sig = nil
	msg := append([]byte(SignaturePrefix), appendRecord(nil, r, false)...)
	r.Sig = ed25519.Sign(s.priv, msg)
	return nil
}

// Head is the state of a log after its last record: that record's sequence
// number and hash. The head of an empty log is the zero Head.
type Head struct {
	Seq  uint64
	Hash [32]byte
}

// String formats the head as SEQ:HEX, the form ParseHead reads.
func (h Head) String() string {
	return strconv.FormatUint(h.Seq, 10) + ":" + hex.EncodeToString(h.Hash[:])
}

// ParseHead reads a head written by Head.String: a decimal sequence number
// without leading zeros, a colon, and 64 lower-case hex digits.
func ParseHead(s string) (Head, error) {
	seq, hx, ok := strings.Cut(s, ":")
	d := decoder{b: []byte(seq)}
	var h Head
	h.Seq = d.uint(MaxSafeInteger, "seq")
	if !ok || d.err != nil || d.i != len(seq) {
		return Head{}, fmt.Errorf("audit: head %s is not SEQ:HEX", quote(s))
	}
	d = decoder{b: []byte(hx)}
	d.hexInto(h.Hash[:])
	if d.err != nil || d.i != len(hx) {
		return Head{}, fmt.Errorf("audit: head %s is not SEQ:HEX with 64 lower-case hex digits", quote(s))
	}
	if h.Seq == 0 && h.Hash != ([32]byte{}) {
		return Head{}, errors.New("audit: the head of an empty log has an all-zero hash")
	}
	return h, nil
}

// MaxUnsigned is the longest run of unsigned records a Chain writes: it
// signs a record whenever the MaxUnsigned records before it are unsigned.
const MaxUnsigned = 255

// Chain appends records to a log: it keeps the head, fills in each record's
// Seq, Prev and Sig, and returns the line to persist. It is safe for
// concurrent use, though records are ordered by the calls to Append.
//
// Signing is the caller's choice record by record, within two rules Append
// enforces: every record that is not a decision is signed, and no more than
// MaxUnsigned records in a row go unsigned. The caller must sign the last
// record of every batch it hands over for persistence before any answer
// that depends on a record in the batch leaves the enclave, so that every
// decision acted on is covered by a signed record (see the package
// documentation).
type Chain struct {
	mu        sync.Mutex
	signer    *Signer
	head      Head
	unsigned  int // unsigned records since the last signed one
	maxRecord int // cap on a record's line; 0 means MaxRecordSize
}

// ErrRecordTooLarge is the error Append returns for a record whose
// canonical line would exceed the chain's cap (see SetMaxRecordSize), and
// Marshal for one above MaxRecordSize. The chain is unchanged; the caller
// refuses whatever the record was to record.
var ErrRecordTooLarge = errors.New("audit: record too large")

// NewChain returns a Chain that continues from head: the zero Head for a new
// log (the first record gets seq 1 and an all-zero prev), or the head the
// enclave restored from its sealed state, in which case the first record
// appended should be a boot record.
func NewChain(s *Signer, from Head) *Chain {
	return &Chain{signer: s, head: from}
}

// SetMaxRecordSize caps the canonical line of the records Append accepts
// at n bytes; n <= 0 or above MaxRecordSize means MaxRecordSize, the
// format's own limit. The enclave sets the cap to the largest record its
// host protocol carries (proto.MaxAuditRecordLen): a record the host
// cannot fetch is never acknowledged, and every decision waiting behind it
// would wait for ever.
func (c *Chain) SetMaxRecordSize(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 || n > MaxRecordSize {
		n = 0
	}
	c.maxRecord = n
}

// Head returns the head after the last record appended.
func (c *Chain) Head() Head {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head
}

// Append sets r's Seq and Prev to continue the log, signs it if sign is true
// or the rules of Chain require it, and returns the record and its canonical
// line, without a newline. On error (a record Marshal refuses, a line
// longer than the chain's cap, which is [ErrRecordTooLarge], a full log, a
// destroyed signer) the chain is unchanged (head, seq and the run of
// unsigned records) and the caller must fail closed. Any Seq, Prev or Sig r
// carries is replaced.
func (c *Chain) Append(r Record, sign bool) (Record, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head.Seq >= MaxSafeInteger {
		return Record{}, nil, errors.New("audit: the log is full")
	}
	r.Seq = c.head.Seq + 1
	r.Prev = c.head.Hash
	r.Sig = nil
	r.Approvers = append([]string(nil), r.Approvers...)
	r.RequestDigest = append([]byte(nil), r.RequestDigest...)
	if err := r.validate(); err != nil {
		return Record{}, nil, err
	}
	if sign || r.Kind != KindDecision || c.unsigned >= MaxUnsigned {
		if err := c.signer.sign(&r); err != nil {
			return Record{}, nil, err
		}
	}
	line, err := Marshal(r)
	if err != nil {
		return Record{}, nil, err
	}
	if c.maxRecord > 0 && len(line) > c.maxRecord {
		return Record{}, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(line), c.maxRecord)
	}
	c.head = Head{Seq: r.Seq, Hash: sha256.Sum256(line)}
	if r.Signed() {
		c.unsigned = 0
	} else {
		c.unsigned++
	}
	return r, line, nil
}

// VerifyRecord checks one record line on its own: that it is canonical and
// carries a valid signature by pub. It is how a client checks the record of
// its own request (GET /v1/audit?from=SEQ) without the whole log. An
// unsigned record cannot be checked alone: it is authenticated only by the
// next signed record of the log, through the chain.
func VerifyRecord(line []byte, pub ed25519.PublicKey) (Record, error) {
	var p parsed
	if len(line) > MaxRecordSize {
		return Record{}, fmt.Errorf("audit: record of %d bytes, limit %d", len(line), MaxRecordSize)
	}
	if err := parseLine(line, &p, true); err != nil {
		return Record{}, err
	}
	if !p.signed {
		return Record{}, fmt.Errorf("audit: record %d is unsigned; verify it through the log", p.rec.Seq)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, p.message(line), p.sig[:]) {
		return Record{}, fmt.Errorf("audit: record %d: signature does not verify", p.rec.Seq)
	}
	return p.rec, nil
}
