package enclave_test

// A hostile host, as a test double: it speaks the vsock protocol (package
// proto, over the vsock simulator) to a real enclave served with
// Enclave.Serve, as host/ does, and misbehaves in the ways the host may
// (DESIGN.md's trust model: it may be fully compromised, replay old
// messages, drop or reorder them, serve stale state). Each test proves
// that the enclave holds:
//
//   - TestHostileHostWithholdsAcks: a host that takes the records but
//     never acknowledges them obtains no signature, and the enclave stops
//     deciding after the acknowledgement timeout, far below its backlog
//     cap;
//   - TestHostileHostRollbacks: older checkpoints, older sealed seeds and a
//     truncated log handed back at unseal are named rollbacks in the boot
//     record, and every key is frozen;
//   - TestHostileHostOutOfRangeAcks: acknowledgements beyond the head, of
//     2^64-1, with a wrong hash or another record's, or of an earlier run
//     are refused or ignored without a change, and service goes on;
//   - TestHostileHostManyConnections: hundreds of connections flooding long
//     polls, garbage and oversized frames, half frames and requests never
//     read do not stop an honest connection's signatures, and goroutines
//     and memory come back once they close;
//   - TestHostileHostReordersAcks: acknowledgements out of order,
//     duplicated, stale, and request frames with reused and out-of-order
//     ids release nothing whose record was not acknowledged.
//
// The fast versions run in go test; NITROSIGN_CHAOS=1 (make chaos) makes
// the flood larger and longer. The double is a _test.go file of this
// package: it is never linked into the enclave binary.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// chaos reports whether the long versions run (make chaos).
func chaos() bool { return os.Getenv("NITROSIGN_CHAOS") != "" }

