// Package enclave is the signing service that runs inside the Nitro enclave.
//
// It answers the host's protocol messages (package proto) and trusts nothing
// the host says that a verified signature does not cover: a sign request is
// the client's raw HTTP body and stamp header, forwarded unchanged; the
// enclave verifies the stamp against the clients its policy registers,
// decodes the body and the transaction itself, applies the policy, and only
// then signs.
//
// # Request handling
//
// For POST /v1/sign, in order, each step refusing with its own error code:
//
//  1. stamp: the X-Nitrosign-Stamp header verifies over the exact body
//     (unauthorized), and its public key is a client the policy registers
//     (unauthorized);
//  2. body: strict JSON (bad_request);
//  3. freshness: timestamp_ms is at most [MaxRequestAge] old, at most
//     [MaxClockSkew] in the future, and not before this enclave started, so a
//     request seen by an earlier run cannot be replayed after a restart,
//     and not older than the replay guard remembers (after the clock was
//     set back) (stale_request);
//  4. replay: a request_id is acted on once per client (replayed_request);
//  5. key: the key id or address is one this enclave holds (unknown_key);
//  6. transaction: decoded strictly (bad_request,
//     unsupported_transaction_type);
//  7. policy: default deny, the refusing rule named (policy_denied);
//  8. sign: RFC 6979, low-S, and answer the signed transaction.
//
// Every decision gets the next decision sequence number (audit_seq).
//
// # Parts
//
// The Enclave holds its state in parts, each a type with its own lock:
// the keys (keyring) and the audit log (auditLog), published together
// once unsealed (vault); the rules in force (guard: the policy, its limit
// state, the freezes); the requests held for approvals (approvals); the
// governance of the policy (governance); and the sealed checkpoints
// (checkpoints). Enclave's methods orchestrate them: handle reads the
// clock once per request and runs the time-driven transitions (tick);
// the handlers decide under the guard and append each record to the
// audit log before the change it records.
//
// # Keys
//
// A master seed is drawn at start from the configured randomness source and
// the signing keys are its BIP-32 children, as named in the genesis
// configuration. Only the derived private keys are kept; the seed and the
// intermediate keys are overwritten once derivation is done.
package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
)

// Version is the enclave software version, reported by health.
const Version = "0.1.0-dev"

// Freshness of stamped requests.
const (
	// MaxRequestAge is how old a request's timestamp_ms may be.
	MaxRequestAge = 5 * time.Minute
	// MaxClockSkew is how far in the future timestamp_ms may be.
	MaxClockSkew = 30 * time.Second
	// DefaultMaxReplayEntries bounds the request ids the replay guard
	// remembers (16 bytes each at a load of at most 3/4: 172 MiB when
	// full). An id is remembered while its request is fresh, about
	// MaxRequestAge and at most MaxRequestAge+MaxClockSkew plus 10.3 s,
	// so this holds 24,000 fresh requests a second sustained (26,000 from
	// clients whose clocks are right); at capacity new requests are refused
	// (TestReplayMemory).
	DefaultMaxReplayEntries = 8 << 20
)

// The genesis configuration's limits.max_unacknowledged becomes the limit
// state's checkpoint interval: this fails to compile if the format allows
// more than the limit state takes.
const _ = uint(stateful.MaxCheckpointEvery - genesis.MaxLimitsUnacknowledged)

// seedSize is the size of the master seed in bytes.
const seedSize = 32

// Config configures an Enclave.
type Config struct {
	// Genesis is the genesis configuration's raw JSON.
	Genesis []byte
	// Rand is the source of the master seed, of nonces and of the identity
	// key; nil means the NSM when there is one, else crypto/rand.
	Rand io.Reader
	// NSM answers attestation requests; nil means this enclave cannot
	// attest (tests).
	NSM nsm.Device
	// KMS seals and unseals the seed. It is required when the genesis
	// configuration has a kms section, and unused otherwise.
	KMS KeyService
	// Credentials receives the AWS credentials the host pushes (those KMS
	// signs with); nil when KMS is not used.
	Credentials *kms.PushedCredentials
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil discards them. Logs never hold
	// secrets.
	Logger *slog.Logger
	// MaxReplayEntries overrides DefaultMaxReplayEntries when > 0.
	MaxReplayEntries int
	// MaxUnackedAudit, when > 0, overrides the genesis configuration's
	// audit.max_unacknowledged and genesis.DefaultMaxUnackedAudit (tests).
	MaxUnackedAudit int
	// AuditAckTimeout, when > 0, overrides DefaultAuditAckTimeout: how long
	// an answer waits for the host to acknowledge its record, and how long
	// the oldest record may wait before decisions stop.
	AuditAckTimeout time.Duration
}

