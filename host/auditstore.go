package host

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// DefaultAuditRotateBytes is the size at which the host rotates the live
// segment of the audit log, unless Config.AuditRotateBytes says otherwise.
const DefaultAuditRotateBytes = 256 << 20

// errNoAuditStore answers a decision when the host keeps no audit log.
var errNoAuditStore = errors.New("host: this host keeps no audit log (no data directory); refusing to release decisions")

// auditStore persists the enclave's audit records, append-only and in
// sequence order (one JSON line each, fsynced), before the answer they
// belong to is released. Records arrive with the answers, possibly out of
// order across connections; a record that does not arrive (a lost answer)
// is fetched from the enclave, which keeps every record until the host
// acknowledges it.
//
// # Files
//
// Each audit key has a log of its own (an enclave whose seed is sealed
// keeps its key across restarts; an ephemeral one has a new key, and a new
// log, at each start), named by the first 16 hex digits K of the key and
// stored as segments in the data directory:
//
//	audit-K-FIRST-LAST.log   a sealed segment: records FIRST to LAST (20-digit,
//	                         zero-padded sequence numbers), the last one a
//	                         rotate record; never written again
//	audit-K.log              the live segment, appended to; it starts with
//	                         record LAST+1 of the newest sealed segment
//
// The names sort bytewise in log order (sealed segments by their first
// record, then the live one, as '-' sorts before '.'), so `LC_ALL=C ls
// audit-K*.log` lists the files to verify, in order; [AuditLogFiles] finds
// them.
//
// # Rotation
//
// Once the live segment holds AuditRotateBytes (or when asked,
// [Server.RotateAuditLog]) the host asks the enclave for a rotate record
// (proto.AuditRequest.Rotate). The enclave appends it to its chain like any
// record, signed, and keeps it until acknowledged. The host persists it in
// sequence order, as the last line of the live segment, and then seals the
// segment:
//
//  1. the batch ending with the rotate record is written and fsynced;
//  2. the live file is renamed to its sealed name (audit-K-FIRST-LAST.log,
//     never replacing an existing file);
//  3. a new, empty live file (audit-K.log) is created;
//  4. the directory is fsynced, making 2 and 3 durable;
//  5. the records are acknowledged to the enclave; records after the rotate
//     record go to the new live segment.
//
// # Crash safety
//
// A restart of the host (after a crash at any point, power loss included)
// finds one of these states, and open repairs it before writing anything:
//
//   - a torn write: the live file ends with a partial line. None of the
//     batch it belongs to was acknowledged or released (the fsync had not
//     returned), so the fragment is cut off, back to the last newline; the
//     enclave still holds the records and sends them again.
//   - before step 1 completes: the rotate record is not on disk (or is torn,
//     as above); the enclave still holds it, the host fetches it from the
//     enclave, and seals the segment as soon as it is written.
//   - between 1 and 2: the live file ends with a rotate record. Open seals
//     it (steps 2 to 4), since a rotate record always ends a segment.
//   - between 2 and 3 (or 4, if the rename was persisted but not the
//     creation): there is no live file. Open creates an empty one, the
//     next record being the one after the newest sealed segment.
//   - after 3: a consistent set of files (the directory fsync only decides
//     which of the states above a power loss leaves).
//
// Sealed segments are never modified, and the live segment only has
// fragments no answer depended on cut from its end. Any other state (a live
// segment that does not continue the newest sealed one, a last line that is
// complete but not a record) is refused: the host stops releasing decisions
// rather than write after it, and says which file is wrong. At open the
// host also finishes an interrupted seal of the other keys' logs (an
// enclave that restarted during a host crash), so that every log verifies.
type auditStore struct {
	dir         string
	pool        *pool
	log         *slog.Logger
	rotateBytes int64 // rotate once the live segment holds this many bytes; 0: never

	reopenMu sync.Mutex // one reopen at a time
	rotateMu sync.Mutex // one rotation at a time
	// fileMu serializes the operations on the files: writing, sealing,
	// switching logs, and the snapshot a reader takes. Taken before mu.
	fileMu sync.Mutex

	mu      sync.Mutex
	cond    *sync.Cond
	ready   bool
	key     []byte // the enclave's audit key: records are checked against it
	gen     uint64 // incremented at every (re)open: a record belongs to one log
	name    string // the log's file name prefix, audit-K
	f       *os.File
	first   uint64 // the live segment's first record (next while it is empty)
	size    int64  // bytes in the live segment
	next    uint64 // the next seq to persist
	waiting map[uint64]pendingRecord
	err     error // a write failure: sticky, fail closed
	kick    chan struct{}

	rotating    bool      // a rotation for size is under way
	rotateAfter time.Time // after a failed one, not before this
	bg          sync.WaitGroup

	// failWrite, when set (tests), makes writes fail: a full disk.
	failWrite func() error
	// crash, when set (tests), is called at each step of a seal; an error
	// stops the seal there, as a crash of the host would.
	crash func(point string) error
}

