// Package ethmsg decodes and hashes the Ethereum messages that are signed but
// are not transactions: EIP-191 personal messages (personal_sign) and EIP-712
// typed data (eth_signTypedData_v4).
//
// The enclave signs only what it has decoded. This package turns untrusted
// bytes into a value that policy code can inspect, and computes the digest to
// sign from that value and nothing else: a bare digest never goes through
// here. Anything this package cannot decode with exactly one meaning it
// refuses; where wallets and libraries disagree on a meaning (see
// "Deliberate refusals" below) it refuses rather than picks one.
//
// # Personal messages (EIP-191 version 0x45)
//
// [PersonalHash] is keccak256("\x19Ethereum Signed Message:\n" || len(msg) in
// decimal || msg), for every msg. A message that already starts with 0x19,
// that is 32 bytes long like a digest, or that is itself typed-data JSON is
// still data and is hashed with the prefix: no input is ever signed raw.
//
// The hex form of a message in a sign request is decoded by package
// api/request, the one decoder of request payloads: "0x" (lower-case x)
// followed by a non-empty, even number of hexadecimal digits of either
// case, at most [MaxPersonalMessage] bytes once decoded. A string that is
// not hex is never read as UTF-8 text, so "0x1234" has one meaning.
//
// # Typed data (EIP-712)
//
// [ParseTypedData] takes the eth_signTypedData_v4 JSON document
//
//	{"types":{...,"EIP712Domain":[...]},"primaryType":"...","domain":{...},"message":{...}}
//
// and refuses it unless every rule below holds.
//
// The document:
//   - is at most [MaxTypedDataSize] bytes ([ErrTooLarge] otherwise) and passes
//     internal/strictjson: valid UTF-8, no lone surrogate escapes, no
//     duplicate key at any depth, no unknown or missing top-level key
//     (exactly types, primaryType, domain and message), no trailing data.
//     Inside domain and message, keys equal under ASCII case folding count as
//     duplicates (strictjson's rule for opaque values), which is why field
//     names may not differ only in case (below).
//
// Type definitions ("types"), every one of them, used or not:
//   - at most [MaxTypes] types; each has 1 to [MaxFields] fields (go-ethereum
//     encodes a struct with no fields incorrectly, so empty structs are
//     refused);
//   - type names match [A-Za-z][A-Za-z0-9_]* (go-ethereum's grammar for
//     referenced types), at most [MaxNameLength] bytes, and may not look like
//     a Solidity elementary type (address, bool, string, byte, function, or
//     int, uint, bytes, fixed, ufixed followed by digits and x);
//   - each field is {"name": ..., "type": ...} with no other keys; field
//     names are Solidity identifiers [A-Za-z_$][A-Za-z0-9_$]*, at most
//     [MaxNameLength] bytes, unique within their struct even under ASCII case
//     folding;
//   - a field type is a base type followed by zero or more array dimensions
//     "[]" (dynamic) or "[n]" (fixed, 1 <= n <= [MaxArrayLength], decimal
//     without leading zeros), at most [MaxDepth] dimensions, no spaces. As in
//     Solidity the last dimension is the outermost: T[2][3] is three arrays
//     of two T;
//   - a base type is address, bool, string, bytes, bytesN (1 <= N <= 32),
//     uintN or intN (N a multiple of 8, 8 <= N <= 256; no leading zeros), or
//     the name of a type defined in the document. The aliases uint and int
//     are refused: EIP-712 has none, and go-ethereum hashes "uint" under its
//     own name, so the same data would hash differently elsewhere;
//   - a struct may refer to itself, directly or through other structs, only
//     through an array with at least one dynamic dimension (Node[] or
//     Node[][2]); any other cycle has no finite value and is refused;
//   - EIP712Domain is defined and lists a subset of, in this order and with
//     these types: name string, version string, chainId uint256,
//     verifyingContract address, salt bytes32. Other fields, other types and
//     other orders are refused: ethers.js derives the domain type from the
//     domain's values in this fixed order, ignoring the declared one, so a
//     reordered domain is signed differently by different tool chains;
//   - the encodeType of every type (below) is at most [MaxEncodeTypeLength]
//     bytes, so that many types referring to one another cannot make hashing
//     cost far more than parsing.
//
// Types that neither the domain nor the message uses are validated like the
// others but play no part in the hash.
//
// The primary type (primaryType) names a defined type other than
// EIP712Domain. A document whose primaryType is EIP712Domain is refused:
// MetaMask then signs keccak256(0x19 0x01 || domainSeparator) alone while
// go-ethereum also appends the hash of the message, so its meaning depends on
// the wallet.
//
// Values ("domain" against EIP712Domain, "message" against the primary type)
// are decoded into a tree of [Value]s:
//   - a struct is a JSON object with exactly the type's fields: a missing or
//     an extra field is refused; [Value.Fields] are in type order. One
//     exception, in the domain object only (not in a struct of type
//     EIP712Domain inside the message): a standard EIP712Domain member (name,
//     version, chainId, verifyingContract, salt) that the EIP712Domain type
//     does not declare, given as "" or null (chainId only as null, since
//     go-ethereum reads "chainId": "" as chain 0), is absent and plays no
//     part in the hash. go-ethereum's apitypes.TypedData marshals a domain
//     that way ("salt": "", "chainId": null) and hashes it without those
//     members; ethers v6 and viem omit absent members. Any other value of an
//     undeclared member, any other name, and "" or null for a declared
//     member are refused as before;
//   - an array is a JSON array; a fixed-size one has exactly its length, a
//     dynamic one at most [MaxArrayLength] elements; each element is decoded
//     against the element type, so nested arrays must nest exactly as typed;
//   - address is a string that [ethtx.ParseAddress] accepts (0x prefix, 40
//     digits, valid EIP-55 checksum when in mixed case);
//   - bool is true or false; string is a JSON string;
//   - bytes is "0x" followed by an even number of hex digits (either case);
//     bytesN has exactly N bytes;
//   - uintN and intN are a JSON integer (no fraction, no exponent, no -0)
//     of magnitude at most 2^53-1, the integers every JSON parser reads
//     alike; or a string: decimal (an optional "-", no leading zeros, no
//     "-0", at most 78 digits) or "0x" followed by 1 to 64 hex digits,
//     read as a non-negative number. The value must be in range: 0 to
//     2^N-1 for uintN, -2^(N-1) to 2^(N-1)-1 for intN;
//   - null is never a value (an absent domain member, above, is no value);
//   - the tree is at most [MaxDepth] levels deep (the message or domain
//     object is level 1) and holds at most [MaxValues] values in all
//     (domain and message together, arrays and structs included).
//
// # Hashing
//
// As EIP-712 specifies:
//
//	encodeType(S) = S's definition, then the definitions of every struct
//	                type S refers to, transitively, other than S, sorted by name
//	                (byte order); a definition is Name(type1 name1,type2 name2)
//	typeHash(S)   = keccak256(encodeType(S))
//	hashStruct(s) = keccak256(typeHash(S) || enc(field1) || ... || enc(fieldN))
//	enc(v)        = address: left-padded to 32 bytes; bool: 0 or 1 as uint256;
//	                uintN: big-endian uint256; intN: sign-extended to 256 bits;
//	                bytesN: right-padded with zeros to 32 bytes;
//	                bytes, string: keccak256 of the bytes (UTF-8 for string);
//	                struct: hashStruct; array: keccak256 of the concatenated
//	                enc of its elements (nested arrays recursively)
//	Hash          = keccak256(0x19 0x01 || hashStruct(domain) || hashStruct(message))
//
// # Deliberate refusals
//
// go-ethereum's signer (signer/core/apitypes) accepts more than this package;
// the tests list every case (the cross-checks against go-ethereum live in
// the crosscheck module, crosscheck/ethmsg). Beyond the rules above it accepts: duplicate
// keys (the last wins), invalid UTF-8, unknown keys anywhere; a missing or
// undefined primaryType when the message is {}; structs with no fields
// (whose encodeType it truncates); the aliases uint and int; field names
// that are not identifiers, such as "a,uint256 b", which inject text into
// encodeType; recursion through fixed-size arrays; JSON numbers with a
// fraction (5.0) or exponent (1e18) and beyond 2^53-1 (which JavaScript
// wallets round); fixed-size arrays of any length and arrays nested other
// than typed (uint256[][] given [1,2]); addresses without 0x or with a bad
// checksum; "0X" prefixes, "+" signs, leading zeros, "-0" and "" as integers;
// intN values outside the signed range (it checks only the bit length, so
// int8 takes 255); reordered or retyped domain fields; primaryType
// EIP712Domain. It refuses an empty domain name or version, which this
// package accepts as EIP-712 allows.
package ethmsg

