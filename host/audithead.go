package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
)

// lastLineOfLog returns the last record of the log named name (its live
// segment's last line, else its newest sealed segment's), without its
// newline, or nil when there is no record: what the enclave continues its
// log from when it is unsealed.
func (s *auditStore) lastLineOfLog(name string) ([]byte, error) {
	line, err := lastLineOf(logfile.LivePath(s.dir, name))
	if err != nil || line != nil {
		return line, err
	}
	segs, err := logfile.Sealed(s.dir, name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	if len(segs) == 0 {
		return nil, nil
	}
	return lastLineOf(segs[len(segs)-1].Path)
}

// lastLineOf returns the last complete line of the file at path (nil if it
// is missing or empty), reading at most a record's worth from its end.
func lastLineOf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, nil
	}
	n := min(size, int64(audit.MaxRecordSize)+2)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if buf[len(buf)-1] != '\n' {
		// A torn last line (a crash mid-write): the store cuts it off when
		// it opens; until then, the last complete line is the head.
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 {
			if n < size {
				return nil, fmt.Errorf("host: %s: the last line is longer than a record", path)
			}
			return nil, nil
		}
		buf = buf[:i+1]
	}
	buf = buf[:len(buf)-1]
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	} else if n < size {
		return nil, fmt.Errorf("host: %s: the last line is longer than a record", path)
	}
	return bytes.Clone(buf), nil
}
