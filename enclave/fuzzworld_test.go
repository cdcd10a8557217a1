package enclave_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// A fuzzWorld is everything around an enclave that the handler fuzz targets
// and the hostile-host tests need, made from fixed test keys so that seed
// inputs written to testdata/fuzz by one run (stamped bodies, admin
// envelopes, sealed seeds, checkpoints, records) are still meaningful to
// the next: the clients', admins' and approvers' keys are Ed25519 keys from
// fixed seeds, the fake KMS's master keys are fixed, the genesis JSON is
// the same bytes (so admin commands are bound to the same deployment), and
// the enclave's randomness is a fixed ChaCha8 stream.
//
// Time is a fake clock that only the world moves (1 ms for every probe),
// so that the replay window and approval expiries stay bounded over
// millions of fuzz executions.
type fuzzWorld struct {
	genesis     []byte
	genesisHash [32]byte
	sealed      bool
	kms         *fakeKMS
	nsm         nsm.Device
	hot, other  stamp.Signer
	admins      *admins
	approvers   *approverKeys
	clock       atomic.Int64 // Unix ms
	rnd         *lockedReader
	ids         atomic.Uint64
	ackTimeout  time.Duration
	maxUnacked  int
	// opened counts the data keys the fake KMS decrypted for the world's
	// enclaves: a sealed seed that opened.
	opened atomic.Int64
}

// worldStart is the fuzz worlds' time: the same as the other fixtures'.
const worldStart = 1_800_000_000_000

// worldKey returns the fixed Ed25519 test signer named label.
func worldKey(tb testing.TB, label string) stamp.Signer {
	tb.Helper()
	seed := sha256.Sum256([]byte("nitrosign enclave test key " + label))
	s, err := stamp.NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// worldKMS is the fake KMS of seal_test.go with fixed master keys, so that
// a sealed seed written by one test run opens in the next.
func worldKMS() *fakeKMS {
	f := &fakeKMS{master: map[string][]byte{}}
	for _, id := range []string{testKeyARN, otherKeyARN} {
		m := sha256.Sum256([]byte("nitrosign enclave test kms master " + id))
		f.master[id] = m[:]
	}
	return f
}

// countingKMS is a fakeKMS that counts successful decryptions.
type countingKMS struct {
	*fakeKMS
	opened *atomic.Int64
}

func (c *countingKMS) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	pt, err := c.fakeKMS.Decrypt(ctx, keyID, blob, encCtx)
	if err == nil {
		c.opened.Add(1)
	}
	return pt, err
}

