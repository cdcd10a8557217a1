// Package ethtx decodes, hashes, signs and encodes Ethereum transactions.
//
// The enclave signs only what it has decoded: policy is evaluated on the
// [Tx] that [DecodeUnsigned] returns, and the digest the enclave signs is
// computed from that same Tx by [Tx.SigningHash]. Decoding is therefore the
// security boundary, and it is strict, so that the bytes a client sent, the
// transaction the policy saw and the transaction the network will execute are
// one and the same:
//
//   - canonical RLP only (see internal/rlp), no trailing bytes, and
//     re-encoding an accepted input gives back exactly the input;
//   - exactly the fields of the transaction type, each of the exact shape:
//     integers of at most 256 bits (nonces and gas limit at most 64), a
//     destination that is empty (contract creation) or 20 bytes, access-list
//     entries of one 20-byte address and 32-byte storage keys;
//   - a non-zero chain id (so a signature cannot be replayed across chains);
//   - named size caps ([MaxUnsignedSize], [MaxDataSize],
//     [MaxAccessListEntries], [MaxAccessListStorageKeys],
//     [MaxBlobVersionedHashes], [MaxAuthorizations]);
//   - only transaction types this package implements completely; any other
//     is refused with [ErrUnsupportedType], never passed through.
//
// Errors name the field and the reason, for example
// "ethtx: tx.value: non-canonical integer" or
// "ethtx: tx.authorizationList[2].address: want 20 bytes, got 19", so that a
// refusal can be understood without the input at hand.
//
// Signatures are 65 bytes, r || s || yParity, with s in the lower half of
// the curve order (EIP-2); [Sign] produces them deterministically (RFC 6979)
// and [RecoverAddress] refuses anything else.
//
// # Transaction types
//
// [DecodeUnsigned] takes, and [Tx.EncodeUnsigned] gives, the unsigned
// transaction: the bytes whose Keccak-256 hash the sender signs
// ([Tx.SigningHash]). [Tx.EncodeSigned] gives the signed transaction, and
// [TransactionHash] of it is the hash by which the network knows it. Below,
// rlp(...) is the canonical RLP encoding, integers are unsigned and minimal,
// and "fields" stands for the unsigned field list of the same type.
//
// Legacy, with EIP-155 replay protection (type 0, no type byte; the first
// byte is that of an RLP list, 0xc0 or above):
//
//	unsigned: rlp([nonce, gasPrice, gasLimit, to, value, data, chainId, 0, 0])
//	signed:   rlp([nonce, gasPrice, gasLimit, to, value, data, v, r, s])
//	          with v = chainId*2 + 35 + yParity, an integer of any size
//
// chainId is at least 1 and the two trailing items are empty strings (the
// integer 0). A pre-EIP-155 transaction, rlp([nonce, gasPrice, gasLimit, to,
// value, data]), is refused: its signature is valid on every chain.
//
// EIP-2930, access list (type 1):
//
//	unsigned: 0x01 || rlp([chainId, nonce, gasPrice, gasLimit, to, value,
//	                       data, accessList])
//	signed:   0x01 || rlp([fields..., yParity, r, s])
//
// EIP-1559, dynamic fee (type 2):
//
//	unsigned: 0x02 || rlp([chainId, nonce, maxPriorityFeePerGas,
//	                       maxFeePerGas, gasLimit, to, value, data,
//	                       accessList])
//	signed:   0x02 || rlp([fields..., yParity, r, s])
//
// EIP-4844, blob (type 3):
//
//	unsigned: 0x03 || rlp([chainId, nonce, maxPriorityFeePerGas,
//	                       maxFeePerGas, gasLimit, to, value, data,
//	                       accessList, maxFeePerBlobGas,
//	                       blobVersionedHashes])
//	signed:   0x03 || rlp([fields..., yParity, r, s])
//
// to is a 20-byte address (a blob transaction cannot create a contract);
// there are 1 to [MaxBlobVersionedHashes] blob hashes, each 32 bytes with
// version byte 0x01 (KZG). The signed form is the canonical one, by which
// blocks hold the transaction and which its hash covers. It is not the
// network form that eth_sendRawTransaction takes for a blob transaction,
// which wraps it with the blobs, their KZG commitments and proofs: the blobs
// are not signed (they are bound through their versioned hashes), the signer
// never sees them, and the sender builds that wrapper itself.
//
// EIP-7702, set code (type 4):
//
//	unsigned: 0x04 || rlp([chainId, nonce, maxPriorityFeePerGas,
//	                       maxFeePerGas, gasLimit, to, value, data,
//	                       accessList, authorizationList])
//	signed:   0x04 || rlp([fields..., yParity, r, s])
//	authorizationList: [[chainId, address, nonce, yParity, r, s], ...]
//
// to (the EIP's destination) is a 20-byte address; there are 1 to
// [MaxAuthorizations] authorizations, each with a chainId of at most 256
// bits that may be 0 (valid on every chain), a 20-byte address, a 64-bit
// nonce, a yParity of 0 or 1, and r and s of at most 256 bits. Whether r and
// s form a valid signature, and whose, is [Authorization.Authority].
//
// Contract creation (an empty to) is accepted for legacy, EIP-2930 and
// EIP-1559 transactions and appears as a nil [Tx.To]; policy decides. Type
// bytes 0x00 and 0x05 to 0x7f are refused with [ErrUnsupportedType]; a
// first byte from 0x80 to 0xbf (an RLP string) is malformed input.
package ethtx

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/internal/rlp"
	"golang.org/x/crypto/sha3"
)

