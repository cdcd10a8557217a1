package host

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
	"github.com/nitrosign/nitrosign/proto"
)

// DefaultAuditRotateBytes is the size at which the host rotates the live
// segment of the audit log, unless Config.AuditRotateBytes says otherwise.
const DefaultAuditRotateBytes = 256 << 20

// errNoAuditStore answers a decision when the host keeps no audit log.
var errNoAuditStore = errors.New("host: this host keeps no audit log (no data directory); refusing to release decisions")

// auditStore persists the enclave's audit records, append-only and in
// sequence order (one JSON line each, fsynced), before the answer they
// belong to is released.
//
// # Pipeline
//
// One goroutine long-polls the enclave (proto.AuditRequest with WaitMS):
// each answer brings the records appended since the last one, in order.
// The store checks each against the enclave's audit key and the chain (its
// prev is the hash of the record before it on disk), writes the batch with
// one fsync, and acknowledges its last record in the next poll, naming the
// hash of the exact line written. The enclave releases an answer (a
// signature, a refusal, an approval) only once its record is acknowledged,
// so nothing leaves before its record is on disk, and the HTTP handlers
// check once more that the record the answer carries is the one on disk
// (confirm).
//
// # Enclave runs
//
// Every start of the enclave process has a run id (AuditResponse.Run). The
// store begins a new generation at every run it sees: it re-reads its head
// from disk, drops the records it had queued, and acknowledges its head
// with its hash, which the enclave accepts only if it holds that exact
// record. Before unsealing a restarted enclave, the host takes the head it
// hands over from the store under the same lock (headForRun), so that no
// record of the previous run can be written after it.
//
// # Failures
//
// A write or fsync that fails is cut back off the file and retried, every
// retryDelay, for as long as it fails; meanwhile every poll tells the
// enclave (AuditRequest.Failing), which stops deciding at once, and
// /v1/health reports the store degraded with the reason. Nothing is lost:
// the enclave keeps every record until it is acknowledged. Records that do
// not continue the log on disk (another chain, or records lost from disk
// that the enclave had seen acknowledged) are never written: the store
// reports why and writes nothing until a new enclave run.
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
// audit-K*.log` lists the files to verify, in order; logfile.Files finds
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
	metrics     *auditMetrics
	rotateBytes int64 // rotate once the live segment holds this many bytes; 0: never

	// pollWait is how long a poll waits for new records; retryDelay is the
	// pause between attempts while writing fails or the enclave does not
	// answer.
	pollWait, retryDelay time.Duration

	// fileMu serializes the operations on the files: writing, sealing,
	// switching runs and logs, and the snapshot a reader takes. Taken
	// before mu.
	fileMu sync.Mutex

	mu   sync.Mutex
	cond *sync.Cond // broadcast whenever next, the run or the failure state changes
	key  []byte     // the enclave's audit key: records are checked against it
	name string     // the log's file name prefix, audit-K
	f    *os.File
	// first is the live segment's first record (next while it is empty);
	// next the next seq to write; size the live segment's bytes; head the
	// hash of record next-1 (zero when the log is empty).
	first, next uint64
	size        int64
	head        [32]byte
	// dirty: a failed write may have left bytes after size; they are cut
	// before the next write.
	dirty bool

	runID   []byte              // the enclave run this generation writes
	retired map[string]struct{} // earlier runs (at most maxRetiredRuns): their answers are ignored
	gen     uint64              // incremented at every new run or log

	// ackSeq and ackHash are the acknowledgement the next poll sends.
	ackSeq  uint64
	ackHash [32]byte
	waiting map[uint64]pendingRecord // fetched records not yet written
	recent  [recentRecords]recentRecord

	failing      string // why writing fails now, retried; "" when it does not
	failingSince time.Time
	broken       string // why nothing can be written until a new run; "" when fine
	closed       bool   // the store has stopped (shutdown)

	wake chan struct{} // cuts a pause between polls short (kick)

	rotateWanted bool   // the next poll asks for a rotate record
	seals        uint64 // segments sealed so far

	// batchBuf and batchHashes are flushBatch's buffers, kept between
	// batches so that each batch does not grow new ones; under fileMu.
	batchBuf    []byte
	batchHashes [][32]byte

	// failWrite, when set (tests), makes writes fail: a full disk.
	failWrite func() error
	// crash, when set (tests), is called at each step of a seal; an error
	// stops the seal there, as a crash of the host would.
	crash func(point string) error
}

