package proto

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitrosign/nitrosign/internal/strictcbor"
)

var (
	// ErrUnknownType is returned (wrapped) by Marshal and Unmarshal for a
	// message type this package does not know. From Unmarshal, it usually
	// means the peer runs a newer build.
	ErrUnknownType = errors.New("proto: unknown message type")

	// ErrUnsupportedVersion is returned (wrapped) by Unmarshal for an
	// envelope whose version is not Version.
	ErrUnsupportedVersion = errors.New("proto: unsupported protocol version")

	// errNonCanonical is returned (wrapped) by Unmarshal for input that
	// decodes but is not the deterministic encoding of what it decodes to.
	errNonCanonical = errors.New("not in canonical encoding")
)

// Decoder caps. The messages need a nesting depth of 3 (envelope body:
// KeysResponse map, Keys array, Key map), at most MaxKeys array elements and
// at most 5 map pairs; the caps leave room for the messages to come without
// letting a peer make the decoder walk deep or wide structures. Byte and text
// strings are bounded by the frame size, and the decoder never allocates
// more than the input for them.
const (
	maxNestedLevels  = 8
	maxArrayElements = MaxKeys
	maxMapPairs      = 32
)

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	// Encode nil slices as empty byte strings and arrays, not null, so
	// that nil and empty have the same (single) encoding.
	em, err := strictcbor.EncOptions(cbor.NilContainerAsEmpty).UserBufferEncMode()
	if err != nil {
		panic("proto: cbor encoding options: " + err.Error())
	}
	encMode = em
	decMode = strictcbor.DecMode(strictcbor.Limits{
		MaxNestedLevels:  maxNestedLevels,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
	})
}

// envelope is the payload of every frame. Its fields are always present.
type envelope struct {
	Version uint64 `cbor:"1,keyasint"`
	Type    uint64 `cbor:"2,keyasint"`
	ID      uint64 `cbor:"3,keyasint"`
	Body    []byte `cbor:"4,keyasint"`
}

// kind describes one message type.
type kind struct {
	name     string
	goType   reflect.Type // the struct type, not a pointer
	new      func() Message
	response Type // for a request, the type of its successful response; 0 otherwise
}

// kinds is indexed by Type. To add a message: declare its struct with
// keyasint tags, a Type constant, Type and validate methods, a row here,
// a line in the package documentation, and a seed in the fuzz corpus.
var kinds = [...]kind{
	TypeError:                newKind[Error]("error", 0),
	TypeHealthRequest:        newKind[HealthRequest]("health_request", TypeHealthResponse),
	TypeHealthResponse:       newKind[HealthResponse]("health_response", 0),
	TypeKeysRequest:          newKind[KeysRequest]("keys_request", TypeKeysResponse),
	TypeKeysResponse:         newKind[KeysResponse]("keys_response", 0),
	TypeSignRequest:          newKind[SignRequest]("sign_request", TypeSignResponse),
	TypeSignResponse:         newKind[SignResponse]("sign_response", 0),
	TypeAttestRequest:        newKind[AttestRequest]("attest_request", TypeAttestResponse),
	TypeAttestResponse:       newKind[AttestResponse]("attest_response", 0),
	TypeAuditRequest:         newKind[AuditRequest]("audit_request", TypeAuditResponse),
	TypeAuditResponse:        newKind[AuditResponse]("audit_response", 0),
	TypeCredentialsRequest:   newKind[CredentialsRequest]("credentials_request", TypeCredentialsResponse),
	TypeCredentialsResponse:  newKind[CredentialsResponse]("credentials_response", 0),
	TypeUnsealRequest:        newKind[UnsealRequest]("unseal_request", TypeUnsealResponse),
	TypeUnsealResponse:       newKind[UnsealResponse]("unseal_response", 0),
	TypeCheckpointRequest:    newKind[CheckpointRequest]("checkpoint_request", TypeCheckpointResponse),
	TypeCheckpointResponse:   newKind[CheckpointResponse]("checkpoint_response", 0),
	TypeAdminRequest:         newKind[AdminRequest]("admin_request", TypeAdminResponse),
	TypeAdminResponse:        newKind[AdminResponse]("admin_response", 0),
	TypeApprovalRequest:      newKind[ApprovalRequest]("approval_request", TypeSignResponse),
	TypeApprovalInfoRequest:  newKind[ApprovalInfoRequest]("approval_info_request", TypeApprovalInfoResponse),
	TypeApprovalInfoResponse: newKind[ApprovalInfoResponse]("approval_info_response", 0),
	TypePolicyRequest:        newKind[PolicyRequest]("policy_request", TypePolicyResponse),
	TypePolicyResponse:       newKind[PolicyResponse]("policy_response", 0),
}

func newKind[T any, PT interface {
	*T
	Message
	validator
}](name string, response Type) kind {
	return kind{
		name:     name,
		goType:   reflect.TypeFor[T](),
		new:      func() Message { return PT(new(T)) },
		response: response,
	}
}

