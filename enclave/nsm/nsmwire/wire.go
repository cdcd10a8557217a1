// Package nsmwire is the wire format of the remote NSM protocol: the
// messages that an enclave's remote device (package nsm, [nsm.NewRemote])
// and the simulated NSM (package internal/sim/nsmsim) exchange over a
// connection of the vsock simulator.
//
// It holds the format only: the messages, their strict validation, the
// frame limits, and the canonical encoding and decoding of both requests
// and responses, so that the client and the server agree by construction.
// The server itself lives with the simulator, and the enclave binary never
// links it. The protocol is described in package nsm's documentation.
//
// Errors returned here carry no package prefix: the client and the server
// add theirs, and the server sends the message to its peer.
package nsmwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/nitrosign/nitrosign/internal/strictcbor"
	"github.com/nitrosign/nitrosign/proto"
)

// Sizes of the remote protocol.
const (
	// Version is the version of the remote protocol.
	Version = 1
	// MaxFieldSize is the largest nonce, user data or public key, in
	// bytes, that an attest request carries (a limit of the NSM itself).
	MaxFieldSize = 1024
	// MaxRandomChunk is the most random bytes one remote request asks for;
	// a remote device's Read sends as many requests as it needs.
	MaxRandomChunk = 4096
	// MaxDocumentSize is the largest attestation document, in bytes, a
	// device returns. (The real NSM answers within a 12 KiB buffer; AWS's
	// documents with three 1 KiB fields are about 7.5 KiB.)
	MaxDocumentSize = 16 << 10
	// MaxErrorSize is the longest error text of a response, in bytes.
	MaxErrorSize = 512
	// MaxRequestFrame is the largest request frame payload, in bytes.
	MaxRequestFrame = 4 << 10
	// MaxResponseFrame is the largest response frame payload, in bytes.
	MaxResponseFrame = MaxDocumentSize + 1<<10
)

// Operations of the remote protocol.
const (
	// OpNone is the op only of an error answering an undecodable request.
	OpNone uint64 = 0
	// OpAttest asks for an attestation document.
	OpAttest uint64 = 1
	// OpRandom asks for random bytes.
	OpRandom uint64 = 2
)

// Request is a request of the remote protocol. Every field is always
// encoded.
type Request struct {
	Version   uint64 `cbor:"1,keyasint"`
	Op        uint64 `cbor:"2,keyasint"`
	Nonce     []byte `cbor:"3,keyasint"`
	UserData  []byte `cbor:"4,keyasint"`
	PublicKey []byte `cbor:"5,keyasint"`
	Length    uint64 `cbor:"6,keyasint"`
}

// Response is a response of the remote protocol. Every field is always
// encoded.
type Response struct {
	Version  uint64 `cbor:"1,keyasint"`
	Op       uint64 `cbor:"2,keyasint"`
	Document []byte `cbor:"3,keyasint"`
	Random   []byte `cbor:"4,keyasint"`
	Error    string `cbor:"5,keyasint"`
}

// versionOnly reads the version of a message of any version.
type versionOnly struct {
	Version uint64 `cbor:"1,keyasint"`
}

// Decoder caps: the library's smallest. Messages are one map of at most 6
// pairs holding no array or map.
const (
	maxNestedLevels  = 4
	maxArrayElements = 16
	maxMapPairs      = 16
)

var (
	encMode     cbor.EncMode
	decMode     cbor.DecMode
	laxDecMode  cbor.DecMode
	errNotCanon = errors.New("not in canonical encoding")
)

func init() {
	// nil and empty byte strings have one encoding: the empty byte string.
	em, err := strictcbor.EncOptions(cbor.NilContainerAsEmpty).EncMode()
	if err != nil {
		panic("nsmwire: cbor encoding options: " + err.Error())
	}
	strict := strictcbor.DecOptions(strictcbor.Limits{
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
	})
	dm, err := strict.DecMode()
	if err != nil {
		panic("nsmwire: cbor decoding options: " + err.Error())
	}
	lax := strict
	lax.ExtraReturnErrors = cbor.ExtraDecErrorNone
	ldm, err := lax.DecMode()
	if err != nil {
		panic("nsmwire: cbor decoding options: " + err.Error())
	}
	encMode, decMode, laxDecMode = em, dm, ldm
}

// decodeCanonical decodes data into v strictly, then requires that
// re-encoding v gives data back: this refuses unsorted keys, non-shortest
// integers and lengths, missing fields and null in place of a value.
func decodeCanonical(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return errNotCanon
	}
	return nil
}

