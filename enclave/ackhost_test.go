package enclave_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
)

// ackHost is an honest host's audit pipeline in miniature: it long-polls
// the enclave for records, "persists" them in memory in sequence order, and
// acknowledges each with the hash of the exact line it kept. Every answer
// that carries a record waits for this acknowledgement, so tests that sign
// run one (newFixture and friends start it).
type ackHost struct {
	e      *enclave.Enclave
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	lines  [][]byte // persisted records of this run, in order
	next   uint64   // the next seq wanted (0: learn it from the enclave)
	acked  uint64
	hash   []byte // of record acked
	last   []byte // hash of the last record kept
	paused bool
	// polling is set while a poll is in flight: pause waits for it, so
	// that no poll of the host's (reporting nothing failing, say) reaches
	// the enclave after pause returns.
	polling bool
	cond    *sync.Cond
	// cp is the newest checkpoint stored, of generation cpGen. The
	// ackHost stores checkpoints only while an admin command's answer
	// waits for one (enclave.CheckpointWanted), so that tests that play
	// the checkpoint polls themselves keep their generations.
	cp    []byte
	cpGen uint64
}

// storeCheckpoints is the host's checkpoint poll, while an admin answer
// waits for one: it stores the newest checkpoint and acknowledges it.
func (h *ackHost) storeCheckpoints(ctx context.Context) {
	for range 3 {
		if !enclave.CheckpointWanted(h.e) {
			return
		}
		h.mu.Lock()
		ack := h.cpGen
		h.mu.Unlock()
		cr, ok := h.e.Handle(ctx, &proto.CheckpointRequest{Ack: ack}).(*proto.CheckpointResponse)
		if !ok {
			return
		}
		h.mu.Lock()
		if len(cr.Sealed) > 0 {
			h.cp = cr.Sealed
		}
		h.cpGen = cr.Generation
		h.mu.Unlock()
	}
}

// checkpoint returns the newest checkpoint the ackHost stored.
func (h *ackHost) checkpoint() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cp
}

// ackHosts maps each enclave to the ackHost acknowledging its records.
var ackHosts sync.Map

// startAcks starts acknowledging e's records until the test ends.
func startAcks(t testing.TB, e *enclave.Enclave) *ackHost {
	ctx, cancel := context.WithCancel(context.Background())
	h := &ackHost{e: e, cancel: cancel, done: make(chan struct{})}
	h.cond = sync.NewCond(&h.mu)
	ackHosts.Store(e, h)
	go h.run(ctx)
	t.Cleanup(func() { h.stop(); ackHosts.Delete(e) })
	// Wait until the host has the records so far, their tree head
	// included: the seqs that the test's requests get do not depend on
	// whether the host's first poll closed the batch before them.
	if st, ok := e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse); ok && st.HeadSeq > 0 {
		recordsOf(t, e)
	}
	return h
}

// recordsOf returns the records of e persisted by its ackHost, once it has
// caught up with e's head.
func recordsOf(t testing.TB, e *enclave.Enclave) [][]byte {
	t.Helper()
	v, ok := ackHosts.Load(e)
	if !ok {
		t.Fatal("no ackHost runs for this enclave")
	}
	h := v.(*ackHost)
	head := e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		caught := h.next > head
		h.mu.Unlock()
		if caught {
			return h.records()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ackHost did not reach record %d", head)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *ackHost) stop() {
	h.cancel()
	h.mu.Lock()
	h.cond.Broadcast()
	h.mu.Unlock()
	<-h.done
}

// pause stops polling, hence acknowledging, once the poll in flight (if
// any) has returned; resume starts again.
func (h *ackHost) pause() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paused = true
	for h.polling {
		h.cond.Wait()
	}
}

func (h *ackHost) resume() {
	h.mu.Lock()
	h.paused = false
	h.cond.Broadcast()
	h.mu.Unlock()
}

// records returns the records persisted so far.
func (h *ackHost) records() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.lines...)
}

func (h *ackHost) run(ctx context.Context) {
	defer close(h.done)
	for ctx.Err() == nil {
		h.mu.Lock()
		for h.paused && ctx.Err() == nil {
			h.cond.Wait()
		}
		h.polling = true
		req := &proto.AuditRequest{Ack: h.acked, AckHash: h.hash, From: h.next, WaitMS: 100}
		if h.next == 0 {
			req.From = 1
		}
		h.mu.Unlock()
		h.storeCheckpoints(ctx)
		resp, ok := h.e.Handle(ctx, req).(*proto.AuditResponse)
		h.mu.Lock()
		h.polling = false
		h.cond.Broadcast()
		h.mu.Unlock()
		if !ok { // locked, or refused: try again shortly
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		h.mu.Lock()
		if h.next == 0 {
			h.next, h.acked = resp.Acked+1, resp.Acked
		}
		// The enclave answers the records from From on, in order: the
		// first is record next (a fresh ackHost checks it once).
		for i, line := range resp.Records {
			if i == 0 && len(h.lines) == 0 {
				if r, err := audit.Unmarshal(line); err != nil || r.Seq != h.next {
					break
				}
			}
			h.lines = append(h.lines, line)
			h.next++
			if i == len(resp.Records)-1 {
				sum := sha256.Sum256(line)
				h.last = sum[:]
			}
		}
		if !h.paused && h.next-1 > h.acked {
			h.acked, h.hash = h.next-1, h.last
		}
		h.mu.Unlock()
	}
}

// newestCheckpoint returns e's newest checkpoint, as a host that stored
// every one would hold it: a new one when the state changed since the
// last, else the one e's ackHost stored last (an acknowledged checkpoint
// is not handed out again).
func newestCheckpoint(t testing.TB, e *enclave.Enclave) []byte {
	t.Helper()
	cr, ok := e.Handle(context.Background(), &proto.CheckpointRequest{}).(*proto.CheckpointResponse)
	if !ok {
		t.Fatal("checkpoint request refused")
	}
	if len(cr.Sealed) > 0 {
		return cr.Sealed
	}
	v, ok := ackHosts.Load(e)
	if !ok || len(v.(*ackHost).checkpoint()) == 0 {
		t.Fatal("no checkpoint: the enclave hands out none, and no ackHost stored one")
	}
	return v.(*ackHost).checkpoint()
}
