package proto

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"slices"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// FuzzUnmarshal: Unmarshal never panics, returns a message only without
// error, and whatever it accepts is the one encoding Marshal produces.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		id, m, err := Unmarshal(payload)
		if err != nil {
			if m != nil {
				t.Fatalf("message %#v with error %v", m, err)
			}
			return
		}
		if id == 0 {
			t.Fatal("accepted id 0")
		}
		again, err := Marshal(id, m)
		if err != nil {
			t.Fatalf("accepted %#v, but Marshal refuses it: %v", m, err)
		}
		if !bytes.Equal(again, payload) {
			t.Fatalf("accepted a non-canonical payload:\n  in %x\n out %x", payload, again)
		}
	})
}

// FuzzReadFrame: a FrameReader never panics, returns only frames within
// the size limits, and frames written back give the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		fr := NewFrameReader(r)
		var rewritten bytes.Buffer
		for {
			p, err := fr.ReadFrame()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrEmptyFrame) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error: %v", err)
				}
				if err == io.EOF && r.Len() != 0 {
					t.Fatal("io.EOF before the end")
				}
				break
			}
			if len(p) == 0 || len(p) > MaxFrameSize {
				t.Fatalf("frame of %d bytes", len(p))
			}
			Unmarshal(p) // must not panic
			if err := WriteFrame(&rewritten, p); err != nil {
				t.Fatal(err)
			}
			consumed := len(stream) - r.Len()
			if !bytes.Equal(rewritten.Bytes(), stream[:consumed]) {
				t.Fatal("frames written back differ from the input")
			}
		}
	})
}

// seedUnmarshal returns named seeds for FuzzUnmarshal: every message type,
// valid, and the near misses of TestUnmarshalRefuses.
func seedUnmarshal(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, tc := range sampleMessages() {
		seeds["valid_"+tc.name] = mustMarshal(t, 42, tc.m)
	}
	seeds["valid_max_id"] = mustMarshal(t, ^uint64(0), &HealthRequest{})
	for _, tc := range refuseCases(t) {
		if len(tc.payload) > 8<<10 {
			continue // keep the corpus small
		}
		seeds["bad_"+tc.name] = tc.payload
	}
	return seeds
}

// seedReadFrame returns named seeds for FuzzReadFrame.
func seedReadFrame(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	var all []byte
	for _, tc := range sampleMessages() {
		fr := frame(mustMarshal(t, 42, tc.m))
		seeds["valid_"+tc.name] = fr
		all = append(all, fr...)
	}
	seeds["valid_all_in_one_stream"] = all
	seeds["valid_one_byte"] = []byte{0, 0, 0, 1, 0xa0}
	seeds["bad_empty_stream"] = []byte{}
	seeds["bad_short_header"] = []byte{0, 0, 1}
	seeds["bad_zero_length"] = []byte{0, 0, 0, 0}
	seeds["bad_zero_length_after_frame"] = append(slices.Clip(seeds["valid_health_request"]), 0, 0, 0, 0)
	seeds["bad_max_plus_one"] = []byte{0x00, 0x10, 0x00, 0x01}
	seeds["bad_huge"] = []byte{0xff, 0xff, 0xff, 0xff}
	seeds["bad_declared_max_short"] = []byte{0x00, 0x10, 0x00, 0x00, 1, 2, 3}
	seeds["bad_truncated_payload"] = seeds["valid_sign_request"][:10]
	seeds["bad_http"] = []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	return seeds
}

var corpora = map[string]func(testing.TB) map[string][]byte{
	"FuzzUnmarshal": seedUnmarshal,
	"FuzzReadFrame": seedReadFrame,
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test -run TestSeedCorpus -update-corpus. Files that are not seeds
// (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range corpora {
		fuzzseed.Sync(t, target, "seed_", '_', seeds(t), *updateCorpus, "go test ./proto -run TestSeedCorpus -update-corpus")
	}
}
