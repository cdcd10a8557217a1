package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Record kinds. A decision is a sign request the enclave decided; the others
// are events. Kinds are lower-case ASCII letters, digits and underscores,
// starting with a letter, at most [MaxKindLen] bytes; kinds not listed here
// are allowed, so that new events need no new verifier.
const (
	KindGenesis  = "genesis"  // the first record of a new log (seq 1)
	KindBoot     = "boot"     // an enclave start continuing from a sealed head
	KindDecision = "decision" // a sign request decided
	KindKey      = "key"      // a key created, imported or rotated
	KindPolicy   = "policy"   // a policy change
	KindFreeze   = "freeze"   // a freeze or unfreeze
	KindRotate   = "rotate"   // the last record of a log segment
)

// Decisions of decision records. Event records say what happened in their
// own words (for example "booted", "rotated").
const (
	DecisionSigned          = "signed"
	DecisionRefused         = "refused"
	DecisionPendingApproval = "pending_approval"
	DecisionApproved        = "approved"
	DecisionRejected        = "rejected"
)

// Limits of the record format.
const (
	// MaxRecordSize caps a record's canonical encoding (one line, without
	// its newline). Marshal refuses larger records and the verifier refuses
	// longer lines by default.
	MaxRecordSize = 4 << 20
	// MaxSafeInteger is the largest integer written as a JSON number
	// (2^53-1, exact in every JSON implementation): seq and time_ms may not
	// exceed it.
	MaxSafeInteger = 1<<53 - 1
	// MaxKindLen caps the length of a record kind.
	MaxKindLen = 32
	// DigestSize is the size of a request digest.
	DigestSize = 32
)

// SignaturePrefix is prepended to a record's canonical encoding without its
// sig member to make the message the audit key signs, so that no signature
// over a record can be taken for a signature over anything else.
const SignaturePrefix = "nitrosign audit record v1\n"

// Record is one entry of the audit log.
//
// Its canonical encoding (see [Marshal] and docs/audit.md) is a single JSON
// object in RFC 8785 (JCS) form: members sorted by name, no insignificant
// whitespace, the minimal string escapes. The Go field order below is the
// order of the brief, not of the encoding.
type Record struct {
	// Seq is the record's position in the log, from 1, +1 each record.
	Seq uint64
	// TimeMS is the enclave's time in Unix milliseconds.
	TimeMS int64
	// Kind is what the record is about: one of the Kind constants or
	// another lower-case identifier.
	Kind string
	// RequestDigest is the digest of the request the record decides
	// (DigestSize bytes), or empty for records that decide no request.
	RequestDigest []byte
	// Client is the stamp public key of the requesting client, in its
	// string form; empty for records that decide no request.
	Client string
	// Key is the id of the signing key concerned, if any.
	Key string
	// Summary is the canonical summary text of the request or event.
	Summary string
	// Decision is one of the Decision constants for decision records, or
	// what happened for events.
	Decision string
	// Rule is the policy rule that decided, if any.
	Rule string
	// PolicyVersion is the version of the policy in force. It is encoded
	// as a decimal string, being a uint64 that may exceed 2^53.
	PolicyVersion uint64
	// Approvers are the approvers whose signatures counted, in order.
	// Nil and empty encode alike; Unmarshal returns nil for none.
	Approvers []string
	// Checkpoint is the generation of the newest sealed checkpoint the
	// host had acknowledged storing when the enclave appended the record
	// (carried over from the host's last record at a restart, so it never
	// decreases along an honest log), or 0 for none; the member is
	// omitted when 0. At a restart the enclave compares it with the
	// checkpoint the host hands back: a checkpoint older than the log says
	// was stored is a rollback (rule checkpoint_rollback). At most
	// MaxSafeInteger.
	Checkpoint uint64
	// Unacknowledged is how many transactions the enclave had reserved
	// since the limits snapshot of checkpoint generation Checkpoint when
	// it appended the record (carried over across restarts until a newer
	// checkpoint is acknowledged), or 0; the member is omitted when 0. At
	// a restart from that checkpoint the enclave charges that many unseen
	// transactions at their worst case against its limits (docs/limits.md,
	// "The replay bound"), so that restoring the same checkpoint again and
	// again grants no budget. At most MaxSafeInteger.
	Unacknowledged uint64
	// Prev is the SHA-256 of the previous record's canonical encoding; all
	// zero for the first record of a log.
	Prev [32]byte
	// Sig is the audit key's Ed25519 signature over SignaturePrefix (for a
	// tree head, TreeHeadPrefix) and the record's canonical encoding
	// without its sig member, or nil for an unsigned record (authenticated
	// by the tree head of its batch, or any later signed record, through
	// the chain).
	Sig []byte
}