func lookup(t Type) *kind {
	if int(t) >= len(kinds) || kinds[t].new == nil {
		return nil
	}
	return &kinds[t]
}

// IsRequest reports whether t is the type of a request, that is, of a
// message a Handler is given.
func IsRequest(t Type) bool {
	k := lookup(t)
	return k != nil && k.response != 0
}

// ResponseType returns the type of the successful response to a request of
// type t, or 0 if t is not a request type. (Any request may also be
// answered with an Error.)
func ResponseType(t Type) Type {
	if k := lookup(t); k != nil {
		return k.response
	}
	return 0
}

// bufPool holds the buffers decodeCanonical re-encodes into. A buffer that
// grew beyond maxPooledBuffer is dropped rather than kept: one large message
// must not pin its memory for the life of the process.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

// Marshal returns the frame payload carrying m as request or response id.
// The encoding is deterministic: equal arguments give equal bytes. m must be
// one of this package's message types, or a non-nil pointer to one; it must
// be within the size caps, its strings valid UTF-8, and id must not be 0.
func Marshal(id uint64, m Message) ([]byte, error) {
	k, err := kindOf(m)
	if err != nil {
		return nil, err
	}
	if id == 0 {
		return nil, errors.New("proto: request id 0 is reserved")
	}
	if err := m.(validator).validate(); err != nil {
		return nil, fmt.Errorf("proto: invalid %s: %w", k.name, err)
	}
	p := marshalFast(id, m)
	if p == nil {
		if p, err = marshalReflect(k, id, m); err != nil {
			return nil, err
		}
	}
	if len(p) > MaxFrameSize {
		return nil, fmt.Errorf("proto: %s: %w", k.name, checkFrameSize(uint64(len(p))))
	}
	return p, nil
}

// marshalReflect is Marshal's encoding of a valid m, through the
// reflective encoder.
func marshalReflect(k *kind, id uint64, m Message) ([]byte, error) {
	body, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("proto: encode %s: %w", k.name, err)
	}
	p, err := encMode.Marshal(&envelope{Version: Version, Type: uint64(m.Type()), ID: id, Body: body})
	if err != nil {
		return nil, fmt.Errorf("proto: encode envelope: %w", err)
	}
	return p, nil
}

// kindOf returns the description of m's type, refusing nil, a nil pointer,
// and types that are not this package's (even if their Type method claims a
// known number).
func kindOf(m Message) (*kind, error) {
	if m == nil {
		return nil, errors.New("proto: nil message")
	}
	rt := reflect.TypeOf(m)
	if rt.Kind() == reflect.Pointer {
		if reflect.ValueOf(m).IsNil() {
			return nil, errors.New("proto: nil message")
		}
		rt = rt.Elem()
	}
	t := m.Type()
	k := lookup(t)
	if k == nil || k.goType != rt {
		return nil, fmt.Errorf("%w: %v (%v)", ErrUnknownType, t, rt)
	}
	return k, nil
}

// Unmarshal decodes a frame payload and returns the request id and the
// message, as a pointer to one of this package's message types.
//
// It accepts only the canonical encoding described in the package
// documentation, within every size cap. On error, id is the envelope's
// request id if the envelope itself was valid (so that a server can answer
// with an Error), and 0 otherwise. The message does not share memory with
// payload.
func Unmarshal(payload []byte) (id uint64, m Message, err error) {
	if err := checkFrameSize(uint64(len(payload))); err != nil {
		return 0, nil, err
	}
	var env envelope
	if !decodeEnvelopeFast(payload, &env) {
		if err := decodeCanonical(payload, &env); err != nil {
			return 0, nil, fmt.Errorf("proto: envelope: %w", err)
		}
	}
	if env.ID == 0 {
		return 0, nil, errors.New("proto: envelope: request id 0 is reserved")
	}
	if env.Version != Version {
		return env.ID, nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, env.Version)
	}
	if env.Type > 0xffff || lookup(Type(env.Type)) == nil {
		return env.ID, nil, fmt.Errorf("%w: %d", ErrUnknownType, env.Type)
	}
	k := lookup(Type(env.Type))
	m = k.new()
	if !decodeFast(env.Body, m) {
		if err := decodeCanonical(env.Body, m); err != nil {
			return env.ID, nil, fmt.Errorf("proto: %s: %w", k.name, err)
		}
	}
	if err := m.(validator).validate(); err != nil {
		return env.ID, nil, fmt.Errorf("proto: invalid %s: %w", k.name, err)
	}
	return env.ID, m, nil
}

// decodeCanonical decodes data into v (a pointer) strictly, then requires
// that re-encoding v gives data back. The re-encoding check is what refuses,
// among others: unsorted map keys, non-shortest integers and lengths,
// missing fields, null or undefined in place of a value, and fixed-size byte
// arrays of the wrong length (which fxamacker/cbor would otherwise
// zero-pad or truncate).
func decodeCanonical(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf.Bytes(), data) {
		return errNonCanonical
	}
	return nil
}
