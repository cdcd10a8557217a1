package host

import (
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
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/proto"
)

// Files the host keeps for the enclave in its data directory. The host
// cannot read or forge them: the sealed seed opens only through KMS for the
// measured enclave image, checkpoints only in an enclave holding the seed.
const (
	// SealedSeedFile is the enclave's sealed seed: the only copy of its
	// keys outside the enclave. Back it up.
	SealedSeedFile = "seed.sealed"
	// CheckpointFile is the enclave's latest sealed checkpoint.
	CheckpointFile = "checkpoint.sealed"
	// AuditKeyFile names the enclave's audit public key (hex), so that the
	// host finds the log to continue before the enclave is unsealed.
	AuditKeyFile = "audit.key"
)

// Unseal states, as Server.Unseal reports them.
const (
	UnsealPending = "pending" // not yet asked, or being tried
	UnsealDone    = "ready"   // unsealed (or ephemeral: nothing to unseal)
	UnsealFailed  = "failed"  // the last attempt failed; retrying
)

// UnsealStatus is where the host stands with the enclave's seed.
type UnsealStatus struct {
	State string
	// Code and Err are the last failure's: Code is the enclave's error
	// code (refusal.CodeKMSAccessDenied when KMS refused), Err its message.
	Code string
	Err  error
	// Attempts counts the attempts made.
	Attempts int
}

// unsealer hands the enclave its sealed seed whenever it is locked (at
// start, and after an enclave restart), first making one if the data
// directory has none, and stores the enclave's checkpoints.
type unsealer struct {
	s     *Server
	dir   string
	creds CredentialSource
	log   *slog.Logger

	mu     sync.Mutex
	status UnsealStatus
	ready  chan struct{} // closed at the first success
	once   sync.Once

	cpAck uint64 // generation of the checkpoint stored

	// admins counts the admin commands in flight: the enclave answers one
	// only once the host has stored (and acknowledged) a checkpoint that
	// holds it, so while any is in flight the state is polled every
	// adminPoll instead of every poll. wake cuts a pause short.
	admins atomic.Int32
	wake   chan struct{}
}

// adminPoll is how often the host polls for a checkpoint while an admin
// command waits for one.
const adminPoll = 20 * time.Millisecond

// adminInFlight makes the checkpoint poll run at once and then every
// adminPoll until the returned function is called: an admin command's
// answer waits for its checkpoint.
func (u *unsealer) adminInFlight() func() {
	u.admins.Add(1)
	u.kick()
	return func() { u.admins.Add(-1) }
}

// kick makes the unsealer check the enclave's state now, when it is pausing
// between polls: the pool calls it when it connects anew, which after a
// restart of the enclave is the first sign that the new run listens.
func (u *unsealer) kick() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func newUnsealer(s *Server, dir string, creds CredentialSource, log *slog.Logger) *unsealer {
	return &unsealer{s: s, dir: dir, creds: creds, log: log, status: UnsealStatus{State: UnsealPending}, ready: make(chan struct{}), wake: make(chan struct{}, 1)}
}

func (u *unsealer) set(st UnsealStatus) {
	u.mu.Lock()
	st.Attempts = u.status.Attempts
	if st.State != UnsealDone {
		st.Attempts++
	}
	u.status = st
	u.mu.Unlock()
	if st.State == UnsealDone {
		u.once.Do(func() { close(u.ready) })
	}
}

func (u *unsealer) get() UnsealStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

// unreachableBackoff caps the pause between attempts to unseal an enclave
// that does not answer.
const unreachableBackoff = 2 * time.Second

// run checks the enclave's state every poll, unsealing it when locked, and
// stores checkpoints while it is ready, until ctx is done.
func (u *unsealer) run(ctx context.Context, poll time.Duration) {
	backoff := poll
	for {
		wait := poll
		if err := u.step(ctx); err != nil {
			var pe *proto.Error
			code := ""
			if errors.As(err, &pe) {
				code = pe.Code
			}
			u.set(UnsealStatus{State: UnsealFailed, Code: code, Err: err})
			// An enclave that is not listening yet is the normal start:
			// quiet at first; a refusal (KMS, a bad blob) is an error.
			level := slog.LevelError
			if pe == nil && u.get().Attempts <= 20 {
				level = slog.LevelInfo
			}
			u.log.Log(ctx, level, "the enclave is not unsealed yet; retrying", "code", code, "err", err, "retry_in", backoff)
			wait = backoff
			// A refusal (KMS, a bad blob) backs off up to a minute; an
			// enclave that is not reachable yet (restarting) is polled
			// every few seconds at most, so that a restarted enclave is
			// unsealed soon after it listens.
			limit := time.Minute
			if pe == nil {
				limit = unreachableBackoff
			}
			backoff = min(2*backoff, limit)
		} else {
			backoff = poll
			if u.admins.Load() > 0 {
				wait = min(wait, adminPoll)
			}
		}
		select {
		case <-ctx.Done():
			// A last checkpoint, so that a restart finds the state as it
			// was at shutdown. Whether to take one is the enclave's state,
			// not the last round's outcome: the shutdown itself can cut a
			// round short (a failed round), and a host stopped just after
			// the enclave's first start would then leave no checkpoint
			// beside a log with records, which the next start reports as
			// a mismatch.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := u.lastCheckpoint(fctx); err != nil {
				u.log.Warn("storing the last checkpoint failed", "err", err)
			}
			cancel()
			return
		case <-time.After(wait):
		case <-u.wake:
		}
	}
}

