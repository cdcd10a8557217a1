package audit

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
)

// item is one line of the log, or the end of a file.
type item struct {
	file int   // index of the file (0 for Verify)
	line int   // 1-based line number within the file
	ord  int64 // 0-based index of the line across all files
	eof  bool  // the end of file file; line is one past its last line

	raw  []byte // the line without its newline; valid until the next read
	p    parsed
	hash [32]byte
	err  error // the line is malformed
}

// source reads the lines of one or more files in order.
type source struct {
	open    func(i int) (io.Reader, func() error, error)
	nfiles  int
	maxLine int

	cur    int           // file being read; nfiles when done
	br     *bufio.Reader // s.buf while a file is open, else nil
	buf    *bufio.Reader
	closer func() error
	line   int
	ord    int64
	it     item
}

func newSource(nfiles, maxLine int, open func(i int) (io.Reader, func() error, error)) *source {
	return &source{open: open, nfiles: nfiles, maxLine: maxLine, cur: -1}
}

func readerSource(r io.Reader, maxLine int) *source {
	return newSource(1, maxLine, func(int) (io.Reader, func() error, error) { return r, nil, nil })
}

func fileSource(paths []string, maxLine int) *source {
	return newSource(len(paths), maxLine, func(i int) (io.Reader, func() error, error) {
		f, err := os.Open(paths[i])
		if err != nil {
			return nil, nil, err
		}
		return f, f.Close, nil
	})
}

// close closes the file being read, if any.
func (s *source) close() {
	if s.closer != nil {
		s.closer()
		s.closer = nil
	}
}

// next returns the next line or end of file, nil at the end of the last
// file, or an I/O error. The item is valid until the next call.
func (s *source) next() (*item, error) {
	for {
		if s.br == nil {
			if s.cur+1 >= s.nfiles {
				s.cur = s.nfiles
				return nil, nil
			}
			s.cur++
			r, closer, err := s.open(s.cur)
			if err != nil {
				return nil, err
			}
			s.closer = closer
			if s.buf == nil {
				s.buf = bufio.NewReaderSize(r, s.maxLine+1)
			} else {
				s.buf.Reset(r)
			}
			s.br = s.buf
			s.line = 0
		}
		data, err := s.br.ReadSlice('\n')
		switch {
		case err == nil && len(data)-1 > s.maxLine: // a caller's larger bufio.Reader
			return s.item(nil, fmt.Errorf("line longer than %d bytes", s.maxLine)), nil
		case err == nil:
			return s.item(data[:len(data)-1], nil), nil
		case errors.Is(err, bufio.ErrBufferFull):
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
				_, err = s.br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return s.item(nil, fmt.Errorf("line longer than %d bytes", s.maxLine)), nil
		case err == io.EOF:
			if len(data) > 0 {
				return s.item(nil, errors.New("the last line has no newline (a torn write?)")), nil
			}
			s.close()
			s.br = nil
			s.it = item{file: s.cur, line: s.line + 1, ord: s.ord, eof: true}
			return &s.it, nil
		default:
			return nil, err
		}
	}
}

// item parses a line into s.it; err, when set, says why it is malformed
// without parsing.
func (s *source) item(raw []byte, err error) *item {
	s.line++
	s.it = item{file: s.cur, line: s.line, ord: s.ord, raw: raw, err: err}
	s.ord++
	if err == nil {
		if err := parseLine(raw, &s.it.p, false); err != nil {
			s.it.err = err
		} else {
			s.it.hash = sha256.Sum256(raw)
		}
	}
	return &s.it
}
