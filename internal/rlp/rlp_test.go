package rlp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name        string
		in          []byte
		kind        Kind
		content     []byte
		rest        []byte
		wantErr     error
		wantErrText string
	}{
		{name: "single byte zero", in: []byte{0x00}, kind: String, content: []byte{0x00}, rest: []byte{}},
		{name: "single byte 0x7f", in: []byte{0x7f, 0xaa}, kind: String, content: []byte{0x7f}, rest: []byte{0xaa}},
		{name: "empty string", in: []byte{0x80}, kind: String, content: []byte{}, rest: []byte{}},
		{name: "one byte 0x80 needs header", in: []byte{0x81, 0x80}, kind: String, content: []byte{0x80}, rest: []byte{}},
		{name: "55-byte string", in: cat([]byte{0xb7}, bytes.Repeat([]byte{1}, 55)), kind: String, content: bytes.Repeat([]byte{1}, 55), rest: []byte{}},
		{name: "56-byte string", in: cat([]byte{0xb8, 56}, bytes.Repeat([]byte{1}, 56)), kind: String, content: bytes.Repeat([]byte{1}, 56), rest: []byte{}},
		{name: "256-byte string", in: cat([]byte{0xb9, 1, 0}, bytes.Repeat([]byte{1}, 256)), kind: String, content: bytes.Repeat([]byte{1}, 256), rest: []byte{}},
		{name: "empty list", in: []byte{0xc0, 0x80}, kind: List, content: []byte{}, rest: []byte{0x80}},
		{name: "56-byte list", in: cat([]byte{0xf8, 56}, bytes.Repeat([]byte{1}, 56)), kind: List, content: bytes.Repeat([]byte{1}, 56), rest: []byte{}},
		// Every way to be wrong.
		{name: "empty input", in: nil, wantErr: ErrUnexpectedEnd},
		{name: "single byte 0x00 wrapped", in: []byte{0x81, 0x00}, wantErr: ErrNonCanonicalSize, wantErrText: "single byte"},
		{name: "single byte 0x7f wrapped", in: []byte{0x81, 0x7f}, wantErr: ErrNonCanonicalSize, wantErrText: "single byte"},
		{name: "one-byte string truncated", in: []byte{0x81}, wantErr: ErrUnexpectedEnd},
		{name: "short string truncated", in: []byte{0x83, 'a', 'b'}, wantErr: ErrUnexpectedEnd},
		{name: "long string form for 0 bytes", in: []byte{0xb8, 0x00}, wantErr: ErrNonCanonicalSize, wantErrText: "leading zero"},
		{name: "long string form for 1 byte", in: []byte{0xb8, 0x01, 0xff}, wantErr: ErrNonCanonicalSize, wantErrText: "long form"},
		{name: "long string form for 55 bytes", in: cat([]byte{0xb8, 55}, bytes.Repeat([]byte{1}, 55)), wantErr: ErrNonCanonicalSize, wantErrText: "long form"},
		{name: "string size with leading zero", in: cat([]byte{0xb9, 0x00, 56}, bytes.Repeat([]byte{1}, 56)), wantErr: ErrNonCanonicalSize, wantErrText: "leading zero"},
		{name: "string size of size truncated", in: []byte{0xb9, 0x01}, wantErr: ErrUnexpectedEnd},
		{name: "string size absent", in: []byte{0xb8}, wantErr: ErrUnexpectedEnd},
		{name: "long string truncated", in: cat([]byte{0xb8, 57}, bytes.Repeat([]byte{1}, 56)), wantErr: ErrUnexpectedEnd},
		{name: "string size 2^64-1", in: []byte{0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, wantErr: ErrUnexpectedEnd},
		{name: "string size 2^63", in: []byte{0xbf, 0x80, 0, 0, 0, 0, 0, 0, 0}, wantErr: ErrUnexpectedEnd},
		{name: "short list truncated", in: []byte{0xc2, 0x80}, wantErr: ErrUnexpectedEnd},
		{name: "long list form for 0 bytes", in: []byte{0xf8, 0x00}, wantErr: ErrNonCanonicalSize, wantErrText: "leading zero"},
		{name: "long list form for 55 bytes", in: cat([]byte{0xf8, 55}, bytes.Repeat([]byte{1}, 55)), wantErr: ErrNonCanonicalSize, wantErrText: "long form"},
		{name: "list size with leading zero", in: cat([]byte{0xf9, 0x00, 56}, bytes.Repeat([]byte{1}, 56)), wantErr: ErrNonCanonicalSize, wantErrText: "leading zero"},
		{name: "list size absent", in: []byte{0xf8}, wantErr: ErrUnexpectedEnd},
		{name: "list size 2^64-1", in: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, wantErr: ErrUnexpectedEnd},
		{name: "input over cap", in: make([]byte, MaxInputSize+1), wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, content, rest, err := Split(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Split(%x) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("Split(%x) error = %q, want it to mention %q", tt.in, err, tt.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatalf("Split(%x) error = %v", tt.in, err)
			}
			if kind != tt.kind || !bytes.Equal(content, tt.content) || !bytes.Equal(rest, tt.rest) {
				t.Fatalf("Split(%x) = %v, %x, %x; want %v, %x, %x", tt.in, kind, content, rest, tt.kind, tt.content, tt.rest)
			}
		})
	}
}

