package proto

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// The fast path of Unmarshal for the frames of nearly every request: the
// envelope, a SignRequest, a SignResponse carrying a signature, and the
// audit poll (AuditRequest, AuditResponse). decodeCanonical
// decodes through reflection and then re-encodes what it decoded to check
// that the input was canonical; for these two layouts the canonical
// encoding is one fixed sequence of items, which the fast path reads
// directly, accepting only that sequence (shortest-form heads, keys in
// order, every field present, fixed-size byte strings of their exact
// size, nothing after the map). Anything else, valid or not, goes to
// decodeCanonical, which decides and words the error as before: the fast
// path only ever accepts input that decodeCanonical accepts, into the
// same value (FuzzFastPathAgrees holds it to that).

// cursor reads CBOR items off b; the first mismatch clears ok, after which
// every read returns zero values.
type cursor struct {
	b  []byte
	ok bool
}

// head reads an item head of major type major in its shortest form and
// returns its argument.
func (c *cursor) head(major byte) uint64 {
	if !c.ok || len(c.b) == 0 || c.b[0]>>5 != major {
		c.ok = false
		return 0
	}
	ai := c.b[0] & 0x1f
	var n int
	var min uint64
	switch {
	case ai < 24:
		c.b = c.b[1:]
		return uint64(ai)
	case ai == 24:
		n, min = 1, 24
	case ai == 25:
		n, min = 2, 1<<8
	case ai == 26:
		n, min = 4, 1<<16
	case ai == 27:
		n, min = 8, 1<<32
	default: // reserved, or indefinite length
		c.ok = false
		return 0
	}
	if len(c.b) < 1+n {
		c.ok = false
		return 0
	}
	var v uint64
	for _, x := range c.b[1 : 1+n] {
		v = v<<8 | uint64(x)
	}
	if v < min {
		c.ok = false
		return 0
	}
	c.b = c.b[1+n:]
	return v
}

// key reads the small unsigned integer k, a map key.
func (c *cursor) key(k uint64) {
	if c.head(0) != k {
		c.ok = false
	}
}

// bytes reads a byte string and returns it, sharing memory with the input.
func (c *cursor) bytes() []byte {
	n := c.head(2)
	if !c.ok || n > uint64(len(c.b)) {
		c.ok = false
		return nil
	}
	s := c.b[:n:n]
	c.b = c.b[n:]
	return s
}

// text reads a text string of valid UTF-8 and returns its bytes, sharing
// memory with the input.
func (c *cursor) text() []byte {
	n := c.head(3)
	if !c.ok || n > uint64(len(c.b)) || !utf8.Valid(c.b[:n]) {
		c.ok = false
		return nil
	}
	s := c.b[:n:n]
	c.b = c.b[n:]
	return s
}

// fixed reads a byte string of exactly len(dst) bytes into dst.
func (c *cursor) fixed(dst []byte) {
	s := c.bytes()
	if len(s) != len(dst) {
		c.ok = false
		return
	}
	copy(dst, s)
}

// end reports whether every read matched and the input is all read.
func (c *cursor) end() bool { return c.ok && len(c.b) == 0 }

// decodeEnvelopeFast decodes the canonical encoding of an envelope into
// env and reports whether it could. env.Body shares memory with data.
func decodeEnvelopeFast(data []byte, env *envelope) bool {
	c := cursor{b: data, ok: true}
	if c.head(5) != 4 {
		return false
	}
	var e envelope
	c.key(1)
	e.Version = c.head(0)
	c.key(2)
	e.Type = c.head(0)
	c.key(3)
	e.ID = c.head(0)
	c.key(4)
	e.Body = c.bytes()
	if !c.end() {
		return false
	}
	*env = e
	return true
}

// decodeFast decodes data into m, for the messages that have a fast path,
// and reports whether it did; m is unchanged when it did not.
func decodeFast(data []byte, m Message) bool {
	switch v := m.(type) {
	case *SignResponse:
		return decodeSignResponseFast(data, v)
	case *SignRequest:
		return decodeSignRequestFast(data, v)
	case *AuditRequest:
		return decodeAuditRequestFast(data, v)
	case *AuditResponse:
		return decodeAuditResponseFast(data, v)
	}
	return false
}