// Signed reports whether the record carries a signature.
func (r Record) Signed() bool { return len(r.Sig) != 0 }

// Hash returns the SHA-256 of the record's canonical encoding, the value the
// next record's Prev holds. It is meaningful for records [Marshal] accepts;
// for others it hashes bytes that no valid record encodes to.
func (r Record) Hash() [32]byte {
	return sha256.Sum256(encodeRecord(&r, true))
}

// Marshal returns the canonical encoding of r: one line of JSON without a
// newline. It refuses records that [Unmarshal] would refuse: seq 0 or above
// MaxSafeInteger, a checkpoint generation or unacknowledged count above
// MaxSafeInteger, a negative
// time or one above MaxSafeInteger, a kind that
// is not an identifier, a request digest that is neither empty nor
// DigestSize bytes, a signature that is neither empty nor 64 bytes, a string
// that is not valid UTF-8, or an encoding longer than MaxRecordSize
// ([ErrRecordTooLarge]).
func Marshal(r Record) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b := encodeRecord(&r, true)
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(b), MaxRecordSize)
	}
	return b, nil
}

// validate checks what Marshal checks besides the size.
func (r *Record) validate() error {
	switch {
	case r.Seq == 0:
		return errors.New("audit: seq must be at least 1")
	case r.Seq > MaxSafeInteger:
		return fmt.Errorf("audit: seq %d above %d", r.Seq, uint64(MaxSafeInteger))
	case r.Checkpoint > MaxSafeInteger:
		return fmt.Errorf("audit: checkpoint %d above %d", r.Checkpoint, uint64(MaxSafeInteger))
	case r.Unacknowledged > MaxSafeInteger:
		return fmt.Errorf("audit: unacknowledged %d above %d", r.Unacknowledged, uint64(MaxSafeInteger))
	case r.TimeMS < 0 || r.TimeMS > MaxSafeInteger:
		return fmt.Errorf("audit: time_ms %d outside 0..%d", r.TimeMS, int64(MaxSafeInteger))
	case !validKind(r.Kind):
		return fmt.Errorf("audit: kind %s is not a lower-case identifier of at most %d bytes", quote(r.Kind), MaxKindLen)
	case len(r.RequestDigest) != 0 && len(r.RequestDigest) != DigestSize:
		return fmt.Errorf("audit: request digest of %d bytes, want %d or none", len(r.RequestDigest), DigestSize)
	case len(r.Sig) != 0 && len(r.Sig) != sigSize:
		return fmt.Errorf("audit: signature of %d bytes, want %d or none", len(r.Sig), sigSize)
	}
	for _, f := range []struct{ name, s string }{
		{"client", r.Client}, {"key", r.Key}, {"summary", r.Summary},
		{"decision", r.Decision}, {"rule", r.Rule},
	} {
		if !utf8.ValidString(f.s) {
			return fmt.Errorf("audit: %s is not valid UTF-8", f.name)
		}
	}
	for i, a := range r.Approvers {
		if !utf8.ValidString(a) {
			return fmt.Errorf("audit: approvers[%d] is not valid UTF-8", i)
		}
	}
	return nil
}

const sigSize = 64