// Size caps on untrusted input. They are well above what wallets send and
// bound the memory and time the enclave spends on one request.
const (
	// MaxUnsignedSize is the largest unsigned transaction envelope accepted.
	MaxUnsignedSize = 256 << 10
	// MaxDataSize is the largest calldata (or init code) accepted.
	MaxDataSize = 128 << 10
	// MaxAccessListEntries is the most addresses an access list may name.
	MaxAccessListEntries = 256
	// MaxAccessListStorageKeys is the most storage keys an access list may
	// name, counted over all its entries.
	MaxAccessListStorageKeys = 1024
)

// Type is an EIP-2718 transaction type.
type Type uint8

// Transaction types. A legacy transaction has no type byte on the wire; it
// is TypeLegacy here.
const (
	TypeLegacy     Type = 0x00 // EIP-155
	TypeAccessList Type = 0x01 // EIP-2930
	TypeDynamicFee Type = 0x02 // EIP-1559
	TypeBlob       Type = 0x03 // EIP-4844
	TypeSetCode    Type = 0x04 // EIP-7702
)

// String returns the EIP that defines t, for example "EIP-1559".
func (t Type) String() string {
	switch t {
	case TypeLegacy:
		return "legacy"
	case TypeAccessList:
		return "EIP-2930"
	case TypeDynamicFee:
		return "EIP-1559"
	case TypeBlob:
		return "EIP-4844"
	case TypeSetCode:
		return "EIP-7702"
	default:
		return fmt.Sprintf("unknown type 0x%02x", uint8(t))
	}
}

// ErrUnsupportedType is returned, wrapped, by DecodeUnsigned for a
// transaction type that this package does not decode (yet). The enclave
// refuses such transactions; callers branch on it to report "unsupported"
// rather than "malformed".
var ErrUnsupportedType = errors.New("ethtx: unsupported transaction type")

type unsupportedTypeError struct{ msg string }

func (e *unsupportedTypeError) Error() string { return e.msg }
func (e *unsupportedTypeError) Unwrap() error { return ErrUnsupportedType }