// lockedReader is a deterministic randomness source safe for concurrent
// use (the enclave draws from Config.Rand from several handlers).
type lockedReader struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newLockedReader(label string) *lockedReader {
	return &lockedReader{r: rand.NewChaCha8(sha256.Sum256([]byte("nitrosign enclave test randomness " + label)))}
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// worldOptions choose the world's genesis.
type worldOptions struct {
	// sealed: the seed is sealed with the fake KMS, the genesis has admins
	// (quorum 2 of 3) and limits.max_unacknowledged; otherwise the seed is
	// ephemeral. (The time lock is the default day: a loosening policy
	// change never comes into force during a fuzz run, whose clock moves a
	// millisecond a probe, so a normal request's answer changes only with
	// a command that was carried out.)
	sealed bool
	// nsm: the enclave can attest (a simulated NSM).
	nsm bool
	// label varies the randomness, and with it an ephemeral enclave's
	// seed (another label: another enclave's keys and audit key).
	label string
	// ackTimeout is Config.AuditAckTimeout (0: the default).
	ackTimeout time.Duration
	// maxUnacked is Config.MaxUnackedAudit (0: the genesis'/default).
	maxUnacked int
}

// newFuzzWorld makes a world. Its policy: client hot may use hot-0 (chain
// 1, native transfers to destA and destB of at most 1 ETH, 3 ETH a day,
// approvals by 2 of 3 approvers above 0.5 ETH, personal messages, the
// Ether Mail typed-data domain); client other may use cold-1, which allows
// nothing.
func newFuzzWorld(tb testing.TB, o worldOptions) *fuzzWorld {
	tb.Helper()
	w := &fuzzWorld{
		sealed: o.sealed, hot: worldKey(tb, "hot"), other: worldKey(tb, "other"),
		rnd: newLockedReader(o.label), ackTimeout: o.ackTimeout, maxUnacked: o.maxUnacked,
	}
	w.clock.Store(worldStart)
	w.admins = &admins{}
	w.approvers = &approverKeys{}
	for i := range 3 {
		w.admins.names = append(w.admins.names, string(rune('a'+i))+"-admin")
		w.admins.signers = append(w.admins.signers, worldKey(tb, fmt.Sprintf("admin %d", i)))
		w.approvers.names = append(w.approvers.names, fmt.Sprintf("approver-%d", i+1))
		w.approvers.signers = append(w.approvers.signers, worldKey(tb, fmt.Sprintf("approver %d", i)))
	}
	hot0 := policy.KeyRule{
		Key:    "hot-0",
		Chains: []uint64{1},
		NativeTransfers: &policy.NativeTransfers{
			Destinations:         []policy.Destination{{Address: destA, Label: "A"}, {Address: destB, Label: "B"}},
			MaxPerTransactionWei: ether(1).String(),
		},
		PersonalMessages: true,
		TypedData: &policy.TypedDataRule{Domains: []policy.TypedDataDomain{
			{Name: "Ether Mail", Version: "1", ChainID: 1, VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
		}},
		KeyConfig: stateful.KeyConfig{
			Limits:    []stateful.LimitRule{{ChainID: 1, Asset: "native", Window: "24h", Max: ether(3).String()}},
			Approvals: w.approvers.rule(2, milliEther(500)),
		},
	}
	doc := policy.Document{
		Version: 1,
		Clients: []policy.Client{
			{Name: "hot-client", Scheme: "ed25519", PublicKey: hex.EncodeToString(w.hot.PublicKey().Key), Keys: []string{"hot-0"}},
			{Name: "other-client", Scheme: "ed25519", PublicKey: hex.EncodeToString(w.other.PublicKey().Key), Keys: []string{"cold-1"}},
		},
		Keys: []policy.KeyRule{hot0, {Key: "cold-1", Chains: []uint64{1}}},
	}
	pol, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	g := map[string]any{
		"format": 1,
		"keys": []map[string]string{
			{"id": "hot-0", "path": "m/44'/60'/0'/0/0"},
			{"id": "cold-1", "path": "m/44'/60'/0'/0/1"},
		},
		"policy": json.RawMessage(pol),
	}
	if o.sealed {
		g["kms"] = map[string]any{"region": "us-east-1", "key_id": testKeyARN, "additional_key_ids": []string{otherKeyARN}}
		g["admins"] = w.admins.config(2)
		g["limits"] = map[string]any{"max_unacknowledged": 64}
		w.kms = worldKMS()
	}
	if w.genesis, err = json.Marshal(g); err != nil {
		tb.Fatal(err)
	}
	w.genesisHash = sha256.Sum256(w.genesis)
	if o.nsm {
		sim, err := nsmsim.New(nsmsim.Options{Image: nsmsim.MeasureBytes([]byte("binary"), w.genesis), Rand: newLockedReader("nsm " + o.label)})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { sim.Close() })
		w.nsm = sim
	}
	return w
}

func (w *fuzzWorld) now() time.Time { return time.UnixMilli(w.clock.Load()) }

// tick moves the world's clock by d.
func (w *fuzzWorld) tick(d time.Duration) { w.clock.Add(d.Milliseconds()) }

// newEnclave starts an enclave of the world (locked, when sealed).
func (w *fuzzWorld) newEnclave(tb testing.TB) *enclave.Enclave {
	tb.Helper()
	cfg := enclave.Config{
		Genesis: w.genesis, Rand: w.rnd, Now: w.now, NSM: w.nsm,
		AuditAckTimeout: w.ackTimeout, MaxUnackedAudit: w.maxUnacked,
	}
	if w.sealed {
		cfg.KMS, cfg.Credentials = &countingKMS{w.kms, &w.opened}, kms.NewPushedCredentials(w.now)
	}
	e, err := enclave.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// forgetKMSCalls drops the fake KMS's call log, which would otherwise grow
// with every fuzz execution.
func (w *fuzzWorld) forgetKMSCalls() {
	if w.kms != nil {
		w.kms.mu.Lock()
		w.kms.calls = nil
		w.kms.mu.Unlock()
	}
}

// signBody returns a fresh sign request body for key (request id unique in
// the world, timestamp now).
func (w *fuzzWorld) signBody(tb testing.TB, key string, unsigned []byte) []byte {
	tb.Helper()
	b, err := json.Marshal(api.SignRequest{
		RequestID:      fmt.Sprintf("w-%d", w.ids.Add(1)),
		TimestampMS:    w.now().UnixMilli(),
		Key:            key,
		EthTransaction: api.NewEthTransaction(unsigned),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// stamped returns the sign request of body, stamped by s.
func (w *fuzzWorld) stamped(tb testing.TB, s stamp.Signer, body []byte) *proto.SignRequest {
	tb.Helper()
	h, err := stamp.Create(s, body)
	if err != nil {
		tb.Fatal(err)
	}
	return &proto.SignRequest{Body: body, Stamp: h}
}

// pay is hot's request that hot-0 send wei to to.
func (w *fuzzWorld) pay(tb testing.TB, to string, wei *big.Int) *proto.SignRequest {
	return w.stamped(tb, w.hot, w.signBody(tb, "hot-0", transfer(tb, 1, to, wei)))
}

// rawEnvelope returns an admin envelope of the command with these fields,
// signed by the admins whose bit is set in signers (bit 3: a fourth name
// that is no admin, signing with admin 0's key). The command's JSON is put
// together as given, body included, so that malformed commands reach the
// enclave with valid signatures.
func (w *fuzzWorld) rawEnvelope(tb testing.TB, kind, body string, signers uint8, notBeforeMS, notAfterMS int64, genesisHash [32]byte) []byte {
	tb.Helper()
	k, _ := json.Marshal(kind)
	cmd := fmt.Sprintf(`{"kind":%s,"genesis_hash":"%x","not_before_ms":%d,"not_after_ms":%d,"body":%s}`, k, genesisHash, notBeforeMS, notAfterMS, body)
	digest := sha256.Sum256([]byte(cmd))
	type wireSig struct {
		Admin     string `json:"admin"`
		Signature string `json:"signature"`
	}
	sigs := []wireSig{}
	for i := range 4 {
		if signers&(1<<i) == 0 {
			continue
		}
		name, s := "d-admin", w.admins.signers[0]
		if i < 3 {
			name, s = w.admins.names[i], w.admins.signers[i]
		}
		sig, err := admin.SignDigest(s, admin.DomainCommand, digest)
		if err != nil {
			tb.Fatal(err)
		}
		sigs = append(sigs, wireSig{Admin: name, Signature: hex.EncodeToString(sig)})
	}
	env, err := json.Marshal(struct {
		Command    string    `json:"command"`
		Signatures []wireSig `json:"signatures"`
	}{cmd, sigs})
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// adminEnvelope is a well-formed command of kind with body, valid for an
// hour around now, signed by admins 0 and 1 (the quorum).
func (w *fuzzWorld) adminEnvelope(tb testing.TB, kind admin.Kind, body any) []byte {
	tb.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	nb := w.now().Add(-time.Minute).UnixMilli()
	return w.rawEnvelope(tb, string(kind), string(b), 0b011, nb, nb+int64(time.Hour/time.Millisecond), w.genesisHash)
}

// approvalBody is approver i's decision on the request with body, by id.
func (w *fuzzWorld) approvalBody(tb testing.TB, id string, i int, body []byte, reject bool) []byte {
	tb.Helper()
	domain, decision := api.DomainApprove, api.DecisionApprove
	if reject {
		domain, decision = api.DomainReject, api.DecisionReject
	}
	sig, err := admin.SignDigest(w.approvers.signers[i], domain, api.ApprovalDigest(body))
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := json.Marshal(api.ApprovalRequest{ApprovalID: id, Decision: decision, Approver: w.approvers.names[i], Signature: hex.EncodeToString(sig)})
	return b
}

// auditPersister is an honest host's audit store in miniature, driven by
// the test (no goroutine of its own): it fetches the enclave's records in
// order, keeps them, and acknowledges each batch with the hash of the last
// record, scoped to the enclave's run. It keeps every line only when keep
// is set (fuzz targets keep the last one only, so that memory stays flat).
type auditPersister struct {
	call caller
	// maxWait caps the long polls (0: proto.MaxAuditWaitMS). Over a
	// connection, a poll whose caller gave up still waits in the enclave
	// until its time is out.
	maxWait uint32
	run     []byte
	seq     uint64 // last record persisted and acknowledged
	hash    []byte // its hash
	last    []byte // its line
	keep    bool
	log     [][]byte // with keep: the lines persisted by this persister, in order
	// checkpoint, when set, is the host's checkpoint poll: do runs it
	// while an admin command's answer waits (for a checkpoint that holds
	// the command, besides its record).
	checkpoint func(testing.TB)
}

// A caller sends a request to an enclave and returns its answer: the
// enclave's Handle, or a call over a connection (see callOver). It returns
// nil when the call failed (its context ended, the connection broke).
type caller func(ctx context.Context, m proto.Message) proto.Message

// newPersister starts persisting e's records from where e's log continues
// (the head it was unsealed with, which the host holds already).
func newPersister(tb testing.TB, e *enclave.Enclave, keep bool) *auditPersister {
	tb.Helper()
	return newPersisterVia(tb, e.Handle, keep)
}

// newPersisterVia is newPersister for an enclave reached through call.
func newPersisterVia(tb testing.TB, call caller, keep bool) *auditPersister {
	tb.Helper()
	ar, ok := call(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse)
	if !ok {
		tb.Fatal("audit request refused")
	}
	return &auditPersister{call: call, run: ar.Run, seq: ar.Acked, keep: keep}
}

// step fetches the records after the last one persisted (long-polling for
// up to waitMS, or until ctx ends), persists them and acknowledges them.
// It returns how many it persisted.
func (p *auditPersister) step(ctx context.Context, waitMS uint32) (int, error) {
	if p.maxWait > 0 {
		waitMS = min(waitMS, p.maxWait)
	}
	m := p.call(ctx, &proto.AuditRequest{Ack: p.seq, AckHash: p.hash, From: p.seq + 1, WaitMS: waitMS, Run: p.run})
	ar, ok := m.(*proto.AuditResponse)
	if !ok {
		if m == nil && ctx.Err() != nil {
			return 0, nil // the caller gave up waiting
		}
		return 0, fmt.Errorf("audit poll answered %v", m)
	}
	n := 0
	for _, line := range ar.Records {
		r, err := audit.Unmarshal(line)
		if err != nil {
			return n, fmt.Errorf("record does not parse: %v", err)
		}
		if r.Seq != p.seq+1 {
			return n, fmt.Errorf("record %d after %d", r.Seq, p.seq)
		}
		h := sha256.Sum256(line)
		p.seq, p.hash, p.last = r.Seq, h[:], line
		if p.keep {
			p.log = append(p.log, line)
		}
		n++
	}
	if n > 0 {
		if m := p.call(context.Background(), &proto.AuditRequest{Ack: p.seq, AckHash: p.hash, Run: p.run}); m == nil || m.Type() != proto.TypeAuditResponse {
			return n, fmt.Errorf("acknowledgement of %d refused: %v", p.seq, m)
		}
	}
	return n, nil
}

// sync persists and acknowledges every record the enclave has.
func (p *auditPersister) sync(tb testing.TB) {
	tb.Helper()
	for {
		n, err := p.step(context.Background(), 0)
		if err != nil {
			tb.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// do sends m and returns its answer, persisting and acknowledging records
// meanwhile (an answer that carries a record waits for that), then
// everything that remains.
func (p *auditPersister) do(tb testing.TB, m proto.Message) proto.Message {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	answer := make(chan proto.Message, 1)
	go func() {
		defer cancel()
		answer <- p.call(context.Background(), m)
	}()
	_, isAdmin := m.(*proto.AdminRequest)
	wait := uint32(proto.MaxAuditWaitMS)
	if isAdmin && p.checkpoint != nil {
		wait = 5 // between checkpoint polls
	}
	for ctx.Err() == nil {
		if isAdmin && p.checkpoint != nil {
			p.checkpoint(tb)
		}
		if _, err := p.step(ctx, wait); err != nil {
			cancel()
			<-answer
			tb.Fatal(err)
		}
	}
	p.sync(tb)
	return <-answer
}

// outcome names an answer for comparisons: "signed", "pending", or the
// refusal's code and rule.
func outcome(m proto.Message) string {
	switch r := m.(type) {
	case *proto.SignResponse:
		if r.Status == proto.StatusPending {
			return "pending"
		}
		return "signed"
	case *proto.Error:
		return r.Code + "/" + r.Rule
	}
	return fmt.Sprintf("%T", m)
}

// probe is a normal request of a registered client: hot-0 sends 1 wei to
// destA. It moves the clock by a millisecond (a new request id and
// timestamp every time), and returns the answer's outcome.
func (w *fuzzWorld) probe(tb testing.TB, p *auditPersister) (string, proto.Message) {
	tb.Helper()
	w.tick(time.Millisecond)
	m := p.do(tb, w.pay(tb, destA, big.NewInt(1)))
	return outcome(m), m
}

// checkAnswer fails unless resp is a valid answer to req that the protocol
// can send back: the request's response type or an Error with a code and
// a message, never an internal error (a handler bug), encodable by
// proto.Marshal.
func checkAnswer(t testing.TB, req, resp proto.Message) {
	t.Helper()
	if resp == nil {
		t.Fatalf("no answer to %T", req)
	}
	if _, err := proto.Marshal(1, resp); err != nil {
		t.Fatalf("the answer to %T cannot be sent back: %v (%+v)", req, err, resp)
	}
	if pe, ok := resp.(*proto.Error); ok {
		if pe.Code == "" || pe.Message == "" || pe.Code == refusal.CodeInternal {
			t.Fatalf("the answer to %T is an error with code %q, message %q", req, pe.Code, pe.Message)
		}
		return
	}
	if want := proto.ResponseType(req.Type()); resp.Type() != want {
		t.Fatalf("the answer to %T is a %v, want %v", req, resp.Type(), want)
	}
}

// viaWire returns m as the enclave receives it from the host: encoded and
// decoded by package proto (which enforces the caps Handle relies on), or
// nil when proto would not carry it.
func viaWire(m proto.Message) proto.Message {
	p, err := proto.Marshal(1, m)
	if err != nil {
		return nil
	}
	_, out, err := proto.Unmarshal(p)
	if err != nil {
		return nil
	}
	return out
}

// enclaveState is what a refused request must leave as it was.
type enclaveState struct {
	health  string // the health answer, UptimeMS and the KMS call counters left out
	head    uint64
	hash    [32]byte
	acked   uint64
	pending string // the unacknowledged records
	keys    string
	policy  string
}

func stateOf(tb testing.TB, e *enclave.Enclave) enclaveState {
	tb.Helper()
	var s enclaveState
	h := *e.Handle(context.Background(), &proto.HealthRequest{}).(*proto.HealthResponse)
	h.UptimeMS, h.KMS = 0, nil // a refusal may have asked KMS (a key_import's Decrypt): counted, not state
	s.health = fmt.Sprintf("%+v", h)
	// Every audit request carries the host's failing report: repeat the
	// one in force, so that looking does not change it.
	// The fetch of the pending records closes the open batch (it appends
	// its tree head, as any host's poll does): the head is read after it,
	// so that looking twice sees the same state.
	if ar, ok := e.Handle(context.Background(), &proto.AuditRequest{Failing: h.AuditFailing}).(*proto.AuditResponse); ok {
		if pr, ok := e.Handle(context.Background(), &proto.AuditRequest{From: ar.Acked + 1, Failing: h.AuditFailing}).(*proto.AuditResponse); ok {
			var b strings.Builder
			for _, l := range pr.Records {
				b.Write(l)
				b.WriteByte('\n')
			}
			s.pending = b.String()
		}
		ar = e.Handle(context.Background(), &proto.AuditRequest{Failing: h.AuditFailing}).(*proto.AuditResponse)
		s.head, s.hash, s.acked = ar.HeadSeq, ar.HeadHash, ar.Acked
		h = *e.Handle(context.Background(), &proto.HealthRequest{}).(*proto.HealthResponse) // its audit head, after the fetch
		h.UptimeMS, h.KMS = 0, nil
		s.health = fmt.Sprintf("%+v", h)
	}
	if kr, ok := e.Handle(context.Background(), &proto.KeysRequest{}).(*proto.KeysResponse); ok {
		s.keys = fmt.Sprint(kr.Keys)
	}
	if pr, ok := e.Handle(context.Background(), &proto.PolicyRequest{}).(*proto.PolicyResponse); ok {
		s.policy = fmt.Sprintf("%d %x %d", pr.Version, pr.Hash, len(pr.Pending))
	}
	return s
}

// wantUnchanged fails if the enclave's state differs from before.
func wantUnchanged(t testing.TB, what string, before, after enclaveState) {
	t.Helper()
	if before != after {
		t.Fatalf("%s changed the enclave's state:\nbefore %+v\n after %+v", what, before, after)
	}
}

var _ io.Reader = (*lockedReader)(nil)