// step does what the enclave's state calls for: unseal, or a checkpoint.
func (u *unsealer) step(ctx context.Context) error {
	resp, err := u.call(ctx, &proto.HealthRequest{})
	if err != nil {
		return err
	}
	h, ok := resp.(*proto.HealthResponse)
	if !ok {
		return fmt.Errorf("host: unexpected answer %v to health", resp.Type())
	}
	switch h.State {
	case "locked":
		if err := u.unseal(ctx, h.Run); err != nil {
			return err
		}
		u.set(UnsealStatus{State: UnsealDone})
		return nil
	case "ready":
		u.set(UnsealStatus{State: UnsealDone})
		return u.checkpoint(ctx)
	default: // ephemeral, or an enclave from before sealing
		u.set(UnsealStatus{State: UnsealDone})
		return nil
	}
}

func (u *unsealer) call(ctx context.Context, m proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return u.s.pool.call(ctx, m)
}

// pushCredentials sends the enclave fresh credentials.
func (u *unsealer) pushCredentials(ctx context.Context) error {
	if u.creds == nil {
		return errors.New("host: the enclave needs AWS credentials to reach KMS, and no credential source is configured")
	}
	c, err := u.creds.Fetch(ctx)
	if err != nil {
		return err
	}
	return u.s.pushCredentials(ctx, c)
}