// pendingRecord is a fetched record waiting to be written.
type pendingRecord struct {
	line []byte
	prev [32]byte
	kind string
	// rule, decision and (of boot records) summary, for the metrics of
	// persisted records
	rule, decision, summary string
}

// maxKeptBatch is the largest batch buffer flushBatch keeps for the next
// batch: a batch of records is far smaller under any steady load, and one
// made large by a backlog is left to the collector.
const maxKeptBatch = 1 << 20

// recentRecords is how many of the last records written the store
// remembers, to confirm that an answer's record is the one on disk.
const recentRecords = 1 << 16

type recentRecord struct {
	seq  uint64
	hash [32]byte
}

// Crash points of a seal, for tests (see auditStore.crash).
const (
	crashWritten = "written" // the rotate record is on disk, the segment not sealed
	crashRenamed = "renamed" // the segment has its sealed name, no live file exists
	crashCreated = "created" // the new live file exists, the directory is not fsynced
)

// Defaults of the pipeline's timing.
const (
	defaultAuditPollWait   = 500 * time.Millisecond
	defaultAuditRetryDelay = 250 * time.Millisecond
	emptyPollPause         = 5 * time.Millisecond
)

func newAuditStore(dir string, p *pool, log *slog.Logger, m *auditMetrics) *auditStore {
	s := &auditStore{dir: dir, pool: p, log: log, metrics: m, rotateBytes: DefaultAuditRotateBytes,
		pollWait: defaultAuditPollWait, retryDelay: defaultAuditRetryDelay,
		waiting: map[uint64]pendingRecord{}, retired: map[string]struct{}{}, wake: make(chan struct{}, 1)}
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

// run polls the enclave, writes and acknowledges its records, until ctx is
// done.
func (s *auditStore) run(ctx context.Context) {
	started := time.Now()
	for ctx.Err() == nil {
		wait, err := s.poll(ctx)
		if err != nil && ctx.Err() == nil {
			// While the enclave starts and is unsealed this is expected:
			// say so quietly for the first 30 s.
			level := slog.LevelDebug
			if time.Since(started) > 30*time.Second {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "polling the enclave for audit records failed", "err", err)
			wait = s.retryDelay
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
			case <-s.wake:
			case <-time.After(wait):
			}
		}
	}
	s.fileMu.Lock()
	s.mu.Lock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.fileMu.Unlock()
}