// Tx is a decoded transaction. Fields that the transaction's type does not
// have are nil or zero.
type Tx struct {
	Type    Type
	ChainID *big.Int
	Nonce   uint64
	// GasPrice is set for legacy and EIP-2930 transactions only.
	GasPrice *big.Int
	// MaxPriorityFeePerGas and MaxFeePerGas are set for EIP-1559 and later
	// transactions.
	MaxPriorityFeePerGas *big.Int
	MaxFeePerGas         *big.Int
	GasLimit             uint64
	// To is nil for a contract creation.
	To    *Address
	Value *big.Int
	// Data is the calldata, or the init code of a contract creation.
	Data []byte
	// AccessList is set for EIP-2930 and later transactions.
	AccessList AccessList
}

// AccessList is an EIP-2930 access list.
type AccessList []AccessTuple

// AccessTuple is one access-list entry: an address and the storage slots of
// it that the transaction declares.
type AccessTuple struct {
	Address     Address
	StorageKeys [][32]byte
}

// DecodeUnsigned decodes an unsigned transaction: the EIP-2718 envelope
// type || payload as it is hashed for signing, without a signature. For an
// EIP-1559 transaction that is
//
//	0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas,
//	             gasLimit, to, value, data, accessList])
//
// Other types, including legacy transactions (an RLP list, first byte
// 0xc0 or above), are refused with an error wrapping ErrUnsupportedType.
// The returned Tx does not alias b.
func DecodeUnsigned(b []byte) (*Tx, error) {
	if len(b) == 0 {
		return nil, errors.New("ethtx: empty transaction")
	}
	if len(b) > MaxUnsignedSize {
		return nil, fmt.Errorf("ethtx: transaction is %d bytes, limit is %d", len(b), MaxUnsignedSize)
	}
	switch t := b[0]; {
	case t == byte(TypeDynamicFee):
		return decodeDynamicFee(b[1:])
	case t >= 0xc0:
		return nil, &unsupportedTypeError{"ethtx: legacy transaction (EIP-155) not supported yet"}
	case t >= 0x80:
		return nil, fmt.Errorf("ethtx: invalid transaction type byte 0x%02x", t)
	case t == byte(TypeAccessList) || t == byte(TypeBlob) || t == byte(TypeSetCode):
		return nil, &unsupportedTypeError{fmt.Sprintf("ethtx: transaction type 0x%02x (%s) not supported yet", t, Type(t))}
	default:
		return nil, &unsupportedTypeError{fmt.Sprintf("ethtx: unknown transaction type 0x%02x", t)}
	}
}

// fieldError reports a problem with one field of the transaction.
func fieldError(field string, err error) error {
	return fmt.Errorf("ethtx: %s: %w", field, err)
}

func decodeDynamicFee(b []byte) (*Tx, error) {
	fields, rest, err := rlp.SplitList(b)
	if err != nil {
		return nil, fieldError("tx", err)
	}
	if len(rest) != 0 {
		return nil, fieldError("tx", rlp.ErrTrailingBytes)
	}
	// A malformed item is reported where the fields are decoded in order,
	// so that the error names it, or after them if it comes after them.
	const want = 9
	n, malformed := rlp.CountValues(fields)
	if malformed == nil && n != want {
		return nil, fmt.Errorf("ethtx: tx: want %d fields, got %d", want, n)
	}

	tx := &Tx{Type: TypeDynamicFee}
	if tx.ChainID, fields, err = rlp.SplitBigInt(fields); err != nil {
		return nil, fieldError("tx.chainId", err)
	}
	if tx.ChainID.Sign() == 0 {
		return nil, errors.New("ethtx: tx.chainId: must not be zero")
	}
	if tx.Nonce, fields, err = rlp.SplitUint64(fields); err != nil {
		return nil, fieldError("tx.nonce", err)
	}
	if tx.MaxPriorityFeePerGas, fields, err = rlp.SplitBigInt(fields); err != nil {
		return nil, fieldError("tx.maxPriorityFeePerGas", err)
	}
	if tx.MaxFeePerGas, fields, err = rlp.SplitBigInt(fields); err != nil {
		return nil, fieldError("tx.maxFeePerGas", err)
	}
	if tx.GasLimit, fields, err = rlp.SplitUint64(fields); err != nil {
		return nil, fieldError("tx.gasLimit", err)
	}
	if tx.To, fields, err = splitTo(fields); err != nil {
		return nil, fieldError("tx.to", err)
	}
	if tx.Value, fields, err = rlp.SplitBigInt(fields); err != nil {
		return nil, fieldError("tx.value", err)
	}
	if tx.Data, fields, err = splitData(fields); err != nil {
		return nil, fieldError("tx.data", err)
	}
	if tx.AccessList, _, err = splitAccessList(fields); err != nil {
		return nil, err
	}
	if malformed != nil {
		return nil, fieldError("tx", malformed)
	}
	return tx, nil
}

