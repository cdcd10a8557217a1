package ethtx

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/nitrosign/nitrosign/internal/rlp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ReplaceAll(s, " ", ""), "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// curveN is the order of secp256k1.
var curveN = secp256k1.S256().N

// allTypes are the transaction types DecodeUnsigned accepts.
var allTypes = []Type{TypeLegacy, TypeAccessList, TypeDynamicFee, TypeBlob, TypeSetCode}

// keyFromHex returns the private key with the given hexadecimal scalar.
func keyFromHex(t testing.TB, s string) *secp256k1.PrivateKey {
	var k secp256k1.ModNScalar
	if overflow := k.SetByteSlice(unhex(t, s)); overflow || k.IsZero() {
		t.Fatalf("bad private key %s", s)
	}
	return secp256k1.NewPrivateKey(&k)
}

// fieldNames are the fields of the unsigned transaction of each type, in
// order.
var fieldNames = map[Type][]string{
	TypeLegacy:     {"nonce", "gasPrice", "gasLimit", "to", "value", "data", "chainId", "r", "s"},
	TypeAccessList: {"chainId", "nonce", "gasPrice", "gasLimit", "to", "value", "data", "accessList"},
	TypeDynamicFee: {"chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "data", "accessList"},
	TypeBlob: {"chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "data", "accessList",
		"maxFeePerBlobGas", "blobVersionedHashes"},
	TypeSetCode: {"chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "data", "accessList",
		"authorizationList"},
}

// validFieldEncodings are the raw encodings of the fields of small valid
// transactions, by field name.
func validFieldEncodings(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"chainId":              unhex(t, "01"),           // 1
		"nonce":                unhex(t, "80"),           // 0
		"gasPrice":             unhex(t, "8504a817c800"), // 20 gwei
		"maxPriorityFeePerGas": unhex(t, "843b9aca00"),   // 1 gwei
		"maxFeePerGas":         unhex(t, "8504a817c800"), // 20 gwei
		"gasLimit":             unhex(t, "825208"),       // 21000
		"to":                   rlp.AppendString(nil, bytes.Repeat([]byte{0x35}, 20)),
		"value":                unhex(t, "880de0b6b3a7640000"), // 1 ether
		"data":                 unhex(t, "80"),
		"accessList":           unhex(t, "c0"),
		"r":                    unhex(t, "80"),
		"s":                    unhex(t, "80"),
		"maxFeePerBlobGas":     unhex(t, "843b9aca00"), // 1 gwei
		"blobVersionedHashes":  rlp.AppendList(nil, rlp.AppendString(nil, append([]byte{0x01}, bytes.Repeat([]byte{0xbb}, 31)...))),
		"authorizationList":    rlp.AppendList(nil, authEntry(t)),
	}
}

// authEntry returns the encoding of an authorization for chain 1, with the
// given fields replaced: name, raw encoding, name, raw encoding, ...
func authEntry(t testing.TB, replace ...any) []byte {
	f := map[string][]byte{
		"chainId": unhex(t, "01"),
		"address": rlp.AppendString(nil, bytes.Repeat([]byte{0xaa}, 20)),
		"nonce":   unhex(t, "07"),
		"yParity": unhex(t, "01"),
		"r":       rlp.AppendString(nil, bytes.Repeat([]byte{0x11}, 32)),
		"s":       rlp.AppendString(nil, bytes.Repeat([]byte{0x22}, 32)),
	}
	for i := 0; i < len(replace); i += 2 {
		f[replace[i].(string)] = replace[i+1].([]byte)
	}
	var b []byte
	for _, name := range []string{"chainId", "address", "nonce", "yParity", "r", "s"} {
		b = append(b, f[name]...)
	}
	return rlp.AppendList(nil, b)
}

// validFieldsOf returns the raw encodings of the fields of a small valid
// transaction of type typ, in order.
func validFieldsOf(t testing.TB, typ Type) [][]byte {
	enc := validFieldEncodings(t)
	var f [][]byte
	for _, name := range fieldNames[typ] {
		f = append(f, enc[name])
	}
	return f
}

// envelopeOf builds typ || rlp(list of the given raw encodings), or the
// bare list for a legacy transaction, for hand-made malformed transactions.
func envelopeOf(typ Type, fields ...[]byte) []byte {
	list := rlp.AppendList(nil, bytes.Join(fields, nil))
	if typ == TypeLegacy {
		return list
	}
	return append([]byte{byte(typ)}, list...)
}

// txWith returns the small valid transaction of type typ with the named
// field's encoding replaced by enc.
func txWith(t testing.TB, typ Type, field string, enc []byte) []byte {
	t.Helper()
	f := validFieldsOf(t, typ)
	i := slices.Index(fieldNames[typ], field)
	if i < 0 {
		t.Fatalf("%s transactions have no field %s", typ, field)
	}
	f[i] = enc
	return envelopeOf(typ, f...)
}

// envelope builds 0x02 || rlp(list of the given raw encodings), for
// hand-made malformed EIP-1559 transactions.
func envelope(fields ...[]byte) []byte {
	return envelopeOf(TypeDynamicFee, fields...)
}

// validFields are the raw encodings of the fields of a small valid
// EIP-1559 transaction, for tests that replace one of them.
func validFields(t testing.TB) [][]byte {
	return validFieldsOf(t, TypeDynamicFee)
}

// withField returns validFields with field i replaced by enc.
func withField(t testing.TB, i int, enc []byte) []byte {
	f := validFields(t)
	f[i] = enc
	return envelope(f...)
}

func accessEntry(addr []byte, keys ...[]byte) []byte {
	var k []byte
	for _, key := range keys {
		k = rlp.AppendString(k, key)
	}
	return rlp.AppendList(nil, append(rlp.AppendString(nil, addr), rlp.AppendList(nil, k)...))
}