// kick makes the next poll start now, when the store is pausing between
// polls (after the enclave was unsealed, for instance).
func (s *auditStore) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// poll makes one round: acknowledge, fetch, write. It returns how long to
// pause before the next round.
func (s *auditStore) poll(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	req := &proto.AuditRequest{From: s.next, Failing: s.failureLocked(), Rotate: s.rotateWanted && s.broken == ""}
	if s.runID == nil || s.next == 0 {
		req.From = 0 // learn the run and key first
	}
	if s.ackSeq > 0 {
		req.Ack, req.AckHash = s.ackSeq, bytes.Clone(s.ackHash[:])
	}
	if s.runID != nil {
		req.Run = bytes.Clone(s.runID)
	}
	if len(s.waiting) == 0 && s.failing == "" && req.From != 0 {
		req.WaitMS = uint32(s.pollWait / time.Millisecond)
	}
	s.mu.Unlock()

	resp, err := s.pool.callTimeout(ctx, req, s.pollWait+5*time.Second)
	if err != nil {
		var pe *proto.Error
		if errors.As(err, &pe) && pe.Rule == refusal.RuleAudit {
			// The enclave refused the acknowledgement: the record on disk
			// at that seq is not the enclave's (or it has no such record).
			s.setBroken(fmt.Sprintf("the enclave refused the acknowledgement of record %d: %s", req.Ack, pe.Message))
			return s.retryDelay, nil
		}
		return 0, err
	}
	st, ok := resp.(*proto.AuditResponse)
	if !ok {
		return 0, fmt.Errorf("host: unexpected answer %v to an audit request", resp.Type())
	}
	if len(st.Key) != ed25519.PublicKeySize || len(st.Run) != proto.RunIDLen {
		return 0, fmt.Errorf("host: the enclave's audit answer has a key of %d bytes and a run id of %d", len(st.Key), len(st.Run))
	}
	s.mu.Lock()
	_, retired := s.retired[string(st.Run)]
	same := bytes.Equal(st.Run, s.runID) && bytes.Equal(st.Key, s.key)
	s.mu.Unlock()
	switch {
	case retired:
		return 0, nil // an answer of a run that ended
	case !same:
		if err := s.startRun(st.Run, st.Key, st.Acked); err != nil {
			return 0, err
		}
		return 0, nil
	}
	s.take(st)
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.failing != "" || s.broken != "":
		return s.retryDelay, nil
	case len(st.Records) == 0 && len(s.waiting) == 0:
		// Nothing came within the wait: a short pause, so that an enclave
		// that does not hold polls (an older one) is not polled in a loop.
		return emptyPollPause, nil
	}
	return 0, nil
}

// failureLocked is what the store reports to the enclave: why it cannot
// persist, or "". s.mu is held.
func (s *auditStore) failureLocked() string {
	msg := s.broken
	if msg == "" {
		msg = s.failing
	}
	if len(msg) > proto.MaxFailingLen {
		msg = msg[:proto.MaxFailingLen-3] + "..."
	}
	return msg
}

// startRun begins a new generation for an enclave run (or audit key): it
// re-reads the head of the key's log from disk, drops queued records, and
// acknowledges the head with its hash, which the enclave accepts only if it
// holds that record. acked is what the enclave says was acknowledged.
func (s *auditStore) startRun(run, key []byte, acked uint64) error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if err := s.openLocked(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.switchRunLocked(run)
	if acked > s.next-1 {
		s.broken = fmt.Sprintf("the audit log on disk ends with record %d, but the enclave had records up to %d acknowledged as persisted: records %d to %d are missing from disk", s.next-1, acked, s.next, acked)
		s.log.Error("audit records acknowledged earlier are missing from disk: writing nothing until the enclave restarts", "disk_head", s.next-1, "enclave_acked", acked)
		s.metrics.setState(s.failing, s.broken)
	}
	s.log.Info("audit log: enclave run", "run", hex.EncodeToString(run), "path", logfile.LivePath(s.dir, s.name), "next_seq", s.next, "enclave_acked", acked)
	return nil
}

// maxRetiredRuns caps the earlier runs an audit store remembers, so that
// the set does not grow with every enclave restart: past it, the set is
// cleared.
const maxRetiredRuns = 64

// switchRunLocked makes run the current one. s.fileMu and s.mu are held.
func (s *auditStore) switchRunLocked(run []byte) {
	if s.runID != nil && !bytes.Equal(s.runID, run) {
		if len(s.retired) >= maxRetiredRuns {
			clear(s.retired)
		}
		s.retired[string(s.runID)] = struct{}{}
	}
	s.runID = bytes.Clone(run)
	s.gen++
	clear(s.waiting)
	s.broken = ""
	s.ackSeq, s.ackHash = 0, [32]byte{}
	if s.next > 1 {
		s.ackSeq, s.ackHash = s.next-1, s.head
	}
	s.metrics.setState(s.failing, s.broken)
	s.cond.Broadcast()
}

