package proto

import (
	"bytes"
	"unicode/utf8"
)

// The fast path of Unmarshal for the frames of nearly every request: the
// envelope, and a SignResponse carrying a signature. decodeCanonical
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
	}
	return false
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
// that have a fast path (a SignRequest, the host's every request), and nil
// for the others. m is valid; the bytes are those of the reflective
// encoder (FuzzMarshalFastAgrees holds it to that), built in one buffer.
func marshalFast(id uint64, m Message) []byte {
	var sr *SignRequest
	switch v := m.(type) {
	case *SignRequest:
		sr = v
	case SignRequest:
		sr = &v
	default:
		return nil
	}
	bodyLen := 1 + 1 + headLen(uint64(len(sr.Body))) + len(sr.Body) + 1 + headLen(uint64(len(sr.Stamp))) + len(sr.Stamp)
	n := 1 + 1 + headLen(Version) + 1 + headLen(uint64(TypeSignRequest)) + 1 + headLen(id) + 1 + headLen(uint64(bodyLen)) + bodyLen
	b := make([]byte, 0, n)
	b = appendHead(b, 5, 4)
	b = appendHead(appendHead(b, 0, 1), 0, Version)
	b = appendHead(appendHead(b, 0, 2), 0, uint64(TypeSignRequest))
	b = appendHead(appendHead(b, 0, 3), 0, id)
	b = appendHead(appendHead(b, 0, 4), 2, uint64(bodyLen))
	b = appendHead(b, 5, 2)
	b = append(appendHead(appendHead(b, 0, 1), 2, uint64(len(sr.Body))), sr.Body...)
	b = append(appendHead(appendHead(b, 0, 2), 3, uint64(len(sr.Stamp))), sr.Stamp...)
	return b
}