func TestSplitStringList(t *testing.T) {
	if _, _, err := SplitString([]byte{0xc0}); !errors.Is(err, ErrExpectedString) {
		t.Errorf("SplitString(list) error = %v, want %v", err, ErrExpectedString)
	}
	if _, _, err := SplitList([]byte{0x80}); !errors.Is(err, ErrExpectedList) {
		t.Errorf("SplitList(string) error = %v, want %v", err, ErrExpectedList)
	}
	if _, _, err := SplitList([]byte{0x01}); !errors.Is(err, ErrExpectedList) {
		t.Errorf("SplitList(single byte) error = %v, want %v", err, ErrExpectedList)
	}
	if _, _, err := SplitString(nil); !errors.Is(err, ErrUnexpectedEnd) {
		t.Errorf("SplitString(nil) error = %v, want %v", err, ErrUnexpectedEnd)
	}
	s, rest, err := SplitString([]byte{0x82, 'h', 'i', 0xc0})
	if err != nil || string(s) != "hi" || !bytes.Equal(rest, []byte{0xc0}) {
		t.Errorf("SplitString = %q, %x, %v", s, rest, err)
	}
	l, rest, err := SplitList([]byte{0xc2, 0x01, 0x02, 0x03})
	if err != nil || !bytes.Equal(l, []byte{1, 2}) || !bytes.Equal(rest, []byte{3}) {
		t.Errorf("SplitList = %x, %x, %v", l, rest, err)
	}
}

func TestSplitUint64(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr error
	}{
		{name: "zero", in: "80", want: 0},
		{name: "one", in: "01", want: 1},
		{name: "0x7f", in: "7f", want: 0x7f},
		{name: "0x80", in: "8180", want: 0x80},
		{name: "0xff", in: "81ff", want: 0xff},
		{name: "0x100", in: "820100", want: 0x100},
		{name: "max uint64", in: "88ffffffffffffffff", want: math.MaxUint64},
		{name: "zero as single byte", in: "00", wantErr: ErrNonCanonicalInteger},
		{name: "zero as one-byte string", in: "8100", wantErr: ErrNonCanonicalSize},
		{name: "leading zero", in: "820001", wantErr: ErrNonCanonicalInteger},
		{name: "leading zero on 0x80", in: "820080", wantErr: ErrNonCanonicalInteger},
		{name: "leading zero full width", in: "8800ffffffffffffff", wantErr: ErrNonCanonicalInteger},
		{name: "small value in string header", in: "8105", wantErr: ErrNonCanonicalSize},
		{name: "65 bits", in: "89010000000000000000", wantErr: ErrIntegerTooLarge},
		{name: "list", in: "c0", wantErr: ErrExpectedString},
		{name: "truncated", in: "8201", wantErr: ErrUnexpectedEnd},
		{name: "empty input", in: "", wantErr: ErrUnexpectedEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.in)
			got, rest, err := SplitUint64(in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SplitUint64(%s) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || len(rest) != 0 {
				t.Fatalf("SplitUint64(%s) = %d, %x, %v; want %d", tt.in, got, rest, err, tt.want)
			}
			if enc := AppendUint64(nil, got); !bytes.Equal(enc, in) {
				t.Fatalf("AppendUint64(%d) = %x, want %s", got, enc, tt.in)
			}
		})
	}
}

