package ethtx

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/nitrosign/nitrosign/internal/rlp"
)

func TestDecodeUnsignedFields(t *testing.T) {
	b := unhex(t, "02f8a6 01 80 843b9aca00 8504a817c800 825208 94a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48 80"+
		" b844a9059cbb0000000000000000000000003535353535353535353535353535353535353535"+
		"0000000000000000000000000000000000000000000000000de0b6b3a7640000"+
		" f838 f7 94a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48 e1 a0 0000000000000000000000000000000000000000000000000000000000000007")
	tx, err := DecodeUnsigned(b)
	if err != nil {
		t.Fatal(err)
	}
	usdc, _ := ParseAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	switch {
	case tx.Type != TypeDynamicFee, tx.ChainID.Cmp(big.NewInt(1)) != 0, tx.Nonce != 0,
		tx.MaxPriorityFeePerGas.Cmp(big.NewInt(1e9)) != 0, tx.MaxFeePerGas.Cmp(big.NewInt(20e9)) != 0,
		tx.GasLimit != 21000, tx.To == nil || *tx.To != usdc, tx.Value.Sign() != 0,
		len(tx.Data) != 68, !bytes.Equal(tx.Data[:4], []byte{0xa9, 0x05, 0x9c, 0xbb}),
		len(tx.AccessList) != 1, tx.AccessList[0].Address != usdc,
		len(tx.AccessList[0].StorageKeys) != 1, tx.AccessList[0].StorageKeys[0][31] != 7,
		tx.GasPrice != nil:
		t.Fatalf("DecodeUnsigned decoded %+v", tx)
	}
	if re := tx.EncodeUnsigned(); !bytes.Equal(re, b) {
		t.Fatalf("EncodeUnsigned = %x, want %x", re, b)
	}
	// The Tx does not alias the input.
	b[len(b)-1] ^= 0xff
	b[60] ^= 0xff
	if tx.AccessList[0].StorageKeys[0][31] != 7 || tx.Data[0] != 0xa9 {
		t.Fatal("decoded Tx aliases its input")
	}
}

func TestDecodeUnsignedContractCreation(t *testing.T) {
	b := withField(t, 5, []byte{0x80})
	tx, err := DecodeUnsigned(b)
	if err != nil {
		t.Fatal(err)
	}
	if tx.To != nil {
		t.Fatalf("To = %v, want nil for contract creation", tx.To)
	}
	if re := tx.EncodeUnsigned(); !bytes.Equal(re, b) {
		t.Fatalf("EncodeUnsigned = %x, want %x", re, b)
	}
}

// decodeErrorCase is an input DecodeUnsigned refuses, with the exact
// error, and the sentinel it wraps if any.
type decodeErrorCase struct {
	name    string
	in      []byte
	wantErr string
	wantIs  error
}

// decodeErrorCases are the refused inputs: malformed ones of every kind and
// type, and unsupported types. They are seeds of FuzzDecodeUnsigned too.
func decodeErrorCases(t testing.TB) []decodeErrorCase {
	var cases []decodeErrorCase
	cases = append(cases, eip1559ErrorCases(t)...)
	for _, typ := range allTypes {
		cases = append(cases, commonErrorCases(t, typ)...)
	}
	cases = append(cases, legacyErrorCases(t)...)
	cases = append(cases, blobErrorCases(t)...)
	cases = append(cases, setCodeErrorCases(t)...)
	return cases
}