func validKind(k string) bool {
	if k == "" || len(k) > MaxKindLen || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// appendRecord appends the canonical encoding of r; without withSig, the sig
// member is left out (the signed message).
//
// Members in RFC 8785 order: approvers, checkpoint (only when not 0),
// client, decision, key, kind, policy_version, prev, request_digest, rule,
// seq, sig, summary, time_ms, unacknowledged (only when not 0).
func appendRecord(b []byte, r *Record, withSig bool) []byte {
	b = append(b, `{"approvers":[`...)
	for i, a := range r.Approvers {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, a)
	}
	b = append(b, ']')
	if r.Checkpoint != 0 {
		b = append(b, `,"checkpoint":`...)
		b = strconv.AppendUint(b, r.Checkpoint, 10)
	}
	b = append(b, `,"client":`...)
	b = appendString(b, r.Client)
	b = append(b, `,"decision":`...)
	b = appendString(b, r.Decision)
	b = append(b, `,"key":`...)
	b = appendString(b, r.Key)
	b = append(b, `,"kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"policy_version":"`...)
	b = strconv.AppendUint(b, r.PolicyVersion, 10)
	b = append(b, `","prev":"`...)
	b = hex.AppendEncode(b, r.Prev[:])
	b = append(b, `","request_digest":"`...)
	b = hex.AppendEncode(b, r.RequestDigest)
	b = append(b, `","rule":`...)
	b = appendString(b, r.Rule)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	if withSig {
		b = append(b, `,"sig":"`...)
		b = hex.AppendEncode(b, r.Sig)
		b = append(b, '"')
	}
	b = append(b, `,"summary":`...)
	b = appendString(b, r.Summary)
	b = append(b, `,"time_ms":`...)
	b = strconv.AppendInt(b, r.TimeMS, 10)
	if r.Unacknowledged != 0 {
		b = append(b, `,"unacknowledged":`...)
		b = strconv.AppendUint(b, r.Unacknowledged, 10)
	}
	return append(b, '}')
}

// recordLen returns the length of appendRecord's encoding of r (with or
// without its sig member), so that a record is encoded into one buffer of
// its exact size, with no growth on the way: the sign path encodes a
// record per request. record_test.go checks it against the encoding.
func recordLen(r *Record, withSig bool) int {
	const members = len(`{"approvers":[]`) + len(`,"client":""`) + len(`,"decision":""`) +
		len(`,"key":""`) + len(`,"kind":""`) + len(`,"policy_version":"`) + len(`","prev":"`) +
		len(`","request_digest":"`) + len(`","rule":""`) + len(`,"seq":`) + len(`,"summary":""`) +
		len(`,"time_ms":`) + len(`}`)
	n := members + 2*len(r.Prev) + 2*len(r.RequestDigest) +
		EscapedLen(r.Client) + EscapedLen(r.Decision) + EscapedLen(r.Key) + EscapedLen(r.Kind) +
		EscapedLen(r.Rule) + EscapedLen(r.Summary) +
		decimalLen(r.PolicyVersion) + decimalLen(r.Seq)
	if r.TimeMS < 0 {
		n += 1 + decimalLen(uint64(-r.TimeMS))
	} else {
		n += decimalLen(uint64(r.TimeMS))
	}
	for i, a := range r.Approvers {
		if i > 0 {
			n++
		}
		n += 2 + EscapedLen(a)
	}
	if r.Checkpoint != 0 {
		n += len(`,"checkpoint":`) + decimalLen(r.Checkpoint)
	}
	if withSig {
		n += len(`,"sig":""`) + 2*len(r.Sig)
	}
	if r.Unacknowledged != 0 {
		n += len(`,"unacknowledged":`) + decimalLen(r.Unacknowledged)
	}
	return n
}

// decimalLen is the number of decimal digits of u.
func decimalLen(u uint64) int {
	n := 1
	for ; u >= 10; u /= 10 {
		n++
	}
	return n
}

// encodeRecord returns appendRecord's encoding of r in a buffer of its
// exact size.
func encodeRecord(r *Record, withSig bool) []byte {
	return appendRecord(make([]byte, 0, recordLen(r, withSig)), r, withSig)
}

// appendString appends s as an RFC 8785 string: '"' and '\' escaped, the
// control characters as \b \t \n \f \r or \u00xx (lower-case hex), every
// other character as itself. Invalid UTF-8 is copied as is (Marshal refuses
// it beforehand). Runs of bytes that need no escape are found eight bytes
// at a time (plainRun) and copied whole: a record's summary is mostly such
// runs, and the sign path encodes one record per request.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for {
		i := plainRun(s)
		b = append(b, s[:i]...)
		if i == len(s) {
			break
		}
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		s = s[i+1:]
	}
	return append(b, '"')
}