func TestSplitBigInt(t *testing.T) {
	max256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	tests := []struct {
		name    string
		in      []byte
		want    *big.Int
		wantErr error
	}{
		{name: "zero", in: []byte{0x80}, want: new(big.Int)},
		{name: "one", in: []byte{0x01}, want: big.NewInt(1)},
		{name: "2^64", in: unhex(t, "89 01 0000000000000000"), want: new(big.Int).Lsh(big.NewInt(1), 64)},
		{name: "2^256-1", in: cat([]byte{0xa0}, bytes.Repeat([]byte{0xff}, 32)), want: max256},
		{name: "2^256", in: cat([]byte{0xa1, 0x01}, make([]byte, 32)), wantErr: ErrIntegerTooLarge},
		{name: "leading zero 32 bytes", in: cat([]byte{0xa0, 0x00}, bytes.Repeat([]byte{0xff}, 31)), wantErr: ErrNonCanonicalInteger},
		{name: "leading zero 33 bytes", in: cat([]byte{0xa1, 0x00}, bytes.Repeat([]byte{0xff}, 32)), wantErr: ErrNonCanonicalInteger},
		{name: "zero as single byte", in: []byte{0x00}, wantErr: ErrNonCanonicalInteger},
		{name: "list", in: []byte{0xc1, 0x01}, wantErr: ErrExpectedString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, err := SplitBigInt(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SplitBigInt(%x) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				if _, _, err := SplitUint256(tt.in); !errors.Is(err, tt.wantErr) {
					t.Fatalf("SplitUint256(%x) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Cmp(tt.want) != 0 || len(rest) != 0 {
				t.Fatalf("SplitBigInt(%x) = %v, %x, %v; want %v", tt.in, got, rest, err, tt.want)
			}
			if enc := AppendBigInt(nil, got); !bytes.Equal(enc, tt.in) {
				t.Fatalf("AppendBigInt(%v) = %x, want %x", got, enc, tt.in)
			}
			num, _, err := SplitUint256(tt.in)
			if err != nil || new(big.Int).SetBytes(num).Cmp(tt.want) != 0 {
				t.Fatalf("SplitUint256(%x) = %x, %v", tt.in, num, err)
			}
			if enc := AppendUintBytes(nil, tt.want.FillBytes(make([]byte, 32))); !bytes.Equal(enc, tt.in) {
				t.Fatalf("AppendUintBytes(%v padded) = %x, want %x", tt.want, enc, tt.in)
			}
		})
	}
}

func TestAppendBigIntNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AppendBigInt(-1) did not panic")
		}
	}()
	AppendBigInt(nil, big.NewInt(-1))
}

func TestAppendBigIntNil(t *testing.T) {
	if got := AppendBigInt(nil, nil); !bytes.Equal(got, []byte{0x80}) {
		t.Fatalf("AppendBigInt(nil) = %x, want 80", got)
	}
}

func TestEncodeKnownVectors(t *testing.T) {
	// Vectors from the Ethereum wiki's RLP page and the yellow paper.
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{name: "dog", got: AppendString(nil, []byte("dog")), want: "83646f67"},
		{name: "cat dog", got: AppendList(nil, cat(AppendString(nil, []byte("cat")), AppendString(nil, []byte("dog")))), want: "c88363617483646f67"},
		{name: "empty string", got: AppendString(nil, nil), want: "80"},
		{name: "empty list", got: AppendList(nil, nil), want: "c0"},
		{name: "integer 0", got: AppendUint64(nil, 0), want: "80"},
		{name: "byte 0x00", got: AppendString(nil, []byte{0}), want: "00"},
		{name: "byte 0x0f", got: AppendString(nil, []byte{0x0f}), want: "0f"},
		{name: "bytes 0x0400", got: AppendString(nil, []byte{0x04, 0x00}), want: "820400"},
		{name: "integer 1024", got: AppendUint64(nil, 1024), want: "820400"},
		{name: "set theory three", got: func() []byte {
			// [ [], [[]], [ [], [[]] ] ]
			empty := AppendList(nil, nil)
			one := AppendList(nil, empty)
			two := AppendList(nil, cat(empty, one))
			return AppendList(nil, cat(empty, one, two))
		}(), want: "c7c0c1c0c3c0c1c0"},
		{name: "lorem", got: AppendString(nil, []byte("Lorem ipsum dolor sit amet, consectetur adipisicing elit")),
			want: "b8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.got); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			v, err := Parse(tt.got)
			if err != nil {
				t.Fatalf("Parse(%x) error = %v", tt.got, err)
			}
			if re := AppendValue(nil, v); !bytes.Equal(re, tt.got) {
				t.Fatalf("AppendValue(Parse(%x)) = %x", tt.got, re)
			}
		})
	}
}

func TestEndList(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 255, 256, 65535, 65536, 1 << 20} {
		prefix := []byte{0xaa, 0xbb}
		dst := append([]byte(nil), prefix...)
		start := len(dst)
		payload := bytes.Repeat([]byte{0x01}, n)
		dst = append(dst, payload...)
		dst = EndList(dst, start)
		want := AppendList(append([]byte(nil), prefix...), payload)
		if !bytes.Equal(dst, want) {
			t.Fatalf("EndList with %d-byte payload differs from AppendList", n)
		}
		content, rest, err := SplitList(dst[len(prefix):])
		if n+5 <= MaxInputSize && (err != nil || len(content) != n || len(rest) != 0) {
			t.Fatalf("SplitList(EndList(%d bytes)) = %d bytes, %x, %v", n, len(content), rest, err)
		}
	}
}