// Enclave is the signing service. It is safe for concurrent use.
type Enclave struct {
	nsm         nsm.Device
	identity    ed25519.PublicKey
	now         func() time.Time
	log         *slog.Logger
	started     time.Time
	genesis     *genesis.Config
	genesisHash [32]byte
	replay      *replayGuard
	maxAck      int
	ackTimeout  time.Duration
	// run names this run of the enclave process (proto.RunIDLen random
	// bytes): the host starts a new generation of its audit state for
	// every run.
	run        []byte
	rand       io.Reader
	keyService KeyService
	kmsStats   *kmsStats // the keyService's calls; nil without KMS
	creds      *kms.PushedCredentials

	// v is nil while the enclave is locked.
	v atomic.Pointer[vault]
	// guard is the rules in force: the policy, its limit state, the
	// freezes, and the lock that makes each decision atomic against a
	// policy change (guard.go). Lock order: cp.mu, gov.mu, guard.mu,
	// approvals.mu, guard.frozen's, the audit log's, the tracker's;
	// gov.spent's lock is taken after gov.mu and cp.mu, and nothing is
	// locked inside it.
	guard     guard
	approvals approvals
	// gov is the governance: the policy changes waiting for their time
	// lock, the version floor, the admin commands carried out.
	gov      governance
	unsealMu sync.Mutex // one unseal, or key change, at a time

	cp checkpoints // the sealed checkpoints (checkpoint.go)

	// beforeSignatureRecord, set by tests only, runs just before a sign
	// request's signature record is appended (decideAndRecord), so that a
	// test can try to put a policy in force between the decision and its
	// record.
	beforeSignatureRecord func()
}

