package nsm

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
	// RemoteVersion is the version of the remote protocol.
	RemoteVersion = 1
	// MaxRandomChunk is the most random bytes one remote request asks for;
	// a remote device's Read sends as many requests as it needs.
	MaxRandomChunk = 4096
	// MaxDocumentSize is the largest attestation document, in bytes, a
	// device returns. (The real NSM answers within a 12 KiB buffer; AWS's
	// documents with three 1 KiB fields are about 7.5 KiB.)
	MaxDocumentSize = 16 << 10

	maxErrorSize     = 512
	maxRequestFrame  = 4 << 10
	maxResponseFrame = MaxDocumentSize + 1<<10
)

// Operations of the remote protocol.
const (
	opNone   uint64 = 0 // only in an error answering an undecodable request
	opAttest uint64 = 1
	opRandom uint64 = 2
)

// wireRequest is a request of the remote protocol. Every field is always
// encoded.
type wireRequest struct {
	Version   uint64 `cbor:"1,keyasint"`
	Op        uint64 `cbor:"2,keyasint"`
	Nonce     []byte `cbor:"3,keyasint"`
	UserData  []byte `cbor:"4,keyasint"`
	PublicKey []byte `cbor:"5,keyasint"`
	Length    uint64 `cbor:"6,keyasint"`
}

// wireResponse is a response of the remote protocol. Every field is always
// encoded.
type wireResponse struct {
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
		panic("nsm: cbor encoding options: " + err.Error())
	}
	strict := strictcbor.DecOptions(strictcbor.Limits{
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
	})
	dm, err := strict.DecMode()
	if err != nil {
		panic("nsm: cbor decoding options: " + err.Error())
	}
	lax := strict
	lax.ExtraReturnErrors = cbor.ExtraDecErrorNone
	ldm, err := lax.DecMode()
	if err != nil {
		panic("nsm: cbor decoding options: " + err.Error())
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

func (r *wireRequest) validate() error {
	if r.Version != RemoteVersion {
		return fmt.Errorf("unsupported version %d (this side speaks %d)", r.Version, RemoteVersion)
	}
	switch r.Op {
	case opAttest:
		if r.Length != 0 {
			return errors.New("attest request with a length")
		}
		return AttestRequest{Nonce: r.Nonce, UserData: r.UserData, PublicKey: r.PublicKey}.Validate()
	case opRandom:
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

func (r *wireResponse) validate() error {
	if r.Version != RemoteVersion {
		return fmt.Errorf("unsupported version %d (this side speaks %d)", r.Version, RemoteVersion)
	}
	if r.Op > opRandom {
		return fmt.Errorf("unknown op %d", r.Op)
	}
	if r.Error != "" {
		if len(r.Error) > maxErrorSize || !utf8.ValidString(r.Error) {
			return errors.New("error message too long or not UTF-8")
		}
		if len(r.Document) != 0 || len(r.Random) != 0 {
			return errors.New("error response with a result")
		}
		return nil
	}
	switch r.Op {
	case opAttest:
		if len(r.Document) == 0 || len(r.Document) > MaxDocumentSize {
			return fmt.Errorf("attest response with a document of %d bytes, want 1..%d", len(r.Document), MaxDocumentSize)
		}
		if len(r.Random) != 0 {
			return errors.New("attest response with random bytes")
		}
	case opRandom:
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

func marshalRequest(r *wireRequest) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	return encMode.Marshal(r)
}

func marshalResponse(r *wireResponse) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("invalid response: %w", err)
	}
	return encMode.Marshal(r)
}

// unmarshalRequest decodes and checks a request payload. A request of
// another version is refused with a message that says so, even when the
// rest of it is not understood.
func unmarshalRequest(p []byte) (*wireRequest, error) {
	var r wireRequest
	if err := decodeCanonical(p, &r); err != nil {
		var v versionOnly
		if laxDecMode.Unmarshal(p, &v) == nil && v.Version != RemoteVersion {
			return nil, fmt.Errorf("unsupported version %d (this side speaks %d)", v.Version, RemoteVersion)
		}
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	return &r, nil
}

func unmarshalResponse(p []byte) (*wireResponse, error) {
	var r wireResponse
	if err := decodeCanonical(p, &r); err != nil {
		return nil, fmt.Errorf("malformed response: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("invalid response: %w", err)
	}
	return &r, nil
}

// errorResponse answers op with err's message, cut to the protocol's limit.
func errorResponse(op uint64, err error) *wireResponse {
	msg := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if msg == "" {
		msg = "unknown error"
	}
	if len(msg) > maxErrorSize {
		cut := maxErrorSize
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	return &wireResponse{Version: RemoteVersion, Op: op, Error: msg}
}

// The functions below return errors without a package prefix: the client
// and the server add theirs, and the server sends the message to its peer.

// readFrame reads one frame of at most limit bytes. It refuses a larger
// declared length before reading any of the payload, and reads nothing
// beyond the frame, so no byte of a later frame is consumed. At a clean end
// of stream it returns io.EOF itself.
func readFrame(r io.Reader, limit int) ([]byte, error) {
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