// newVsockSim is a simulated vsock network for one test.
func newVsockSim(t *testing.T) *vsocksim.Sim {
	t.Helper()
	sim, err := vsocksim.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// serveEnclave serves e on the enclave's port of sim, as nitrosign-enclave
// does, until the returned stop is called (or the test ends): a run of the
// enclave process.
func serveEnclave(t *testing.T, sim *vsocksim.Sim, e *enclave.Enclave) (stop func()) {
	t.Helper()
	l, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, l) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

// dialEnclave opens a host connection to the enclave of sim.
func dialEnclave(t *testing.T, sim *vsocksim.Sim) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sim.Endpoint(transport.ParentCID).Dial(ctx, transport.DefaultEnclaveCID, transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialClient opens a host connection and a protocol client on it.
func dialClient(t *testing.T, sim *vsocksim.Sim) *proto.Client {
	t.Helper()
	c := proto.NewClient(dialEnclave(t, sim), nil)
	t.Cleanup(func() { c.Close() })
	return c
}

// callOver is the caller of requests over c: an Error answer is returned
// as a message, a failed call as nil.
func callOver(c *proto.Client) caller {
	return func(ctx context.Context, m proto.Message) proto.Message {
		resp, err := c.Call(ctx, m)
		var pe *proto.Error
		if errors.As(err, &pe) {
			return pe
		}
		if err != nil {
			return nil
		}
		return resp
	}
}

// wantAuditRefusal fails unless m is the 503 of the audit pipeline, which
// carries no record and no signature.
func wantAuditRefusal(t *testing.T, m proto.Message) {
	t.Helper()
	pe, ok := m.(*proto.Error)
	if !ok || pe.Code != refusal.CodeUnavailable || pe.Rule != refusal.RuleAudit || len(pe.AuditRecord) != 0 {
		t.Fatalf("want 503 rule audit, got %s: %v", outcome(m), m)
	}
}

// TestHostileHostWithholdsAcks: the host fetches every record but
// acknowledges none. No signature is obtained: every answer is 503 rule
// audit. The enclave stops deciding once the oldest record has waited the
// acknowledgement timeout (stall), so the records made are about as many
// as the requests in flight then, far below the backlog cap. When the host
// acknowledges again, signing resumes.
func TestHostileHostWithholdsAcks(t *testing.T) {
	clients, each := 8, 25
	if chaos() {
		clients, each = 32, 200
	}
	w := newFuzzWorld(t, worldOptions{label: "withhold", ackTimeout: 300 * time.Millisecond})
	sim := newVsockSim(t)
	e := w.newEnclave(t)
	serveEnclave(t, sim, e)
	call := callOver(dialClient(t, sim))
	honest := newPersisterVia(t, call, false)
	honest.maxWait = 100
	honest.sync(t) // the genesis record: an honest start

	// From here on the host only fetches.
	ctx, stopFetching := context.WithCancel(context.Background())
	var fetched atomic.Int64
	fetching := make(chan struct{})
	go func() {
		defer close(fetching)
		next := honest.seq + 1
		for ctx.Err() == nil {
			ar, ok := call(ctx, &proto.AuditRequest{From: next, WaitMS: 100}).(*proto.AuditResponse)
			if !ok {
				continue
			}
			for _, l := range ar.Records {
				if r, err := audit.Unmarshal(l); err == nil && r.Seq == next {
					next++
					fetched.Add(1)
				}
			}
		}
	}()

	reqs := make([][]*proto.SignRequest, clients)
	for i := range reqs {
		for range each {
			w.tick(time.Millisecond)
			reqs[i] = append(reqs[i], w.pay(t, destA, big.NewInt(1)))
		}
	}
	answers := make(chan proto.Message, clients*each)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for _, r := range reqs[i] {
				answers <- call(context.Background(), r)
			}
		})
	}
	wg.Wait()
	close(answers)
	kinds := map[string]int{}
	for m := range answers {
		wantAuditRefusal(t, m)
		msg := m.(*proto.Error).Message
		switch {
		case strings.Contains(msg, "did not acknowledge"):
			kinds["withheld after deciding"]++
		case strings.Contains(msg, "has not acknowledged audit record"):
			kinds["refused before deciding (stall)"]++
		default:
			kinds[msg]++
		}
	}
	st := stateOf(t, e)
	made := int(st.head - honest.seq)
	t.Logf("%d requests: %v; %d records made (backlog cap %d), %d fetched by the host, none acknowledged", clients*each, kinds, made, genesis.DefaultMaxUnackedAudit, fetched.Load())
	if made < 1 || made > 2*clients {
		t.Errorf("%d records made without acknowledgement by %d clients; want at most about one per client in flight (the cap is %d)", made, clients, genesis.DefaultMaxUnackedAudit)
	}
	if st.acked != honest.seq {
		t.Errorf("acknowledged head %d, the host acknowledged %d", st.acked, honest.seq)
	}
	stopFetching()
	<-fetching

	// The host acknowledges again: signing resumes.
	honest.sync(t)
	if o, m := w.probe(t, honest); o != "signed" {
		t.Fatalf("once the host acknowledges again, a request is answered %s: %v", o, m)
	}
}

