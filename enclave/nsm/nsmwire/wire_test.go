package nsmwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/proto"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

func frame(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzUnmarshal feeds one payload to both decoders, and its bytes as an
// error text to ErrorResponse. A decoder never panics, and what it accepts
// is valid and is exactly the canonical encoding of what it returned. An
// error response built from any text is valid: at most MaxErrorSize bytes
// of UTF-8, never empty. ReadFrame over the payload never returns more than
// its limit.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		if r, err := UnmarshalRequest(p); err == nil {
			if err := r.Validate(); err != nil {
				t.Fatalf("accepted an invalid request: %v", err)
			}
			if again, err := MarshalRequest(r); err != nil || !bytes.Equal(again, p) {
				t.Fatalf("accepted a request that does not re-encode to itself: %x, %v", again, err)
			}
		}
		if r, err := UnmarshalResponse(p); err == nil {
			if err := r.Validate(); err != nil {
				t.Fatalf("accepted an invalid response: %v", err)
			}
			if again, err := MarshalResponse(r); err != nil || !bytes.Equal(again, p) {
				t.Fatalf("accepted a response that does not re-encode to itself: %x, %v", again, err)
			}
		}
		for _, op := range []uint64{OpNone, OpAttest, OpRandom} {
			resp := ErrorResponse(op, errors.New(string(p)))
			if resp.Error == "" || len(resp.Error) > MaxErrorSize || !utf8.ValidString(resp.Error) {
				t.Fatalf("error text %q", resp.Error)
			}
			if _, err := MarshalResponse(resp); err != nil {
				t.Fatalf("an error response does not encode: %v", err)
			}
		}
		for _, limit := range []int{MaxRequestFrame, MaxResponseFrame} {
			if q, err := ReadFrame(bytes.NewReader(p), limit); err == nil && (len(q) == 0 || len(q) > limit) {
				t.Fatalf("a frame of %d bytes under a limit of %d", len(q), limit)
			}
		}
	})
}

// seedUnmarshal returns the named seeds of FuzzUnmarshal: valid requests
// and responses, and near misses of each.
func seedUnmarshal(t testing.TB) map[string][]byte {
	attest := mustEncode(t, &Request{Version: 1, Op: OpAttest, Nonce: []byte("nonce"), UserData: []byte("user"), PublicKey: []byte("key")})
	random := mustEncode(t, &Request{Version: 1, Op: OpRandom, Length: 16})
	attested := mustEncode(t, &Response{Version: 1, Op: OpAttest, Document: []byte("document")})
	return map[string][]byte{
		"valid_attest_request":       attest,
		"valid_empty_attest_request": mustEncode(t, &Request{Version: 1, Op: OpAttest}),
		"valid_random_request":       random,
		"valid_random_request_max":   mustEncode(t, &Request{Version: 1, Op: OpRandom, Length: MaxRandomChunk}),
		"valid_attest_response":      attested,
		"valid_random_response":      mustEncode(t, &Response{Version: 1, Op: OpRandom, Random: bytes.Repeat([]byte{7}, 16)}),
		"valid_refusal":              mustEncode(t, &Response{Version: 1, Op: OpAttest, Error: "refused"}),
		"valid_malformed_refusal":    mustEncode(t, &Response{Version: 1, Op: OpNone, Error: "malformed request"}),
		"valid_framed_request":       frame(random),
		"bad_empty":                  {},
		"bad_garbage":                []byte("garbage"),
		"bad_utf8":                   {0xff, 0xfe, 'x'},
		"bad_version_2":              mustEncode(t, &Request{Version: 2, Op: OpRandom, Length: 16}),
		"bad_version_2_new_fields":   mustEncode(t, map[uint64]any{1: 2, 2: 1, 9: "new"}),
		"bad_unknown_op":             mustEncode(t, &Request{Version: 1, Op: 3}),
		"bad_random_length_0":        mustEncode(t, &Request{Version: 1, Op: OpRandom}),
		"bad_random_with_nonce":      mustEncode(t, &Request{Version: 1, Op: OpRandom, Length: 1, Nonce: []byte{1}}),
		"bad_nonce_too_large":        mustEncode(t, &Request{Version: 1, Op: OpAttest, Nonce: make([]byte, MaxFieldSize+1)}),
		"bad_missing_field":          mustEncode(t, map[uint64]any{1: 1, 2: 2, 6: 16}),
		"bad_null_field":             mustEncode(t, map[uint64]any{1: 1, 2: 2, 3: nil, 4: []byte{}, 5: []byte{}, 6: 4}),
		"bad_non_shortest":           bytes.Replace(random, []byte{0x06, 0x10}, []byte{0x06, 0x18, 0x10}, 1),
		"bad_unknown_key":            mustEncode(t, map[uint64]any{1: 1, 2: 2, 3: []byte{}, 4: []byte{}, 5: []byte{}, 6: 16, 7: 0}),
		"bad_trailing":               append(bytes.Clone(random), 0),
		"bad_tag":                    append([]byte{0xd8, 0x18}, random...),
		"bad_indefinite_map":         append(append([]byte{0xbf}, random[1:]...), 0xff),
		"bad_text_for_bytes":         mustEncode(t, map[uint64]any{1: 1, 2: 1, 3: "n", 4: []byte{}, 5: []byte{}, 6: 0}),
		"bad_error_with_result":      mustEncode(t, &Response{Version: 1, Op: OpRandom, Random: make([]byte, 8), Error: "x"}),
		"bad_response_no_op":         mustEncode(t, &Response{Version: 1}),
		"bad_huge_frame":             {0xff, 0xff, 0xff, 0xff},
		"bad_truncated":              attested[:len(attested)-1],
	}
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./enclave/nsm/nsmwire -run TestSeedCorpus -update-corpus.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzUnmarshal", "seed_", '_', seedUnmarshal(t), *updateCorpus, "go test ./enclave/nsm/nsmwire -run TestSeedCorpus -update-corpus")
}