// pendingRecord is a record received ahead of the one to persist next.
type pendingRecord struct {
	line   []byte
	rotate bool // a rotate record: it ends the live segment
}

// Crash points of a seal, for tests (see auditStore.crash).
const (
	crashWritten = "written" // the rotate record is on disk, the segment not sealed
	crashRenamed = "renamed" // the segment has its sealed name, no live file exists
	crashCreated = "created" // the new live file exists, the directory is not fsynced
)

func newAuditStore(dir string, p *pool, log *slog.Logger) *auditStore {
	s := &auditStore{dir: dir, pool: p, log: log, waiting: map[uint64]pendingRecord{}, kick: make(chan struct{}, 1),
		rotateBytes: DefaultAuditRotateBytes}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// setRotateBytes applies Config.AuditRotateBytes: 0 is the default,
// negative never.
func (s *auditStore) setRotateBytes(n int64) {
	switch {
	case n == 0:
		s.rotateBytes = DefaultAuditRotateBytes
	case n < 0:
		s.rotateBytes = 0
	default:
		s.rotateBytes = n
	}
}

// run opens the log once the enclave answers, then writes, acknowledges
// and fetches records until ctx is done.
func (s *auditStore) run(ctx context.Context) {
	defer s.bg.Wait()
	started := time.Now()
	for {
		err := s.open(ctx)
		if err == nil {
			break
		}
		// While the enclave starts and is unsealed this is expected: say
		// so quietly for the first 30 s.
		level := slog.LevelDebug
		if time.Since(started) > 30*time.Second {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "audit log not open yet", "err", err)
		select {
		case <-ctx.Done():
			s.fail(ctx.Err())
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	gap := time.NewTicker(250 * time.Millisecond)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			s.fileMu.Lock()
			s.mu.Lock()
			if s.f != nil {
				s.f.Close()
			}
			s.mu.Unlock()
			s.fileMu.Unlock()
			s.fail(errors.New("host: shutting down"))
			return
		case <-s.kick:
			s.flush(ctx)
		case <-gap.C:
			s.fetchGap(ctx)
		}
	}
}

// logName is the file name prefix of the log of an audit key.
func logName(key []byte) string { return "audit-" + hex.EncodeToString(key)[:16] }

func livePath(dir, name string) string { return filepath.Join(dir, name+".log") }

func sealedPath(dir, name string, first, last uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%020d-%020d.log", name, first, last))
}

// segment is a sealed segment file.
type segment struct {
	path        string
	first, last uint64
}

// sealedSegments lists the sealed segments of log name in dir, in order.
func sealedSegments(dir, name string) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), name+"-")
		if !ok {
			continue
		}
		rest, ok = strings.CutSuffix(rest, ".log")
		if !ok || len(rest) != 41 || rest[20] != '-' {
			continue
		}
		first, err1 := parseSeq(rest[:20])
		last, err2 := parseSeq(rest[21:])
		if err1 != nil || err2 != nil || first == 0 || first > last || !e.Type().IsRegular() {
			continue
		}
		segs = append(segs, segment{path: filepath.Join(dir, e.Name()), first: first, last: last})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.first, b.first) })
	return segs, nil
}

func parseSeq(s string) (uint64, error) {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not digits")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// AuditLogFiles returns the files of the log of the audit key in dir (a
// host's data directory), in log order: the sealed segments, oldest first,
// and the live segment, or "" if there is none (a host stopped in the
// middle of a rotation creates it when it starts). Verify them with
// audit.VerifyFiles, the live segment last.
func AuditLogFiles(dir string, key []byte) (sealed []string, live string, err error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, "", fmt.Errorf("host: an audit key has %d bytes, not %d", ed25519.PublicKeySize, len(key))
	}
	name := logName(key)
	// The live segment first: a seal that happens in between then adds a
	// sealed segment to the list, and the list still ends where the live
	// segment starts.
	switch fi, err := os.Stat(livePath(dir, name)); {
	case err == nil && fi.Mode().IsRegular():
		live = livePath(dir, name)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, "", err
	}
	segs, err := sealedSegments(dir, name)
	if err != nil {
		return nil, "", err
	}
	for _, sg := range segs {
		sealed = append(sealed, sg.path)
	}
	return sealed, live, nil
}

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
	live, sealed := livePath(s.dir, name), sealedPath(s.dir, name, first, last)
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
	segs, err := sealedSegments(s.dir, name)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	sealedEnd := uint64(0) // the last record of the newest sealed segment
	if len(segs) > 0 {
		sealedEnd = segs[len(segs)-1].last
	}
	path := livePath(s.dir, name)
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
		// The rest of a batch whose fsync never returned: not acknowledged,
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
			path, st.first, filepath.Base(segs[len(segs)-1].path), sealedEnd)
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