// TestHostileHostRollbacks: after a first run (a sealed seed re-wrapped to
// sealing generation 2, checkpoints of generations 1 to 3), the host
// restarts the enclave and hands back, at unseal, older copies of what it
// stores. Each is a boot record naming the rollback's rule, followed by the
// freeze of every key: a normal request is refused (frozen). The honest
// restart is the control.
func TestHostileHostRollbacks(t *testing.T) {
	w := newFuzzWorld(t, worldOptions{sealed: true, label: "rollbacks"})
	sim := newVsockSim(t)
	stop := serveEnclave(t, sim, w.newEnclave(t))
	c := dialClient(t, sim)
	m := w.firstRunVia(t, callOver(c))
	c.Close()
	stop()

	for _, tc := range []struct {
		name             string
		sealed, head, cp []byte
		want             string // the rule of the boot record
		evidence         string
	}{
		{"honest restart", m.s2, m.hLast, m.cLast, "", ""},
		{"replayed checkpoint", m.s2, m.hLast, m.c1, refusal.RuleCheckpointRollback, "checkpoint handed back is generation 1"},
		{"checkpoint withheld", m.s2, m.hLast, nil, refusal.RuleCheckpointRollback, "the host sent no checkpoint"},
		{"replayed sealed seed", m.s1, m.hLast, m.cLast, refusal.RuleSeedGenerationRollback, "sealing generation 1"},
		{"truncated log", m.s2, m.h1, m.cLast, refusal.RuleAuditRollback, "before the acknowledged head 12"},
		{"log withheld", m.s2, nil, m.cLast, refusal.RuleAuditRollback, "before the acknowledged head 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := w.newEnclave(t)
			stop := serveEnclave(t, sim, e)
			defer stop()
			call := callOver(dialClient(t, sim))
			ur, ok := call(context.Background(), &proto.UnsealRequest{Sealed: tc.sealed, AuditHead: tc.head, Checkpoint: tc.cp}).(*proto.UnsealResponse)
			if !ok {
				t.Fatal("unseal refused")
			}
			boot, err := audit.VerifyRecord(ur.AuditRecord, ur.AuditKey)
			if err != nil {
				t.Fatal(err)
			}
			p := newPersisterVia(t, call, true)
			p.maxWait = 100
			p.sync(t)
			o, _ := w.probe(t, p)
			if tc.want == "" {
				if boot.Rule != "" || len(audit.RollbackRules(boot)) > 0 || o != "signed" {
					t.Fatalf("honest restart: boot rule %q, a normal request %s:\n%s", boot.Rule, o, boot.Summary)
				}
				return
			}
			if boot.Decision != enclave.DecisionStartedWithRollback || boot.Rule != tc.want || !strings.Contains(boot.Summary, tc.evidence) {
				t.Fatalf("boot record: decision %s, rule %q; want %s saying %q:\n%s", boot.Decision, boot.Rule, tc.want, tc.evidence, boot.Summary)
			}
			if len(p.log) < 2 {
				t.Fatalf("%d records after the boot record", len(p.log))
			}
			fr, err := audit.Unmarshal(p.log[1])
			if err != nil || fr.Seq != boot.Seq+1 || fr.Kind != audit.KindFreeze || fr.Decision != "frozen" || fr.Key != "" {
				t.Fatalf("the record after the boot record is not the freeze of every key: %+v (%v)", fr, err)
			}
			if o != refusal.CodePolicyDenied+"/"+refusal.RuleFrozen {
				t.Fatalf("after a rollback, a normal request is answered %s, want refused (frozen)", o)
			}
		})
	}
}