// decodeAuditRequestFast decodes an AuditRequest (the host's every poll):
// keys 1 and 2, then any of the optional keys 3 to 7 in ascending order,
// each with a value that is not its zero (a zero is omitted). The slices
// it sets are copies.
func decodeAuditRequestFast(data []byte, ar *AuditRequest) bool {
	c := cursor{b: data, ok: true}
	n := c.head(5)
	if !c.ok || n < 2 || n > 7 {
		return false
	}
	var r AuditRequest
	c.key(1)
	r.Ack = c.head(0)
	c.key(2)
	r.From = c.head(0)
	last := uint64(2)
	for range n - 2 {
		k := c.head(0)
		if !c.ok || k <= last {
			return false
		}
		last = k
		switch k {
		case 3:
			if len(c.b) == 0 || c.b[0] != 0xf5 { // true; false is omitted
				return false
			}
			c.b = c.b[1:]
			r.Rotate = true
		case 4:
			v := c.bytes()
			if len(v) == 0 {
				return false
			}
			r.AckHash = bytes.Clone(v)
		case 5:
			v := c.head(0)
			if v == 0 || v > math.MaxUint32 {
				return false
			}
			r.WaitMS = uint32(v)
		case 6:
			v := c.text()
			if len(v) == 0 {
				return false
			}
			r.Failing = string(v)
		case 7:
			v := c.bytes()
			if len(v) == 0 {
				return false
			}
			r.Run = bytes.Clone(v)
		default:
			return false
		}
	}
	if !c.end() {
		return false
	}
	*ar = r
	return true
}

// decodeAuditResponseFast decodes an AuditResponse (the answer to every
// poll): keys 1 to 4, then any of the optional keys 5 to 7 in ascending
// order, each not its zero. Its key and records are copied into one new
// buffer (each record's capacity ends where it does); the other slices
// are copies of their own.
func decodeAuditResponseFast(data []byte, ar *AuditResponse) bool {
	c := cursor{b: data, ok: true}
	n := c.head(5)
	if !c.ok || n < 4 || n > 7 {
		return false
	}
	var r AuditResponse
	c.key(1)
	key := c.bytes()
	c.key(2)
	r.HeadSeq = c.head(0)
	c.key(3)
	c.fixed(r.HeadHash[:])
	c.key(4)
	count := c.head(4)
	if !c.ok || count > maxArrayElements {
		return false
	}
	records := c.b
	total := len(key)
	for range count {
		total += len(c.bytes())
	}
	if !c.ok {
		return false
	}
	last := uint64(4)
	for range n - 4 {
		k := c.head(0)
		if !c.ok || k <= last {
			return false
		}
		last = k
		switch k {
		case 5, 6:
			v := c.bytes()
			if len(v) == 0 {
				return false
			}
			if k == 5 {
				r.RotateRecord = bytes.Clone(v)
			} else {
				r.Run = bytes.Clone(v)
			}
		case 7:
			if r.Acked = c.head(0); r.Acked == 0 {
				return false
			}
		default:
			return false
		}
	}
	if !c.end() {
		return false
	}
	// As the reflective decoder does: empty byte strings and arrays
	// decode to empty, non-nil slices.
	buf := make([]byte, 0, total)
	buf = append(buf, key...)
	r.Key = buf[:len(key):len(key)]
	r.Records = make([][]byte, count)
	rc := cursor{b: records, ok: true}
	for i := range r.Records {
		start := len(buf)
		buf = append(buf, rc.bytes()...)
		r.Records[i] = buf[start:len(buf):len(buf)]
	}
	*ar = r
	return true
}

// decodeSignRequestFast decodes a SignRequest (the enclave's every
// request): its body is copied, its stamp must be valid UTF-8.
func decodeSignRequestFast(data []byte, sr *SignRequest) bool {
	c := cursor{b: data, ok: true}
	if c.head(5) != 2 {
		return false
	}
	c.key(1)
	body := c.bytes()
	c.key(2)
	n := c.head(3)
	if !c.ok || n > uint64(len(c.b)) {
		return false
	}
	stamp := c.b[:n]
	c.b = c.b[n:]
	if !c.end() || !utf8.Valid(stamp) {
		return false
	}
	*sr = SignRequest{Body: append([]byte{}, body...), Stamp: string(stamp)}
	return true
}

// decodeSignResponseFast decodes a signature's SignResponse: keys 1 to 7
// and no other (every later field empty, so omitted), AuditRecord not
// empty (an empty one is omitted). The slices it sets are copies.
func decodeSignResponseFast(data []byte, sr *SignResponse) bool {
	c := cursor{b: data, ok: true}
	if c.head(5) != 7 {
		return false
	}
	var r SignResponse
	c.key(1)
	c.fixed(r.From[:])
	c.key(2)
	c.fixed(r.Signature[:])
	c.key(3)
	tx := c.bytes()
	c.key(4)
	c.fixed(r.TransactionHash[:])
	c.key(5)
	r.AuditSeq = c.head(0)
	c.key(6)
	c.fixed(r.Digest[:])
	c.key(7)
	rec := c.bytes()
	if !c.end() || len(rec) == 0 {
		return false
	}
	// As the reflective decoder does: an empty byte string decodes to an
	// empty, non-nil slice.
	r.SignedTransaction = append([]byte{}, tx...)
	r.AuditRecord = bytes.Clone(rec)
	*sr = r
	return true
}

