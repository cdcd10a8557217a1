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

// signMessage signs msg with the audit key. It holds only the Signer's
// own lock (against Destroy), never the chain's.
func (s *Signer) signMessage(msg []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.priv == nil {
		return nil, errors.New("audit: the signer was destroyed")
	}
	return ed25519.Sign(s.priv, msg), nil
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

// MaxUnsigned is the longest run of unsigned records in a log a Chain
// writes. A batch holds at most MaxBatch (= MaxUnsigned) records and is
// followed by its signed tree head, so no run is longer. (Logs written
// before tree heads existed obey it too: their enclaves signed a record
// whenever the MaxUnsigned records before it were unsigned.)
const MaxUnsigned = MaxBatch

// Chain appends records to a log: it keeps the head, fills in each record's
// Seq and Prev, signs what must be signed, closes batches with signed tree
// heads, and returns the lines to persist. It is safe for concurrent use,
// though records are ordered by the calls to Append.
//
// Decision records are not signed (unless the caller asks); every other
// record is. The records since the last tree head form the open batch;
// CloseBatch appends a tree head record, signed, that covers them (their
// Merkle root), and Append closes the batch itself before a record that
// would make it longer than MaxBatch. The caller closes the batch before it
// hands records over for persistence, and hands over only records up to a
// signed one (a tree head, or an event), so that every record persisted is
// covered by a signature and every decision acted on is authenticated (see
// the package documentation).
//
// No signature is made under the chain's lock: a record to sign takes its
// seq, the lock is released while the audit key signs, and appends wait
// meanwhile (the next record's prev is the hash of the signed line), as do
// other signatures; everything else that takes the lock goes on.
type Chain struct {
	mu   sync.Locker
	own  sync.Mutex
	idle sync.Cond // broadcast when a signature in progress is done
	busy bool      // a record is being signed: its seq is taken

	signer    *Signer
	head      Head
	maxRecord int // cap on a record's line; 0 means MaxRecordSize

	// The open batch: records batchFirst to head.Seq, their leaves
	// accumulated in batch; batchPrev is the hash of record batchFirst-1.
	batch      compactRange
	batchFirst uint64
	batchPrev  [32]byte
	leaves     leafHasher

	onAppend func(Record, []byte)

	// legacy writes the format before tree heads (tests of old logs): no
	// batches, and a record signed whenever the MaxUnsigned before it
	// are unsigned.
	legacy   bool
	unsigned int
}

// ChainOptions are the options of NewChainWith.
type ChainOptions struct {
	// Lock, when set, guards the chain instead of a lock of its own: the
	// caller holds it around the *Locked methods (and must not hold it
	// around the others). They release it while they sign, and take it
	// again before they return, so the caller's state guarded by Lock may
	// change across such a call.
	Lock sync.Locker
	// OnAppend, when set, is called for every record the chain appends,
	// tree heads included, in sequence order, with the chain's lock held.
	OnAppend func(rec Record, line []byte)
}

// ErrRecordTooLarge is the error Append returns for a record whose
// canonical line would exceed the chain's cap (see SetMaxRecordSize), and
// Marshal for one above MaxRecordSize. The chain is unchanged; the caller
// refuses whatever the record was to record.
var ErrRecordTooLarge = errors.New("audit: record too large")

// NewChain returns a Chain that continues from head: the zero Head for a new
// log (the first record gets seq 1 and an all-zero prev), or the head the
// enclave restored from its sealed state, in which case the first record
// appended should be a boot record. Its first batch starts with that
// record.
func NewChain(s *Signer, from Head) *Chain {
	return NewChainWith(s, from, ChainOptions{})
}

// NewChainWith is NewChain with options.
func NewChainWith(s *Signer, from Head, o ChainOptions) *Chain {
	c := &Chain{signer: s, head: from, batchFirst: from.Seq + 1, batchPrev: from.Hash, onAppend: o.OnAppend}
	c.mu = o.Lock
	if c.mu == nil {
		c.mu = &c.own
	}
	c.idle.L = c.mu
	return c
}

// SetMaxRecordSize caps the canonical line of the records Append accepts
// at n bytes; n <= 0 or above MaxRecordSize means MaxRecordSize, the
// format's own limit. The enclave sets the cap to the largest record its
// host protocol carries (proto.MaxAuditRecordLen): a record the host
// cannot fetch is never acknowledged, and every decision waiting behind it
// would wait for ever. Call it before the chain is used.
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

// HeadLocked is Head, with the chain's lock (ChainOptions.Lock) held. While
// a record is being signed it is the head before that record.
func (c *Chain) HeadLocked() Head { return c.head }

// BatchLen returns how many records the open batch holds: records appended
// since the last tree head, which no tree head covers yet.
func (c *Chain) BatchLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.batch.size)
}

// WaitLocked waits, with the chain's lock held, until no record is being
// signed, so that the caller's next check and append are not separated by
// a signature.
func (c *Chain) WaitLocked() {
	for c.busy {
		c.idle.Wait()
	}
}

// Append sets r's Seq and Prev to continue the log, signs it if sign is true
// or it is not a decision, and returns the record and its canonical line,
// without a newline. If the open batch already holds MaxBatch records, or r
// is a rotate record (which ends a segment, and is in no batch), Append
// first closes the open batch with a tree head (stamped with r's time,
// policy version, checkpoint and unacknowledged count), which the caller
// learns of through ChainOptions.OnAppend. On error (a record Marshal refuses, a
// line longer than the chain's cap, which is [ErrRecordTooLarge], a full
// log, a destroyed signer, a record of kind tree_head, which only the
// chain writes) the record is not appended (though a full batch may have
// been closed) and the caller must fail closed. Any Seq, Prev or Sig r
// carries is replaced.
func (c *Chain) Append(r Record, sign bool) (Record, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.AppendLocked(r, sign)
}

