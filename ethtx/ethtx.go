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
	"math/bits"

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
	// MaxBlobVersionedHashes is the most blob hashes an EIP-4844
	// transaction may carry. The protocol's own limit is lower (6 per
	// transaction since Osaka, EIP-7594) and changes with forks; the
	// network refuses what it does not accept, and this cap only bounds the
	// work done on untrusted input.
	MaxBlobVersionedHashes = 16
	// MaxAuthorizations is the most authorizations an EIP-7702 transaction
	// may carry. A wallet sends one; policy may recover the authority of
	// each, a public-key recovery apiece.
	MaxAuthorizations = 64
)

// blobHashVersionKZG is the version byte of a blob hash that is the
// SHA-256 hash of a KZG commitment (EIP-4844), the only version defined.
const blobHashVersionKZG = 0x01

// authorizationMagic is the byte an EIP-7702 authorization's signing hash
// starts with, so that it can never be the signing hash of a transaction.
const authorizationMagic = 0x05

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

// Types returns every transaction type DecodeUnsigned decodes, in type
// order. TestTypesMatchDecoder checks it against the decoder, and package
// policy's tests check that the policy format names or refuses each one:
// a type added here is refused by every policy until its format says
// otherwise.
func Types() []Type {
	return []Type{TypeLegacy, TypeAccessList, TypeDynamicFee, TypeBlob, TypeSetCode}
}

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
// transaction type that this package does not decode: type byte 0x00 or
// 0x05 to 0x7f. The enclave refuses such transactions; callers branch on it
// to report "unsupported" rather than "malformed". Malformed transactions
// of a supported type never wrap it.
var ErrUnsupportedType = errors.New("ethtx: unsupported transaction type")

type unsupportedTypeError struct{ msg string }

func (e *unsupportedTypeError) Error() string { return e.msg }
func (e *unsupportedTypeError) Unwrap() error { return ErrUnsupportedType }

// Tx is a decoded transaction. Fields that the transaction's type does not
// have are nil or zero.
type Tx struct {
	Type Type
	// ChainID is at least 1. For a legacy transaction it is the EIP-155
	// chain id of the signing payload.
	ChainID *big.Int
	Nonce   uint64
	// GasPrice is set for legacy and EIP-2930 transactions only.
	GasPrice *big.Int
	// MaxPriorityFeePerGas and MaxFeePerGas are set for EIP-1559 and later
	// transactions.
	MaxPriorityFeePerGas *big.Int
	MaxFeePerGas         *big.Int
	GasLimit             uint64
	// To is nil for a contract creation, which only legacy, EIP-2930 and
	// EIP-1559 transactions can be; for EIP-7702 it is the EIP's
	// destination.
	To    *Address
	Value *big.Int
	// Data is the calldata, or the init code of a contract creation.
	Data []byte
	// AccessList is set for EIP-2930 and later transactions.
	AccessList AccessList
	// MaxFeePerBlobGas and BlobVersionedHashes (at least one, version byte
	// 0x01) are set for EIP-4844 transactions only.
	MaxFeePerBlobGas    *big.Int
	BlobVersionedHashes [][32]byte
	// AuthorizationList (at least one) is set for EIP-7702 transactions
	// only.
	AuthorizationList []Authorization
}

// AccessList is an EIP-2930 access list.
type AccessList []AccessTuple

// AccessTuple is one access-list entry: an address and the storage slots of
// it that the transaction declares.
type AccessTuple struct {
	Address     Address
	StorageKeys [][32]byte
}

// Authorization is one entry of an EIP-7702 authorization list: its signer,
// the authority, delegates the code of its account to the code at Address,
// if its account nonce is Nonce, on chain ChainID.
//
// The transaction's sender need not be the authority: anyone may carry an
// authorization. An authorization that is invalid on chain (a bad signature,
// a wrong chain id or nonce) does not invalidate the transaction; the
// network skips it.
type Authorization struct {
	// ChainID is the chain on which the authorization is valid. Zero means
	// every chain: the authorization can then be replayed on any chain
	// where the authority's nonce matches, which policy must consider.
	ChainID *big.Int
	// Address is the account whose code the authority's account will run.
	Address Address
	// Nonce is the authority's account nonce the authorization is valid
	// at. 2^64-1 decodes but is never valid on chain (EIP-2681).
	Nonce uint64
	// YParity (0 or 1), R and S are the authority's signature over
	// SigningHash. R and S are big-endian; decoding checks only that they
	// fit 256 bits, and Authority that they form a valid signature.
	YParity uint8
	R, S    [32]byte
}