// TestHostileHostOutOfRangeAcks: while a signature waits for the
// acknowledgement of its record, the host sends acknowledgements that name
// no record of this run correctly. Each is refused (400 rule audit) or, when
// scoped to another run, ignored; none changes the enclave's state, none
// releases the signature, none panics (an internal error). The honest
// acknowledgement then releases it, and service goes on.
func TestHostileHostOutOfRangeAcks(t *testing.T) {
	w := newFuzzWorld(t, worldOptions{label: "acks", ackTimeout: 30 * time.Second})
	sim := newVsockSim(t)

	// An earlier run, whose records and run id the host still has.
	stop := serveEnclave(t, sim, w.newEnclave(t))
	c0 := dialClient(t, sim)
	p0 := newPersisterVia(t, callOver(c0), true)
	p0.maxWait = 100
	p0.sync(t)
	if o, _ := w.probe(t, p0); o != "signed" {
		t.Fatalf("earlier run: %s", o)
	}
	run0, old := p0.run, p0.log
	c0.Close()
	stop()

	e := w.newEnclave(t)
	serveEnclave(t, sim, e)
	call := callOver(dialClient(t, sim))
	p := newPersisterVia(t, call, true)
	p.maxWait = 100
	p.sync(t) // the genesis record and its tree head (1, 2), acknowledged
	w.tick(time.Millisecond)
	answer := make(chan proto.Message, 1)
	req := w.pay(t, destA, big.NewInt(1))
	go func() { answer <- call(context.Background(), req) }()
	// The decision's record (3) and the tree head of its batch (4).
	var rec3, rec4 []byte
	for deadline := time.Now().Add(10 * time.Second); rec4 == nil; {
		if ar, ok := call(context.Background(), &proto.AuditRequest{From: 3, WaitMS: 100}).(*proto.AuditResponse); ok && len(ar.Records) == 2 {
			rec3, rec4 = ar.Records[0], ar.Records[1]
		}
		if time.Now().After(deadline) {
			t.Fatal("the sign request's record was not handed over")
		}
	}
	sum := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	h1, h3, h4, bad := sum(p.last), sum(rec3), sum(rec4), sum([]byte("not a record"))
	for _, tc := range []struct {
		name    string
		req     *proto.AuditRequest
		refusal string // "": ignored (another run's)
	}{
		{"one beyond the head", &proto.AuditRequest{Ack: 5, AckHash: h4}, "beyond"},
		{"far beyond the head", &proto.AuditRequest{Ack: 1 << 53, AckHash: h4}, "beyond"},
		{"2^64-1", &proto.AuditRequest{Ack: math.MaxUint64, AckHash: h4}, "beyond"},
		{"2^64-1 without a hash", &proto.AuditRequest{Ack: math.MaxUint64}, "beyond"},
		{"2^64-1 fetching from 2^64-1", &proto.AuditRequest{Ack: math.MaxUint64, AckHash: bad, From: math.MaxUint64}, "beyond"},
		{"wrong hash", &proto.AuditRequest{Ack: 4, AckHash: bad}, "not this enclave's"},
		{"hash of another record", &proto.AuditRequest{Ack: 4, AckHash: h1}, "not this enclave's"},
		{"the decision's hash for its tree head", &proto.AuditRequest{Ack: 4, AckHash: h3}, "not this enclave's"},
		{"no hash", &proto.AuditRequest{Ack: 4}, "without the record's hash"},
		{"an earlier run's record", &proto.AuditRequest{Ack: 4, AckHash: sum(old[3])}, "not this enclave's"},
		{"an earlier run's acknowledgement", &proto.AuditRequest{Ack: 4, AckHash: sum(old[3]), From: 1, Run: run0}, ""},
		{"the right hash, scoped to an earlier run", &proto.AuditRequest{Ack: 4, AckHash: h4, From: 1, Run: run0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stateOf(t, e)
			m := call(context.Background(), tc.req)
			checkAnswer(t, tc.req, m)
			if tc.refusal != "" {
				wantCode(t, m, refusal.CodeBadRequest, tc.refusal)
				if m.(*proto.Error).Rule != refusal.RuleAudit {
					t.Errorf("refused with rule %q", m.(*proto.Error).Rule)
				}
			} else if ar, ok := m.(*proto.AuditResponse); !ok || ar.Acked != before.acked || len(ar.Records) != 0 {
				t.Fatalf("an acknowledgement scoped to another run answered %v", m)
			}
			wantUnchanged(t, "an out-of-range acknowledgement", before, stateOf(t, e))
			select {
			case m := <-answer:
				t.Fatalf("the answer was released: %s", outcome(m))
			default:
			}
		})
	}

	if t.Failed() {
		return
	}
	// The honest acknowledgement releases the signature, with the record
	// the host holds.
	if m := call(context.Background(), &proto.AuditRequest{Ack: 4, AckHash: h4, Run: p.run}); m == nil || m.Type() != proto.TypeAuditResponse {
		t.Fatalf("the honest acknowledgement answered %v", m)
	}
	var m proto.Message
	select {
	case m = <-answer:
	case <-time.After(10 * time.Second):
		t.Fatal("the honest acknowledgement released nothing")
	}
	sr, ok := m.(*proto.SignResponse)
	if !ok || sr.AuditSeq != 3 || !bytes.Equal(sr.AuditRecord, rec3) || len(sr.SignedTransaction) == 0 {
		t.Fatalf("after the honest acknowledgement: %v", m)
	}
	p.seq, p.hash, p.last = 4, h4, rec4
	if o, m := w.probe(t, p); o != "signed" {
		t.Fatalf("service after the hostile acknowledgements: %s %v", o, m)
	}
}

// hostileConn is one misbehaving connection of TestHostileHostManyConnections.
type hostileConn struct {
	conn net.Conn
	kind string
	// pollMS is the wait of its long polls.
	pollMS uint32
}

// hostileKinds are what the flooding connections do, in proportion. A
// connection whose answers are never read pins its in-flight handlers (64)
// and a long-polling one its control slots (16): their share keeps the
// enclave's goroutines under the race detector's limit.
var hostileKinds = []string{
	"long polls", "garbage frames", "oversized frame", "half frame", "requests never read", "idle",
	"long polls", "garbage frames", "oversized frame", "half frame", "idle", "idle",
}

