package proto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// MaxFrameSize is the largest frame payload, in bytes, that may be written or
// read.
const MaxFrameSize = 1 << 20

// frameChunk is how much payload a reader allocates before any of it has
// arrived. A larger payload is read in pieces of this size (from
// chunkPool), each taken when the previous one is full.
const frameChunk = 64 << 10

// chunkPool holds the pieces in which large payloads are read.
var chunkPool = sync.Pool{New: func() any { return new([frameChunk]byte) }}

// payloadError wraps an error reading a payload; a stream that ends inside
// it ended unexpectedly.
func payloadError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("proto: read frame payload: %w", err)
}

var (
	// ErrFrameTooLarge is returned (wrapped) when a frame's declared or
	// actual length exceeds MaxFrameSize. A reader cannot resynchronize
	// after it: the connection must be closed.
	ErrFrameTooLarge = errors.New("proto: frame too large")

	// ErrEmptyFrame is returned (wrapped) for a frame of length zero, which
	// the protocol never uses.
	ErrEmptyFrame = errors.New("proto: empty frame")
)

// WriteFrame writes payload as one frame: its 4-byte big-endian length and
// the payload itself. It refuses an empty payload and one larger than
// MaxFrameSize without writing anything. WriteFrame is not safe for
// concurrent use on the same writer.
func WriteFrame(w io.Writer, payload []byte) error {
	if err := checkFrameSize(uint64(len(payload))); err != nil {
		return err
	}
	if bw, ok := w.(*bufio.Writer); ok {
		// The common case, without allocating.
		bw.Write(binary.BigEndian.AppendUint32(bw.AvailableBuffer(), uint32(len(payload))))
		if _, err := bw.Write(payload); err != nil {
			return fmt.Errorf("proto: write frame: %w", err)
		}
		return nil
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	// net.Buffers writes both parts with one writev(2) on a socket, and
	// falls back to two Writes on any other writer (such as bufio.Writer).
	bufs := net.Buffers{hdr[:], payload}
	if _, err := bufs.WriteTo(w); err != nil {
		return fmt.Errorf("proto: write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame from r and returns its payload in a new slice
// owned by the caller.
//
// At a clean end of stream (no byte of a new frame read) it returns io.EOF
// itself, unwrapped; a stream that ends inside a frame gives an error
// wrapping io.ErrUnexpectedEOF. A declared length of zero or above
// MaxFrameSize gives ErrEmptyFrame or ErrFrameTooLarge before any payload is
// read or allocated.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	return readFrame(r, &hdr, nil)
}

// A FrameReader reads frames from a stream, reusing one buffer for their
// payloads. It is not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	hdr [4]byte
	buf []byte
}

// NewFrameReader returns a FrameReader reading from r. Wrap r in a
// bufio.Reader first when frames are small and frequent.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r}
}

// ReadFrame reads the next frame, with the same errors as the package-level
// ReadFrame. The returned payload is owned by the FrameReader: it is valid
// only until the next call to ReadFrame, which overwrites it. (Unmarshal
// copies what it needs, so its result may outlive the payload.)
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	p, err := readFrame(fr.r, &fr.hdr, fr.buf)
	if err == nil {
		fr.buf = p
	}
	return p, err
}

// release drops the payload buffer if it grew beyond frameChunk, so that a
// connection that once carried a large frame does not keep its memory. The
// last payload returned must no longer be in use.
func (fr *FrameReader) release() {
	if cap(fr.buf) > frameChunk {
		fr.buf = nil
	}
}

func checkFrameSize(n uint64) error {
	switch {
	case n == 0:
		return ErrEmptyFrame
	case n > MaxFrameSize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	return nil
}

// readFrame reads one frame into buf (which it grows as needed) and returns
// the payload, which may share buf's storage.
func readFrame(r io.Reader, hdr *[4]byte, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("proto: read frame header: %w", err)
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if err := checkFrameSize(uint64(n)); err != nil {
		return nil, err
	}
	if n <= frameChunk {
		if cap(buf) < n {
			buf = make([]byte, n, max(n, min(cap(buf)*2, frameChunk)))
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, payloadError(err)
		}
		return buf, nil
	}
	// Do not trust the declared length with memory: collect a large
	// payload in pieces of frameChunk, taken as bytes arrive, so that a
	// frame that stalls halfway holds about what has arrived; and make the
	// payload's buffer only once it is whole.
	var chunks []*[frameChunk]byte
	defer func() {
		for _, c := range chunks {
			chunkPool.Put(c)
		}
	}()
	for got := 0; got < n; got += frameChunk {
		c := chunkPool.Get().(*[frameChunk]byte)
		chunks = append(chunks, c)
		if _, err := io.ReadFull(r, c[:min(n-got, frameChunk)]); err != nil {
			return nil, payloadError(err)
		}
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	for i, c := range chunks {
		copy(buf[i*frameChunk:], c[:])
	}
	return buf, nil
}