// SigningHash returns the digest an authority signs:
// keccak256(0x05 || rlp([chainId, address, nonce])). A nil ChainID counts
// as zero; it panics if ChainID is negative, which no decoded
// Authorization is.
func (a Authorization) SigningHash() [32]byte {
	var buf [1 + 3 + 33 + 21 + 9]byte
	b := append(buf[:0], authorizationMagic)
	b = a.appendUnsigned(b)
	return keccak256(b)
}

func (a Authorization) appendUnsigned(dst []byte) []byte {
	start := len(dst)
	dst = rlp.AppendBigInt(dst, a.ChainID)
	dst = rlp.AppendString(dst, a.Address[:])
	dst = rlp.AppendUint64(dst, a.Nonce)
	return rlp.EndList(dst, start)
}

// Authority returns the address that signed a: the account whose code a
// delegates. It refuses what EIP-7702 (and go-ethereum) refuse: yParity
// other than 0 or 1, r or s outside [1, n-1], and s above n/2 (EIP-2). It
// does not check the chain id or the nonce, which depend on the chain and
// its state.
func (a Authorization) Authority() (Address, error) {
	var sig Signature
	copy(sig[:32], a.R[:])
	copy(sig[32:64], a.S[:])
	sig[64] = a.YParity
	addr, err := recoverAddress(a.SigningHash(), sig)
	if err != nil {
		return Address{}, fmt.Errorf("ethtx: authorization: signature: %w", err)
	}
	return addr, nil
}

// DecodeUnsigned decodes an unsigned transaction: the bytes that are hashed
// for signing, without a signature, as listed in the package documentation.
// A legacy transaction is an RLP list (first byte 0xc0 or above) holding the
// EIP-155 signing payload; the other types are EIP-2718 envelopes,
// type || rlp(fields).
//
// Type bytes of no type this package decodes are refused with an error
// wrapping ErrUnsupportedType. The returned Tx does not alias b.
func DecodeUnsigned(b []byte) (*Tx, error) {
	if len(b) == 0 {
		return nil, errors.New("ethtx: empty transaction")
	}
	if len(b) > MaxUnsignedSize {
		return nil, fmt.Errorf("ethtx: transaction is %d bytes, limit is %d", len(b), MaxUnsignedSize)
	}
	switch t := b[0]; {
	case t >= 0xc0:
		return decodeLegacy(b)
	case t >= 0x80:
		return nil, fmt.Errorf("ethtx: invalid transaction type byte 0x%02x", t)
	case t == byte(TypeAccessList) || t == byte(TypeDynamicFee) || t == byte(TypeBlob) || t == byte(TypeSetCode):
		return decodeTyped(Type(t), b[1:])
	default:
		return nil, &unsupportedTypeError{fmt.Sprintf("ethtx: unknown transaction type 0x%02x", t)}
	}
}

// Field counts of the unsigned transactions.
const (
	legacyFields     = 9 // with EIP-155's chainId, 0, 0
	preEIP155Fields  = 6
	accessListFields = 8
	dynamicFeeFields = 9
	blobFields       = 11
	setCodeFields    = 10
	authFields       = 6
)

// typedFields is the number of fields of each typed transaction.
var typedFields = [...]int{
	TypeAccessList: accessListFields,
	TypeDynamicFee: dynamicFeeFields,
	TypeBlob:       blobFields,
	TypeSetCode:    setCodeFields,
}

// splitTx splits the top-level list of a transaction, which must be all of
// b, and returns a reader of its items.
func splitTx(b []byte, want int) (fieldReader, error) {
	fields, rest, err := rlp.SplitList(b)
	if err != nil {
		return fieldReader{}, fieldError("tx", err)
	}
	if len(rest) != 0 {
		return fieldReader{}, fieldError("tx", rlp.ErrTrailingBytes)
	}
	return newFieldReader("tx", -1, fields, want), nil
}