func splitTo(b []byte) (*Address, []byte, error) {
	s, rest, err := rlp.SplitString(b)
	if err != nil {
		return nil, nil, err
	}
	switch len(s) {
	case 0:
		return nil, rest, nil
	case len(Address{}):
		to := Address(s)
		return &to, rest, nil
	default:
		return nil, nil, fmt.Errorf("want 20 bytes, got %d", len(s))
	}
}

func splitData(b []byte) ([]byte, []byte, error) {
	s, rest, err := rlp.SplitString(b)
	if err != nil {
		return nil, nil, err
	}
	if len(s) > MaxDataSize {
		return nil, nil, fmt.Errorf("%d bytes, limit is %d", len(s), MaxDataSize)
	}
	return append([]byte(nil), s...), rest, nil
}

// splitAccessList decodes an access list. Its errors carry the full field
// name, since they point into nested entries.
func splitAccessList(b []byte) (AccessList, []byte, error) {
	entries, rest, err := rlp.SplitList(b)
	if err != nil {
		return nil, nil, fieldError("tx.accessList", err)
	}
	var list AccessList
	totalKeys := 0
	for i := 0; len(entries) > 0; i++ {
		if i == MaxAccessListEntries {
			return nil, nil, fmt.Errorf("ethtx: tx.accessList: more than %d entries", MaxAccessListEntries)
		}
		var e AccessTuple
		if e, entries, err = splitAccessTuple(entries, i, &totalKeys); err != nil {
			return nil, nil, err
		}
		list = append(list, e)
	}
	return list, rest, nil
}

// splitAccessTuple decodes access-list entry i, adding its storage keys to
// *totalKeys.
func splitAccessTuple(b []byte, i int, totalKeys *int) (AccessTuple, []byte, error) {
	var e AccessTuple
	name := func(sub string) string { return fmt.Sprintf("tx.accessList[%d]%s", i, sub) }
	entry, rest, err := rlp.SplitList(b)
	if err != nil {
		return e, nil, fieldError(name(""), err)
	}
	n, malformed := rlp.CountValues(entry)
	if malformed == nil && n != 2 {
		return e, nil, fmt.Errorf("ethtx: %s: want 2 fields, got %d", name(""), n)
	}
	addr, entry, err := rlp.SplitString(entry)
	if err != nil {
		return e, nil, fieldError(name(".address"), err)
	}
	if len(addr) != len(Address{}) {
		return e, nil, fmt.Errorf("ethtx: %s: want 20 bytes, got %d", name(".address"), len(addr))
	}
	e.Address = Address(addr)
	keys, _, err := rlp.SplitList(entry)
	if err != nil {
		return e, nil, fieldError(name(".storageKeys"), err)
	}
	for j := 0; len(keys) > 0; j++ {
		if *totalKeys == MaxAccessListStorageKeys {
			return e, nil, fmt.Errorf("ethtx: tx.accessList: more than %d storage keys", MaxAccessListStorageKeys)
		}
		*totalKeys++
		var key []byte
		if key, keys, err = rlp.SplitString(keys); err != nil {
			return e, nil, fieldError(name(fmt.Sprintf(".storageKeys[%d]", j)), err)
		}
		if len(key) != 32 {
			return e, nil, fmt.Errorf("ethtx: %s: want 32 bytes, got %d", name(fmt.Sprintf(".storageKeys[%d]", j)), len(key))
		}
		e.StorageKeys = append(e.StorageKeys, [32]byte(key))
	}
	if malformed != nil {
		return e, nil, fieldError(name(""), malformed)
	}
	return e, rest, nil
}