// openLocked (re)opens the log of key from disk: its files repaired (see
// Crash safety), its head re-read. s.fileMu is held.
func (s *auditStore) openLocked(key []byte) error {
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("host: an audit key has %d bytes", len(key))
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	s.mu.Lock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.mu.Unlock()
	name := logfile.Name(key)
	f, first, next, size, err := s.recover(name)
	if err != nil {
		s.setBroken(fmt.Sprintf("audit log %s: %v", name, err))
		return fmt.Errorf("host: audit log %s: %w", name, err)
	}
	var head [32]byte
	if next > 1 {
		line, err := s.lastLineOfLog(name)
		if err != nil || line == nil {
			f.Close()
			if err == nil {
				err = fmt.Errorf("no last record, though the log goes up to %d", next-1)
			}
			s.setBroken(fmt.Sprintf("audit log %s: reading its last record: %v", name, err))
			return fmt.Errorf("host: audit log %s: reading its last record: %w", name, err)
		}
		head = sha256.Sum256(line)
	}
	s.sealOthers(name)
	s.mu.Lock()
	s.key, s.name, s.f, s.first, s.next, s.size, s.head, s.dirty = bytes.Clone(key), name, f, first, next, size, head, false
	s.metrics.persisted.Set(float64(next - 1)) // the log's last record, before any is written
	s.mu.Unlock()
	return nil
}

