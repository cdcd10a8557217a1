package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	payloads := [][]byte{
		{0},
		[]byte("hello"),
		bytes.Repeat([]byte{0xab}, frameChunk-1),
		bytes.Repeat([]byte{0xcd}, frameChunk+1),
		bytes.Repeat([]byte{0xef}, 3*frameChunk+17),
		bytes.Repeat([]byte{0x01}, MaxFrameSize),
	}
	var stream bytes.Buffer
	for _, p := range payloads {
		if err := WriteFrame(&stream, p); err != nil {
			t.Fatal(err)
		}
	}
	raw := stream.Bytes()

	fr := NewFrameReader(bytes.NewReader(raw))
	r := bytes.NewReader(raw)
	for i, want := range payloads {
		got, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("FrameReader frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("FrameReader frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
		got, err = ReadFrame(r)
		if err != nil {
			t.Fatalf("ReadFrame frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ReadFrame frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Errorf("FrameReader at end: %v, want io.EOF", err)
	}
	if _, err := ReadFrame(r); err != io.EOF {
		t.Errorf("ReadFrame at end: %v, want io.EOF", err)
	}
}

func TestWriteFrameRefuses(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, nil); !errors.Is(err, ErrEmptyFrame) {
		t.Errorf("empty: %v", err)
	}
	if err := WriteFrame(&buf, make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes", buf.Len())
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"empty stream", "", io.EOF},
		{"short header", "\x00\x00", io.ErrUnexpectedEOF},
		{"zero length", "\x00\x00\x00\x00", ErrEmptyFrame},
		{"cap plus one", "\x00\x10\x00\x01", ErrFrameTooLarge},
		{"huge", "\xff\xff\xff\xff", ErrFrameTooLarge},
		{"short payload", "\x00\x00\x00\x05abc", io.ErrUnexpectedEOF},
		{"short large payload", "\x00\x10\x00\x00" + strings.Repeat("a", 3*frameChunk), io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(strings.NewReader(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("ReadFrame: %v, want %v", err, tc.wantErr)
			}
			_, err = NewFrameReader(strings.NewReader(tc.in)).ReadFrame()
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("FrameReader: %v, want %v", err, tc.wantErr)
			}
			if err != io.EOF && !strings.HasPrefix(err.Error(), "proto: ") {
				t.Errorf("error %q lacks prefix", err)
			}
		})
	}
}

// TestReadFrameDoesNotTrustLength: a peer that declares the largest frame
// and sends a few bytes makes the reader allocate far less than the
// declared length; a larger declared length allocates nothing.
func TestReadFrameDoesNotTrustLength(t *testing.T) {
	measure := func(in []byte) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10 {
			ReadFrame(bytes.NewReader(in))
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 10
	}
	stalled := append([]byte{0x00, 0x10, 0x00, 0x00}, "short"...)
	if got := measure(stalled); got > 2*frameChunk {
		t.Errorf("declared 1 MiB, sent 5 bytes: allocated %d bytes per read", got)
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if got := measure(huge); got > 1024 {
		t.Errorf("declared 4 GiB: allocated %d bytes per read", got)
	}
}

// TestFrameReaderReusesBuffer documents ownership: the payload is
// overwritten by the next read.
func TestFrameReaderReusesBuffer(t *testing.T) {
	var stream bytes.Buffer
	WriteFrame(&stream, []byte("first"))
	WriteFrame(&stream, []byte("again"))
	fr := NewFrameReader(bufio.NewReader(&stream))
	a, _ := fr.ReadFrame()
	b, _ := fr.ReadFrame()
	if &a[0] != &b[0] || string(a) != "again" {
		t.Errorf("buffer not reused: %q %q", a, b)
	}
	bw := bufio.NewWriter(&stream)
	payload := []byte("third")
	if n := testing.AllocsPerRun(100, func() {
		stream.Reset()
		if err := WriteFrame(bw, payload); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per frame written to a bufio.Writer and read", n)
	}
}

// TestFrameReaderRelease: a large frame's buffer is dropped by release, a
// small one's kept for reuse, and large frames read in pieces arrive
// intact.
func TestFrameReaderRelease(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (frameChunk*3+100)/16)
	small := []byte("small")
	var b bytes.Buffer
	for _, p := range [][]byte{big, small, big} {
		if err := WriteFrame(&b, p); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFrameReader(&b)
	for i, want := range [][]byte{big, small, big} {
		p, err := fr.ReadFrame()
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("frame %d: %d bytes, err %v", i, len(p), err)
		}
		fr.release()
		if len(want) > frameChunk && fr.buf != nil {
			t.Errorf("frame %d: a %d-byte buffer kept", i, cap(fr.buf))
		}
		if len(want) <= frameChunk && fr.buf == nil {
			t.Errorf("frame %d: the small buffer was dropped", i)
		}
	}
}
