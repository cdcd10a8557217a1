package ethtx

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"

	"github.com/nitrosign/nitrosign/internal/rlp"
)

// This file tests decoding of each transaction type: the fields of hand-made
// transactions, refusals with their exact errors, and inputs at the limits.

// validLegacy is the EIP-155 signing payload of a small valid legacy
// transaction.
func validLegacy(t testing.TB) []byte {
	return envelopeOf(TypeLegacy, validFieldsOf(t, TypeLegacy)...)
}

// Encodings of malformed or out-of-range values, for the error tables.
var (
	encLeadingZero  = []byte{0x82, 0x00, 0x01}
	encZeroByte     = []byte{0x00}
	encEmptyList    = []byte{0xc0}
	encSingleInHdr  = []byte{0x81, 0x01}
	encBig65Bits    = []byte{0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	encBig257Bits   = append([]byte{0xa1, 0x01}, make([]byte, 32)...)
	errSingleInHdr  = "non-canonical size: single byte below 0x80 must be encoded as itself"
	errLongFormSize = "non-canonical size: long form for a payload under 56 bytes"
)

// commonErrorCases are the refusals that every type shares: the envelope,
// field counts, and each field it has, with its shape and canonical form.
func commonErrorCases(t testing.TB, typ Type) []decodeErrorCase {
	fields := validFieldsOf(t, typ)
	valid := envelopeOf(typ, fields...)
	n := len(fields)
	var cases []decodeErrorCase
	add := func(name string, in []byte, wantErr string) {
		cases = append(cases, decodeErrorCase{name: typ.String() + "/" + name, in: in, wantErr: wantErr})
	}
	with := func(field string, enc []byte) []byte { return txWith(t, typ, field, enc) }

	if typ != TypeLegacy {
		add("type byte only", []byte{byte(typ)}, "ethtx: tx: unexpected end of input")
		add("payload is a string", []byte{byte(typ), 0x80}, "ethtx: tx: expected list, got string")
		add("double type byte", append([]byte{byte(typ)}, envelopeOf(typ, append(slices.Clone(fields), []byte{0x01}, []byte{0x01}, []byte{0x01})...)...),
			"ethtx: tx: expected list, got string")
		add(fmt.Sprintf("signed (%d fields)", n+3), envelopeOf(typ, append(slices.Clone(fields), []byte{0x01}, []byte{0x01}, []byte{0x01})...),
			fmt.Sprintf("ethtx: tx: want %d fields, got %d", n, n+3))
	}
	add("truncated", valid[:len(valid)-1], "ethtx: tx: unexpected end of input")
	add("trailing byte", append(slices.Clone(valid), 0x80), "ethtx: tx: trailing bytes after value")
	add("trailing list", append(slices.Clone(valid), 0xc0), "ethtx: tx: trailing bytes after value")
	add("empty list", envelopeOf(typ), fmt.Sprintf("ethtx: tx: want %d fields, got 0", n))
	add(fmt.Sprintf("%d fields", n-1), envelopeOf(typ, fields[:n-1]...), fmt.Sprintf("ethtx: tx: want %d fields, got %d", n, n-1))
	add(fmt.Sprintf("%d fields", n+1), envelopeOf(typ, append(slices.Clone(fields), []byte{0x80})...), fmt.Sprintf("ethtx: tx: want %d fields, got %d", n, n+1))
	add("malformed item after last field", envelopeOf(typ, append(slices.Clone(fields), encSingleInHdr)...), "ethtx: tx: "+errSingleInHdr)
	add("missing fields and malformed item", envelopeOf(typ, fields[0], encSingleInHdr), fmt.Sprintf("ethtx: tx.%s: %s", fieldNames[typ][1], errSingleInHdr))
	if payload := bytes.Join(fields, nil); len(payload) < 56 {
		long := append([]byte{0xf8, byte(len(payload))}, payload...)
		if typ != TypeLegacy {
			long = append([]byte{byte(typ)}, long...)
		}
		add("long-form list header", long, "ethtx: tx: "+errLongFormSize)
	}

	for _, field := range fieldNames[typ] {
		name := "ethtx: tx." + field + ": "
		switch field {
		case "chainId", "nonce", "gasLimit", "gasPrice", "maxPriorityFeePerGas", "maxFeePerGas", "value", "maxFeePerBlobGas":
			add(field+" leading zero", with(field, encLeadingZero), name+"non-canonical integer")
			add(field+" zero byte", with(field, encZeroByte), name+"non-canonical integer")
			add(field+" list", with(field, encEmptyList), name+"expected string, got list")
			add(field+" single byte in header", with(field, encSingleInHdr), name+errSingleInHdr)
			if field == "nonce" || field == "gasLimit" {
				add(field+" 65 bits", with(field, encBig65Bits), name+"integer too large")
			} else {
				add(field+" 257 bits", with(field, encBig257Bits), name+"integer too large")
			}
			if field == "chainId" {
				add("chainId zero", with(field, []byte{0x80}), name+"must not be zero")
			}
		case "to":
			add("to 19 bytes", with(field, rlp.AppendString(nil, make([]byte, 19))), name+"want 20 bytes, got 19")
			add("to 21 bytes", with(field, rlp.AppendString(nil, make([]byte, 21))), name+"want 20 bytes, got 21")
			add("to 1 byte", with(field, []byte{0x00}), name+"want 20 bytes, got 1")
			add("to 32 bytes", with(field, rlp.AppendString(nil, make([]byte, 32))), name+"want 20 bytes, got 32")
			add("to list", with(field, encEmptyList), name+"expected string, got list")
			if typ == TypeBlob || typ == TypeSetCode {
				add("to empty (contract creation)", with(field, []byte{0x80}), name+"want 20 bytes, got 0 (this transaction type cannot create a contract)")
			}
		case "data":
			add("data list", with(field, encEmptyList), name+"expected string, got list")
			add("data long form for short", with(field, []byte{0xb8, 0x01, 0xff}), name+errLongFormSize)
			add("data over cap", with(field, rlp.AppendString(nil, make([]byte, MaxDataSize+1))), fmt.Sprintf("%s%d bytes, limit is %d", name, MaxDataSize+1, MaxDataSize))
		case "accessList":
			addr20 := bytes.Repeat([]byte{1}, 20)
			add("accessList string", with(field, []byte{0x80}), name+"expected list, got string")
			add("accessList entry string", with(field, rlp.AppendList(nil, []byte{0x80})), "ethtx: tx.accessList[0]: expected list, got string")
			add("accessList second entry 1 field", with(field, rlp.AppendList(nil, append(accessEntry(addr20), rlp.AppendList(nil, rlp.AppendString(nil, addr20))...))),
				"ethtx: tx.accessList[1]: want 2 fields, got 1")
			add("accessList address 21 bytes", with(field, rlp.AppendList(nil, accessEntry(append(addr20, 1)))), "ethtx: tx.accessList[0].address: want 20 bytes, got 21")
			add("accessList storage key 0 bytes", with(field, rlp.AppendList(nil, accessEntry(addr20, nil))), "ethtx: tx.accessList[0].storageKeys[0]: want 32 bytes, got 0")
		}
	}
	return cases
}

// legacyErrorCases are the refusals particular to legacy transactions.
func legacyErrorCases(t testing.TB) []decodeErrorCase {
	f := validFieldsOf(t, TypeLegacy)
	with := func(field string, enc []byte) []byte { return txWith(t, TypeLegacy, field, enc) }
	// The signed EIP-155 example transaction (EIP-155's own vector).
	signed := unhex(t, "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")
	const pre155 = "ethtx: tx: pre-EIP-155 legacy transaction (6 fields, no chain id) refused: its signature would be replayable on every chain"
	const notZero = "must be 0 in an EIP-155 signing payload (is the transaction signed already?)"
	return []decodeErrorCase{
		{name: "legacy/pre-EIP-155 (6 fields)", in: envelopeOf(TypeLegacy, f[:6]...), wantErr: pre155},
		{name: "legacy/pre-EIP-155 contract creation", in: envelopeOf(TypeLegacy, f[0], f[1], f[2], []byte{0x80}, f[4], rlp.AppendString(nil, []byte{0x60, 0x00})), wantErr: pre155},
		{name: "legacy/pre-EIP-155 with a non-canonical field", in: envelopeOf(TypeLegacy, f[0], encLeadingZero, f[2], f[3], f[4], f[5]), wantErr: pre155},
		{name: "legacy/pre-EIP-155 with a malformed header", in: envelopeOf(TypeLegacy, f[0], encSingleInHdr, f[2], f[3], f[4], f[5]), wantErr: "ethtx: tx.gasPrice: " + errSingleInHdr},
		{name: "legacy/7 fields", in: envelopeOf(TypeLegacy, f[:7]...), wantErr: "ethtx: tx: want 9 fields, got 7"},
		{name: "legacy/signed (EIP-155 vector)", in: signed, wantErr: "ethtx: tx.r: " + notZero},
		{name: "legacy/signed pre-EIP-155 (v 27)", in: envelopeOf(TypeLegacy, append(slices.Clone(f[:6]), []byte{0x1b}, rlp.AppendString(nil, bytes.Repeat([]byte{0x11}, 32)), rlp.AppendString(nil, bytes.Repeat([]byte{0x22}, 32)))...),
			wantErr: "ethtx: tx.r: " + notZero},
		{name: "legacy/r 1", in: with("r", []byte{0x01}), wantErr: "ethtx: tx.r: " + notZero},
		{name: "legacy/s 1", in: with("s", []byte{0x01}), wantErr: "ethtx: tx.s: " + notZero},
		{name: "legacy/r 32 bytes", in: with("r", rlp.AppendString(nil, bytes.Repeat([]byte{0xff}, 32))), wantErr: "ethtx: tx.r: " + notZero},
		{name: "legacy/r zero byte", in: with("r", encZeroByte), wantErr: "ethtx: tx.r: non-canonical integer"},
		{name: "legacy/s leading zero", in: with("s", encLeadingZero), wantErr: "ethtx: tx.s: non-canonical integer"},
		{name: "legacy/s list", in: with("s", encEmptyList), wantErr: "ethtx: tx.s: expected string, got list"},
		{name: "legacy/r 257 bits", in: with("r", encBig257Bits), wantErr: "ethtx: tx.r: integer too large"},
		{name: "legacy/EIP-2930 fields without type byte", in: envelopeOf(TypeLegacy, validFieldsOf(t, TypeAccessList)...), wantErr: "ethtx: tx: want 9 fields, got 8"},
	}
}

// blobErrorCases are the refusals particular to EIP-4844 transactions.
func blobErrorCases(t testing.TB) []decodeErrorCase {
	hash := func(version byte, n int) []byte {
		h := bytes.Repeat([]byte{0xbb}, n)
		if n > 0 {
			h[0] = version
		}
		return rlp.AppendString(nil, h)
	}
	hashes := func(h ...[]byte) []byte {
		return txWith(t, TypeBlob, "blobVersionedHashes", rlp.AppendList(nil, bytes.Join(h, nil)))
	}
	good := hash(0x01, 32)
	tooMany := make([][]byte, MaxBlobVersionedHashes+1)
	for i := range tooMany {
		tooMany[i] = good
	}
	const field = "ethtx: tx.blobVersionedHashes"
	return []decodeErrorCase{
		{name: "EIP-4844/no blob hashes", in: hashes(), wantErr: field + ": must not be empty (EIP-4844)"},
		{name: "EIP-4844/blob hashes string", in: txWith(t, TypeBlob, "blobVersionedHashes", []byte{0x80}), wantErr: field + ": expected list, got string"},
		{name: "EIP-4844/blob hashes 32-byte string", in: txWith(t, TypeBlob, "blobVersionedHashes", good), wantErr: field + ": expected list, got string"},
		{name: "EIP-4844/blob hash 31 bytes", in: hashes(hash(0x01, 31)), wantErr: field + "[0]: want 32 bytes, got 31"},
		{name: "EIP-4844/blob hash 33 bytes", in: hashes(good, hash(0x01, 33)), wantErr: field + "[1]: want 32 bytes, got 33"},
		{name: "EIP-4844/blob hash empty", in: hashes(good, good, []byte{0x80}), wantErr: field + "[2]: want 32 bytes, got 0"},
		{name: "EIP-4844/blob hash version 0", in: hashes(hash(0x00, 32)), wantErr: field + "[0]: version 0x00, want 0x01 (KZG)"},
		{name: "EIP-4844/blob hash version 2", in: hashes(good, hash(0x02, 32)), wantErr: field + "[1]: version 0x02, want 0x01 (KZG)"},
		{name: "EIP-4844/blob hash version 0xff", in: hashes(hash(0xff, 32)), wantErr: field + "[0]: version 0xff, want 0x01 (KZG)"},
		{name: "EIP-4844/blob hash list", in: hashes(good, encEmptyList), wantErr: field + "[1]: expected string, got list"},
		{name: "EIP-4844/blob hash header runs past list", in: hashes(good, []byte{0xa0, 0x01}), wantErr: field + "[1]: unexpected end of input"},
		{name: "EIP-4844/too many blob hashes", in: hashes(tooMany...), wantErr: fmt.Sprintf("%s: more than %d blob hashes", field, MaxBlobVersionedHashes)},
		{name: "EIP-4844/signed canonical form", in: envelopeOf(TypeBlob, append(validFieldsOf(t, TypeBlob), []byte{0x01}, []byte{0x01}, []byte{0x01})...),
			wantErr: "ethtx: tx: want 11 fields, got 14"},
		{name: "EIP-4844/network form with blobs", in: envelopeOf(TypeBlob, envelopeOf(TypeBlob, append(validFieldsOf(t, TypeBlob), []byte{0x01}, []byte{0x01}, []byte{0x01})...)[1:], encEmptyList, encEmptyList, encEmptyList),
			wantErr: "ethtx: tx: want 11 fields, got 4"},
	}
}

// setCodeErrorCases are the refusals particular to EIP-7702 transactions.
func setCodeErrorCases(t testing.TB) []decodeErrorCase {
	auths := func(entries ...[]byte) []byte {
		return txWith(t, TypeSetCode, "authorizationList", rlp.AppendList(nil, bytes.Join(entries, nil)))
	}
	good := authEntry(t)
	tooMany := make([][]byte, MaxAuthorizations+1)
	for i := range tooMany {
		tooMany[i] = good
	}
	var raw []byte // an authorization's six fields, not in a list
	raw, _, _ = rlp.SplitList(good)
	const field = "ethtx: tx.authorizationList"
	return []decodeErrorCase{
		{name: "EIP-7702/no authorizations", in: auths(), wantErr: field + ": must not be empty (EIP-7702)"},
		{name: "EIP-7702/authorizations string", in: txWith(t, TypeSetCode, "authorizationList", []byte{0x80}), wantErr: field + ": expected list, got string"},
		{name: "EIP-7702/authorization fields not in a list", in: auths(raw), wantErr: field + "[0]: expected list, got string"},
		{name: "EIP-7702/authorization empty", in: auths(good, encEmptyList), wantErr: field + "[1]: want 6 fields, got 0"},
		{name: "EIP-7702/authorization 5 fields", in: auths(rlp.AppendList(nil, raw[:len(raw)-33])), wantErr: field + "[0]: want 6 fields, got 5"},
		{name: "EIP-7702/authorization 7 fields", in: auths(rlp.AppendList(nil, append(slices.Clone(raw), 0x80))), wantErr: field + "[0]: want 6 fields, got 7"},
		{name: "EIP-7702/authorization malformed item after last field", in: auths(rlp.AppendList(nil, append(slices.Clone(raw), encSingleInHdr...))), wantErr: field + "[0]: " + errSingleInHdr},
		{name: "EIP-7702/authorization header runs past list", in: auths(good, []byte{0xf8, 0x40}), wantErr: field + "[1]: unexpected end of input"},
		{name: "EIP-7702/authorization chainId 257 bits", in: auths(authEntry(t, "chainId", encBig257Bits)), wantErr: field + "[0].chainId: integer too large"},
		{name: "EIP-7702/authorization chainId leading zero", in: auths(authEntry(t, "chainId", encLeadingZero)), wantErr: field + "[0].chainId: non-canonical integer"},
		{name: "EIP-7702/authorization chainId zero byte", in: auths(authEntry(t, "chainId", encZeroByte)), wantErr: field + "[0].chainId: non-canonical integer"},
		{name: "EIP-7702/authorization chainId list", in: auths(authEntry(t, "chainId", encEmptyList)), wantErr: field + "[0].chainId: expected string, got list"},
		{name: "EIP-7702/authorization address 19 bytes", in: auths(good, good, authEntry(t, "address", rlp.AppendString(nil, make([]byte, 19)))),
			wantErr: field + "[2].address: want 20 bytes, got 19"},
		{name: "EIP-7702/authorization address empty", in: auths(authEntry(t, "address", []byte{0x80})), wantErr: field + "[0].address: want 20 bytes, got 0"},
		{name: "EIP-7702/authorization address list", in: auths(authEntry(t, "address", encEmptyList)), wantErr: field + "[0].address: expected string, got list"},
		{name: "EIP-7702/authorization nonce 65 bits", in: auths(authEntry(t, "nonce", encBig65Bits)), wantErr: field + "[0].nonce: integer too large"},
		{name: "EIP-7702/authorization nonce leading zero", in: auths(authEntry(t, "nonce", encLeadingZero)), wantErr: field + "[0].nonce: non-canonical integer"},
		{name: "EIP-7702/authorization nonce single byte in header", in: auths(authEntry(t, "nonce", encSingleInHdr)), wantErr: field + "[0].nonce: " + errSingleInHdr},
		{name: "EIP-7702/authorization yParity 2", in: auths(authEntry(t, "yParity", []byte{0x02})), wantErr: field + "[0].yParity: want 0 or 1, got 2"},
		{name: "EIP-7702/authorization yParity 27", in: auths(authEntry(t, "yParity", []byte{0x1b})), wantErr: field + "[0].yParity: want 0 or 1, got 27"},
		{name: "EIP-7702/authorization yParity 256", in: auths(authEntry(t, "yParity", []byte{0x82, 0x01, 0x00})), wantErr: field + "[0].yParity: want 0 or 1, got 256"},
		{name: "EIP-7702/authorization yParity zero byte", in: auths(authEntry(t, "yParity", encZeroByte)), wantErr: field + "[0].yParity: non-canonical integer"},
		{name: "EIP-7702/authorization yParity 65 bits", in: auths(authEntry(t, "yParity", encBig65Bits)), wantErr: field + "[0].yParity: integer too large"},
		{name: "EIP-7702/authorization r 257 bits", in: auths(authEntry(t, "r", encBig257Bits)), wantErr: field + "[0].r: integer too large"},
		{name: "EIP-7702/authorization r leading zero", in: auths(authEntry(t, "r", append([]byte{0xa0, 0x00}, bytes.Repeat([]byte{0x11}, 31)...))), wantErr: field + "[0].r: non-canonical integer"},
		{name: "EIP-7702/authorization r list", in: auths(authEntry(t, "r", encEmptyList)), wantErr: field + "[0].r: expected string, got list"},
		{name: "EIP-7702/authorization s 257 bits", in: auths(authEntry(t, "s", encBig257Bits)), wantErr: field + "[0].s: integer too large"},
		{name: "EIP-7702/authorization s zero byte", in: auths(authEntry(t, "s", encZeroByte)), wantErr: field + "[0].s: non-canonical integer"},
		{name: "EIP-7702/too many authorizations", in: auths(tooMany...), wantErr: fmt.Sprintf("%s: more than %d authorizations", field, MaxAuthorizations)},
	}
}

// TestDecodeTypes decodes a small transaction of each type and checks every
// field, including that fields the type lacks are nil.
func TestDecodeTypes(t *testing.T) {
	to := Address(bytes.Repeat([]byte{0x35}, 20))
	gwei := func(n int64) *big.Int { return big.NewInt(n * 1e9) }
	ether := big.NewInt(1e18)
	check := func(t *testing.T, name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			in := envelopeOf(typ, validFieldsOf(t, typ)...)
			tx, err := DecodeUnsigned(in)
			if err != nil {
				t.Fatal(err)
			}
			if re := tx.EncodeUnsigned(); !bytes.Equal(re, in) {
				t.Fatalf("EncodeUnsigned = %x, want %x", re, in)
			}
			check(t, "Type", tx.Type, typ)
			check(t, "ChainID", tx.ChainID, 1)
			check(t, "Nonce", tx.Nonce, 0)
			check(t, "GasLimit", tx.GasLimit, 21000)
			if tx.To == nil || *tx.To != to {
				t.Errorf("To = %v, want %v", tx.To, to)
			}
			check(t, "Value", tx.Value, ether)
			if tx.Data != nil || tx.AccessList != nil {
				t.Errorf("Data, AccessList = %x, %v, want nil", tx.Data, tx.AccessList)
			}
			if typ == TypeLegacy || typ == TypeAccessList {
				check(t, "GasPrice", tx.GasPrice, gwei(20))
				check(t, "MaxPriorityFeePerGas", tx.MaxPriorityFeePerGas, (*big.Int)(nil))
				check(t, "MaxFeePerGas", tx.MaxFeePerGas, (*big.Int)(nil))
			} else {
				check(t, "GasPrice", tx.GasPrice, (*big.Int)(nil))
				check(t, "MaxPriorityFeePerGas", tx.MaxPriorityFeePerGas, gwei(1))
				check(t, "MaxFeePerGas", tx.MaxFeePerGas, gwei(20))
			}
			if typ == TypeBlob {
				check(t, "MaxFeePerBlobGas", tx.MaxFeePerBlobGas, gwei(1))
				want := [32]byte(bytes.Repeat([]byte{0xbb}, 32))
				want[0] = 0x01
				if len(tx.BlobVersionedHashes) != 1 || tx.BlobVersionedHashes[0] != want {
					t.Errorf("BlobVersionedHashes = %x", tx.BlobVersionedHashes)
				}
			} else if tx.MaxFeePerBlobGas != nil || tx.BlobVersionedHashes != nil {
				t.Errorf("MaxFeePerBlobGas, BlobVersionedHashes = %v, %x, want nil", tx.MaxFeePerBlobGas, tx.BlobVersionedHashes)
			}
			if typ == TypeSetCode {
				want := []Authorization{{ChainID: big.NewInt(1), Address: Address(bytes.Repeat([]byte{0xaa}, 20)), Nonce: 7, YParity: 1,
					R: [32]byte(bytes.Repeat([]byte{0x11}, 32)), S: [32]byte(bytes.Repeat([]byte{0x22}, 32))}}
				check(t, "AuthorizationList", tx.AuthorizationList, want)
			} else if tx.AuthorizationList != nil {
				t.Errorf("AuthorizationList = %v, want nil", tx.AuthorizationList)
			}
		})
	}
}