// headForRun is what the host hands a restarted enclave to continue its log
// from: the last record on disk of the log of key (nil when there is
// none). Under the store's file lock it first makes run the current run,
// so that no record of an earlier run can be written after the head
// returned: the new run's boot record continues exactly this head.
func (s *auditStore) headForRun(run, key []byte) ([]byte, error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if len(key) == ed25519.PublicKeySize {
		if err := s.openLocked(key); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.switchRunLocked(run)
	name := s.name
	s.mu.Unlock()
	if name == "" {
		return nil, nil
	}
	return s.lastLineOfLog(name)
}

// checkRecord checks a record line the enclave sent: canonical, and, if
// signed (a tree head, an event), signed by the audit key. A decision
// record is unsigned: the tree head of its batch, which the enclave sends
// with it and which the chain check in flush ties to it, authenticates it.
func checkRecord(line, key []byte) (audit.Record, error) {
	r, err := audit.Unmarshal(line)
	if err != nil || !r.Signed() {
		return r, err
	}
	return audit.VerifyRecord(line, key)
}

// take queues the records of an answer for writing, checking each against
// the audit key.
func (s *auditStore) take(st *proto.AuditResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range st.Records {
		r, err := checkRecord(line, s.key)
		if err != nil {
			s.log.Error("the enclave sent an audit record that does not verify; dropped", "err", err)
			continue
		}
		if r.Seq < s.next {
			continue // written already
		}
		if len(s.waiting) >= 4*proto.MaxAuditRecords {
			break // enough queued: the rest comes again later
		}
		p := pendingRecord{line: line, prev: r.Prev, kind: r.Kind, rule: r.Rule, decision: r.Decision}
		if r.Kind == audit.KindBoot || r.Kind == audit.KindGenesis {
			p.summary = r.Summary
		}
		s.waiting[r.Seq] = p
	}
}

// flush writes the queued records that continue the log, up to the first
// rotate record, with one fsync, seals the segment after a rotate record,
// and sets the acknowledgement the next poll sends. A failed write is cut
// back off the file and retried at the next round.
func (s *auditStore) flush() {
	for s.flushBatch() {
	}
}

// flushBatch writes one batch; it returns whether another may follow (after
// a rotate record).
func (s *auditStore) flushBatch() bool {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	if s.f == nil || s.broken != "" || s.closed {
		s.mu.Unlock()
		return false
	}
	// The batch's bytes and its lines' hashes (in order: each line is
	// hashed once) go into buffers kept between batches, under fileMu.
	batch := bytes.NewBuffer(s.batchBuf[:0])
	hashes := s.batchHashes[:0]
	defer func() {
		// Keep the buffers for the next batch, unless an unusually large
		// batch made them large.
		if batch.Cap() <= maxKeptBatch {
			s.batchBuf = batch.Bytes()[:0]
		}
		if cap(hashes) <= 8*proto.MaxAuditRecords { // a queue holds at most 4 answers' records
			s.batchHashes = hashes[:0]
		}
	}()
	n := uint64(0)
	prev := s.head
	rotated := false
	var last [32]byte
	for !rotated {
		p, ok := s.waiting[s.next+n]
		if !ok {
			break
		}
		if p.prev != prev {
			s.brokenLocked(fmt.Sprintf("the enclave's audit record %d does not continue the log on disk (its prev is %x, the record before it on disk hashes to %x)", s.next+n, p.prev, prev))
			break
		}
		batch.Write(p.line)
		batch.WriteByte('\n')
		last = sha256.Sum256(p.line)
		hashes = append(hashes, last)
		prev = last
		n++
		rotated = p.kind == audit.KindRotate
	}
	f, name, first, size, dirty, lastSeq := s.f, s.name, s.first, s.size, s.dirty, s.next+n-1
	s.mu.Unlock()
	if n == 0 {
		return false
	}
	err := s.write(f, size, dirty, batch.Bytes())
	var nf *os.File
	sealed := false
	if err == nil && rotated {
		f.Close()
		if nf, err = s.seal(name, first, lastSeq); err != nil {
			err = &sealError{fmt.Errorf("sealing the segment that ends with rotate record %d: %w", lastSeq, err)}
		} else {
			sealed = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && rotated && err2seal(err) {
		// The batch is on disk but the segment is half sealed: the files
		// are left as a crash would leave them, for the next open (a new
		// enclave run, or a restart of the host) to complete. Nothing is
		// written meanwhile.
		s.f = nil
		s.brokenLocked(err.Error())
		return false
	}
	if err != nil {
		s.dirty = true
		if s.failing == "" {
			s.failingSince = time.Now()
			s.log.Error("writing the audit log failed: the enclave stops deciding; retrying", "err", err)
		}
		s.failing = fmt.Sprintf("writing the audit log failed: %v", err)
		s.metrics.writeErrors.Inc()
		s.metrics.setState(s.failing, s.broken)
		s.cond.Broadcast()
		return false
	}
	// s.next has not moved since the batch was built: every change of it
	// holds s.fileMu, as this function does.
	for i, hash := range hashes {
		seq := s.next + uint64(i)
		p := s.waiting[seq]
		s.recent[seq%recentRecords] = recentRecord{seq: seq, hash: hash}
		if s.metrics.record != nil {
			s.metrics.record(audit.Record{Seq: seq, Kind: p.kind, Rule: p.rule, Decision: p.decision, Summary: p.summary})
		}
		delete(s.waiting, seq)
	}
	if s.failing != "" {
		s.log.Info("writing the audit log works again", "failed_for", time.Since(s.failingSince).Truncate(time.Millisecond))
		s.failing = ""
	}
	s.next = lastSeq + 1
	s.head = last
	s.ackSeq, s.ackHash = lastSeq, last
	s.size += int64(batch.Len())
	s.dirty = false
	if sealed {
		s.f, s.first, s.size = nf, s.next, 0
		s.seals++
		s.rotateWanted = false
	} else if s.rotateBytes > 0 && s.size >= s.rotateBytes {
		s.rotateWanted = true
	}
	s.metrics.persisted.Set(float64(lastSeq))
	s.metrics.setState(s.failing, s.broken)
	s.cond.Broadcast()
	return sealed
}

// sealError is a failure to seal a segment whose records are on disk.
type sealError struct{ err error }

func (e *sealError) Error() string { return e.err.Error() }
func (e *sealError) Unwrap() error { return e.err }

func err2seal(err error) bool {
	var se *sealError
	return errors.As(err, &se)
}

// write appends b to f at size (cutting off what a failed write left) and
// fsyncs. On error the caller retries; what was written is cut off first.
func (s *auditStore) write(f *os.File, size int64, dirty bool, b []byte) error {
	s.mu.Lock()
	fail := s.failWrite
	s.mu.Unlock()
	if dirty {
		if err := f.Truncate(size); err != nil {
			return fmt.Errorf("cutting off a failed write: %w", err)
		}
	}
	if fail != nil {
		if err := fail(); err != nil {
			return err
		}
	}
	if _, err := f.Write(b); err != nil {
		f.Truncate(size) // best effort now; again before the next write
		return err
	}
	if err := f.Sync(); err != nil {
		f.Truncate(size)
		return err
	}
	return nil
}

// setBroken records why nothing can be written until a new run.
func (s *auditStore) setBroken(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.brokenLocked(why)
}

func (s *auditStore) brokenLocked(why string) {
	if s.broken == "" {
		s.log.Error("the audit log cannot be continued: writing nothing until the enclave restarts", "reason", why)
	}
	s.broken = why
	clear(s.waiting)
	s.metrics.setState(s.failing, s.broken)
	s.cond.Broadcast()
}

// status says whether records are being persisted: "" when they are, else
// why not.
func (s *auditStore) status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.broken != "":
		return s.broken
	case s.failing != "":
		return fmt.Sprintf("%s (for %s)", s.failing, time.Since(s.failingSince).Truncate(time.Second))
	}
	return ""
}

// confirm waits until the record line is on disk and checks that the
// record on disk at its seq is this exact line (by hash): an answer the
// enclave released must carry a record the store wrote.
func (s *auditStore) confirm(ctx context.Context, line []byte) error {
	r, err := audit.Unmarshal(line)
	if err != nil {
		return fmt.Errorf("host: the answer's audit record: %w", err)
	}
	return s.confirmSeq(ctx, r.Seq, line)
}

// confirmSeq is confirm for a record whose seq the answer states (a sign
// answer's AuditSeq): the line is not parsed, only hashed, and a line that
// is not record seq does not match the record on disk.
func (s *auditStore) confirmSeq(ctx context.Context, seq uint64, line []byte) error {
	hash := sha256.Sum256(line)
	if done, err := s.confirmedNow(seq, hash); done {
		return err
	}
	r := audit.Record{Seq: seq}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.next <= r.Seq && !s.closed {
		if ctx.Err() != nil {
			return fmt.Errorf("host: audit record %d is not on disk: %w", r.Seq, ctx.Err())
		}
		s.cond.Wait()
	}
	if s.closed && s.next <= r.Seq {
		return errors.New("host: shutting down")
	}
	return s.matchLocked(r.Seq, hash)
}

// confirmedNow is confirmSeq's answer when it needs no waiting: done is
// whether record seq is on disk already (err then says whether it hashes to
// hash) or the store is shut down. It is the common case, since the enclave
// releases an answer only once its record is acknowledged, and it spares a
// request the context and callback that waiting needs.
func (s *auditStore) confirmedNow(seq uint64, hash [32]byte) (done bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.next > seq:
		return true, s.matchLocked(seq, hash)
	case s.closed:
		return true, errors.New("host: shutting down")
	}
	return false, nil
}