// CheckFields reports whether each attestation field is at most
// MaxFieldSize bytes, naming the first one that is not.
func CheckFields(nonce, userData, publicKey []byte) error {
	for _, f := range []struct {
		name string
		b    []byte
	}{{"nonce", nonce}, {"user_data", userData}, {"public_key", publicKey}} {
		if len(f.b) > MaxFieldSize {
			return fmt.Errorf("%s is %d bytes, limit %d", f.name, len(f.b), MaxFieldSize)
		}
	}
	return nil
}

// Validate reports whether r is a request the protocol allows: version 1,
// a known op, and exactly the fields of that op, each within its limit.
func (r *Request) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("unsupported version %d (this side speaks %d)", r.Version, Version)
	}
	switch r.Op {
	case OpAttest:
		if r.Length != 0 {
			return errors.New("attest request with a length")
		}
		return CheckFields(r.Nonce, r.UserData, r.PublicKey)
	case OpRandom:
		if len(r.Nonce) != 0 || len(r.UserData) != 0 || len(r.PublicKey) != 0 {
			return errors.New("random request with attestation fields")
		}
		if r.Length < 1 || r.Length > MaxRandomChunk {
			return fmt.Errorf("random request for %d bytes, want 1..%d", r.Length, MaxRandomChunk)
		}
		return nil
	default:
		return fmt.Errorf("unknown op %d", r.Op)
	}
}

// Validate reports whether r is a response the protocol allows: version 1,
// and either an error text (at most MaxErrorSize bytes of UTF-8) with no
// result, or exactly the result of its op, within its limit. It cannot
// know the request r answers; the client checks that r matches it.
func (r *Response) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("unsupported version %d (this side speaks %d)", r.Version, Version)
	}
	if r.Op > OpRandom {
		return fmt.Errorf("unknown op %d", r.Op)
	}
	if r.Error != "" {
		if len(r.Error) > MaxErrorSize || !utf8.ValidString(r.Error) {
			return errors.New("error message too long or not UTF-8")
		}
		if len(r.Document) != 0 || len(r.Random) != 0 {
			return errors.New("error response with a result")
		}
		return nil
	}
	switch r.Op {
	case OpAttest:
		if len(r.Document) == 0 || len(r.Document) > MaxDocumentSize {
			return fmt.Errorf("attest response with a document of %d bytes, want 1..%d", len(r.Document), MaxDocumentSize)
		}
		if len(r.Random) != 0 {
			return errors.New("attest response with random bytes")
		}
	case OpRandom:
		if len(r.Random) == 0 || len(r.Random) > MaxRandomChunk {
			return fmt.Errorf("random response with %d bytes, want 1..%d", len(r.Random), MaxRandomChunk)
		}
		if len(r.Document) != 0 {
			return errors.New("random response with a document")
		}
	default:
		return errors.New("response without op or error")
	}
	return nil
}

// MarshalRequest checks r and encodes it canonically.
func MarshalRequest(r *Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	return encMode.Marshal(r)
}

// MarshalResponse checks r and encodes it canonically.
func MarshalResponse(r *Response) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("invalid response: %w", err)
	}
	return encMode.Marshal(r)
}

// UnmarshalRequest decodes and checks a request payload. A request of
// another version is refused with a message that says so, even when the
// rest of it is not understood.
func UnmarshalRequest(p []byte) (*Request, error) {
	var r Request
	if err := decodeCanonical(p, &r); err != nil {
		var v versionOnly
		if laxDecMode.Unmarshal(p, &v) == nil && v.Version != Version {
			return nil, fmt.Errorf("unsupported version %d (this side speaks %d)", v.Version, Version)
		}
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	return &r, nil
}

// UnmarshalResponse decodes and checks a response payload: it refuses
// anything but the canonical encoding of a valid response.
func UnmarshalResponse(p []byte) (*Response, error) {
	var r Response
	if err := decodeCanonical(p, &r); err != nil {
		return nil, fmt.Errorf("malformed response: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("invalid response: %w", err)
	}
	return &r, nil
}

// ErrorResponse answers op with err's message, cut to the protocol's limit.
func ErrorResponse(op uint64, err error) *Response {
	msg := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if msg == "" {
		msg = "unknown error"
	}
	if len(msg) > MaxErrorSize {
		cut := MaxErrorSize
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return &Response{Version: Version, Op: op, Error: msg}
}

// ReadFrame reads one frame of at most limit bytes. It refuses a larger
// declared length before reading any of the payload, and reads nothing
// beyond the frame, so no byte of a later frame is consumed. At a clean end
// of stream it returns io.EOF itself.
func ReadFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read frame header: %w", err)
	}
	if n := binary.BigEndian.Uint32(hdr[:]); n > uint32(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", proto.ErrFrameTooLarge, n, limit)
	}
	return proto.ReadFrame(io.MultiReader(bytes.NewReader(hdr[:]), r))
}
