package proto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// MaxFrameSize is the largest frame payload, in bytes, that may be written or
// read.
const MaxFrameSize = 1 << 20

// frameChunk is how much payload a reader allocates before any of it has
// arrived; beyond it, the buffer at most doubles per read.
const frameChunk = 64 << 10

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
	// Do not trust the declared length with memory: allocate at most
	// frameChunk before any payload has arrived, then at most double what
	// has actually been received.
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), max(len(buf), frameChunk))
		if cap(buf)-len(buf) < step {
			nb := make([]byte, len(buf), len(buf)+step)
			copy(nb, buf)
			buf = nb
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+step]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("proto: read frame payload: %w", err)
		}
		buf = buf[:len(buf)+step]
	}
	return buf, nil
}