// matchLocked checks that record seq, on disk, hashes to hash. s.mu is held.
func (s *auditStore) matchLocked(seq uint64, hash [32]byte) error {
	got := s.recent[seq%recentRecords]
	if got.seq != seq || got.hash != hash {
		return fmt.Errorf("host: the enclave answered with audit record %d, which is not the record %d written to disk", seq, seq)
	}
	return nil
}

// rotate asks the enclave for a rotate record and waits until it is
// persisted as the last record of the live segment, and the segment sealed.
// It does nothing when the live segment is smaller than minSize, or holds
// no record at all.
func (s *auditStore) rotate(ctx context.Context, minSize int64) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.f == nil && s.broken == "" && !s.closed && ctx.Err() == nil {
		s.cond.Wait() // not open yet
	}
	if s.first == s.next || s.size < minSize {
		return nil
	}
	seals := s.seals
	s.rotateWanted = true
	for s.seals == seals {
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("host: the audit log was not rotated in time: %w", ctx.Err())
		case s.closed:
			return errors.New("host: shutting down")
		case s.broken != "":
			return fmt.Errorf("host: the audit log cannot be rotated: %s", s.broken)
		case s.failing != "":
			// The store keeps trying, and rotates once it can write.
			return fmt.Errorf("host: the audit log is not rotated yet: %s", s.failing)
		}
		s.cond.Wait()
	}
	return nil
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
