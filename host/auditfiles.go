package host

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
	"github.com/nitrosign/nitrosign/proto"
)

// The files of the audit log: inspection, crash repair, sealing and
// reading; their names are package audit/logfile's. The audit store
// (auditstore.go) decides what to write.

// liveState is what the live segment file holds.
type liveState struct {
	size        int64  // bytes up to the end of its last complete line
	torn        int64  // bytes after that: a torn write
	first, last uint64 // its first and last records (0 when it has none)
	lastKind    string
}

// maxLine is the longest line the host writes, with its newline.
const maxLine = proto.MaxAuditRecordLen + 1

// inspectLive reads the first and last lines of a live segment (not the
// whole file), and finds a torn last line.
func inspectLive(f *os.File) (liveState, error) {
	fi, err := f.Stat()
	if err != nil {
		return liveState{}, err
	}
	size := fi.Size()
	if size == 0 {
		return liveState{}, nil
	}
	off := max(0, size-2*maxLine)
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return liveState{}, err
	}
	end := bytes.LastIndexByte(tail, '\n')
	if end < 0 {
		if off > 0 {
			return liveState{}, fmt.Errorf("no line ends in its last %d bytes", len(tail))
		}
		return liveState{torn: size}, nil // nothing but a torn line
	}
	st := liveState{size: off + int64(end) + 1}
	st.torn = size - st.size
	start := bytes.LastIndexByte(tail[:end], '\n') + 1
	if start == 0 && off > 0 {
		return liveState{}, fmt.Errorf("its last line is longer than %d bytes", maxLine)
	}
	last, err := audit.Unmarshal(tail[start:end])
	if err != nil {
		return liveState{}, fmt.Errorf("its last complete line (byte %d) is not a record: %w", off+int64(start), err)
	}
	if !last.Signed() {
		// The enclave hands over records up to a signed one (a tree head,
		// or an event) and the host writes them as one batch: unsigned
		// records at the end are the rest of a batch whose write did not
		// complete, which was never acknowledged (no answer depended on
		// them) and which the enclave sends again. They are cut with the
		// torn line, so that the log ends with a record the enclave
		// recognizes as its own at its next start.
		end, rec, err := signedEnd(f, st.size)
		if err != nil {
			return liveState{}, err
		}
		if end == 0 {
			return liveState{torn: size}, nil
		}
		st.size, st.torn, last = end, size-end, rec
	}
	st.last, st.lastKind = last.Seq, last.Kind
	head := make([]byte, min(st.size, maxLine))
	if _, err := f.ReadAt(head, 0); err != nil {
		return liveState{}, err
	}
	nl := bytes.IndexByte(head, '\n')
	if nl < 0 {
		return liveState{}, fmt.Errorf("its first line is longer than %d bytes", maxLine)
	}
	first, err := audit.Unmarshal(head[:nl])
	if err != nil {
		return liveState{}, fmt.Errorf("its first line is not a record: %w", err)
	}
	st.first = first.Seq
	if st.first > st.last {
		return liveState{}, fmt.Errorf("its first record (%d) is after its last (%d)", st.first, st.last)
	}
	return st, nil
}