// eip1559ErrorCases are hand-made malformed EIP-1559 transactions and
// inputs of other types.
func eip1559ErrorCases(t testing.TB) []decodeErrorCase {
	big33 := append([]byte{0xa1, 0x01}, make([]byte, 32)...)
	addr19 := rlp.AppendString(nil, bytes.Repeat([]byte{1}, 19))
	addr20 := bytes.Repeat([]byte{1}, 20)
	key32 := bytes.Repeat([]byte{2}, 32)
	manyEntries := make([][]byte, MaxAccessListEntries+1)
	for i := range manyEntries {
		manyEntries[i] = accessEntry(addr20)
	}
	manyKeys := make([][]byte, MaxAccessListStorageKeys/2+1)
	for i := range manyKeys {
		manyKeys[i] = key32
	}
	f := validFields(t)

	return []decodeErrorCase{
		// Envelope.
		{name: "empty", in: nil, wantErr: "ethtx: empty transaction"},
		{name: "type byte only", in: []byte{0x02}, wantErr: "ethtx: tx: unexpected end of input", wantIs: rlp.ErrUnexpectedEnd},
		{name: "payload is a string", in: []byte{0x02, 0x80}, wantErr: "ethtx: tx: expected list, got string", wantIs: rlp.ErrExpectedList},
		{name: "truncated list", in: envelope(f...)[:20], wantErr: "ethtx: tx: unexpected end of input"},
		{name: "trailing byte", in: append(envelope(f...), 0x80), wantErr: "ethtx: tx: trailing bytes after value", wantIs: rlp.ErrTrailingBytes},
		{name: "long-form list header", in: append([]byte{0x02, 0xf8, byte(len(envelope(f...)) - 2)}, envelope(f...)[2:]...),
			wantErr: "ethtx: tx: non-canonical size: long form for a payload under 56 bytes", wantIs: rlp.ErrNonCanonicalSize},
		{name: "8 fields", in: envelope(f[:8]...), wantErr: "ethtx: tx: want 9 fields, got 8"},
		{name: "10 fields", in: envelope(append(f[:9:9], []byte{0x80})...), wantErr: "ethtx: tx: want 9 fields, got 10"},
		{name: "12 fields (signed)", in: envelope(append(f[:9:9], []byte{0x01}, []byte{0x01}, []byte{0x01})...), wantErr: "ethtx: tx: want 9 fields, got 12"},
		{name: "too large", in: append([]byte{0x02}, make([]byte, MaxUnsignedSize)...), wantErr: fmt.Sprintf("ethtx: transaction is %d bytes, limit is %d", MaxUnsignedSize+1, MaxUnsignedSize)},
		{name: "malformed field header", in: envelope(f[0], f[1], []byte{0x81, 0x05}, f[3], f[4], f[5], f[6], f[7], f[8]),
			wantErr: "ethtx: tx.maxPriorityFeePerGas: non-canonical size: single byte below 0x80 must be encoded as itself"},
		{name: "malformed item after last field", in: envelope(append(f[:9:9], []byte{0x81, 0x05})...),
			wantErr: "ethtx: tx: non-canonical size: single byte below 0x80 must be encoded as itself"},
		{name: "missing fields and malformed item", in: envelope(f[0], []byte{0x81, 0x05}),
			wantErr: "ethtx: tx.nonce: non-canonical size: single byte below 0x80 must be encoded as itself"},

		// Types.
		{name: "EIP-1559 fields without type byte", in: rlp.AppendList(nil, bytes.Join(f, nil)), wantErr: "ethtx: tx.to: want 20 bytes, got 5"},
		{name: "EIP-1559 fields as EIP-2930", in: append([]byte{0x01}, envelope(f...)[1:]...), wantErr: "ethtx: tx: want 8 fields, got 9"},
		{name: "EIP-1559 fields as EIP-4844", in: append([]byte{0x03}, envelope(f...)[1:]...), wantErr: "ethtx: tx: want 11 fields, got 9"},
		{name: "EIP-1559 fields as EIP-7702", in: append([]byte{0x04}, envelope(f...)[1:]...), wantErr: "ethtx: tx: want 10 fields, got 9"},
		{name: "EIP-4844 empty list", in: []byte{0x03, 0xc0}, wantErr: "ethtx: tx: want 11 fields, got 0"},
		{name: "EIP-7702 empty list", in: []byte{0x04, 0xc0}, wantErr: "ethtx: tx: want 10 fields, got 0"},
		{name: "type 0x00", in: []byte{0x00, 0xc0}, wantErr: "ethtx: unknown transaction type 0x00", wantIs: ErrUnsupportedType},
		{name: "type 0x00 before a legacy transaction", in: append([]byte{0x00}, validLegacy(t)...), wantErr: "ethtx: unknown transaction type 0x00", wantIs: ErrUnsupportedType},
		{name: "type 0x05", in: []byte{0x05, 0xc0}, wantErr: "ethtx: unknown transaction type 0x05", wantIs: ErrUnsupportedType},
		{name: "type 0x05 with EIP-7702 fields", in: append([]byte{0x05}, envelopeOf(TypeSetCode, validFieldsOf(t, TypeSetCode)...)[1:]...), wantErr: "ethtx: unknown transaction type 0x05", wantIs: ErrUnsupportedType},
		{name: "type 0x06", in: []byte{0x06}, wantErr: "ethtx: unknown transaction type 0x06", wantIs: ErrUnsupportedType},
		{name: "type 0x7e", in: []byte{0x7e, 0xc0}, wantErr: "ethtx: unknown transaction type 0x7e", wantIs: ErrUnsupportedType},
		{name: "type 0x7f", in: []byte{0x7f}, wantErr: "ethtx: unknown transaction type 0x7f", wantIs: ErrUnsupportedType},
		{name: "RLP string", in: []byte{0x80}, wantErr: "ethtx: invalid transaction type byte 0x80"},
		{name: "RLP long string", in: []byte{0xb8, 0x40}, wantErr: "ethtx: invalid transaction type byte 0xb8"},
		{name: "RLP string of a transaction", in: rlp.AppendString(nil, envelope(f...)), wantErr: "ethtx: invalid transaction type byte 0xb2"},

		// chainId.
		{name: "chainId zero", in: withField(t, 0, []byte{0x80}), wantErr: "ethtx: tx.chainId: must not be zero"},
		{name: "chainId leading zero", in: withField(t, 0, []byte{0x82, 0x00, 0x01}), wantErr: "ethtx: tx.chainId: non-canonical integer", wantIs: rlp.ErrNonCanonicalInteger},
		{name: "chainId zero byte", in: withField(t, 0, []byte{0x00}), wantErr: "ethtx: tx.chainId: non-canonical integer"},
		{name: "chainId 257 bits", in: withField(t, 0, big33), wantErr: "ethtx: tx.chainId: integer too large", wantIs: rlp.ErrIntegerTooLarge},
		{name: "chainId list", in: withField(t, 0, []byte{0xc1, 0x01}), wantErr: "ethtx: tx.chainId: expected string, got list", wantIs: rlp.ErrExpectedString},

		// nonce.
		{name: "nonce 65 bits", in: withField(t, 1, []byte{0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0}), wantErr: "ethtx: tx.nonce: integer too large"},
		{name: "nonce leading zero", in: withField(t, 1, []byte{0x82, 0x00, 0xff}), wantErr: "ethtx: tx.nonce: non-canonical integer"},
		{name: "nonce single byte in header", in: withField(t, 1, []byte{0x81, 0x01}), wantErr: "ethtx: tx.nonce: non-canonical size: single byte below 0x80 must be encoded as itself"},

		// Fees and gas.
		{name: "maxPriorityFeePerGas leading zero", in: withField(t, 2, []byte{0x82, 0x00, 0x01}), wantErr: "ethtx: tx.maxPriorityFeePerGas: non-canonical integer"},
		{name: "maxPriorityFeePerGas list", in: withField(t, 2, []byte{0xc0}), wantErr: "ethtx: tx.maxPriorityFeePerGas: expected string, got list"},
		{name: "maxFeePerGas 257 bits", in: withField(t, 3, big33), wantErr: "ethtx: tx.maxFeePerGas: integer too large"},
		{name: "maxFeePerGas zero byte", in: withField(t, 3, []byte{0x00}), wantErr: "ethtx: tx.maxFeePerGas: non-canonical integer"},
		{name: "gasLimit 65 bits", in: withField(t, 4, []byte{0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0}), wantErr: "ethtx: tx.gasLimit: integer too large"},
		{name: "gasLimit leading zero", in: withField(t, 4, []byte{0x83, 0x00, 0x52, 0x08}), wantErr: "ethtx: tx.gasLimit: non-canonical integer"},

		// to.
		{name: "to 19 bytes", in: withField(t, 5, addr19), wantErr: "ethtx: tx.to: want 20 bytes, got 19"},
		{name: "to 21 bytes", in: withField(t, 5, rlp.AppendString(nil, make([]byte, 21))), wantErr: "ethtx: tx.to: want 20 bytes, got 21"},
		{name: "to 1 byte", in: withField(t, 5, []byte{0x00}), wantErr: "ethtx: tx.to: want 20 bytes, got 1"},
		{name: "to list", in: withField(t, 5, []byte{0xc0}), wantErr: "ethtx: tx.to: expected string, got list"},

		// value.
		{name: "value leading zero", in: withField(t, 6, []byte{0x89, 0x00, 0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00}), wantErr: "ethtx: tx.value: non-canonical integer", wantIs: rlp.ErrNonCanonicalInteger},
		{name: "value zero byte", in: withField(t, 6, []byte{0x00}), wantErr: "ethtx: tx.value: non-canonical integer"},
		{name: "value 257 bits", in: withField(t, 6, big33), wantErr: "ethtx: tx.value: integer too large"},

		// data.
		{name: "data list", in: withField(t, 7, []byte{0xc0}), wantErr: "ethtx: tx.data: expected string, got list"},
		{name: "data over cap", in: withField(t, 7, rlp.AppendString(nil, make([]byte, MaxDataSize+1))), wantErr: fmt.Sprintf("ethtx: tx.data: %d bytes, limit is %d", MaxDataSize+1, MaxDataSize)},

		// accessList.
		{name: "accessList string", in: withField(t, 8, []byte{0x80}), wantErr: "ethtx: tx.accessList: expected list, got string"},
		{name: "accessList entry string", in: withField(t, 8, rlp.AppendList(nil, []byte{0x80})), wantErr: "ethtx: tx.accessList[0]: expected list, got string"},
		{name: "accessList entry empty", in: withField(t, 8, rlp.AppendList(nil, []byte{0xc0})), wantErr: "ethtx: tx.accessList[0]: want 2 fields, got 0"},
		{name: "accessList entry 3 fields", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, bytes.Join([][]byte{rlp.AppendString(nil, addr20), {0xc0}, {0xc0}}, nil)))),
			wantErr: "ethtx: tx.accessList[0]: want 2 fields, got 3"},
		{name: "accessList entry malformed third field", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, bytes.Join([][]byte{rlp.AppendString(nil, addr20), {0xc0}, {0x81, 0x00}}, nil)))),
			wantErr: "ethtx: tx.accessList[0]: non-canonical size: single byte below 0x80 must be encoded as itself"},
		{name: "accessList entry malformed address", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, []byte{0xb8, 0x01, 0xff, 0xc0}))),
			wantErr: "ethtx: tx.accessList[0].address: non-canonical size: long form for a payload under 56 bytes"},
		{name: "accessList address 19 bytes", in: withField(t, 8, rlp.AppendList(nil, append(accessEntry(addr20), accessEntry(addr19[1:])...))),
			wantErr: "ethtx: tx.accessList[1].address: want 20 bytes, got 19"},
		{name: "accessList address list", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, []byte{0xc0, 0xc0}))),
			wantErr: "ethtx: tx.accessList[0].address: expected string, got list"},
		{name: "accessList storageKeys string", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, append(rlp.AppendString(nil, addr20), 0x80)))),
			wantErr: "ethtx: tx.accessList[0].storageKeys: expected list, got string"},
		{name: "accessList storage key 31 bytes", in: withField(t, 8, rlp.AppendList(nil, accessEntry(addr20, key32, key32[1:]))),
			wantErr: "ethtx: tx.accessList[0].storageKeys[1]: want 32 bytes, got 31"},
		{name: "accessList storage key 33 bytes", in: withField(t, 8, rlp.AppendList(nil, accessEntry(addr20, append(key32, 0)))),
			wantErr: "ethtx: tx.accessList[0].storageKeys[0]: want 32 bytes, got 33"},
		{name: "accessList storage key list", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, append(rlp.AppendString(nil, addr20), 0xc1, 0xc0)))),
			wantErr: "ethtx: tx.accessList[0].storageKeys[0]: expected string, got list"},
		{name: "accessList non-canonical key header", in: withField(t, 8, rlp.AppendList(nil, rlp.AppendList(nil, append(rlp.AppendString(nil, addr20), 0xc2, 0x81, 0x01)))),
			wantErr: "ethtx: tx.accessList[0].storageKeys[0]: non-canonical size: single byte below 0x80 must be encoded as itself"},
		{name: "accessList too many entries", in: withField(t, 8, rlp.AppendList(nil, bytes.Join(manyEntries, nil))),
			wantErr: fmt.Sprintf("ethtx: tx.accessList: more than %d entries", MaxAccessListEntries)},
		{name: "accessList too many storage keys", in: withField(t, 8, rlp.AppendList(nil, append(accessEntry(addr20, manyKeys...), accessEntry(addr20, manyKeys...)...))),
			wantErr: fmt.Sprintf("ethtx: tx.accessList: more than %d storage keys", MaxAccessListStorageKeys)},
	}
}