// misbehave makes c do its kind of harm, until c is closed (it writes
// only; it never reads an answer).
func (c *hostileConn) misbehave(r *mrand.Rand, bad *proto.SignRequest) {
	frame := func(id uint64, m proto.Message) error {
		p, err := proto.Marshal(id, m)
		if err != nil {
			panic(err)
		}
		return proto.WriteFrame(c.conn, p)
	}
	switch c.kind {
	case "long polls":
		// Always more than the control slots of a connection, each
		// waiting for a record that will never be (a poll returns when
		// any record is appended, and is sent again at once). The
		// writes block once the enclave stops reading (pushback) until
		// the connection closes.
		for id := uint64(1); ; id++ {
			if frame(id, &proto.AuditRequest{From: math.MaxUint64, WaitMS: c.pollMS}) != nil {
				return
			}
		}
	case "garbage frames":
		for range 8 {
			g := make([]byte, 1+r.IntN(300))
			for i := range g {
				g[i] = byte(r.Uint32())
			}
			proto.WriteFrame(c.conn, g)
		}
		// An envelope with a garbage body: answered bad_request, the
		// connection stays.
		proto.WriteFrame(c.conn, envelopeOf(proto.TypeAuditRequest, []byte{0xff}))
	case "oversized frame":
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], proto.MaxFrameSize+1)
		c.conn.Write(hdr[:])
	case "half frame":
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], proto.MaxFrameSize)
		c.conn.Write(hdr[:])
		c.conn.Write(bytes.Repeat([]byte{0xa4}, 1000))
	case "requests never read":
		// Refused requests whose answers pile up unread: the enclave's
		// writes block, then its handlers, then its reads.
		for id := uint64(1); ; id++ {
			if frame(id, bad) != nil {
				return
			}
		}
	}
}

// TestHostileHostManyConnections: the host opens hundreds of connections
// and floods them (long polls beyond the control slots, garbage frames, an
// oversized frame header, a frame that never ends, requests whose answers
// it never reads, idle connections) while an honest connection signs. Every
// honest request is signed (each within a generous bound: liveness, not
// speed), and once the flooding connections close, the enclave's
// goroutines return to what they were (runtime.NumGoroutine) and its heap
// does not keep what they pinned.
func TestHostileHostManyConnections(t *testing.T) {
	// A connection whose reader waits for a free control slot (all taken
	// by long polls) notices that its peer closed only when a slot frees:
	// its long polls end at their WaitMS at the latest, not at once. The
	// fast version polls for a second so that it settles in one; chaos
	// for the longest wait the protocol allows.
	conns, rounds, pollMS := 500, 1, uint32(1000)
	if chaos() {
		// More rounds, not more connections: 600 keep the enclave's
		// goroutines under the race detector's limit of 8128.
		conns, rounds, pollMS = 600, 10, proto.MaxAuditWaitMS
	}
	// The honest host's acknowledgements share two vCPUs with the flood
	// (and, under make test, with other packages' tests and the race
	// detector): the test is about service continuing, not about the 5 s
	// default, so answers may wait longer for their acknowledgement.
	w := newFuzzWorld(t, worldOptions{label: "flood", ackTimeout: 30 * time.Second})
	sim := newVsockSim(t)
	e := w.newEnclave(t)
	serveEnclave(t, sim, e)
	call := callOver(dialClient(t, sim))

	// The honest host's audit store, acknowledging in the background.
	p := newPersisterVia(t, call, false)
	p.maxWait = 100
	p.sync(t)
	ctx, stopAcking := context.WithCancel(context.Background())
	acking := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if _, err := p.step(ctx, 100); err != nil {
				acking <- err
				return
			}
		}
		acking <- nil
	}()
	sign := func(what string) {
		t.Helper()
		w.tick(time.Millisecond)
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if m := call(cctx, w.pay(t, destA, big.NewInt(1))); outcome(m) != "signed" {
			select {
			case err := <-acking:
				t.Fatalf("%s: the honest host's acknowledgements stopped: %v", what, err)
			default:
			}
			t.Fatalf("%s: an honest request was answered %s: %v", what, outcome(m), m)
		}
	}
	sign("before the flood")

	// settle returns the goroutines and the live heap (the least of a few
	// samples after a collection: the honest host and requests allocate
	// meanwhile).
	settle := func() (int, uint64) {
		heap := uint64(math.MaxUint64)
		for range 3 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap = min(heap, ms.HeapAlloc)
		}
		return runtime.NumGoroutine(), heap
	}
	baseG, baseHeap := settle()
	// Refused at once (no stamp): the flood costs the enclave its
	// connections, not signature checks.
	bad := &proto.SignRequest{Body: w.signBody(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)))}
	r := mrand.New(mrand.NewPCG(1, 2))
	for round := range rounds {
		var hostile []*hostileConn
		for i := range conns {
			hostile = append(hostile, &hostileConn{conn: dialEnclave(t, sim), kind: hostileKinds[i%len(hostileKinds)], pollMS: pollMS})
		}
		var wg sync.WaitGroup
		for _, c := range hostile {
			rr := mrand.New(mrand.NewPCG(r.Uint64(), r.Uint64()))
			wg.Go(func() { c.misbehave(rr, bad) })
		}
		for i := range 20 {
			sign(fmt.Sprintf("round %d, during the flood (%d)", round, i))
		}
		peak := runtime.NumGoroutine()
		for _, c := range hostile {
			c.conn.Close()
		}
		wg.Wait()
		// Back to normal: the goroutines the flood made end (long polls
		// included, their connection gone), and the heap lets go.
		var g int
		var heap uint64
		for deadline := time.Now().Add(20 * time.Second); ; {
			if g, heap = settle(); g <= baseG+2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d goroutines %v after the flooding connections closed, %d before the flood (peak %d)", round, g, time.Since(deadline.Add(-20*time.Second)), baseG, peak)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("round %d: %d connections; goroutines %d before, %d at the peak, %d after; heap %d KiB before, %d KiB after", round, conns, baseG, peak, g, baseHeap>>10, heap>>10)
		if heap > baseHeap+32<<20 { // the flood's connection buffers alone are 128 KiB a connection
			t.Errorf("round %d: heap %d KiB after the flood, %d KiB before", round, heap>>10, baseHeap>>10)
		}
		sign(fmt.Sprintf("round %d, after the flood", round))
	}
	stopAcking()
	if err := <-acking; err != nil {
		t.Fatal(err)
	}
}