// TestSeedsDecode checks that each seed named valid_ decodes as one of the
// messages (or, framed, as a frame), and each named bad_ as neither: the
// corpus starts the fuzzer on both sides of every check.
func TestSeedsDecode(t *testing.T) {
	for name, p := range seedUnmarshal(t) {
		_, reqErr := UnmarshalRequest(p)
		_, respErr := UnmarshalResponse(p)
		_, frameErr := ReadFrame(bytes.NewReader(p), MaxRequestFrame)
		ok := reqErr == nil || respErr == nil || frameErr == nil && strings.Contains(name, "framed")
		if strings.HasPrefix(name, "valid_") != ok {
			t.Errorf("%s: request %v, response %v", name, reqErr, respErr)
		}
	}
}

// TestErrorResponse: an error text is cut to MaxErrorSize bytes on a rune
// boundary, made valid UTF-8, and never left empty.
func TestErrorResponse(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2 bytes a rune
	tests := []struct{ in, want string }{
		{"refused", "refused"},
		{"", "unknown error"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{long, long[:MaxErrorSize]},
		{"x" + long, "x" + long[:MaxErrorSize-2]},
	}
	for _, tt := range tests {
		resp := ErrorResponse(OpAttest, errors.New(tt.in))
		if resp.Error != tt.want || resp.Op != OpAttest || resp.Version != Version {
			t.Errorf("ErrorResponse(%.20q) = %+v, want error %.20q", tt.in, resp, tt.want)
		}
		if _, err := MarshalResponse(resp); err != nil {
			t.Error(err)
		}
	}
}

// TestReadFrame: a frame longer than the limit is refused from its header,
// before any of its payload is read, and a frame is read without consuming
// a byte of the next.
func TestReadFrame(t *testing.T) {
	r := bytes.NewReader(append([]byte{0, 0, 0x10, 1}, make([]byte, 4097)...))
	if _, err := ReadFrame(r, MaxRequestFrame); !errors.Is(err, proto.ErrFrameTooLarge) || !strings.Contains(err.Error(), "4097 bytes, limit 4096") {
		t.Errorf("ReadFrame = %v, want ErrFrameTooLarge", err)
	}
	if r.Len() != 4097 {
		t.Errorf("%d payload bytes read before the refusal", 4097-r.Len())
	}
	r = bytes.NewReader(append(frame([]byte("one")), frame([]byte("two"))...))
	for _, want := range []string{"one", "two"} {
		if p, err := ReadFrame(r, MaxRequestFrame); err != nil || string(p) != want {
			t.Errorf("ReadFrame = %q, %v; want %q", p, err, want)
		}
	}
	if _, err := ReadFrame(r, MaxRequestFrame); err != io.EOF {
		t.Errorf("ReadFrame at the end = %v, want io.EOF", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0}), MaxRequestFrame); err == nil || err == io.EOF {
		t.Errorf("ReadFrame on a short header = %v", err)
	}
}
