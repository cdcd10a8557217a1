package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// errNoAuditStore answers a decision when the host keeps no audit log.
var errNoAuditStore = errors.New("host: this host keeps no audit log (no data directory); refusing to release decisions")

// auditStore persists the enclave's audit records, append-only and in
// sequence order, to DIR/audit-<key>.log (one JSON line each, fsynced),
// before the answer they belong to is released. Records arrive with the
// answers, possibly out of order across connections; a record that does
// not arrive (a lost answer) is fetched from the enclave, which keeps every
// record until the host acknowledges it.
type auditStore struct {
	dir  string
	pool *pool
	log  *slog.Logger

	reopenMu sync.Mutex // one reopen at a time

	mu      sync.Mutex
	cond    *sync.Cond
	ready   bool
	key     []byte // the enclave's audit key: records are checked against it
	gen     uint64 // incremented at every (re)open: a record belongs to one log
	path    string
	f       *os.File
	next    uint64            // the next seq to persist
	waiting map[uint64][]byte // records received ahead of next
	err     error             // a write failure: sticky, fail closed
	kick    chan struct{}

	// failWrite, when set (tests), makes writes fail: a full disk.
	failWrite func() error
}

func newAuditStore(dir string, p *pool, log *slog.Logger) *auditStore {
	s := &auditStore{dir: dir, pool: p, log: log, waiting: map[uint64][]byte{}, kick: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// run opens the log once the enclave answers, then writes, acknowledges
// and fetches records until ctx is done.
func (s *auditStore) run(ctx context.Context) {
	for {
		err := s.open(ctx)
		if err == nil {
			break
		}
		s.log.Warn("audit log not open yet", "err", err)
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
			s.mu.Lock()
			if s.f != nil {
				s.f.Close()
			}
			s.mu.Unlock()
			s.fail(errors.New("host: shutting down"))
			return
		case <-s.kick:
			s.flush(ctx)
		case <-gap.C:
			s.fetchGap(ctx)
		}
	}
}

// open learns the enclave's audit key, opens (or creates) its log, resumes
// after the last record in it, and fetches what the enclave holds beyond.
func (s *auditStore) open(ctx context.Context) error {
	st, err := s.state(ctx, 0, 0)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(s.dir, "audit-"+hex.EncodeToString(st.Key)[:16]+".log")
	last, err := lastSeq(path)
	if err != nil {
		return fmt.Errorf("host: %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.f != nil {
		s.f.Close()
	}
	s.path, s.f, s.next, s.ready, s.key = path, f, last+1, true, st.Key
	s.gen++
	clear(s.waiting) // records of a previous enclave run, if any
	s.cond.Broadcast()
	s.mu.Unlock()
	s.log.Info("audit log open", "path", path, "next_seq", last+1, "enclave_head", st.HeadSeq)
	s.fetchFrom(ctx, last+1)
	return nil
}

// lastSeq returns the sequence number of the last record in the file at
// path (0 for none), refusing a torn last line.
func lastSeq(path string) (uint64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var last []byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), proto.MaxAuditRecordLen+1)
	for sc.Scan() {
		last = append(last[:0], sc.Bytes()...)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if last == nil {
		return 0, nil
	}
	r, err := audit.Unmarshal(last)
	if err != nil {
		return 0, fmt.Errorf("last record: %w", err)
	}
	return r.Seq, nil
}

func (s *auditStore) state(ctx context.Context, ack, from uint64) (*proto.AuditResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.pool.call(ctx, &proto.AuditRequest{Ack: ack, From: from})
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
	s.add(gen, r.Seq, line)
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.err == nil && s.gen == gen && s.next <= r.Seq {
		if ctx.Err() != nil {
			return fmt.Errorf("host: audit record %d not persisted in time: %w", r.Seq, ctx.Err())
		}
		s.cond.Wait()
	}
	if s.err == nil && s.gen != gen {
		return fmt.Errorf("host: the enclave restarted before audit record %d was persisted", r.Seq)
	}
	return s.err
}

// check waits for the log to be open and verifies line against its key,
// switching logs once if the enclave's key changed.
func (s *auditStore) check(ctx context.Context, line []byte) (audit.Record, uint64, error) {
	for attempt := 0; ; attempt++ {
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
			return audit.Record{}, 0, err
		}
		if ctx.Err() != nil {
			return audit.Record{}, 0, fmt.Errorf("host: the audit log is not open: %w", ctx.Err())
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
func (s *auditStore) add(gen, seq uint64, line []byte) {
	s.mu.Lock()
	if s.ready && s.gen == gen && seq >= s.next {
		s.waiting[seq] = line
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

// flush writes the records that continue the log, fsyncs once, advances
// next, and acknowledges them to the enclave.
func (s *auditStore) flush(ctx context.Context) {
	s.mu.Lock()
	var batch bytes.Buffer
	n := uint64(0)
	for {
		line, ok := s.waiting[s.next+n]
		if !ok {
			break
		}
		delete(s.waiting, s.next+n)
		batch.Write(line)
		batch.WriteByte('\n')
		n++
	}
	for seq := range s.waiting {
		if seq < s.next {
			delete(s.waiting, seq) // a duplicate of a persisted record
		}
	}
	f := s.f
	s.mu.Unlock()
	if n == 0 {
		return
	}
	err := s.write(f, batch.Bytes())
	s.mu.Lock()
	if err != nil {
		s.log.Error("writing the audit log failed: refusing to release decisions", "err", err)
		if s.err == nil {
			s.err = fmt.Errorf("host: the audit log cannot be written: %w", err)
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		return
	}
	s.next += n
	ack := s.next - 1
	s.cond.Broadcast()
	s.mu.Unlock()
	if _, err := s.state(ctx, ack, 0); err != nil {
		s.log.Warn("acknowledging audit records failed", "seq", ack, "err", err)
	}
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
			s.add(gen, r.Seq, line)
		}
		if len(st.Records) < proto.MaxAuditRecords {
			return
		}
		from += uint64(len(st.Records))
	}
}

// records returns up to max record lines from seq from on, from the file.
func (s *auditStore) records(from uint64, max int) ([][]byte, error) {
	s.mu.Lock()
	path := s.path
	s.mu.Unlock()
	if path == "" {
		return nil, errNoAuditStore
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(io.LimitReader(f, 1<<40))
	sc.Buffer(make([]byte, 64<<10), proto.MaxAuditRecordLen+1)
	seq := uint64(0)
	for sc.Scan() && len(out) < max {
		seq++
		if seq >= from {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	return out, sc.Err()
}