func decodeLegacy(b []byte) (*Tx, error) {
	d, err := splitTx(b, legacyFields)
	if err != nil {
		return nil, err
	}
	if d.malformed == nil && d.count == preEIP155Fields {
		return nil, errors.New("ethtx: tx: pre-EIP-155 legacy transaction (6 fields, no chain id) refused: its signature would be replayable on every chain")
	}
	d.block = new(txBlock)
	tx := &d.block.tx
	tx.Type = TypeLegacy
	tx.Nonce = d.uint64("nonce")
	tx.GasPrice = d.bigInt("gasPrice")
	tx.GasLimit = d.uint64("gasLimit")
	tx.To = d.to(true)
	tx.Value = d.bigInt("value")
	tx.Data = d.data()
	tx.ChainID = d.chainID()
	// EIP-155 signs the chain id in the place of v, and zeros in those of
	// r and s.
	for _, f := range [...]string{"r", "s"} {
		if len(d.uint256(f)) != 0 {
			d.fail(f, errors.New("must be 0 in an EIP-155 signing payload (is the transaction signed already?)"))
		}
	}
	if err := d.close(); err != nil {
		return nil, err
	}
	return tx, nil
}

func decodeTyped(t Type, b []byte) (*Tx, error) {
	d, err := splitTx(b, typedFields[t])
	if err != nil {
		return nil, err
	}
	d.block = new(txBlock)
	tx := &d.block.tx
	tx.Type = t
	tx.ChainID = d.chainID()
	tx.Nonce = d.uint64("nonce")
	if t == TypeAccessList {
		tx.GasPrice = d.bigInt("gasPrice")
	} else {
		tx.MaxPriorityFeePerGas = d.bigInt("maxPriorityFeePerGas")
		tx.MaxFeePerGas = d.bigInt("maxFeePerGas")
	}
	tx.GasLimit = d.uint64("gasLimit")
	tx.To = d.to(t != TypeBlob && t != TypeSetCode)
	tx.Value = d.bigInt("value")
	tx.Data = d.data()
	tx.AccessList = d.accessList()
	switch t {
	case TypeBlob:
		tx.MaxFeePerBlobGas = d.bigInt("maxFeePerBlobGas")
		tx.BlobVersionedHashes = d.blobVersionedHashes()
	case TypeSetCode:
		tx.AuthorizationList = d.authorizationList()
	}
	if err := d.close(); err != nil {
		return nil, err
	}
	return tx, nil
}

// fieldError reports a problem with one field of the transaction.
func fieldError(field string, err error) error {
	return fmt.Errorf("ethtx: %s: %w", field, err)
}

// A fieldReader decodes the items of one RLP list in order: the fields of
// a transaction, an access-list entry or an authorization. Its first error
// sticks and later reads return zero values, so that a decoder reads every
// field and checks the error once, at close. Errors name the field as
// name.field, where name is the list's: "tx", or "tx.accessList[3]" (a
// prefix and an index, formatted only on error).
type fieldReader struct {
	prefix string
	index  int // -1: the name is prefix alone
	b      []byte
	// count is the number of items, and malformed the error of the first
	// item whose header is malformed: that error is reported where the
	// fields are read, naming the field, or by close if it comes after
	// the last field.
	count     int
	malformed error
	err       error
	// block, when set, holds the integers and the destination read, so
	// that a transaction is one allocation (besides its data) rather than
	// one per integer and per integer's digits.
	block *txBlock
}

// txBlock is a decoded transaction with room for its integer fields and
// its destination: decodeLegacy and decodeTyped make one, and the Tx's
// pointers point into it.
type txBlock struct {
	tx    Tx
	to    Address
	ints  [5]big.Int // chainId, gasPrice or the two fee caps, value, maxFeePerBlobGas
	words [5][intWords]big.Word
	n     int // ints used
}

// intWords is the number of words of the largest integer a transaction
// field holds (rlp.MaxIntBytes).
const intWords = (rlp.MaxIntBytes*8 + bits.UintSize - 1) / bits.UintSize

// setBytes sets z to the big-endian unsigned integer b (at most
// rlp.MaxIntBytes bytes), as z.SetBytes(b) does, with words as its
// storage: no allocation.
func setBytes(z *big.Int, words *[intWords]big.Word, b []byte) *big.Int {
	*words = [intWords]big.Word{}
	for i, c := range b {
		k := len(b) - 1 - i // the byte's place from the least significant
		words[k/(bits.UintSize/8)] |= big.Word(c) << (8 * (k % (bits.UintSize / 8)))
	}
	return z.SetBits(words[:(len(b)*8+bits.UintSize-1)/bits.UintSize])
}