// New starts an enclave: it parses the genesis configuration and, for an
// ephemeral seed (no kms section), draws the seed and derives the signing
// keys. With KMS, the enclave starts locked, and the host unseals it
// (proto.UnsealRequest).
func New(cfg Config) (*Enclave, error) {
	g, pol, err := genesis.Parse(cfg.Genesis)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	e := &Enclave{
		now:         cfg.Now,
		log:         cfg.Logger,
		genesis:     g,
		genesisHash: sha256.Sum256(cfg.Genesis),
		creds:       cfg.Credentials,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	requireCheckpoint := 0
	if g.Limits != nil && g.KMS != nil { // an ephemeral enclave has no checkpoints
		requireCheckpoint = g.Limits.MaxUnacknowledged
	}
	if err := e.guard.init(pol, requireCheckpoint, e.log, e.now()); err != nil {
		return nil, err
	}
	e.gov.init(g.TimeLock())
	max := cfg.MaxReplayEntries
	if max <= 0 {
		max = DefaultMaxReplayEntries
	}
	// The replay guard's digests are keyed afresh at each run (not from
	// e.rand: tests pin the seed it draws), so that no client can aim ids
	// at another's entries or at one shard.
	var replayKey [32]byte
	if _, err := io.ReadFull(cryptoRand, replayKey[:]); err != nil {
		return nil, fmt.Errorf("enclave: replay guard key: %w", err)
	}
	e.replay = newReplayGuard(MaxRequestAge, MaxClockSkew, max, replayKey)
	e.nsm = cfg.NSM
	e.rand = cfg.Rand
	if e.rand == nil && cfg.NSM != nil {
		e.rand = cfg.NSM
	}
	if e.rand == nil {
		e.rand = cryptoRand
	}
	e.ackTimeout = cfg.AuditAckTimeout
	if e.ackTimeout <= 0 {
		e.ackTimeout = DefaultAuditAckTimeout
	}
	e.run = make([]byte, proto.RunIDLen)
	if _, err := io.ReadFull(cryptoRand, e.run); err != nil { // not e.rand: tests pin the seed it draws
		return nil, fmt.Errorf("enclave: run id: %w", err)
	}
	switch {
	case cfg.MaxUnackedAudit > 0:
		e.maxAck = cfg.MaxUnackedAudit
	case g.Audit != nil:
		e.maxAck = g.Audit.MaxUnacknowledged
	default:
		e.maxAck = genesis.DefaultMaxUnackedAudit
	}
	if g.KMS != nil {
		if cfg.KMS == nil {
			return nil, errors.New("enclave: the genesis configuration seals the seed with KMS, but no KMS client was given")
		}
		e.kmsStats = &kmsStats{}
		e.keyService = measuredKeyService{ks: cfg.KMS, stats: e.kmsStats}
	}
	if e.keyService == nil {
		if err := e.startEphemeral(); err != nil {
			return nil, err
		}
	}
	// The identity key is the attested public_key: it names this run of
	// the enclave. Its private half is not kept until something signs
	// with it.
	pub, priv, err := ed25519.GenerateKey(e.rand)
	if err != nil {
		return nil, fmt.Errorf("enclave: identity key: %w", err)
	}
	clear(priv)
	e.identity = pub
	e.started = e.now()
	e.log.Info("enclave started", "version", Version, "state", e.stateOf(e.v.Load()),
		"policy_version", pol.Version(), "policy_hash", fmt.Sprintf("%x", pol.Hash()))
	return e, nil
}

// startEphemeral draws a seed that is never sealed and starts a new audit
// log with it.
func (e *Enclave) startEphemeral() error {
	seed := make([]byte, seedSize)
	defer clear(seed)
	if _, err := io.ReadFull(e.rand, seed); err != nil {
		return fmt.Errorf("enclave: drawing the master seed: %w", err)
	}
	v, err := newVault(seed, e.genesis.Keys, nil, e.maxAck, audit.Head{})
	if err != nil {
		return err
	}
	v.audit.now, v.audit.stall = e.now, e.ackTimeout
	// An ephemeral enclave adds no keys later: the master key goes.
	v.keys.master.Zero()
	v.keys.master = nil
	if _, err := e.boot(v, bootStatus{}, e.now()); err != nil {
		v.keys.destroy()
		return errors.New(message(err))
	}
	e.v.Store(v)
	return nil
}

// Handle answers one protocol request. It implements proto.Handler.
//
// An answer that carries an audit record (a signature, a refusal, a pending
// approval, an admin command's result) leaves only once the host has
// acknowledged that record as persisted; see release.
func (e *Enclave) Handle(ctx context.Context, req proto.Message) proto.Message {
	return e.released(ctx, answer(e.handle(ctx, req)))
}

// call is one request as handle dispatches it: its context, the vault
// (nil while the enclave is locked) and now, the time it is answered at.
// The clock is read once per request, so that every step of a request
// (its freshness check, its records, its limit windows, the expiries and
// time locks that tick brings in force) sees one time.
type call struct {
	ctx context.Context
	v   *vault
	now time.Time
}

// When the time-driven transitions (tick) run for a request type.
type tickWhen uint8

const (
	// tickBefore: before the handler, so that it sees the state current
	// at its time: owed freeze records written, approvals past their
	// expiry expired, policy changes past their time lock in force, held
	// requests decided under the policy in force.
	tickBefore tickWhen = iota + 1
	// tickAfter: after the handler (the audit poll: an acknowledgement
	// makes room in the log, and owed records are appended then, to be
	// fetched at the next poll).
	tickAfter
	// tickNever: the request reads no state that time changes, or comes
	// before there is any (unseal), or must not change it (checkpoint: the
	// host's poll takes what is in force; the next request's tick brings
	// the state up to date, and a later checkpoint holds it).
	tickNever
)

// route is how handle answers one request type.
type route struct {
	tick tickWhen
	// needsVault: refused with errLocked while the enclave is locked.
	needsVault bool
	// decides: the request may append a decision record to the open
	// batch, so a poll waits for it (auditLog.beginDecision) before it
	// closes the batch.
	decides bool
	fn      func(e *Enclave, c *call, m proto.Message) (proto.Message, error)
}

// handler adapts a handler of one message type to a route's fn.
func handler[M proto.Message](f func(e *Enclave, c *call, m M) (proto.Message, error)) func(*Enclave, *call, proto.Message) (proto.Message, error) {
	return func(e *Enclave, c *call, m proto.Message) (proto.Message, error) {
		mm, ok := m.(M)
		if !ok {
			return nil, refuse(refusal.CodeBadRequest, "enclave: message type %d is not a %T", m.Type(), mm)
		}
		return f(e, c, mm)
	}
}

// routes are the requests the enclave answers, by type. Every request
// type of package proto has a route (TestRoutes), and each says when it
// ticks: a handler cannot be added that forgets the time-driven
// transitions.
var routes = map[proto.Type]route{
	proto.TypeHealthRequest: {tick: tickBefore, fn: handler(func(e *Enclave, c *call, _ *proto.HealthRequest) (proto.Message, error) {
		return e.health(c), nil
	})},
	proto.TypeKeysRequest: {tick: tickBefore, needsVault: true, fn: handler(func(e *Enclave, c *call, _ *proto.KeysRequest) (proto.Message, error) {
		return keysInfo(c.v.keys), nil
	})},
	proto.TypeSignRequest: {tick: tickBefore, needsVault: true, decides: true, fn: handler(func(e *Enclave, c *call, m *proto.SignRequest) (proto.Message, error) {
		return e.sign(c.v, m, c.now)
	})},
	proto.TypeAttestRequest: {tick: tickBefore, fn: handler(func(e *Enclave, c *call, m *proto.AttestRequest) (proto.Message, error) {
		return e.attest(c.ctx, c.v, m)
	})},
	proto.TypeAuditRequest: {tick: tickAfter, needsVault: true, fn: handler(func(e *Enclave, c *call, m *proto.AuditRequest) (proto.Message, error) {
		return e.auditRequest(c.ctx, c.v.audit, m)
	})},
	proto.TypeCredentialsRequest: {tick: tickNever, fn: handler(func(e *Enclave, _ *call, m *proto.CredentialsRequest) (proto.Message, error) {
		return e.credentials(m)
	})},
	proto.TypeUnsealRequest: {tick: tickNever, fn: handler(func(e *Enclave, c *call, m *proto.UnsealRequest) (proto.Message, error) {
		return e.unseal(c.ctx, m, c.now)
	})},
	proto.TypeCheckpointRequest: {tick: tickNever, fn: handler(func(e *Enclave, c *call, m *proto.CheckpointRequest) (proto.Message, error) {
		return e.checkpointRequest(m, c.now)
	})},
	proto.TypeAdminRequest: {tick: tickBefore, fn: handler(func(e *Enclave, c *call, m *proto.AdminRequest) (proto.Message, error) {
		return e.adminCommand(c.ctx, m, c.now)
	})},
	proto.TypeApprovalRequest: {tick: tickBefore, needsVault: true, decides: true, fn: handler(func(e *Enclave, c *call, m *proto.ApprovalRequest) (proto.Message, error) {
		return e.approval(c.v.audit, m, c.now)
	})},
	proto.TypePolicyRequest: {tick: tickBefore, fn: handler(func(e *Enclave, _ *call, _ *proto.PolicyRequest) (proto.Message, error) {
		return e.policyInfo(), nil
	})},
	proto.TypeApprovalInfoRequest: {tick: tickBefore, needsVault: true, fn: handler(func(e *Enclave, c *call, m *proto.ApprovalInfoRequest) (proto.Message, error) {
		return e.approvals.info(m.ID, c.now)
	})},
}

// handle answers one request: it reads the clock once, runs the
// time-driven transitions (tick) as the request's route says, and calls
// its handler.
func (e *Enclave) handle(ctx context.Context, req proto.Message) (proto.Message, error) {
	r, ok := routes[req.Type()]
	if !ok {
		return nil, refuse(refusal.CodeBadRequest, "enclave: unexpected message type %d", req.Type())
	}
	c := &call{ctx: ctx, v: e.v.Load(), now: e.now()}
	if r.needsVault && c.v == nil {
		return nil, errLocked()
	}
	if r.decides && c.v != nil {
		// Until the handler returns: its record, if any, is appended by
		// then (the wait for its acknowledgement comes after, in Handle).
		c.v.audit.beginDecision()
		defer c.v.audit.endDecision()
	}
	if r.tick == tickBefore && c.v != nil {
		e.tick(c.v.audit, c.now)
	}
	resp, err := r.fn(e, c, req)
	if r.tick == tickAfter && err == nil && c.v != nil {
		e.tick(c.v.audit, c.now)
	}
	return resp, err
}

// health answers a health request.
func (e *Enclave) health(c *call) *proto.HealthResponse {
	resp := &proto.HealthResponse{
		Version:       Version,
		StartedUnixMS: e.started.UnixMilli(),
		PolicyVersion: e.guard.inForce().pol.Version(),
		UptimeMS:      c.now.Sub(e.started).Milliseconds(),
		State:         e.stateOf(c.v),
		Run:           e.run,
	}
	if c.v != nil {
		resp.Keys = uint32(len(c.v.keys.list))
		resp.AuditSeq = c.v.audit.head().Seq
		resp.AuditFailing = c.v.audit.hostFailing()
		resp.FrozenKeys = frozenKeys(e.guard.frozen.List(), len(c.v.keys.list))
	}
	resp.PendingApprovals = uint32(min(max(e.approvals.held.Load(), 0), math.MaxUint32))
	// due is the truth of whether a change waits: npending, stored just
	// before it, may be a step behind.
	if due := e.gov.due.Load(); due != math.MaxInt64 {
		resp.PendingPolicies = uint32(min(max(e.gov.npending.Load(), 1), proto.MaxPendingPolicies))
		resp.PolicyDueUnixMS = due
		if due == 0 {
			resp.PolicyDueUnixMS = -1 // not 0, which says none waits
		}
	}
	if e.kmsStats != nil {
		resp.KMS = e.kmsStats.snapshot()
	}
	return resp
}

// frozenKeys is the number of keys (of n) that the freezes in list hold.
func frozenKeys(list []stateful.FreezeInfo, n int) uint32 {
	count := 0
	for _, fi := range list {
		if fi.Key == stateful.AllKeys {
			return uint32(min(n, proto.MaxKeys))
		}
		count++
	}
	return uint32(min(count, n, proto.MaxKeys))
}

// keysInfo lists the keys of kr.
func keysInfo(kr *keyring) *proto.KeysResponse {
	resp := &proto.KeysResponse{Keys: make([]proto.Key, 0, len(kr.list))}
	for _, k := range kr.list {
		resp.Keys = append(resp.Keys, proto.Key{ID: k.id, Address: k.addr, Path: k.path})
	}
	return resp
}

// maxInFlightPerConn bounds the requests the enclave works on at once per
// host connection. With sign bodies of at most proto.MaxSignBodyLen, it
// bounds the memory one connection can pin (64 × 512 KiB = 32 MiB) well
// below the enclave's allocation, while keeping both vCPUs busy.
const maxInFlightPerConn = 64

// The enclave's listener limits (docs/operations.md, "Connections to the
// enclave"). The host keeps a few persistent connections (nitrosign-host
// -conns, default 4), so maxConns leaves room for a redial storm and a
// larger -conns while bounding what a host that opens connections without
// end can pin: about 30 KiB for an idle connection, plus what its frames
// in progress and requests in flight hold. idleTimeout must exceed every
// pause of a working host on a connection: its audit store long-polls
// without a break (each poll waits at most proto.MaxAuditWaitMS, 5 s, and
// is in flight meanwhile, which never counts as idle), and its pool
// redials any connection it left unused for a minute. frameTimeout bounds
// a frame from its first byte to its last (at most 1 MiB over vsock) and a
// batch of responses, against a host that trickles bytes or stops reading.
const (
	maxConns     = 64
	idleTimeout  = 5 * time.Minute
	frameTimeout = 10 * time.Second
)

// Serve answers the host's protocol on l until ctx is done.
func (e *Enclave) Serve(ctx context.Context, l net.Listener) error {
	return proto.Serve(ctx, l, e, &proto.ServerOptions{
		Logger:             e.log,
		MaxInFlightPerConn: maxInFlightPerConn,
		Control:            isControl,
		MaxConns:           maxConns,
		IdleTimeout:        idleTimeout,
		FrameTimeout:       frameTimeout,
	})
}

// isControl picks the requests served from slots of their own: the host's
// audit acknowledgements, which every decision waits for, and health.
func isControl(m proto.Message) bool {
	switch m.(type) {
	case *proto.AuditRequest, *proto.HealthRequest:
		return true
	}
	return false
}

// auditRequest answers the host's audit poll: acknowledgements, its report,
// rotation and the records it fetches.
func (e *Enclave) auditRequest(ctx context.Context, al *auditLog, m *proto.AuditRequest) (proto.Message, error) {
	before := al.hostFailing()
	if len(m.Run) != 0 && !bytes.Equal(m.Run, e.run) {
		// Meant for an earlier run of the enclave: its acknowledgement
		// names records of another chain. Answer the state only.
		m = &proto.AuditRequest{Failing: m.Failing}
	}
	resp, err := al.handle(ctx, m)
	if err != nil {
		e.log.Warn("audit acknowledgement refused", "err", message(err))
		return nil, err
	}
	if m.Failing != before {
		if m.Failing != "" {
			e.log.Warn("the host cannot persist audit records: deciding stops", "reason", m.Failing)
		} else {
			e.log.Info("the host persists audit records again: deciding resumes")
		}
	}
	resp.Run = e.run
	// An acknowledgement makes room: owed event records (a freeze's, an
	// expiry's) are appended now, by the tick that follows this handler
	// (routes: tickAfter), and fetched at the next poll.
	return resp, nil
}

// released returns resp once the host has acknowledged, as persisted, the
// audit record resp carries (at once when it carries none): record first,
// answer after the acknowledgement. When the acknowledgement does not come
// in time, the answer is withheld and 503 answered instead: a host that
// never acknowledges obtains no signature. The boot record of an unseal is
// not waited for: every later answer waits for a later record, and
// acknowledgements are cumulative.
func (e *Enclave) released(ctx context.Context, resp proto.Message) proto.Message {
	if err := e.awaitRelease(ctx, resp); err != nil {
		return wireError(err)
	}
	return resp
}

// awaitRelease waits until the host has acknowledged the audit record resp
// carries (at once when it carries none), and returns the error to answer
// instead when it does not in time (see released).
func (e *Enclave) awaitRelease(ctx context.Context, resp proto.Message) error {
	var line []byte
	var seq uint64
	switch m := resp.(type) {
	case *proto.SignResponse:
		line, seq = m.AuditRecord, m.AuditSeq
	case *proto.Error:
		line = m.AuditRecord
	case *proto.AdminResponse:
		line = m.AuditRecord
	case *proto.ApprovalInfoResponse:
		// A signed request's signature, as POST /v1/approvals answers it.
		if m.Result != nil {
			line, seq = m.Result.AuditRecord, m.Result.AuditSeq
		}
	default:
		return nil
	}
	if len(line) == 0 {
		return nil
	}
	if seq == 0 {
		r, err := audit.Unmarshal(line)
		if err != nil {
			return refuse(refusal.CodeInternal, "enclave: an answer's own audit record does not parse: %v", err)
		}
		seq = r.Seq
	}
	v := e.v.Load()
	if v == nil {
		return errLocked()
	}
	if err := v.audit.awaitAck(ctx, seq, e.ackTimeout); err != nil {
		e.log.Warn("answer withheld: its audit record is not acknowledged", "seq", seq, "err", err)
		return refuseRule(refusal.CodeUnavailable, refusal.RuleAudit, fmt.Sprintf("audit record %d: %v", seq, err))
	}
	return nil
}