// open learns the enclave's audit key, opens (or creates) its log, resumes
// after the last record in it, and fetches what the enclave holds beyond.
func (s *auditStore) open(ctx context.Context) error {
	st, err := s.state(ctx, 0, 0)
	if err != nil {
		return err
	}
	if len(st.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("host: the enclave's audit key has %d bytes", len(st.Key))
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	name := logName(st.Key)
	s.fileMu.Lock()
	f, first, next, size, err := s.recover(name)
	if err != nil {
		s.fileMu.Unlock()
		return fmt.Errorf("host: audit log %s: %w", name, err)
	}
	s.sealOthers(name)
	s.mu.Lock()
	if s.f != nil {
		s.f.Close()
	}
	s.name, s.f, s.first, s.size, s.next, s.ready, s.key = name, f, first, size, next, true, st.Key
	s.gen++
	clear(s.waiting) // records of a previous enclave run, if any
	s.cond.Broadcast()
	s.mu.Unlock()
	s.fileMu.Unlock()
	s.log.Info("audit log open", "path", livePath(s.dir, name), "first_seq", first, "next_seq", next, "enclave_head", st.HeadSeq)
	s.fetchFrom(ctx, next)
	return nil
}

func (s *auditStore) state(ctx context.Context, ack, from uint64) (*proto.AuditResponse, error) {
	return s.call(ctx, &proto.AuditRequest{Ack: ack, From: from})
}

func (s *auditStore) call(ctx context.Context, req *proto.AuditRequest) (*proto.AuditResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.pool.call(ctx, req)
	if err != nil {
		return nil, err
	}
	st, ok := resp.(*proto.AuditResponse)
	if !ok {
		return nil, fmt.Errorf("host: unexpected answer to an audit request")
	}
	return st, nil
}

// persist hands one record line to the store and waits until it, and every
// record before it, is on disk. The record must be signed with the audit
// key of the log open: a record under another key means the enclave
// restarted (a new key, a new log), and the store switches to that log
// before persisting it, so that no record is ever taken for one already
// written.
func (s *auditStore) persist(ctx context.Context, line []byte) error {
	r, gen, err := s.check(ctx, line)
	if err != nil {
		return err
	}
	s.add(gen, r.Seq, pendingRecord{line: line, rotate: r.Kind == audit.KindRotate})
	return s.wait(ctx, gen, r.Seq)
}

// wait waits until record seq of the log of generation gen is on disk.
func (s *auditStore) wait(ctx context.Context, gen, seq uint64) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.err == nil && s.gen == gen && s.next <= seq {
		if ctx.Err() != nil {
			return fmt.Errorf("host: audit record %d not persisted in time: %w", seq, ctx.Err())
		}
		s.cond.Wait()
	}
	if s.err == nil && s.gen != gen {
		return fmt.Errorf("host: the enclave restarted before audit record %d was persisted", seq)
	}
	return s.err
}

// check waits for the log to be open and verifies line against its key,
// switching logs once if the enclave's key changed.
func (s *auditStore) check(ctx context.Context, line []byte) (audit.Record, uint64, error) {
	for attempt := 0; ; attempt++ {
		key, gen, err := s.waitOpen(ctx)
		if err != nil {
			return audit.Record{}, 0, err
		}
		r, verr := audit.VerifyRecord(line, key)
		if verr == nil {
			return r, gen, nil
		}
		if attempt > 0 {
			return audit.Record{}, 0, fmt.Errorf("host: audit record not signed by the enclave's audit key: %w", verr)
		}
		if err := s.reopen(ctx, key); err != nil {
			return audit.Record{}, 0, err
		}
	}
}