// appendHead appends the shortest-form head of an item of major type major
// with argument v, as the deterministic encoding has it.
func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return append(b, m|25, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, m|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, m|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// headLen is the length of the head appendHead appends for v.
func headLen(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

// marshalFast returns the frame payload carrying m as id, for the messages
// that have a fast path, and nil for the others: a SignRequest (the host's
// every request), a signature's SignResponse (the enclave's every answer),
// and the audit poll's AuditRequest and AuditResponse. m is valid; the
// bytes are those of the reflective encoder (FuzzMarshalFastAgrees and
// FuzzMarshalAuditFastAgrees hold it to that), built in one buffer.
func marshalFast(id uint64, m Message) []byte {
	switch v := m.(type) {
	case *SignRequest:
		return marshalSignRequest(id, v)
	case SignRequest:
		return marshalSignRequest(id, &v)
	case *SignResponse:
		return marshalSignResponse(id, v)
	case SignResponse:
		return marshalSignResponse(id, &v)
	case *AuditRequest:
		return marshalAuditRequest(id, v)
	case AuditRequest:
		return marshalAuditRequest(id, &v)
	case *AuditResponse:
		return marshalAuditResponse(id, v)
	case AuditResponse:
		return marshalAuditResponse(id, &v)
	}
	return nil
}

// envelopeLen is the length of the payload carrying a body of bodyLen
// bytes as id.
func envelopeLen(t Type, id uint64, bodyLen int) int {
	return 1 + 1 + headLen(Version) + 1 + headLen(uint64(t)) + 1 + headLen(id) + 1 + headLen(uint64(bodyLen)) + bodyLen
}

// newEnvelope returns a buffer for the payload carrying a body of bodyLen
// bytes as id, holding the envelope up to the body's first byte; the
// caller appends the body's bytes.
func newEnvelope(t Type, id uint64, bodyLen int) []byte {
	b := make([]byte, 0, envelopeLen(t, id, bodyLen))
	b = appendHead(b, 5, 4)
	b = appendHead(appendHead(b, 0, 1), 0, Version)
	b = appendHead(appendHead(b, 0, 2), 0, uint64(t))
	b = appendHead(appendHead(b, 0, 3), 0, id)
	return appendHead(appendHead(b, 0, 4), 2, uint64(bodyLen))
}

// strLen is the length of a byte or text string of n bytes, head included.
func strLen(n int) int { return headLen(uint64(n)) + n }

// appendString appends s as a byte string (major 2) or a text string
// (major 3).
func appendString[S []byte | string](b []byte, major byte, s S) []byte {
	return append(appendHead(b, major, uint64(len(s))), s...)
}

func marshalSignRequest(id uint64, sr *SignRequest) []byte {
	bodyLen := 1 + 1 + strLen(len(sr.Body)) + 1 + strLen(len(sr.Stamp))
	b := newEnvelope(TypeSignRequest, id, bodyLen)
	b = appendHead(b, 5, 2)
	b = appendString(appendHead(b, 0, 1), 2, sr.Body)
	return appendString(appendHead(b, 0, 2), 3, sr.Stamp)
}

// marshalSignResponse encodes a signature's SignResponse: keys 1 to 7
// (AuditRecord omitted when empty) and Status (key 8) when set, every
// field of a pending request empty. Any other SignResponse gets nil.
func marshalSignResponse(id uint64, r *SignResponse) []byte {
	if r.ApprovalID != "" || r.Quorum != 0 || len(r.Approvers) != 0 || r.ExpiresMS != 0 ||
		r.AlreadyCounted || len(r.ApprovalDigest) != 0 || len(r.SummaryLines) != 0 {
		return nil
	}
	pairs := uint64(6)
	bodyLen := 1 + 1 + strLen(len(r.From)) + 1 + strLen(len(r.Signature)) + 1 + strLen(len(r.SignedTransaction)) +
		1 + strLen(len(r.TransactionHash)) + 1 + headLen(r.AuditSeq) + 1 + strLen(len(r.Digest))
	if len(r.AuditRecord) != 0 {
		pairs++
		bodyLen += 1 + strLen(len(r.AuditRecord))
	}
	if r.Status != "" {
		pairs++
		bodyLen += 1 + strLen(len(r.Status))
	}
	b := newEnvelope(TypeSignResponse, id, bodyLen)
	b = appendHead(b, 5, pairs)
	b = appendString(appendHead(b, 0, 1), 2, r.From[:])
	b = appendString(appendHead(b, 0, 2), 2, r.Signature[:])
	b = appendString(appendHead(b, 0, 3), 2, r.SignedTransaction)
	b = appendString(appendHead(b, 0, 4), 2, r.TransactionHash[:])
	b = appendHead(appendHead(b, 0, 5), 0, r.AuditSeq)
	b = appendString(appendHead(b, 0, 6), 2, r.Digest[:])
	if len(r.AuditRecord) != 0 {
		b = appendString(appendHead(b, 0, 7), 2, r.AuditRecord)
	}
	if r.Status != "" {
		b = appendString(appendHead(b, 0, 8), 3, r.Status)
	}
	return b
}

// marshalAuditRequest encodes an AuditRequest (the host's audit poll).
func marshalAuditRequest(id uint64, r *AuditRequest) []byte {
	pairs := uint64(2)
	bodyLen := 1 + 1 + headLen(r.Ack) + 1 + headLen(r.From)
	if r.Rotate {
		pairs++
		bodyLen += 1 + 1
	}
	if len(r.AckHash) != 0 {
		pairs++
		bodyLen += 1 + strLen(len(r.AckHash))
	}
	if r.WaitMS != 0 {
		pairs++
		bodyLen += 1 + headLen(uint64(r.WaitMS))
	}
	if r.Failing != "" {
		pairs++
		bodyLen += 1 + strLen(len(r.Failing))
	}
	if len(r.Run) != 0 {
		pairs++
		bodyLen += 1 + strLen(len(r.Run))
	}
	b := newEnvelope(TypeAuditRequest, id, bodyLen)
	b = appendHead(b, 5, pairs)
	b = appendHead(appendHead(b, 0, 1), 0, r.Ack)
	b = appendHead(appendHead(b, 0, 2), 0, r.From)
	if r.Rotate {
		b = append(appendHead(b, 0, 3), 0xf5) // true
	}
	if len(r.AckHash) != 0 {
		b = appendString(appendHead(b, 0, 4), 2, r.AckHash)
	}
	if r.WaitMS != 0 {
		b = appendHead(appendHead(b, 0, 5), 0, uint64(r.WaitMS))
	}
	if r.Failing != "" {
		b = appendString(appendHead(b, 0, 6), 3, r.Failing)
	}
	if len(r.Run) != 0 {
		b = appendString(appendHead(b, 0, 7), 2, r.Run)
	}
	return b
}

// marshalAuditResponse encodes an AuditResponse (the answer to every poll,
// with its records).
func marshalAuditResponse(id uint64, r *AuditResponse) []byte {
	pairs := uint64(4)
	bodyLen := 1 + 1 + strLen(len(r.Key)) + 1 + headLen(r.HeadSeq) + 1 + strLen(len(r.HeadHash)) + 1 + headLen(uint64(len(r.Records)))
	for _, rec := range r.Records {
		bodyLen += strLen(len(rec))
	}
	if len(r.RotateRecord) != 0 {
		pairs++
		bodyLen += 1 + strLen(len(r.RotateRecord))
	}
	if len(r.Run) != 0 {
		pairs++
		bodyLen += 1 + strLen(len(r.Run))
	}
	if r.Acked != 0 {
		pairs++
		bodyLen += 1 + headLen(r.Acked)
	}
	b := newEnvelope(TypeAuditResponse, id, bodyLen)
	b = appendHead(b, 5, pairs)
	b = appendString(appendHead(b, 0, 1), 2, r.Key)
	b = appendHead(appendHead(b, 0, 2), 0, r.HeadSeq)
	b = appendString(appendHead(b, 0, 3), 2, r.HeadHash[:])
	b = appendHead(appendHead(b, 0, 4), 4, uint64(len(r.Records)))
	for _, rec := range r.Records {
		b = appendString(b, 2, rec)
	}
	if len(r.RotateRecord) != 0 {
		b = appendString(appendHead(b, 0, 5), 2, r.RotateRecord)
	}
	if len(r.Run) != 0 {
		b = appendString(appendHead(b, 0, 6), 2, r.Run)
	}
	if r.Acked != 0 {
		b = appendHead(appendHead(b, 0, 7), 0, r.Acked)
	}
	return b
}