import (
	"errors"

	"golang.org/x/crypto/sha3"
)

// Size and shape caps. They bound the memory and time one request can cost
// inside the enclave; real-world typed data (Permit, Permit2, Seaport orders,
// Safe transactions) stays far below each.
const (
	// MaxPersonalMessage is the longest personal message, in bytes.
	MaxPersonalMessage = 64 << 10
	// MaxTypedDataSize is the longest typed-data JSON document, in bytes.
	MaxTypedDataSize = 256 << 10
	// MaxTypes is the most type definitions a document may hold.
	MaxTypes = 64
	// MaxFields is the most fields one struct type may have.
	MaxFields = 64
	// MaxNameLength is the longest type or field name, in bytes.
	MaxNameLength = 64
	// MaxEncodeTypeLength is the longest encodeType of any type, in bytes.
	MaxEncodeTypeLength = 16 << 10
	// MaxDepth is the deepest nesting of values (the domain or message object
	// is level 1), and the most array dimensions a type may have.
	MaxDepth = 16
	// MaxArrayLength is the most elements one array may have, and the
	// largest fixed array length a type may declare.
	MaxArrayLength = 1024
	// MaxValues is the most values (structs, arrays and atomic values) the
	// domain and message may hold together.
	MaxValues = 8192
)

// ErrTooLarge is returned (wrapped) when an input is longer than
// [MaxPersonalMessage] or [MaxTypedDataSize], so that callers can answer
// "too large" rather than "malformed".
var ErrTooLarge = errors.New("ethmsg: input too large")

// keccak256 returns the Keccak-256 (Ethereum's, not SHA3-256) of the
// concatenation of parts.
func keccak256(parts ...[]byte) (out [32]byte) {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	h.Sum(out[:0])
	return out
}