func TestParse(t *testing.T) {
	nest := func(n int) []byte {
		b := []byte{0x80}
		for range n {
			b = AppendList(nil, b)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{name: "string", in: []byte{0x83, 'd', 'o', 'g'}},
		{name: "nested at max depth", in: nest(MaxDepth)},
		{name: "nested past max depth", in: nest(MaxDepth + 1), wantErr: ErrTooDeep},
		{name: "empty input", in: nil, wantErr: ErrUnexpectedEnd},
		{name: "trailing byte after string", in: []byte{0x80, 0x80}, wantErr: ErrTrailingBytes},
		{name: "trailing byte after list", in: []byte{0xc0, 0x00}, wantErr: ErrTrailingBytes},
		{name: "item overruns list", in: []byte{0xc1, 0x82, 0x00, 0x00}, wantErr: ErrUnexpectedEnd},
		{name: "long item overruns list", in: cat([]byte{0xc2, 0xb8, 0x38}, make([]byte, 56)), wantErr: ErrUnexpectedEnd},
		{name: "non-canonical item in list", in: []byte{0xc2, 0x81, 0x05}, wantErr: ErrNonCanonicalSize},
		{name: "non-canonical deep item", in: []byte{0xc4, 0xc3, 0xc2, 0x81, 0x00}, wantErr: ErrNonCanonicalSize},
		{name: "input over cap", in: make([]byte, MaxInputSize+1), wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Parse(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse error = %v", err)
			}
			if re := AppendValue(nil, v); !bytes.Equal(re, tt.in) {
				t.Fatalf("AppendValue(Parse(%x)) = %x", tt.in, re)
			}
		})
	}
}

func TestCountValues(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr error
	}{
		{name: "empty", in: "", want: 0},
		{name: "three", in: "01 80 c0", want: 3},
		{name: "nested not descended", in: "c3 c2 81 00", want: 1},
		{name: "truncated second", in: "01 82 00", wantErr: ErrUnexpectedEnd},
		{name: "non-canonical", in: "01 81 00", wantErr: ErrNonCanonicalSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CountValues(unhex(t, tt.in))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && n != tt.want) {
				t.Fatalf("CountValues(%s) = %d, %v; want %d, %v", tt.in, n, err, tt.want, tt.wantErr)
			}
		})
	}
}

// randomValue builds a random tree that every canonical encoder must produce
// one encoding for.
func randomValue(r *rand.Rand, depth int) Value {
	if depth > 0 && r.IntN(3) == 0 {
		items := make([]Value, r.IntN(6))
		for i := range items {
			items[i] = randomValue(r, depth-1)
		}
		return Value{Kind: List, List: items}
	}
	var n int
	switch r.IntN(4) {
	case 0:
		n = r.IntN(2)
	case 1:
		n = r.IntN(56)
	case 2:
		n = 50 + r.IntN(20)
	default:
		n = r.IntN(400)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return Value{Kind: String, Bytes: b}
}

func equalValue(a, b Value) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == String {
		return bytes.Equal(a.Bytes, b.Bytes)
	}
	if len(a.List) != len(b.List) {
		return false
	}
	for i := range a.List {
		if !equalValue(a.List[i], b.List[i]) {
			return false
		}
	}
	return true
}

func TestEncodeParseRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		v := randomValue(r, 5)
		enc := AppendValue(nil, v)
		got, err := Parse(enc)
		if err != nil {
			t.Fatalf("iteration %d: Parse(AppendValue(v)) error = %v", i, err)
		}
		if !equalValue(got, v) {
			t.Fatalf("iteration %d: Parse(AppendValue(v)) differs from v", i)
		}
	}
}

func TestEncodeUintRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		x := r.Uint64() >> r.IntN(64)
		enc := AppendUint64(nil, x)
		got, rest, err := SplitUint64(enc)
		if err != nil || got != x || len(rest) != 0 {
			t.Fatalf("SplitUint64(AppendUint64(%d)) = %d, %x, %v", x, got, rest, err)
		}
		bi := new(big.Int).SetUint64(x)
		bi.Lsh(bi, uint(r.IntN(193)))
		enc = AppendBigInt(nil, bi)
		back, rest, err := SplitBigInt(enc)
		if err != nil || back.Cmp(bi) != 0 || len(rest) != 0 {
			t.Fatalf("SplitBigInt(AppendBigInt(%v)) = %v, %x, %v", bi, back, rest, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{String: "string", List: "list", 0: "Kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