// plainRun returns the length of the longest prefix of s whose bytes a
// canonical string holds as themselves (none below 0x20, no '"', no '\\'),
// testing eight bytes at a time: with ones = 0x0101…01 and highs =
// 0x8080…80, (x - n*ones) &^ x & highs is non-zero exactly when some byte
// of x is below n (n <= 0x80), and a byte equal to c is a zero byte of
// x ^ c*ones. Those tests are exact for "some byte of the word", which is
// all the loop asks; the word that fails is then finished a byte at a time.
func plainRun(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		// One 8-byte load: the compiler merges the bytes of w, whose
		// length it knows, with no bounds check each.
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q, bs := x^('"'*ones), x^('\\'*ones)
		if (x-0x20*ones)&^x&highs|(q-ones)&^q&highs|(bs-ones)&^bs&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

const hexDigits = "0123456789abcdef"

// EscapedLen returns the number of bytes s takes inside a string of a
// record's canonical encoding, quotes excluded: '"', '\\' and the control
// characters \b, \t, \n, \f, \r take 2 bytes, the other bytes below 0x20
// take 6, every other byte 1. It is never less than len(s). Producers of
// record text (package summary, the enclave) bound what they write with
// it, since a line's size is what the host protocol caps.
func EscapedLen(s string) int {
	n := len(s)
	for {
		i := plainRun(s)
		if i == len(s) {
			return n
		}
		n += escapeExtra[s[i]]
		s = s[i+1:]
	}
}

// escapeExtra is how many bytes more than one each byte that needs an
// escape takes in a canonical string (see EscapedLen); 0 for the others.
var escapeExtra = func() (t [256]int) {
	for c := range 0x20 {
		t[c] = 5
	}
	for _, c := range []byte{'"', '\\', '\b', '\t', '\n', '\f', '\r'} {
		t[c] = 1
	}
	return t
}()

// Unmarshal decodes one canonical record line (without its newline). It
// refuses anything that is not exactly what [Marshal] writes: other member
// order, whitespace, unknown, missing (but checkpoint and unacknowledged,
// omitted when 0) or duplicate members, a checkpoint or unacknowledged of
// 0, other escapes, upper-case hex,
// leading zeros, numbers out of range, invalid UTF-8, and
// input longer than MaxRecordSize. Whatever it accepts re-encodes to the
// same bytes.
func Unmarshal(line []byte) (Record, error) {
	if len(line) > MaxRecordSize {
		return Record{}, fmt.Errorf("audit: record of %d bytes, limit %d", len(line), MaxRecordSize)
	}
	var p parsed
	if err := parseLine(line, &p, true); err != nil {
		return Record{}, err
	}
	return p.rec, nil
}

// parsed is a decoded line, with where its sig member lies.
type parsed struct {
	rec              Record
	sigStart, sigEnd int // line[sigStart:sigEnd] is `,"sig":"…"`
	sig              [sigSize]byte
	signed           bool
	digest           [DigestSize]byte
}

// message returns the message the audit key signs for the parsed line.
func (p *parsed) message(line []byte) []byte {
	return p.appendMessage(make([]byte, 0, len(TreeHeadPrefix)+len(line)-(p.sigEnd-p.sigStart)), line)
}

// signaturePrefix is the domain-separation prefix of a record of kind
// kind's signed message.
func signaturePrefix(kind string) string {
	if kind == KindTreeHead {
		return TreeHeadPrefix
	}
	return SignaturePrefix
}

// appendMessage appends the message the audit key signs to dst: the
// prefix of the record's kind (TreeHeadPrefix for a tree head,
// SignaturePrefix for every other record), then the line without its sig
// member.
func (p *parsed) appendMessage(dst, line []byte) []byte {
	dst = append(dst, signaturePrefix(p.rec.Kind)...)
	dst = append(dst, line[:p.sigStart]...)
	return append(dst, line[p.sigEnd:]...)
}

// parseLine decodes line into p, refusing every deviation from the canonical
// form. With full, the strings are decoded into p.rec; without, only Seq,
// TimeMS, Kind, Checkpoint, Unacknowledged, Prev and the signature are (the verifier's fast
// path, which still checks the syntax of every string).
func parseLine(line []byte, p *parsed, full bool) error {
	d := decoder{b: line}
	*p = parsed{}
	r := &p.rec
	d.lit(`{"approvers":[`)
	if d.peek() != ']' {
		for {
			a := d.str(full)
			if full {
				r.Approvers = append(r.Approvers, a)
			}
			if d.peek() != ',' {
				break
			}
			d.i++
		}
	}
	d.lit(`]`)
	if d.err == nil && bytes.HasPrefix(d.b[d.i:], []byte(`,"checkpoint":`)) {
		d.i += len(`,"checkpoint":`)
		at := d.i
		r.Checkpoint = d.uint(MaxSafeInteger, "checkpoint")
		if d.err == nil && r.Checkpoint == 0 {
			d.fail(at, "checkpoint 0 (the member is omitted when 0)")
		}
	}
	d.lit(`,"client":`)
	r.Client = d.str(full)
	d.lit(`,"decision":`)
	r.Decision = d.str(full)
	d.lit(`,"key":`)
	r.Key = d.str(full)
	d.lit(`,"kind":`)
	kindAt := d.i
	r.Kind = d.kind()
	if d.err == nil && !validKind(r.Kind) {
		d.fail(kindAt, "kind is not a lower-case identifier")
	}
	d.lit(`,"policy_version":"`)
	r.PolicyVersion = d.uint(^uint64(0), "policy_version")
	d.lit(`","prev":"`)
	d.hexInto(r.Prev[:])
	d.lit(`","request_digest":"`)
	if d.peek() != '"' {
		d.hexInto(p.digest[:])
		if full {
			r.RequestDigest = append([]byte(nil), p.digest[:]...)
		}
	}
	d.lit(`","rule":`)
	r.Rule = d.str(full)
	d.lit(`,"seq":`)
	seqAt := d.i
	r.Seq = d.uint(MaxSafeInteger, "seq")
	if d.err == nil && r.Seq == 0 {
		d.fail(seqAt, "seq 0")
	}
	p.sigStart = d.i
	d.lit(`,"sig":"`)
	if d.peek() != '"' {
		d.hexInto(p.sig[:])
		p.signed = true
		if full {
			r.Sig = append([]byte(nil), p.sig[:]...)
		}
	}
	d.lit(`"`)
	p.sigEnd = d.i
	d.lit(`,"summary":`)
	r.Summary = d.str(full)
	d.lit(`,"time_ms":`)
	r.TimeMS = int64(d.uint(MaxSafeInteger, "time_ms"))
	if d.err == nil && bytes.HasPrefix(d.b[d.i:], []byte(`,"unacknowledged":`)) {
		d.i += len(`,"unacknowledged":`)
		at := d.i
		r.Unacknowledged = d.uint(MaxSafeInteger, "unacknowledged")
		if d.err == nil && r.Unacknowledged == 0 {
			d.fail(at, "unacknowledged 0 (the member is omitted when 0)")
		}
	}
	d.lit(`}`)
	if d.err == nil && d.i != len(line) {
		d.fail(d.i, "trailing data")
	}
	if d.err != nil {
		return d.err
	}
	if full {
		// Belt and braces: what was accepted must be what Marshal writes.
		if again := appendRecord(make([]byte, 0, len(line)), r, true); !bytes.Equal(again, line) {
			return fmt.Errorf("audit: malformed record: not in canonical form (re-encodes differently at byte %d)", diffAt(again, line))
		}
	}
	return nil
}

func diffAt(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// decoder reads canonical JSON; after the first error every method is a
// no-op.
type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail(at int, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("audit: malformed record at byte %d: %s", at, fmt.Sprintf(format, args...))
	}
	d.i = len(d.b)
}

func (d *decoder) peek() byte {
	if d.err != nil || d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

// lit consumes the literal s.
func (d *decoder) lit(s string) {
	if d.err != nil {
		return
	}
	if !bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		if d.i >= len(d.b) {
			d.fail(d.i, "truncated, want %s", quote(s))
			return
		}
		d.fail(d.i, "want %s", quote(s))
		return
	}
	d.i += len(s)
}

// str consumes a canonical string and, with decode, returns its value.
func (d *decoder) str(decode bool) string {
	if d.err != nil {
		return ""
	}
	if d.peek() != '"' {
		d.fail(d.i, "want a string")
		return ""
	}
	start := d.i + 1
	simple := true
	i := start
	for {
		for i < len(d.b) && plain[d.b[i]] {
			i++
		}
		if i >= len(d.b) {
			d.fail(i, "unterminated string")
			return ""
		}
		c := d.b[i]
		switch {
		case c == '"':
			var s string
			if decode {
				if simple {
					s = string(d.b[start:i])
				} else {
					s = unescape(d.b[start:i])
				}
			}
			d.i = i + 1
			return s
		case c < 0x20:
			d.fail(i, "control character in string")
			return ""
		case c == '\\':
			simple = false
			if i+1 >= len(d.b) {
				d.fail(i, "unterminated string")
				return ""
			}
			switch d.b[i+1] {
			case '"', '\\', 'b', 't', 'n', 'f', 'r':
				i += 2
			case 'u':
				// Only control characters without a short form take \u00xx.
				if i+6 > len(d.b) || d.b[i+2] != '0' || d.b[i+3] != '0' || !isLowerHex(d.b[i+4]) || !isLowerHex(d.b[i+5]) {
					d.fail(i, "non-canonical \\u escape")
					return ""
				}
				v := hexVal(d.b[i+4])<<4 | hexVal(d.b[i+5])
				if v >= 0x20 || v == '\b' || v == '\t' || v == '\n' || v == '\f' || v == '\r' {
					d.fail(i, "non-canonical \\u escape")
					return ""
				}
				i += 6
			default:
				d.fail(i, "non-canonical escape")
				return ""
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d.b[i:])
			if r == utf8.RuneError && size <= 1 {
				d.fail(i, "invalid UTF-8")
				return ""
			}
			i += size
		}
	}
}

// knownKinds are the kinds whose strings the decoder shares rather than
// allocates.
var knownKinds = []string{KindDecision, KindTreeHead, KindBoot, KindGenesis, KindKey, KindPolicy, KindFreeze, KindRotate}

// kind consumes the kind string; known kinds are not allocated.
func (d *decoder) kind() string {
	start := d.i
	d.str(false)
	if d.err != nil {
		return ""
	}
	raw := d.b[start+1 : d.i-1]
	for _, k := range knownKinds {
		if string(raw) == k {
			return k
		}
	}
	if bytes.IndexByte(raw, '\\') >= 0 {
		return unescape(raw)
	}
	return string(raw)
}

// unescape decodes the inside of a string that str has checked.
func unescape(s []byte) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			out = append(out, '\b')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'f':
			out = append(out, '\f')
		case 'r':
			out = append(out, '\r')
		case 'u':
			out = append(out, hexVal(s[i+3])<<4|hexVal(s[i+4]))
			i += 4
		default: // '"', '\\'
			out = append(out, s[i])
		}
	}
	return string(out)
}