// pushCredentials sends c to the enclave, and tells the metrics when they
// expire.
func (s *Server) pushCredentials(ctx context.Context, c Credentials) error {
	req := &proto.CredentialsRequest{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if !c.Expires.IsZero() {
		req.ExpiresUnixMS = c.Expires.UnixMilli()
	}
	resp, err := s.pool.call(ctx, req)
	if err != nil {
		return fmt.Errorf("host: pushing credentials: %w", err)
	}
	if _, ok := resp.(*proto.CredentialsResponse); !ok {
		return fmt.Errorf("host: unexpected answer %v to credentials", resp.Type())
	}
	s.metrics.enclave.pushed(c.Expires)
	return nil
}

// unseal hands the enclave (of run id run) its sealed seed, making one first
// if there is none, with the last record of the audit log and the latest
// checkpoint.
func (u *unsealer) unseal(ctx context.Context, run []byte) error {
	if err := u.pushCredentials(ctx); err != nil {
		return err
	}
	seedPath := filepath.Join(u.dir, SealedSeedFile)
	sealed, err := readSmall(seedPath, proto.MaxSealedLen)
	if errors.Is(err, os.ErrNotExist) {
		if sealed, err = u.create(ctx, seedPath); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	req := &proto.UnsealRequest{Sealed: sealed}
	cp, err := readSmall(filepath.Join(u.dir, CheckpointFile), proto.MaxCheckpointLen)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	req.Checkpoint = cp
	if u.s.audit != nil {
		// The head is taken under the store's lock, as the store starts
		// the new run's generation: no record of the previous run can be
		// written after it.
		if req.AuditHead, err = u.s.audit.headForRun(run, u.knownAuditKey()); err != nil {
			return err
		}
	}
	resp, err := u.call(ctx, req)
	if err != nil {
		return err
	}
	ur, ok := resp.(*proto.UnsealResponse)
	if !ok {
		return fmt.Errorf("host: unexpected answer %v to unseal", resp.Type())
	}
	if err := writeFileSync(filepath.Join(u.dir, AuditKeyFile), []byte(hex.EncodeToString(ur.AuditKey)+"\n"), 0o600); err != nil {
		return err
	}
	// The boot record reaches the audit store like any record, by its
	// poll; the enclave counts as unsealed once it is on disk.
	if u.s.audit != nil && len(ur.AuditRecord) > 0 {
		u.s.audit.kick()
		if err := u.awaitBootRecord(ctx, run, ur.AuditRecord); err != nil {
			return fmt.Errorf("host: the boot record: %w", err)
		}
	}
	u.log.Info("enclave unsealed", "keys", ur.Keys, "audit_key", hex.EncodeToString(ur.AuditKey))
	return nil
}

// bootRecordWait bounds the wait for an unsealed run's boot record to be
// persisted; every bootRecordCheck of it the unsealer checks that the run
// is still the enclave's.
const (
	bootRecordWait  = 30 * time.Second
	bootRecordCheck = 250 * time.Millisecond
)

// errRunEnded is awaitBootRecord's error when the run it waits for ended.
var errRunEnded = errors.New("the enclave run ended before its boot record was persisted")

// awaitBootRecord waits until the boot record line of the enclave run run,
// just unsealed, is on disk. It gives up at once when that run has ended (a
// crash right after its unseal): its boot record then never comes, and
// waiting the whole bootRecordWait would leave the next run locked that
// long.
func (u *unsealer) awaitBootRecord(ctx context.Context, run, line []byte) error {
	deadline := time.Now().Add(bootRecordWait)
	for {
		cctx, cancel := context.WithTimeout(ctx, bootRecordCheck)
		err := u.s.audit.confirm(cctx, line)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			return err
		}
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		resp, herr := u.call(hctx, &proto.HealthRequest{})
		hcancel()
		if h, ok := resp.(*proto.HealthResponse); herr != nil || !ok || !bytes.Equal(h.Run, run) {
			return errRunEnded
		}
	}
}

// maxAuditKeyFile caps the audit key file: the key in hex and a newline.
const maxAuditKeyFile = 256

// knownAuditKey is the audit key recorded at the last unseal, or nil.
func (u *unsealer) knownAuditKey() []byte {
	b, err := readSmall(filepath.Join(u.dir, AuditKeyFile), maxAuditKeyFile)
	if err != nil {
		return nil
	}
	k, err := hex.DecodeString(string(trimNL(b)))
	if err != nil {
		return nil
	}
	return k
}

// create asks the enclave for a new sealed seed and stores it, synced,
// before anything uses it.
func (u *unsealer) create(ctx context.Context, path string) ([]byte, error) {
	u.log.Info("no sealed seed in the data directory: asking the enclave for a new one", "path", path)
	resp, err := u.call(ctx, &proto.UnsealRequest{Create: true})
	if err != nil {
		return nil, err
	}
	ur, ok := resp.(*proto.UnsealResponse)
	if !ok || len(ur.Sealed) == 0 {
		return nil, errors.New("host: the enclave answered create without a sealed seed")
	}
	if err := writeFileSync(path, ur.Sealed, 0o600); err != nil {
		return nil, fmt.Errorf("host: storing the new sealed seed: %w", err)
	}
	return ur.Sealed, nil
}

// lastCheckpoint stores the enclave's newest checkpoint if it is unsealed
// (ready); a locked or unreachable enclave has none to give.
func (u *unsealer) lastCheckpoint(ctx context.Context) error {
	resp, err := u.call(ctx, &proto.HealthRequest{})
	if err != nil {
		return nil // unreachable: nothing to store
	}
	if h, ok := resp.(*proto.HealthResponse); !ok || h.State != "ready" {
		return nil
	}
	return u.checkpoint(ctx)
}

// checkpoint stores the enclave's newest checkpoint, if any, and
// acknowledges it at once (an admin command's answer waits for that):
// each acknowledgement may bring a newer checkpoint, stored in turn, a few
// rounds at most.
func (u *unsealer) checkpoint(ctx context.Context) error {
	for range 3 {
		resp, err := u.call(ctx, &proto.CheckpointRequest{Ack: u.cpAck})
		if err != nil {
			return err
		}
		cr, ok := resp.(*proto.CheckpointResponse)
		if !ok {
			return fmt.Errorf("host: unexpected answer %v to checkpoint", resp.Type())
		}
		if len(cr.Sealed) == 0 {
			u.cpAck = cr.Generation
			return nil
		}
		if err := writeFileSync(filepath.Join(u.dir, CheckpointFile), cr.Sealed, 0o600); err != nil {
			return fmt.Errorf("host: storing the checkpoint: %w", err)
		}
		u.cpAck = cr.Generation
	}
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// readSmall reads a file of at most max bytes.
func readSmall(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("host: %s is larger than %d bytes", path, max)
	}
	return b, nil
}

// writeFileSync replaces path with data atomically and durably: a synced
// temporary file renamed over it, then the directory synced.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Unseal reports where the host stands with the enclave's seed: ready once
// the enclave is unsealed (or has an ephemeral seed), failed with the
// enclave's error code and message while unsealing fails. Without a data
// directory the host never unseals and reports pending.
func (s *Server) Unseal() UnsealStatus {
	if s.unsealer == nil {
		return UnsealStatus{State: UnsealPending}
	}
	return s.unsealer.get()
}
