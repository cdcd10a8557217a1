// Package request decodes a stamped sign request body, once, into a typed
// request: the strictly decoded body (package api), its one payload decoded
// into the value the policy judges and the summary shows, and the digest
// that is signed.
//
// It is the only decoder of sign requests: the enclave's sign path and its
// re-decision of requests held for approvals, `nitrosign approve` and the
// client all decode with it, so that a request means the same everywhere,
// and the same bytes are refused with the same code and message wherever
// they are decoded.
//
// Decoding, in order (the first failure decides):
//
//  1. The body: [api.DecodeSignRequest]: at most api.MaxBodySize bytes,
//     strict JSON (internal/strictjson), every field validated, exactly one
//     payload, and a payload's byte string of the one hex form ("0x", lower
//     case, then a non-empty, even number of hex digits of either case;
//     "0x" alone is refused for every payload).
//  2. The payload's bytes, decoded from that hex once.
//  3. The payload itself: a transaction with ethtx.DecodeUnsigned and, for
//     a call (a transaction with a "to"), its calldata with calldata.Decode;
//     a personal message checked against ethmsg.MaxPersonalMessage; typed
//     data with ethmsg.ParseTypedData, its domain and permit read once.
//
// Every error is an [*Error] carrying the refusal code the enclave answers
// with: bad_request, or unsupported_transaction_type for a transaction type
// ethtx does not decode. (A body over api.MaxBodySize is bad_request here
// too: the host answers too_large before forwarding one, and the enclave
// answers what this package says.)
//
// The package links nothing but the decoders (api, ethtx, ethmsg,
// calldata), so that the enclave may import it.
package request

import (
	"errors"
	"fmt"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
)

// Request is a sign request decoded: exactly one of Transaction,
// PersonalMessage and TypedData is set.
type Request struct {
	// Body is the strictly decoded body: request_id, timestamp_ms, key and
	// the payload as sent.
	Body *api.SignRequest

	Transaction     *Transaction
	PersonalMessage *PersonalMessage
	TypedData       *TypedData

	// Digest is the 32-byte hash the enclave signs: the transaction's
	// signing hash, the EIP-191 personal-message hash or the EIP-712
	// digest.
	Digest [32]byte
}

// Transaction is an eth_transaction payload decoded.
type Transaction struct {
	// Unsigned is the transaction's bytes as sent (and signed).
	Unsigned []byte
	// Tx is Unsigned decoded (ethtx.DecodeUnsigned).
	Tx *ethtx.Tx
	// Call is Tx.Data decoded (calldata.Decode). It is never nil for a call
	// (a transaction with a "to"), and nil for a contract creation, whose
	// data is init code, not a call.
	Call calldata.Call
}

// PersonalMessage is an eth_personal_message payload decoded.
type PersonalMessage struct {
	// Message is the message's bytes: 1 to ethmsg.MaxPersonalMessage.
	Message []byte
}

// TypedData is an eth_typed_data payload decoded.
type TypedData struct {
	// Data is the parsed document (ethmsg.ParseTypedData).
	Data *ethmsg.TypedData
	// Domain is Data's EIP-712 domain.
	Domain ethmsg.Domain
	// Permit is the allowance the typed data grants (EIP-2612, Permit2),
	// nil if none; PermitErr is set when it looks like one without being
	// exactly one of the known forms (Data.Permit). Neither is a decoding
	// error: the policy decides on them.
	Permit    *ethmsg.Permit
	PermitErr error
}

// Error is why a request does not decode.
type Error struct {
	// Code is the refusal code to answer with (package api/refusal):
	// bad_request or unsupported_transaction_type.
	Code string
	// Err is the decoder's error.
	Err error
}

// Error returns the decoder's message, which names the field or the
// decoder ("api: eth_transaction.unsigned: ...", "ethtx: ...").
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the decoder's error.
func (e *Error) Unwrap() error { return e.Err }

// Code returns the refusal code of a decoding error: err's [*Error] code,
// or bad_request for any other error.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return refusal.CodeBadRequest
}

func badRequest(err error) *Error { return &Error{Code: refusal.CodeBadRequest, Err: err} }

// Decode decodes a sign request body: [Parse], then [DecodePayload].
func Decode(body []byte) (*Request, error) {
	b, err := Parse(body)
	if err != nil {
		return nil, err
	}
	return DecodePayload(b)
}