// newFieldReader returns a reader of the list whose payload is content,
// which must hold want items.
func newFieldReader(prefix string, index int, content []byte, want int) fieldReader {
	d := fieldReader{prefix: prefix, index: index, b: content}
	d.count, d.malformed = rlp.CountValues(content)
	if d.malformed == nil && d.count != want {
		d.err = fmt.Errorf("ethtx: %s: want %d fields, got %d", d.name(), want, d.count)
	}
	return d
}

func (d *fieldReader) name() string {
	if d.index < 0 {
		return d.prefix
	}
	return fmt.Sprintf("%s[%d]", d.prefix, d.index)
}

// fail records err as the error of field, unless there is one already.
func (d *fieldReader) fail(field string, err error) {
	if d.err == nil {
		d.err = fieldError(d.name()+"."+field, err)
	}
}

// close returns the first error of the list.
func (d *fieldReader) close() error {
	if d.err == nil && d.malformed != nil {
		d.err = fieldError(d.name(), d.malformed)
	}
	return d.err
}

func (d *fieldReader) bigInt(field string) *big.Int {
	if d.err != nil {
		return nil
	}
	if blk := d.block; blk != nil && blk.n < len(blk.ints) {
		num, rest, err := rlp.SplitUintBytes(d.b)
		if err != nil {
			d.fail(field, err)
			return nil
		}
		d.b = rest
		blk.n++
		return setBytes(&blk.ints[blk.n-1], &blk.words[blk.n-1], num)
	}
	x, rest, err := rlp.SplitBigInt(d.b)
	if err != nil {
		d.fail(field, err)
		return nil
	}
	d.b = rest
	return x
}

func (d *fieldReader) uint64(field string) uint64 {
	if d.err != nil {
		return 0
	}
	x, rest, err := rlp.SplitUint64(d.b)
	if err != nil {
		d.fail(field, err)
		return 0
	}
	d.b = rest
	return x
}

// uint256 reads an integer of at most 256 bits as its minimal big-endian
// bytes (empty for zero), aliasing the input.
func (d *fieldReader) uint256(field string) []byte {
	if d.err != nil {
		return nil
	}
	x, rest, err := rlp.SplitUint256(d.b)
	if err != nil {
		d.fail(field, err)
		return nil
	}
	d.b = rest
	return x
}

// bytes32 reads an integer of at most 256 bits into a 32-byte big-endian
// array.
func (d *fieldReader) bytes32(field string) (out [32]byte) {
	x := d.uint256(field)
	copy(out[32-len(x):], x)
	return out
}

func (d *fieldReader) string(field string) []byte {
	if d.err != nil {
		return nil
	}
	s, rest, err := rlp.SplitString(d.b)
	if err != nil {
		d.fail(field, err)
		return nil
	}
	d.b = rest
	return s
}

// list reads a list and returns its payload, aliasing the input.
func (d *fieldReader) list(field string) []byte {
	if d.err != nil {
		return nil
	}
	content, rest, err := rlp.SplitList(d.b)
	if err != nil {
		d.fail(field, err)
		return nil
	}
	d.b = rest
	return content
}

func (d *fieldReader) address(field string) (a Address) {
	s := d.string(field)
	if d.err == nil && len(s) != len(a) {
		d.fail(field, fmt.Errorf("want 20 bytes, got %d", len(s)))
	}
	copy(a[:], s)
	return a
}

func (d *fieldReader) chainID() *big.Int {
	x := d.bigInt("chainId")
	if x != nil && x.Sign() == 0 {
		d.fail("chainId", errors.New("must not be zero"))
	}
	return x
}

// to reads the destination: 20 bytes, or, if create, empty for a contract
// creation.
func (d *fieldReader) to(create bool) *Address {
	s := d.string("to")
	if d.err != nil {
		return nil
	}
	switch {
	case len(s) == len(Address{}) && d.block != nil:
		d.block.to = Address(s)
		return &d.block.to
	case len(s) == len(Address{}):
		to := Address(s)
		return &to
	case len(s) == 0 && create:
		return nil
	case len(s) == 0:
		d.fail("to", errors.New("want 20 bytes, got 0 (this transaction type cannot create a contract)"))
	default:
		d.fail("to", fmt.Errorf("want 20 bytes, got %d", len(s)))
	}
	return nil
}