func TestDecodeUnsignedErrors(t *testing.T) {
	seen := map[string]bool{}
	for _, tt := range decodeErrorCases(t) {
		if seen[tt.name] {
			t.Fatalf("two cases named %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			tx, err := DecodeUnsigned(tt.in)
			if err == nil {
				t.Fatalf("DecodeUnsigned accepted %x as %+v", tt.in, tx)
			}
			if tx != nil {
				t.Errorf("DecodeUnsigned returned a Tx with error %v", err)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q\n      want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if tt.wantIs != ErrUnsupportedType && errors.Is(err, ErrUnsupportedType) {
				t.Errorf("malformed input reported as unsupported type: %v", err)
			}
		})
	}
}

func TestDecodeUnsignedAtLimits(t *testing.T) {
	addr20 := bytes.Repeat([]byte{1}, 20)
	key32 := bytes.Repeat([]byte{2}, 32)
	entries := make([][]byte, MaxAccessListEntries)
	for i := range entries {
		entries[i] = accessEntry(addr20)
	}
	keys := make([][]byte, MaxAccessListStorageKeys)
	for i := range keys {
		keys[i] = key32
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "data at cap", in: withField(t, 7, rlp.AppendString(nil, make([]byte, MaxDataSize)))},
		{name: "entries at cap", in: withField(t, 8, rlp.AppendList(nil, bytes.Join(entries, nil)))},
		{name: "storage keys at cap", in: withField(t, 8, rlp.AppendList(nil, accessEntry(addr20, keys...)))},
		{name: "chainId 2^256-1", in: withField(t, 0, append([]byte{0xa0}, bytes.Repeat([]byte{0xff}, 32)...))},
		{name: "nonce 2^64-1", in: withField(t, 1, append([]byte{0x88}, bytes.Repeat([]byte{0xff}, 8)...))},
		{name: "single-byte data", in: withField(t, 7, []byte{0x00})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := DecodeUnsigned(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if re := tx.EncodeUnsigned(); !bytes.Equal(re, tt.in) {
				t.Fatal("re-encoding differs from input")
			}
		})
	}
}