// Parse decodes the body itself (api.DecodeSignRequest): the cheap checks
// that come before the payload is decoded. The enclave parses first and
// decodes the payload ([DecodePayload]) only once the request is fresh, not
// replayed and its key known, so that a replayed body costs no payload
// decoding.
func Parse(body []byte) (*api.SignRequest, error) {
	b, err := api.DecodeSignRequest(body)
	if err != nil {
		return nil, badRequest(err)
	}
	return b, nil
}

// DecodePayload decodes the one payload of b (from [Parse], or built by a
// client) and computes its digest. A b without exactly one payload is a
// bad_request. b's other fields are not looked at: [Parse] validated them.
func DecodePayload(b *api.SignRequest) (*Request, error) {
	// A request and its decoded transaction are made in one allocation:
	// one decoding a request fewer on the sign path.
	rt := &struct {
		r Request
		t Transaction
	}{}
	r := &rt.r
	r.Body = b
	n := 0
	if b.EthTransaction != nil {
		n++
	}
	if b.EthPersonalMessage != nil {
		n++
	}
	if b.EthTypedData != nil {
		n++
	}
	if n != 1 {
		return nil, badRequest(fmt.Errorf("request: exactly one payload required, got %d", n))
	}
	var err error
	switch {
	case b.EthTransaction != nil:
		var raw []byte
		if raw, err = b.EthTransaction.Bytes(); err != nil {
			return nil, badRequest(err)
		}
		if err = decodeTransaction(&rt.t, raw); err != nil {
			return nil, err
		}
		r.Transaction = &rt.t
		// The bytes DecodeUnsigned accepted are the transaction's one
		// encoding: their hash is its signing hash, without encoding it
		// again (FuzzDecode checks it is Tx.SigningHash()).
		r.Digest = ethtx.UnsignedHash(raw)
	case b.EthPersonalMessage != nil:
		var msg []byte
		if msg, err = b.EthPersonalMessage.Bytes(); err != nil {
			return nil, badRequest(err)
		}
		if len(msg) > ethmsg.MaxPersonalMessage {
			return nil, badRequest(fmt.Errorf("%w: personal message of %d bytes, limit %d bytes", ethmsg.ErrTooLarge, len(msg), ethmsg.MaxPersonalMessage))
		}
		r.PersonalMessage = &PersonalMessage{Message: msg}
		r.Digest = ethmsg.PersonalHash(msg)
	case b.EthTypedData != nil:
		td, err := ethmsg.ParseTypedData(b.EthTypedData.JSON)
		if err != nil {
			return nil, badRequest(err)
		}
		permit, permitErr := td.Permit()
		r.TypedData = &TypedData{Data: td, Domain: td.Domain(), Permit: permit, PermitErr: permitErr}
		r.Digest = td.Hash()
	}
	return r, nil
}

// DecodeTransaction decodes an unsigned transaction's bytes as
// [DecodePayload] does: ethtx.DecodeUnsigned (unsupported_transaction_type
// for a type it does not decode, bad_request otherwise), then, for a call,
// its calldata (calldata.Decode; malformed calldata is a bad_request). The
// client checks a signature against the transaction it sent with it.
func DecodeTransaction(unsigned []byte) (*Transaction, error) {
	t := new(Transaction)
	if err := decodeTransaction(t, unsigned); err != nil {
		return nil, err
	}
	return t, nil
}

// decodeTransaction is DecodeTransaction, into t.
func decodeTransaction(t *Transaction, unsigned []byte) error {
	tx, err := ethtx.DecodeUnsigned(unsigned)
	if err != nil {
		if errors.Is(err, ethtx.ErrUnsupportedType) {
			return &Error{Code: refusal.CodeUnsupportedTransactionType, Err: err}
		}
		return badRequest(err)
	}
	*t = Transaction{Unsigned: unsigned, Tx: tx}
	// Calldata is decoded for calls only: a contract creation's data is
	// init code, not a call.
	if tx.To != nil {
		if t.Call, err = calldata.Decode(tx.Data); err != nil {
			return badRequest(err)
		}
		if t.Call == nil { // calldata.Decode never returns nil without an error
			return badRequest(errors.New("calldata: decoded to nothing"))
		}
	}
	return nil
}