// TestHostileHostReordersAcks: several sign requests wait for their
// records; the host acknowledges them out of order (a middle one first:
// acknowledgements are cumulative), again (duplicates), below what it
// acknowledged already (stale, with right and wrong hashes), interleaved
// with request frames that reuse ids and come out of order on a raw
// connection. At every step exactly the answers whose record is
// acknowledged together with the tree head of its batch have been
// released, each carrying the exact record the host holds for its seq.
func TestHostileHostReordersAcks(t *testing.T) {
	const n = 6
	w := newFuzzWorld(t, worldOptions{label: "reorder", ackTimeout: 30 * time.Second})
	sim := newVsockSim(t)
	e := w.newEnclave(t)
	serveEnclave(t, sim, e)
	call := callOver(dialClient(t, sim))
	p := newPersisterVia(t, call, false)
	p.sync(t) // record 1 and its tree head 2

	type released struct {
		resp *proto.SignResponse
		m    proto.Message
	}
	answers := make(chan released, n)
	var reqs []*proto.SignRequest
	for range n {
		w.tick(time.Millisecond)
		reqs = append(reqs, w.pay(t, destA, big.NewInt(1)))
	}
	for _, r := range reqs {
		go func() {
			m := call(context.Background(), r)
			sr, _ := m.(*proto.SignResponse)
			answers <- released{sr, m}
		}()
	}
	// The records, decisions and the tree heads of their batches (the
	// batches depend on when the polls come), up to last, a tree head.
	lines := map[uint64][]byte{}
	heads := map[uint64]bool{}
	decisions, last := 0, uint64(2)
	for deadline := time.Now().Add(10 * time.Second); decisions < n; {
		if ar, ok := call(context.Background(), &proto.AuditRequest{From: last + 1, WaitMS: 100}).(*proto.AuditResponse); ok {
			for _, l := range ar.Records {
				r, err := audit.Unmarshal(l)
				if err != nil {
					t.Fatal(err)
				}
				lines[r.Seq] = l
				last = max(last, r.Seq)
				if r.Kind == audit.KindTreeHead {
					heads[r.Seq] = true
				} else {
					decisions++
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records handed over", decisions, n)
		}
	}
	if !heads[last] {
		t.Fatalf("the records handed over end with record %d, not a tree head", last)
	}
	hash := func(seq uint64) []byte { s := sha256.Sum256(lines[seq]); return s[:] }
	// covered is the last tree head up to acked: the answers released are
	// those of the records before it.
	covered := func(acked uint64) uint64 {
		for s := acked; s > 2; s-- {
			if heads[s] {
				return s
			}
		}
		return 2
	}
	got := map[uint64]bool{}
	// expect waits until exactly the answers of records covered by a tree
	// head up to acked are released, and checks each.
	expect := func(step string, acked uint64) {
		t.Helper()
		upTo := covered(acked)
		want := 0
		for s := uint64(3); s < upTo; s++ {
			if !heads[s] {
				want++
			}
		}
		for len(got) < want {
			select {
			case a := <-answers:
				if a.resp == nil || a.resp.AuditSeq > upTo || !bytes.Equal(a.resp.AuditRecord, lines[a.resp.AuditSeq]) || got[a.resp.AuditSeq] {
					t.Fatalf("%s: released %s (seq %d) with records up to %d acknowledged, covered up to %d", step, outcome(a.m), a.resp.AuditSeq, acked, upTo)
				}
				got[a.resp.AuditSeq] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: %d answers released, want %d", step, len(got), want)
			}
		}
		select {
		case a := <-answers:
			t.Fatalf("%s: released %s beyond the acknowledged record %d", step, outcome(a.m), acked)
		case <-time.After(20 * time.Millisecond): // nothing more (a released answer would be a failure, whenever it came)
		}
		if st := stateOf(t, e); st.acked != acked {
			t.Fatalf("%s: the enclave's acknowledged head is %d, want %d", step, st.acked, acked)
		}
	}
	ack := func(seq uint64, h []byte) proto.Message {
		return call(context.Background(), &proto.AuditRequest{Ack: seq, AckHash: h})
	}
	expect("nothing acknowledged", 2)

	mid := 2 + (last-2)/2
	ack(mid, hash(mid))
	expect("a middle record acknowledged first", mid)
	ack(mid, hash(mid))
	expect("the same acknowledgement again", mid)
	ack(mid-1, hash(mid-1))
	ack(2, hash(3)) // stale, and with another record's hash: ignored, not refused
	expect("stale acknowledgements", mid)
	wantCode(t, ack(mid+2, hash(mid+1)), refusal.CodeBadRequest, "not this enclave's")
	expect("the next records, with the previous one's hash", mid)

	// Request frames on a raw connection: a wrong acknowledgement and a
	// fetch with one id, a poll with a smaller id, a reused id, then the
	// right acknowledgement of the next record with the same id again.
	raw := dialEnclave(t, sim)
	defer raw.Close()
	frames := []struct {
		id uint64
		m  proto.Message
	}{
		{9, &proto.AuditRequest{Ack: mid + 1, AckHash: hash(mid + 2)}},
		{9, &proto.AuditRequest{From: 1}},
		{3, &proto.AuditRequest{Ack: mid, AckHash: hash(mid)}},
		{9, &proto.AuditRequest{Ack: last + 1, AckHash: hash(last)}},
		{3, &proto.AuditRequest{Ack: mid + 1, AckHash: hash(mid + 1)}},
	}
	for _, f := range frames {
		// One at a time, so that the order of effects is the order sent.
		b, err := proto.Marshal(f.id, f.m)
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.WriteFrame(raw, b); err != nil {
			t.Fatal(err)
		}
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		payload, err := proto.ReadFrame(raw)
		if err != nil {
			t.Fatal(err)
		}
		id, m, err := proto.Unmarshal(payload)
		if err != nil || id != f.id {
			t.Fatalf("frame %d answered id %d, %v", f.id, id, err)
		}
		checkAnswer(t, f.m, m)
	}
	expect("request frames with reused and out-of-order ids", mid+1)

	ack(last, hash(last))
	expect("every record acknowledged", last)
	p.seq, p.hash = last, hash(last)
	if o, _ := w.probe(t, p); o != "signed" {
		t.Fatalf("afterwards, a normal request: %s", o)
	}
}