func TestEncodePanics(t *testing.T) {
	tx, err := DecodeUnsigned(envelope(validFields(t)...))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{name: "unsupported type", f: func() { (&Tx{Type: 0x05}).EncodeUnsigned() }},
		{name: "EIP-4844 without to", f: func() { (&Tx{Type: TypeBlob, ChainID: big.NewInt(1)}).EncodeUnsigned() }},
		{name: "EIP-7702 without to", f: func() { (&Tx{Type: TypeSetCode, ChainID: big.NewInt(1)}).EncodeSigned(Signature{}) }},
		{name: "legacy without chain id", f: func() { (&Tx{Type: TypeLegacy}).EncodeUnsigned() }},
		{name: "legacy with chain id 0", f: func() { (&Tx{Type: TypeLegacy, ChainID: new(big.Int)}).EncodeSigned(Signature{}) }},
		{name: "legacy with negative chain id", f: func() { (&Tx{Type: TypeLegacy, ChainID: big.NewInt(-1)}).EncodeUnsigned() }},
		{name: "negative authorization chain id", f: func() {
			(&Tx{Type: TypeSetCode, ChainID: big.NewInt(1), To: &Address{}, AuthorizationList: []Authorization{{ChainID: big.NewInt(-1)}}}).EncodeUnsigned()
		}},
		{name: "negative value", f: func() {
			bad := *tx
			bad.Value = big.NewInt(-1)
			bad.EncodeUnsigned()
		}},
		{name: "yParity 2", f: func() { tx.EncodeSigned(Signature{64: 2}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.f()
		})
	}
}