func (d *fieldReader) data() []byte {
	s := d.string("data")
	if d.err != nil {
		return nil
	}
	if len(s) > MaxDataSize {
		d.fail("data", fmt.Errorf("%d bytes, limit is %d", len(s), MaxDataSize))
		return nil
	}
	return append([]byte(nil), s...)
}

func (d *fieldReader) accessList() AccessList {
	entries := d.list("accessList")
	if d.err != nil {
		return nil
	}
	var list AccessList
	totalKeys := 0
	for i := 0; len(entries) > 0; i++ {
		if i == MaxAccessListEntries {
			d.fail("accessList", fmt.Errorf("more than %d entries", MaxAccessListEntries))
			return nil
		}
		content, rest, err := rlp.SplitList(entries)
		if err != nil {
			d.fail(fmt.Sprintf("accessList[%d]", i), err)
			return nil
		}
		entries = rest
		e := newFieldReader(d.name()+".accessList", i, content, 2)
		var t AccessTuple
		t.Address = e.address("address")
		keys := e.list("storageKeys")
		for j := 0; e.err == nil && len(keys) > 0; j++ {
			if totalKeys == MaxAccessListStorageKeys {
				d.fail("accessList", fmt.Errorf("more than %d storage keys", MaxAccessListStorageKeys))
				return nil
			}
			totalKeys++
			var key []byte
			if key, keys, err = rlp.SplitString(keys); err != nil {
				e.fail(fmt.Sprintf("storageKeys[%d]", j), err)
			} else if len(key) != 32 {
				e.fail(fmt.Sprintf("storageKeys[%d]", j), fmt.Errorf("want 32 bytes, got %d", len(key)))
			} else {
				t.StorageKeys = append(t.StorageKeys, [32]byte(key))
			}
		}
		if err := e.close(); err != nil {
			d.err = err
			return nil
		}
		list = append(list, t)
	}
	return list
}

func (d *fieldReader) blobVersionedHashes() [][32]byte {
	const field = "blobVersionedHashes"
	items := d.list(field)
	if d.err != nil {
		return nil
	}
	if len(items) == 0 {
		d.fail(field, errors.New("must not be empty (EIP-4844)"))
		return nil
	}
	var hashes [][32]byte
	for i := 0; len(items) > 0; i++ {
		if i == MaxBlobVersionedHashes {
			d.fail(field, fmt.Errorf("more than %d blob hashes", MaxBlobVersionedHashes))
			return nil
		}
		h, rest, err := rlp.SplitString(items)
		switch {
		case err != nil:
			d.fail(fmt.Sprintf("%s[%d]", field, i), err)
		case len(h) != 32:
			d.fail(fmt.Sprintf("%s[%d]", field, i), fmt.Errorf("want 32 bytes, got %d", len(h)))
		case h[0] != blobHashVersionKZG:
			d.fail(fmt.Sprintf("%s[%d]", field, i), fmt.Errorf("version 0x%02x, want 0x%02x (KZG)", h[0], blobHashVersionKZG))
		}
		if d.err != nil {
			return nil
		}
		items = rest
		hashes = append(hashes, [32]byte(h))
	}
	return hashes
}

func (d *fieldReader) authorizationList() []Authorization {
	const field = "authorizationList"
	items := d.list(field)
	if d.err != nil {
		return nil
	}
	if len(items) == 0 {
		d.fail(field, errors.New("must not be empty (EIP-7702)"))
		return nil
	}
	var list []Authorization
	for i := 0; len(items) > 0; i++ {
		if i == MaxAuthorizations {
			d.fail(field, fmt.Errorf("more than %d authorizations", MaxAuthorizations))
			return nil
		}
		content, rest, err := rlp.SplitList(items)
		if err != nil {
			d.fail(fmt.Sprintf("%s[%d]", field, i), err)
			return nil
		}
		items = rest
		e := newFieldReader(d.name()+"."+field, i, content, authFields)
		var a Authorization
		a.ChainID = e.bigInt("chainId")
		a.Address = e.address("address")
		a.Nonce = e.uint64("nonce")
		if y := e.uint64("yParity"); y > 1 {
			e.fail("yParity", fmt.Errorf("want 0 or 1, got %d", y))
		} else {
			a.YParity = uint8(y)
		}
		a.R = e.bytes32("r")
		a.S = e.bytes32("s")
		if err := e.close(); err != nil {
			d.err = err
			return nil
		}
		list = append(list, a)
	}
	return list
}