// signedEnd returns where the last signed record of f that ends at or
// before end ends (0 when there is none), and that record. It reads back
// at most a batch of unsigned records (audit.MaxBatch).
func signedEnd(f *os.File, end int64) (int64, audit.Record, error) {
	pos := end // the end of the line looked at, its newline included
	for range audit.MaxBatch + 1 {
		if pos == 0 {
			return 0, audit.Record{}, nil
		}
		var line []byte
		for _, window := range []int64{64 << 10, maxLine + 1} {
			lo := max(0, pos-window)
			buf := make([]byte, pos-lo)
			if _, err := f.ReadAt(buf, lo); err != nil {
				return 0, audit.Record{}, err
			}
			i := bytes.LastIndexByte(buf[:len(buf)-1], '\n') + 1
			if i > 0 || lo == 0 {
				line = buf[i : len(buf)-1]
				break
			}
		}
		if line == nil {
			return 0, audit.Record{}, fmt.Errorf("a line before byte %d is longer than %d bytes", pos, maxLine)
		}
		rec, err := audit.Unmarshal(line)
		if err != nil {
			return 0, audit.Record{}, fmt.Errorf("the line before byte %d is not a record: %w", pos, err)
		}
		if rec.Signed() {
			return pos, rec, nil
		}
		pos -= int64(len(line)) + 1
	}
	return 0, audit.Record{}, fmt.Errorf("more than %d unsigned records end the log before byte %d: no batch of the enclave's is that long", audit.MaxBatch, end)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

func (s *auditStore) crashAt(point string) error {
	s.mu.Lock()
	crash := s.crash
	s.mu.Unlock()
	if crash == nil {
		return nil
	}
	return crash(point)
}

// seal renames the live segment of log name, whose records are first to
// last (a rotate record), to its sealed name, and creates the next live
// segment, which it returns open for appending. The caller closed the live
// file, or holds it for appending only.
func (s *auditStore) seal(name string, first, last uint64) (*os.File, error) {
	if err := s.crashAt(crashWritten); err != nil {
		return nil, err
	}
	live, sealed := logfile.LivePath(s.dir, name), logfile.SealedPath(s.dir, name, first, last)
	if _, err := os.Lstat(sealed); err == nil {
		return nil, fmt.Errorf("sealing %s: %s exists already", live, sealed)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(live, sealed); err != nil {
		return nil, err
	}
	if err := s.crashAt(crashRenamed); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := s.crashAt(crashCreated); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	s.log.Info("audit log segment sealed", "path", sealed, "first_seq", first, "last_seq", last)
	return f, nil
}

// recover brings the files of log name to a consistent state (see Crash
// safety) and returns the live segment, open for appending, with its first
// record, its size, and the next record to persist.
func (s *auditStore) recover(name string) (f *os.File, first, next uint64, size int64, err error) {
	segs, err := logfile.Sealed(s.dir, name)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	sealedEnd := uint64(0) // the last record of the newest sealed segment
	if len(segs) > 0 {
		sealedEnd = segs[len(segs)-1].Last
	}
	path := logfile.LivePath(s.dir, name)
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		// No live segment: new, or a crash right after a seal's rename.
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return nil, 0, 0, 0, err
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return nil, 0, 0, 0, err
		}
		return f, sealedEnd + 1, sealedEnd + 1, 0, nil
	}
	if err != nil {
		return nil, 0, 0, 0, err
	}
	st, err := inspectLive(f)
	if err != nil {
		f.Close()
		return nil, 0, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if st.torn > 0 {
		// The rest of a batch whose fsync never returned (a torn line,
		// and the records after the last signed one): not acknowledged,
		// and the enclave sends it again.
		s.log.Warn("cutting a torn write from the end of the audit log", "path", path, "bytes", st.torn, "at", st.size)
		if err := f.Truncate(st.size); err != nil {
			f.Close()
			return nil, 0, 0, 0, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, 0, 0, 0, err
		}
	}
	if st.last == 0 {
		f.Close()
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		return f, sealedEnd + 1, sealedEnd + 1, 0, err
	}
	if sealedEnd > 0 && st.first != sealedEnd+1 {
		f.Close()
		return nil, 0, 0, 0, fmt.Errorf("%s starts with record %d, but the sealed segment %s ends with record %d: refusing to write to an inconsistent log",
			path, st.first, filepath.Base(segs[len(segs)-1].Path), sealedEnd)
	}
	f.Close()
	if st.lastKind == audit.KindRotate {
		// A crash before the seal completed: complete it.
		f, err := s.seal(name, st.first, st.last)
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("completing the rotation of %s: %w", path, err)
		}
		return f, st.last + 1, st.last + 1, 0, nil
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	return f, st.first, st.last + 1, st.size, err
}

// sealOthers completes the interrupted rotations of the logs of other audit
// keys than name's: a live segment ending with a rotate record is sealed.
// Nothing else of those logs is changed.
func (s *auditStore) sealOthers(name string) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		other, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || other == name || len(other) != len("audit-")+16 || !strings.HasPrefix(other, "audit-") || !e.Type().IsRegular() {
			continue
		}
		if _, err := hex.DecodeString(other[len("audit-"):]); err != nil {
			continue
		}
		f, err := os.Open(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue
		}
		st, err := inspectLive(f)
		f.Close()
		if err != nil || st.torn > 0 || st.lastKind != audit.KindRotate {
			continue
		}
		nf, err := s.seal(other, st.first, st.last)
		if err != nil {
			s.log.Warn("completing the rotation of an earlier audit log failed", "path", e.Name(), "err", err)
			continue
		}
		nf.Close()
	}
}

// records returns up to max persisted record lines from seq from on,
// across segments, in order. Records before the oldest segment kept are
// skipped, and the answer stops at a gap between segments.
func (s *auditStore) records(from uint64, max int) ([][]byte, error) {
	// A consistent view: the segments, and the live file with the records
	// known to be complete in it.
	s.fileMu.Lock()
	s.mu.Lock()
	name, first, next := s.name, s.first, s.next
	s.mu.Unlock()
	if name == "" {
		s.fileMu.Unlock()
		return nil, errNoAuditStore
	}
	segs, err := logfile.Sealed(s.dir, name)
	var live *os.File
	if err == nil && from < next && first < next {
		live, err = os.Open(logfile.LivePath(s.dir, name))
	}
	s.fileMu.Unlock()
	if err != nil {
		return nil, err
	}
	if live != nil {
		defer live.Close()
		segs = append(segs, logfile.Segment{Path: "", First: first, Last: next - 1})
	}
	var out [][]byte
	want := from // the next record to return
	for _, sg := range segs {
		if sg.Last < want {
			continue
		}
		if sg.First > want {
			if len(out) > 0 {
				break // a gap
			}
			want = sg.First // before the oldest segment kept
		}
		f := live
		if sg.Path != "" {
			if f, err = os.Open(sg.Path); err != nil {
				return nil, err
			}
		}
		var whole bool
		out, whole, err = readSegment(f, sg.First, want, sg.Last, max, out)
		if sg.Path != "" {
			f.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", cmp.Or(sg.Path, logfile.LivePath(s.dir, name)), err)
		}
		if len(out) >= max || !whole {
			break
		}
		want = sg.Last + 1
	}
	return out, nil
}

// readSegment appends to out the records from to last of a segment whose
// first record is first, up to max records in all. It reports whether the
// segment held all its records (a sealed segment cut short does not: the
// answer ends there, and the client's verification says why).
func readSegment(r io.Reader, first, from, last uint64, max int, out [][]byte) ([][]byte, bool, error) {
	br := bufio.NewReaderSize(r, maxLine)
	for seq := first; seq <= last && len(out) < max; seq++ {
		line, err := br.ReadSlice('\n')
		if err == io.EOF {
			return out, false, nil
		}
		if err != nil {
			return out, false, err
		}
		if seq >= from {
			out = append(out, bytes.Clone(line[:len(line)-1]))
		}
	}
	return out, true, nil
}