// AppendLocked is Append, with the chain's lock (ChainOptions.Lock) held.
func (c *Chain) AppendLocked(r Record, sign bool) (Record, []byte, error) {
	c.WaitLocked()
	if r.Kind == KindTreeHead {
		return Record{}, nil, errors.New("audit: tree head records are the chain's own (CloseBatch)")
	}
	// A full batch is closed; so is the batch before a rotate record,
	// which ends a segment: batches never span segments, so that a
	// segment verified alone has the records of all its trees.
	if !c.legacy && (c.batch.size >= MaxBatch || r.Kind == KindRotate) {
		if _, _, _, err := c.closeLocked(r); err != nil {
			return Record{}, nil, err
		}
	}
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
	sign = sign || r.Kind != KindDecision || c.legacy && c.unsigned >= MaxUnsigned
	var line []byte
	var err error
	if sign {
		line, err = c.signLocked(&r)
	} else {
		if err = c.checkSize(recordLen(&r, true)); err == nil {
			line = encodeRecord(&r, true)
		}
	}
	if err != nil {
		return Record{}, nil, err
	}
	c.commit(&r, line, false)
	return r, line, nil
}

// CloseBatch closes the open batch: it appends a signed tree head record
// covering the records since the last one (their count, Merkle root, and
// the hash of the record before them), stamped with tpl's TimeMS,
// PolicyVersion, Checkpoint and Unacknowledged, and returns it. With no
// record in the open batch it appends nothing and returns ok false.
func (c *Chain) CloseBatch(tpl Record) (rec Record, line []byte, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.CloseBatchLocked(tpl)
}

// CloseBatchLocked is CloseBatch, with the chain's lock
// (ChainOptions.Lock) held.
func (c *Chain) CloseBatchLocked(tpl Record) (Record, []byte, bool, error) {
	c.WaitLocked()
	return c.closeLocked(tpl)
}

func (c *Chain) closeLocked(tpl Record) (Record, []byte, bool, error) {
	if c.legacy || c.batch.size == 0 {
		return Record{}, nil, false, nil
	}
	if c.head.Seq >= MaxSafeInteger {
		return Record{}, nil, false, errors.New("audit: the log is full")
	}
	t := TreeHead{Seq: c.head.Seq + 1, First: c.batchFirst, Size: c.batch.size, Root: c.batch.root(), PrevHead: c.batchPrev}
	r := Record{
		Seq: t.Seq, Prev: c.head.Hash, TimeMS: tpl.TimeMS, Kind: KindTreeHead, Decision: DecisionClosed,
		Summary: t.summary(), PolicyVersion: tpl.PolicyVersion, Checkpoint: tpl.Checkpoint, Unacknowledged: tpl.Unacknowledged,
	}
	if err := r.validate(); err != nil {
		return Record{}, nil, false, err
	}
	line, err := c.signLocked(&r)
	if err != nil {
		return Record{}, nil, false, err
	}
	c.commit(&r, line, true)
	return r, line, true, nil
}

// checkSize refuses a line of n bytes over the chain's cap.
func (c *Chain) checkSize(n int) error {
	limit := MaxRecordSize
	if c.maxRecord > 0 {
		limit = c.maxRecord
	}
	if n > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, n, limit)
	}
	return nil
}

// signLocked signs r (whose Seq and Prev are set and which is valid) and
// returns its line. The chain's lock is released while the key signs;
// appends and other signatures wait for it (busy).
func (c *Chain) signLocked(r *Record) ([]byte, error) {
	r.Sig = nil
	// The signed line is the unsigned one with `,"sig":"` + 128 hex digits
	// + `"` inserted.
	if err := c.checkSize(recordLen(r, false) + len(`,"sig":""`) + 2*sigSize); err != nil {
		return nil, err
	}
	prefix := signaturePrefix(r.Kind)
	msg := appendRecord(append(make([]byte, 0, len(prefix)+recordLen(r, false)), prefix...), r, false)
	c.busy = true
	c.mu.Unlock()
	sig, err := c.signer.signMessage(msg)
	c.mu.Lock()
	c.busy = false
	c.idle.Broadcast()
	if err != nil {
		return nil, err
	}
	r.Sig = sig
	return encodeRecord(r, true), nil
}

// commit makes r, whose line is line, the chain's head.
func (c *Chain) commit(r *Record, line []byte, treeHead bool) {
	c.head = Head{Seq: r.Seq, Hash: sha256.Sum256(line)}
	switch {
	case c.legacy && r.Signed():
		c.unsigned = 0
	case c.legacy:
		c.unsigned++
	case treeHead || r.Kind == KindRotate:
		// The next batch starts after a tree head or a rotate record (a
		// rotate record is signed, and in no tree).
		c.batch.reset()
		c.batchFirst, c.batchPrev = r.Seq+1, c.head.Hash
	default:
		var leaf [32]byte
		c.leaves.leaf(line, &leaf)
		c.batch.push(leaf)
	}
	if c.onAppend != nil {
		c.onAppend(*r, line)
	}
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
		return Record{}, fmt.Errorf("audit: record %d is unsigned; verify it through the log, or against its tree head with an inclusion proof (VerifyInclusion)", p.rec.Seq)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, p.message(line), p.sig[:]) {
		return Record{}, fmt.Errorf("audit: record %d: signature does not verify", p.rec.Seq)
	}
	return p.rec, nil
}