// EncodeUnsigned returns the unsigned envelope of tx, the bytes that
// SigningHash hashes. For a Tx returned by DecodeUnsigned it is exactly the
// decoded input.
//
// It panics if tx.Type is not a type DecodeUnsigned accepts or an integer
// field is negative: a Tx from DecodeUnsigned never is, and encoding a
// transaction other than the one described would be worse than stopping.
func (tx *Tx) EncodeUnsigned() []byte {
	return tx.appendEnvelope(make([]byte, 0, tx.sizeHint()), nil)
}

// EncodeSigned returns the signed transaction, ready for
// eth_sendRawTransaction: the envelope with sig's yParity, r and s appended
// to the field list.
//
// It panics where EncodeUnsigned does, and if sig's yParity is not 0 or 1.
func (tx *Tx) EncodeSigned(sig Signature) []byte {
	if sig[64] > 1 {
		panic(fmt.Sprintf("ethtx: EncodeSigned: yParity %d is not 0 or 1", sig[64]))
	}
	return tx.appendEnvelope(make([]byte, 0, tx.sizeHint()+70), &sig)
}

// SigningHash returns the digest that the sender signs: the Keccak-256 hash
// of the unsigned envelope.
func (tx *Tx) SigningHash() [32]byte {
	return keccak256(tx.EncodeUnsigned())
}

// TransactionHash returns the hash by which the network knows a signed
// transaction: the Keccak-256 hash of its encoding (EncodeSigned).
func TransactionHash(signed []byte) [32]byte {
	return keccak256(signed)
}

func (tx *Tx) sizeHint() int {
	n := 200 + len(tx.Data)
	for _, e := range tx.AccessList {
		n += 30 + 33*len(e.StorageKeys)
	}
	return n
}

func (tx *Tx) appendEnvelope(dst []byte, sig *Signature) []byte {
	if tx.Type != TypeDynamicFee {
		panic(fmt.Sprintf("ethtx: encoding transaction type 0x%02x (%s) not supported yet", uint8(tx.Type), tx.Type))
	}
	dst = append(dst, byte(tx.Type))
	start := len(dst)
	dst = rlp.AppendBigInt(dst, tx.ChainID)
	dst = rlp.AppendUint64(dst, tx.Nonce)
	dst = rlp.AppendBigInt(dst, tx.MaxPriorityFeePerGas)
	dst = rlp.AppendBigInt(dst, tx.MaxFeePerGas)
	dst = rlp.AppendUint64(dst, tx.GasLimit)
	if tx.To == nil {
		dst = rlp.AppendString(dst, nil)
	} else {
		dst = rlp.AppendString(dst, tx.To[:])
	}
	dst = rlp.AppendBigInt(dst, tx.Value)
	dst = rlp.AppendString(dst, tx.Data)
	dst = appendAccessList(dst, tx.AccessList)
	if sig != nil {
		dst = rlp.AppendUint64(dst, uint64(sig[64]))
		dst = rlp.AppendUintBytes(dst, sig[:32])
		dst = rlp.AppendUintBytes(dst, sig[32:64])
	}
	return rlp.EndList(dst, start)
}

func appendAccessList(dst []byte, al AccessList) []byte {
	start := len(dst)
	for _, e := range al {
		entry := len(dst)
		dst = rlp.AppendString(dst, e.Address[:])
		keys := len(dst)
		for _, k := range e.StorageKeys {
			dst = rlp.AppendString(dst, k[:])
		}
		dst = rlp.EndList(dst, keys)
		dst = rlp.EndList(dst, entry)
	}
	return rlp.EndList(dst, start)
}

func keccak256(b []byte) (h [32]byte) {
	d := sha3.NewLegacyKeccak256()
	d.Write(b)
	d.Sum(h[:0])
	return h
}