func TestTypeString(t *testing.T) {
	tests := []struct {
		name string
		t    Type
		want string
	}{
		{name: "legacy", t: TypeLegacy, want: "legacy"},
		{name: "2930", t: TypeAccessList, want: "EIP-2930"},
		{name: "1559", t: TypeDynamicFee, want: "EIP-1559"},
		{name: "4844", t: TypeBlob, want: "EIP-4844"},
		{name: "7702", t: TypeSetCode, want: "EIP-7702"},
		{name: "unknown", t: 0x42, want: "unknown type 0x42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSetBytes: the integers a transaction keeps in its own block are
// those big.Int.SetBytes makes, for every length up to rlp.MaxIntBytes,
// with and without leading zeros, and every byte value in every place.
func TestSetBytes(t *testing.T) {
	var z big.Int
	var words [intWords]big.Word
	for n := 0; n <= rlp.MaxIntBytes; n++ {
		for _, fill := range []func(i int) byte{
			func(i int) byte { return byte(i*37 + n + 1) },
			func(int) byte { return 0xff },
			func(i int) byte { return byte(i) }, // a leading zero
		} {
			b := make([]byte, n)
			for i := range b {
				b[i] = fill(i)
			}
			words[0] = 0xdead // setBytes clears what was there
			if got, want := setBytes(&z, &words, b), new(big.Int).SetBytes(b); got.Cmp(want) != 0 || got.BitLen() != want.BitLen() {
				t.Fatalf("setBytes(%x) = %v, want %v", b, got, want)
			}
		}
	}
	tx, err := DecodeUnsigned(unhex(t, "02e80180843b9aca008504a817c80082520894000000000000000000000000000000000000dead0180c0"))
	if err != nil {
		t.Fatal(err)
	}
	if tx.ChainID.Int64() != 1 || tx.MaxPriorityFeePerGas.Int64() != 1e9 || tx.MaxFeePerGas.Int64() != 20e9 || tx.Value.Int64() != 1 || tx.To == nil {
		t.Fatalf("decoded %+v", tx)
	}
}