// EncodeUnsigned returns the unsigned transaction, the bytes that
// SigningHash hashes, as listed in the package documentation. For a Tx
// returned by DecodeUnsigned it is exactly the decoded input.
//
// It does not validate tx again: a hand-built Tx that DecodeUnsigned would
// refuse, say an EIP-4844 transaction without blob hashes, is encoded as it
// is. It panics where no encoding can represent tx: if tx.Type is not a
// type DecodeUnsigned accepts, an integer field is negative, an EIP-4844 or
// EIP-7702 transaction has a nil To, or a legacy transaction has a chain id
// below 1. A Tx from DecodeUnsigned never does, and encoding a transaction
// other than the one described would be worse than stopping.
func (tx *Tx) EncodeUnsigned() []byte {
	return tx.appendEnvelope(make([]byte, 0, tx.sizeHint()), nil)
}

// EncodeSigned returns the signed transaction, as listed in the package
// documentation: for a typed transaction, the envelope with sig's yParity,
// r and s appended to the field list; for a legacy one, the list with v, r
// and s in the place of chainId, 0 and 0. For an EIP-4844 transaction it is
// the canonical form, without blobs, not the network form that
// eth_sendRawTransaction takes (see the package documentation).
//
// It panics where EncodeUnsigned does, and if sig's yParity is not 0 or 1.
func (tx *Tx) EncodeSigned(sig Signature) []byte {
	if sig[64] > 1 {
		panic(fmt.Sprintf("ethtx: EncodeSigned: yParity %d is not 0 or 1", sig[64]))
	}
	return tx.appendEnvelope(make([]byte, 0, tx.sizeHint()+70), &sig)
}

// SigningHash returns the digest that the sender signs: the Keccak-256 hash
// of the unsigned transaction (EncodeUnsigned).
func (tx *Tx) SigningHash() [32]byte {
	// Encoded on the stack when it fits, as most transactions do: the
	// enclave hashes every transaction it is asked to sign.
	var buf [512]byte
	dst := buf[:0]
	if n := tx.sizeHint(); n > len(buf) {
		dst = make([]byte, 0, n)
	}
	return keccak256(tx.appendEnvelope(dst, nil))
}

// UnsignedHash returns the signing hash of the transaction that
// DecodeUnsigned accepted as unsigned: the Keccak-256 hash of those bytes.
// It is that Tx's SigningHash without encoding the transaction again:
// DecodeUnsigned accepts only the one encoding EncodeUnsigned makes
// (FuzzDecodeUnsigned checks both). For bytes DecodeUnsigned refuses it
// means nothing.
func UnsignedHash(unsigned []byte) [32]byte {
	return keccak256(unsigned)
}

// TransactionHash returns the hash by which the network knows a signed
// transaction: the Keccak-256 hash of its encoding (EncodeSigned).
func TransactionHash(signed []byte) [32]byte {
	return keccak256(signed)
}

func (tx *Tx) sizeHint() int {
	n := 200 + len(tx.Data) + 33*len(tx.BlobVersionedHashes) + 110*len(tx.AuthorizationList)
	for _, e := range tx.AccessList {
		n += 30 + 33*len(e.StorageKeys)
	}
	return n
}