// TestEIP155Vector checks the example of EIP-155 itself: its signing
// payload, signing hash, signature (RFC 6979) and signed transaction.
func TestEIP155Vector(t *testing.T) {
	unsigned := unhex(t, "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080")
	tx, err := DecodeUnsigned(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Type != TypeLegacy || tx.ChainID.Cmp(big.NewInt(1)) != 0 || tx.Nonce != 9 || tx.GasPrice.Cmp(big.NewInt(20e9)) != 0 ||
		tx.GasLimit != 21000 || tx.Value.Cmp(big.NewInt(1e18)) != 0 || tx.Data != nil {
		t.Fatalf("decoded %+v", tx)
	}
	hash := tx.SigningHash()
	if want := unhex(t, "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"); !bytes.Equal(hash[:], want) {
		t.Fatalf("SigningHash = %x, want %x", hash, want)
	}
	priv := keyFromHex(t, "4646464646464646464646464646464646464646464646464646464646464646")
	sig := Sign(priv, hash)
	want := unhex(t, "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")
	if signed := tx.EncodeSigned(sig); !bytes.Equal(signed, want) {
		t.Fatalf("EncodeSigned = %x\n          want %x", signed, want)
	}
	if from, err := RecoverAddress(hash, sig); err != nil || from != PubkeyToAddress(priv.PubKey()) {
		t.Fatalf("RecoverAddress = %s, %v", from, err)
	}
}

func TestDecodeAtLimitsEveryType(t *testing.T) {
	ones := func(n int) []byte { return rlp.AppendString(nil, bytes.Repeat([]byte{0xff}, n)) }
	blobHash := append([]byte{0x01}, bytes.Repeat([]byte{0xbb}, 31)...)
	maxHashes := make([][]byte, MaxBlobVersionedHashes)
	for i := range maxHashes {
		maxHashes[i] = rlp.AppendString(nil, blobHash)
	}
	maxAuths := make([][]byte, MaxAuthorizations)
	for i := range maxAuths {
		maxAuths[i] = authEntry(t)
	}
	auth := func(replace ...any) []byte {
		return txWith(t, TypeSetCode, "authorizationList", rlp.AppendList(nil, authEntry(t, replace...)))
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "legacy contract creation", in: txWith(t, TypeLegacy, "to", []byte{0x80})},
		{name: "legacy chainId 2^256-1", in: txWith(t, TypeLegacy, "chainId", ones(32))},
		{name: "legacy chainId 2^64", in: txWith(t, TypeLegacy, "chainId", append([]byte{0x89, 0x01}, make([]byte, 8)...))},
		{name: "legacy gasPrice 2^256-1", in: txWith(t, TypeLegacy, "gasPrice", ones(32))},
		{name: "legacy nonce 2^64-1", in: txWith(t, TypeLegacy, "nonce", ones(8))},
		{name: "legacy data at cap", in: txWith(t, TypeLegacy, "data", rlp.AppendString(nil, make([]byte, MaxDataSize)))},
		{name: "EIP-2930 contract creation", in: txWith(t, TypeAccessList, "to", []byte{0x80})},
		{name: "EIP-2930 access list", in: txWith(t, TypeAccessList, "accessList", rlp.AppendList(nil, accessEntry(bytes.Repeat([]byte{1}, 20), make([]byte, 32))))},
		{name: "EIP-4844 blob hashes at cap", in: txWith(t, TypeBlob, "blobVersionedHashes", rlp.AppendList(nil, bytes.Join(maxHashes, nil)))},
		{name: "EIP-4844 maxFeePerBlobGas zero", in: txWith(t, TypeBlob, "maxFeePerBlobGas", []byte{0x80})},
		{name: "EIP-4844 maxFeePerBlobGas 2^256-1", in: txWith(t, TypeBlob, "maxFeePerBlobGas", ones(32))},
		{name: "EIP-7702 authorizations at cap", in: txWith(t, TypeSetCode, "authorizationList", rlp.AppendList(nil, bytes.Join(maxAuths, nil)))},
		{name: "EIP-7702 authorization for any chain", in: auth("chainId", []byte{0x80})},
		{name: "EIP-7702 authorization chainId 2^256-1", in: auth("chainId", ones(32))},
		{name: "EIP-7702 authorization nonce 0", in: auth("nonce", []byte{0x80})},
		{name: "EIP-7702 authorization nonce 2^64-1", in: auth("nonce", ones(8))},
		{name: "EIP-7702 authorization yParity 0", in: auth("yParity", []byte{0x80})},
		{name: "EIP-7702 authorization r, s 2^256-1", in: auth("r", ones(32), "s", ones(32))},
		{name: "EIP-7702 authorization r, s 0", in: auth("r", []byte{0x80}, "s", []byte{0x80})},
		{name: "EIP-7702 authorization r, s short", in: auth("r", []byte{0x01}, "s", ones(5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := DecodeUnsigned(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if re := tx.EncodeUnsigned(); !bytes.Equal(re, tt.in) {
				t.Fatalf("re-encoding differs from input:\n got %x\nwant %x", re, tt.in)
			}
		})
	}
}

// TestAuthorityRefuses checks that Authority refuses what EIP-7702 treats
// as an invalid signature, with its error. (crosscheck/ethtx checks that
// go-ethereum refuses each one too.)
func TestAuthorityRefuses(t *testing.T) {
	priv := keyFromHex(t, "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	a := Authorization{ChainID: new(big.Int), Address: Address(bytes.Repeat([]byte{0xaa}, 20)), Nonce: 1}
	sig := Sign(priv, a.SigningHash())
	a.R, a.S, a.YParity = [32]byte(sig[:32]), [32]byte(sig[32:64]), sig[64]
	if got, err := a.Authority(); err != nil || got != PubkeyToAddress(priv.PubKey()) {
		t.Fatalf("Authority = %s, %v; want %s", got, err, PubkeyToAddress(priv.PubKey()))
	}
	nBytes := [32]byte(curveN.FillBytes(make([]byte, 32)))
	highS := a
	new(big.Int).Sub(curveN, new(big.Int).SetBytes(a.S[:])).FillBytes(highS.S[:])
	highS.YParity ^= 1
	with := func(f func(*Authorization)) Authorization {
		b := a
		f(&b)
		return b
	}
	tests := []struct {
		name    string
		a       Authorization
		wantErr string
	}{
		{name: "high s", a: highS, wantErr: "ethtx: authorization: signature: s is above n/2 (EIP-2)"},
		{name: "yParity 2", a: with(func(a *Authorization) { a.YParity = 2 }), wantErr: "ethtx: authorization: signature: yParity is 2, want 0 or 1"},
		{name: "r zero", a: with(func(a *Authorization) { a.R = [32]byte{} }), wantErr: "ethtx: authorization: signature: r is not in [1, n-1]"},
		{name: "r n", a: with(func(a *Authorization) { a.R = nBytes }), wantErr: "ethtx: authorization: signature: r is not in [1, n-1]"},
		{name: "s zero", a: with(func(a *Authorization) { a.S = [32]byte{} }), wantErr: "ethtx: authorization: signature: s is not in [1, n-1]"},
		{name: "s n", a: with(func(a *Authorization) { a.S = nBytes }), wantErr: "ethtx: authorization: signature: s is not in [1, n-1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Authority()
			if err == nil {
				t.Fatalf("Authority accepted the signature, recovering %s", got)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error = %q, want %q", err, tt.wantErr)
			}
		})
	}
	// Another chain id, address or nonce is another message: the same
	// signature recovers someone else, or no one.
	for _, b := range []Authorization{
		with(func(a *Authorization) { a.ChainID = big.NewInt(1) }),
		with(func(a *Authorization) { a.Address[0] ^= 1 }),
		with(func(a *Authorization) { a.Nonce++ }),
	} {
		if got, err := b.Authority(); err == nil && got == PubkeyToAddress(priv.PubKey()) {
			t.Fatalf("signature over %+v recovers the signer of %+v", a, b)
		}
	}
}

// TestTypesMatchDecoder checks that Types lists exactly the types that
// DecodeUnsigned decodes: every other type byte is refused as unsupported.
// Package policy checks that its format names or refuses each type of
// Types, so a type the decoder learns is never allowed by default.
func TestTypesMatchDecoder(t *testing.T) {
	types := Types()
	if !slices.IsSorted(types) || len(slices.Compact(slices.Clone(types))) != len(types) {
		t.Fatalf("Types() = %v: want distinct types in order", types)
	}
	for _, typ := range types {
		tx, err := DecodeUnsigned(envelopeOf(typ, validFieldsOf(t, typ)...))
		if err != nil {
			t.Errorf("type %s of Types(): %v", typ, err)
			continue
		}
		if tx.Type != typ {
			t.Errorf("type %s of Types() decodes as %s", typ, tx.Type)
		}
		if typ.String() == fmt.Sprintf("unknown type 0x%02x", uint8(typ)) {
			t.Errorf("type 0x%02x of Types() has no name", uint8(typ))
		}
	}
	// Every type byte (0x00 to 0x7f): decoded only for a type of Types.
	// Legacy transactions have no type byte; 0x00 is not theirs.
	for b := 0; b < 0x80; b++ {
		_, err := DecodeUnsigned([]byte{byte(b), 0xc0})
		listed := b != int(TypeLegacy) && slices.Contains(types, Type(b))
		if unsupported := errors.Is(err, ErrUnsupportedType); unsupported == listed {
			t.Errorf("type byte 0x%02x: listed in Types() %v, but DecodeUnsigned says %v", b, listed, err)
		}
	}
}
