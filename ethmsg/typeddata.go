package ethmsg

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"golang.org/x/crypto/sha3"
)

// TypedData is a decoded, validated EIP-712 document. Its hashes are computed
// once, by [ParseTypedData], from the decoded values; the accessors return
// copies, so nothing a caller does to them changes what [TypedData.Hash]
// commits to. A TypedData is safe for concurrent use.
type TypedData struct {
	types       map[string]*structType
	typeHashes  map[string][32]byte // of the types values can hold
	primaryType string
	domain      *Value
	message     *Value

	domainSeparator [32]byte
	messageHash     [32]byte
	hash            [32]byte
}

// Domain is the decoded EIP-712 domain. A field is nil when EIP712Domain does
// not declare it.
type Domain struct {
	Name              *string
	Version           *string
	ChainID           *big.Int
	VerifyingContract *ethtx.Address
	Salt              *[32]byte
}

// document is the top level of an eth_signTypedData_v4 document. domain and
// message stay raw, to be decoded against the types with json.Number and
// exact key matching.
type document struct {
	Types       map[string][]fieldJSON `json:"types"`
	PrimaryType *string                `json:"primaryType"`
	Domain      json.RawMessage        `json:"domain"`
	Message     json.RawMessage        `json:"message"`
}

// ParseTypedData decodes and validates an eth_signTypedData_v4 JSON document
// under the rules in the package documentation, and hashes it. Errors start
// with "ethmsg: " and name the JSON path of the problem; a document longer
// than [MaxTypedDataSize] gives an error wrapping [ErrTooLarge].
func ParseTypedData(b []byte) (*TypedData, error) {
	if len(b) > MaxTypedDataSize {
		return nil, fmt.Errorf("%w: typed data of %d bytes, limit %d", ErrTooLarge, len(b), MaxTypedDataSize)
	}
	var doc document
	if err := strictjson.Unmarshal(b, &doc, MaxTypedDataSize); err != nil {
		return nil, fmt.Errorf("ethmsg: %w", err)
	}
	types, err := parseTypes(doc.Types)
	if err != nil {
		return nil, err
	}
	if doc.PrimaryType == nil {
		return nil, errors.New("ethmsg: primaryType: missing")
	}
	primary := *doc.PrimaryType
	switch {
	case primary == domainType:
		return nil, errors.New("ethmsg: primaryType: EIP712Domain is refused (wallets disagree on what such a document signs)")
	case types[primary] == nil:
		return nil, fmt.Errorf("ethmsg: primaryType: undefined struct type %s", quote(primary))
	}

	d := &decoder{types: types}
	domain, err := d.decodeRoot(doc.Domain, domainType, "domain")
	if err != nil {
		return nil, err
	}
	message, err := d.decodeRoot(doc.Message, primary, "message")
	if err != nil {
		return nil, err
	}

	td := &TypedData{
		types:       types,
		typeHashes:  make(map[string][32]byte),
		primaryType: primary,
		domain:      domain,
		message:     message,
	}
	for _, name := range reachable(types, domainType, primary) {
		td.typeHashes[name] = keccak256([]byte(encodeType(types, name)))
	}
	td.domainSeparator = td.hashStruct(domain)
	td.messageHash = td.hashStruct(message)
	td.hash = keccak256([]byte{0x19, 0x01}, td.domainSeparator[:], td.messageHash[:])
	return td, nil
}

// Hash returns the EIP-712 digest to sign:
// keccak256(0x19 0x01 || DomainSeparator() || MessageHash()).
func (td *TypedData) Hash() [32]byte { return td.hash }

// DomainSeparator returns hashStruct(domain).
func (td *TypedData) DomainSeparator() [32]byte { return td.domainSeparator }

// MessageHash returns hashStruct(message), of type PrimaryType().
func (td *TypedData) MessageHash() [32]byte { return td.messageHash }

// PrimaryType returns the name of the message's struct type.
func (td *TypedData) PrimaryType() string { return td.primaryType }

// Message returns a copy of the decoded message, a struct of type
// PrimaryType(). Each call returns a fresh copy.
func (td *TypedData) Message() *Value { return td.message.clone() }

// DomainValue returns a copy of the decoded domain as a struct value of type
// EIP712Domain, fields in type (EIP-712) order. Each call returns a fresh
// copy.
func (td *TypedData) DomainValue() *Value { return td.domain.clone() }

// Domain returns the decoded domain. Each call returns a fresh copy.
func (td *TypedData) Domain() Domain {
	var d Domain
	for _, f := range td.domain.Fields {
		v := f.Value
		switch f.Name {
		case "name":
			s := v.String
			d.Name = &s
		case "version":
			s := v.String
			d.Version = &s
		case "chainId":
			d.ChainID = new(big.Int).Set(v.Int)
		case "verifyingContract":
			a := v.Address
			d.VerifyingContract = &a
		case "salt":
			s := [32]byte(v.Bytes)
			d.Salt = &s
		}
	}
	return d
}

// EncodeType returns EIP-712's encodeType of the struct type name, such as
// "Mail(Person from,Person to,string contents)Person(string name,address wallet)",
// and false if the document defines no such type.
func (td *TypedData) EncodeType(name string) (string, bool) {
	if td.types[name] == nil {
		return "", false
	}
	return encodeType(td.types, name), true
}

// TypeHash returns keccak256(EncodeType(name)), with which policy code can
// recognise a well-known struct (such as an ERC-2612 Permit) by its exact
// definition, and false if the document defines no such type.
func (td *TypedData) TypeHash(name string) ([32]byte, bool) {
	if h, ok := td.typeHashes[name]; ok {
		return h, true
	}
	enc, ok := td.EncodeType(name)
	if !ok {
		return [32]byte{}, false
	}
	return keccak256([]byte(enc)), true
}

// hashStruct returns keccak256(typeHash || enc(field1) || ... || enc(fieldN))
// of a struct value.
func (td *TypedData) hashStruct(v *Value) [32]byte {
	h := sha3.NewLegacyKeccak256()
	th := td.typeHashes[v.Type]
	h.Write(th[:])
	for _, f := range v.Fields {
		w := td.encodeValue(f.Value)
		h.Write(w[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// two256 is 2^256, to encode negative integers in two's complement.
var two256 = new(big.Int).Lsh(big.NewInt(1), 256)

// encodeValue returns EIP-712's enc(v), one 32-byte word.
func (td *TypedData) encodeValue(v *Value) (w [32]byte) {
	switch v.Kind {
	case KindStruct:
		return td.hashStruct(v)
	case KindArray:
		h := sha3.NewLegacyKeccak256()
		for _, e := range v.Elems {
			ew := td.encodeValue(e)
			h.Write(ew[:])
		}
		h.Sum(w[:0])
	case KindAddress:
		copy(w[12:], v.Address[:])
	case KindBool:
		if v.Bool {
			w[31] = 1
		}
	case KindUint, KindInt:
		if v.Int.Sign() >= 0 {
			v.Int.FillBytes(w[:])
		} else {
			new(big.Int).Add(v.Int, two256).FillBytes(w[:])
		}
	case KindFixedBytes:
		copy(w[:], v.Bytes)
	case KindBytes:
		return keccak256(v.Bytes)
	case KindString:
		return keccak256([]byte(v.String))
	default:
		// The decoder makes no other kind.
		panic("ethmsg: internal error: encoding a value of kind " + v.Kind.String())
	}
	return w
}