// uint consumes a decimal integer without sign or leading zeros, at most max.
func (d *decoder) uint(max uint64, name string) uint64 {
	if d.err != nil {
		return 0
	}
	start := d.i
	var v uint64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		dig := uint64(d.b[d.i] - '0')
		if v > (max-dig)/10 {
			d.fail(start, "%s out of range (at most %d)", name, max)
			return 0
		}
		v = v*10 + dig
		d.i++
	}
	switch {
	case d.i == start:
		d.fail(start, "want %s as a decimal integer", name)
	case d.b[start] == '0' && d.i-start > 1:
		d.fail(start, "%s has a leading zero", name)
	}
	return v
}

// hexInto consumes exactly 2*len(dst) lower-case hex digits.
func (d *decoder) hexInto(dst []byte) {
	if d.err != nil {
		return
	}
	n := 2 * len(dst)
	if len(d.b)-d.i < n {
		d.fail(d.i, "want %d lower-case hex digits", n)
		return
	}
	src := d.b[d.i : d.i+n]
	for j := range dst {
		hi, lo := hexTable[src[2*j]], hexTable[src[2*j+1]]
		if hi|lo == 0xff {
			d.fail(d.i+2*j, "want %d lower-case hex digits", n)
			return
		}
		dst[j] = hi<<4 | lo
	}
	d.i += n
}

// hexTable maps lower-case hex digits to their value and every other byte
// to 0xff.
var hexTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// plain marks the bytes a canonical string holds as themselves and that
// need no further check: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func hexVal(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// quote quotes a string for an error message, truncated.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