func (tx *Tx) appendEnvelope(dst []byte, sig *Signature) []byte {
	switch tx.Type {
	case TypeLegacy:
		return tx.appendLegacy(dst, sig)
	case TypeAccessList, TypeDynamicFee:
	case TypeBlob, TypeSetCode:
		if tx.To == nil {
			panic(fmt.Sprintf("ethtx: encoding an %s transaction without a destination", tx.Type))
		}
	default:
		panic(fmt.Sprintf("ethtx: encoding transaction type 0x%02x (%s) not supported", uint8(tx.Type), tx.Type))
	}
	dst = append(dst, byte(tx.Type))
	start := len(dst)
	dst = rlp.AppendBigInt(dst, tx.ChainID)
	dst = rlp.AppendUint64(dst, tx.Nonce)
	if tx.Type == TypeAccessList {
		dst = rlp.AppendBigInt(dst, tx.GasPrice)
	} else {
		dst = rlp.AppendBigInt(dst, tx.MaxPriorityFeePerGas)
		dst = rlp.AppendBigInt(dst, tx.MaxFeePerGas)
	}
	dst = rlp.AppendUint64(dst, tx.GasLimit)
	dst = appendTo(dst, tx.To)
	dst = rlp.AppendBigInt(dst, tx.Value)
	dst = rlp.AppendString(dst, tx.Data)
	dst = appendAccessList(dst, tx.AccessList)
	switch tx.Type {
	case TypeBlob:
		dst = rlp.AppendBigInt(dst, tx.MaxFeePerBlobGas)
		hashes := len(dst)
		for _, h := range tx.BlobVersionedHashes {
			dst = rlp.AppendString(dst, h[:])
		}
		dst = rlp.EndList(dst, hashes)
	case TypeSetCode:
		auths := len(dst)
		for _, a := range tx.AuthorizationList {
			dst = appendAuthorization(dst, a)
		}
		dst = rlp.EndList(dst, auths)
	}
	if sig != nil {
		dst = rlp.AppendUint64(dst, uint64(sig[64]))
		dst = rlp.AppendUintBytes(dst, sig[:32])
		dst = rlp.AppendUintBytes(dst, sig[32:64])
	}
	return rlp.EndList(dst, start)
}

// maxSmallChainID bounds the chain ids whose EIP-155 v fits a uint64.
const maxSmallChainID = 1 << 62

func (tx *Tx) appendLegacy(dst []byte, sig *Signature) []byte {
	if tx.ChainID == nil || tx.ChainID.Sign() <= 0 {
		panic("ethtx: encoding a legacy transaction without a chain id (pre-EIP-155, replayable on every chain)")
	}
	start := len(dst)
	dst = rlp.AppendUint64(dst, tx.Nonce)
	dst = rlp.AppendBigInt(dst, tx.GasPrice)
	dst = rlp.AppendUint64(dst, tx.GasLimit)
	dst = appendTo(dst, tx.To)
	dst = rlp.AppendBigInt(dst, tx.Value)
	dst = rlp.AppendString(dst, tx.Data)
	if sig == nil {
		dst = rlp.AppendBigInt(dst, tx.ChainID)
		dst = append(dst, 0x80, 0x80)
		return rlp.EndList(dst, start)
	}
	// v = chainId*2 + 35 + yParity (EIP-155).
	if tx.ChainID.IsUint64() && tx.ChainID.Uint64() < maxSmallChainID {
		dst = rlp.AppendUint64(dst, tx.ChainID.Uint64()*2+35+uint64(sig[64]))
	} else {
		v := new(big.Int).Lsh(tx.ChainID, 1)
		v.Add(v, big.NewInt(35+int64(sig[64])))
		dst = rlp.AppendBigInt(dst, v)
	}
	dst = rlp.AppendUintBytes(dst, sig[:32])
	dst = rlp.AppendUintBytes(dst, sig[32:64])
	return rlp.EndList(dst, start)
}

func appendTo(dst []byte, to *Address) []byte {
	if to == nil {
		return rlp.AppendString(dst, nil)
	}
	return rlp.AppendString(dst, to[:])
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

func appendAuthorization(dst []byte, a Authorization) []byte {
	start := len(dst)
	dst = rlp.AppendBigInt(dst, a.ChainID)
	dst = rlp.AppendString(dst, a.Address[:])
	dst = rlp.AppendUint64(dst, a.Nonce)
	dst = rlp.AppendUint64(dst, uint64(a.YParity))
	dst = rlp.AppendUintBytes(dst, a.R[:])
	dst = rlp.AppendUintBytes(dst, a.S[:])
	return rlp.EndList(dst, start)
}

func keccak256(b []byte) (h [32]byte) {
	d := sha3.NewLegacyKeccak256()
	d.Write(b)
	d.Sum(h[:0])
	return h
}