// waitOpen waits for the log to be open and returns its key and generation.
func (s *auditStore) waitOpen(ctx context.Context) ([]byte, uint64, error) {
	s.mu.Lock()
	for !s.ready && s.err == nil && ctx.Err() == nil {
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		s.mu.Lock()
	}
	key, gen, err := s.key, s.gen, s.err
	s.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	if ctx.Err() != nil {
		return nil, 0, fmt.Errorf("host: the audit log is not open: %w", ctx.Err())
	}
	return key, gen, nil
}

// reopen switches to the log of the enclave's current audit key, if it is
// not the one open (the enclave restarted with another key).
func (s *auditStore) reopen(ctx context.Context, old []byte) error {
	s.reopenMu.Lock()
	defer s.reopenMu.Unlock()
	s.mu.Lock()
	changed := !bytes.Equal(s.key, old)
	s.mu.Unlock()
	if changed {
		return nil // another caller already switched
	}
	st, err := s.state(ctx, 0, 0)
	if err != nil {
		return err
	}
	if bytes.Equal(st.Key, old) {
		return nil
	}
	s.log.Warn("the enclave's audit key changed (a restart): switching audit logs")
	return s.open(ctx)
}

// add queues a record of the log of generation gen for writing; a record of
// another generation (the enclave restarted meanwhile) is dropped, and its
// persist call fails.
func (s *auditStore) add(gen, seq uint64, p pendingRecord) {
	s.mu.Lock()
	if s.ready && s.gen == gen && seq >= s.next {
		s.waiting[seq] = p
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *auditStore) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// flush writes the records that continue the log, sealing the live segment
// after a rotate record, acknowledges them to the enclave, and starts a
// rotation if the live segment has grown too large.
func (s *auditStore) flush(ctx context.Context) {
	for {
		ack, more := s.flushBatch()
		if ack > 0 {
			if _, err := s.state(ctx, ack, 0); err != nil {
				s.log.Warn("acknowledging audit records failed", "seq", ack, "err", err)
			}
		}
		if !more {
			break
		}
	}
	s.rotateIfLarge(ctx)
}

// flushBatch writes the waiting records that continue the log, up to the
// first rotate record, with one fsync, then seals the segment if it ended
// with a rotate record. It returns the last record persisted (0: none) and
// whether records may remain (after a rotate record).
func (s *auditStore) flushBatch() (ack uint64, more bool) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	if !s.ready || s.err != nil {
		s.mu.Unlock()
		return 0, false
	}
	var batch bytes.Buffer
	n := uint64(0)
	rotated := false
	for !rotated {
		p, ok := s.waiting[s.next+n]
		if !ok {
			break
		}
		delete(s.waiting, s.next+n)
		batch.Write(p.line)
		batch.WriteByte('\n')
		n++
		rotated = p.rotate
	}
	for seq := range s.waiting {
		if seq < s.next {
			delete(s.waiting, seq) // a duplicate of a persisted record
		}
	}
	f, name, first, last := s.f, s.name, s.first, s.next+n-1
	s.mu.Unlock()
	if n == 0 {
		return 0, false
	}
	err := s.write(f, batch.Bytes())
	var nf *os.File
	closed := false
	if err == nil && rotated {
		f.Close()
		closed = true
		if nf, err = s.seal(name, first, last); err != nil {
			err = fmt.Errorf("sealing the segment that ends with rotate record %d: %w", last, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if closed && nf == nil {
		s.f = nil
	}
	if err != nil {
		s.log.Error("writing the audit log failed: refusing to release decisions", "err", err)
		if s.err == nil {
			s.err = fmt.Errorf("host: the audit log cannot be written: %w", err)
		}
		s.cond.Broadcast()
		return 0, false
	}
	s.next += n
	s.size += int64(batch.Len())
	if rotated {
		s.f, s.first, s.size = nf, s.next, 0
	}
	s.cond.Broadcast()
	return s.next - 1, rotated
}

func (s *auditStore) write(f *os.File, b []byte) error {
	s.mu.Lock()
	fail := s.failWrite
	s.mu.Unlock()
	if fail != nil {
		if err := fail(); err != nil {
			return err
		}
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// rotateIfLarge starts a rotation, in the background, once the live
// segment holds rotateBytes.
func (s *auditStore) rotateIfLarge(ctx context.Context) {
	s.mu.Lock()
	due := s.rotateBytes > 0 && s.size >= s.rotateBytes && s.ready && s.err == nil && !s.rotating && !time.Now().Before(s.rotateAfter)
	if due {
		s.rotating = true
		s.bg.Add(1)
	}
	s.mu.Unlock()
	if !due {
		return
	}
	go func() {
		defer s.bg.Done()
		err := s.rotate(ctx, s.rotateBytes)
		s.mu.Lock()
		s.rotating = false
		if err != nil {
			s.rotateAfter = time.Now().Add(time.Second)
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("rotating the audit log failed; retrying later", "err", err)
		}
	}()
}

// rotate asks the enclave for a rotate record and waits until it is
// persisted as the last record of the live segment, and the segment sealed.
// It does nothing when the live segment is smaller than minSize (a rotation
// for size that another one overtook), or holds no record at all.
func (s *auditStore) rotate(ctx context.Context, minSize int64) error {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	key, gen, err := s.waitOpen(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	empty := s.first == s.next && len(s.waiting) == 0
	small := s.size < minSize
	s.mu.Unlock()
	if empty || small {
		return nil
	}
	st, err := s.call(ctx, &proto.AuditRequest{Rotate: true})
	if err != nil {
		return fmt.Errorf("host: asking the enclave for a rotate record: %w", err)
	}
	if !bytes.Equal(st.Key, key) {
		return errors.New("host: the enclave's audit key changed (a restart): the audit log open is not the enclave's")
	}
	if len(st.RotateRecord) == 0 {
		return errors.New("host: the enclave appended no rotate record: too many of its audit records are not yet persisted")
	}
	r, err := audit.VerifyRecord(st.RotateRecord, key)
	if err != nil {
		return fmt.Errorf("host: the enclave's rotate record: %w", err)
	}
	if r.Kind != audit.KindRotate {
		return fmt.Errorf("host: the enclave answered a rotation with a %q record", r.Kind)
	}
	s.add(gen, r.Seq, pendingRecord{line: st.RotateRecord, rotate: true})
	return s.wait(ctx, gen, r.Seq)
}

// RotateAuditLog ends the live segment of the audit log with a rotate
// record the enclave signs, seals the segment (audit-K-FIRST-LAST.log), and
// starts a new one. It returns once the sealed segment is on disk; with no
// record in the live segment, it does nothing. The server must be serving
// (Serve).
func (s *Server) RotateAuditLog(ctx context.Context) error {
	if s.audit == nil {
		return errNoAuditStore
	}
	return s.audit.rotate(ctx, 0)
}

// fetchGap asks the enclave for records the host is waiting for but did
// not receive.
func (s *auditStore) fetchGap(ctx context.Context) {
	s.mu.Lock()
	next, gap := s.next, len(s.waiting) > 0 && s.err == nil
	s.mu.Unlock()
	if gap {
		s.fetchFrom(ctx, next)
	}
}

func (s *auditStore) fetchFrom(ctx context.Context, from uint64) {
	s.mu.Lock()
	gen, key := s.gen, s.key
	s.mu.Unlock()
	for {
		st, err := s.state(ctx, 0, from)
		if err != nil {
			s.log.Warn("fetching audit records failed", "from", from, "err", err)
			return
		}
		if !bytes.Equal(st.Key, key) {
			return // the enclave restarted: the next record's check reopens
		}
		for _, line := range st.Records {
			r, err := audit.Unmarshal(line)
			if err != nil {
				s.log.Error("the enclave sent a malformed audit record", "err", err)
				return
			}
			s.add(gen, r.Seq, pendingRecord{line: line, rotate: r.Kind == audit.KindRotate})
		}
		if len(st.Records) < proto.MaxAuditRecords {
			return
		}
		from += uint64(len(st.Records))
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
	segs, err := sealedSegments(s.dir, name)
	var live *os.File
	if err == nil && from < next && first < next {
		live, err = os.Open(livePath(s.dir, name))
	}
	s.fileMu.Unlock()
	if err != nil {
		return nil, err
	}
	if live != nil {
		defer live.Close()
		segs = append(segs, segment{path: "", first: first, last: next - 1})
	}
	var out [][]byte
	want := from // the next record to return
	for _, sg := range segs {
		if sg.last < want {
			continue
		}
		if sg.first > want {
			if len(out) > 0 {
				break // a gap
			}
			want = sg.first // before the oldest segment kept
		}
		f := live
		if sg.path != "" {
			if f, err = os.Open(sg.path); err != nil {
				return nil, err
			}
		}
		var whole bool
		out, whole, err = readSegment(f, sg.first, want, sg.last, max, out)
		if sg.path != "" {
			f.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", cmp.Or(sg.path, livePath(s.dir, name)), err)
		}
		if len(out) >= max || !whole {
			break
		}
		want = sg.last + 1
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
