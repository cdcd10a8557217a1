package enclave_test

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// budgetHost is a host that keeps the sealed seed, every checkpoint and
// the whole audit log across enclave runs, and chooses which checkpoint to
// hand back at a restart. Records are persisted and acknowledged by each
// run's ackHost (sealedFixture.start); checkpoints only when the test
// says.
type budgetHost struct {
	t      *testing.T
	f      *sealedFixture
	e      *enclave.Enclave
	fx     *fixture
	sealed []byte
	key    []byte
	prior  [][]byte // records of the runs before this one
	cps    map[uint64][]byte
	cpAck  uint64
	signed *big.Int
}

func newBudgetHost(t *testing.T, maxUnacked int) *budgetHost {
	t.Helper()
	f, _ := rollbackFixture(t, maxUnacked) // 3 ETH a day from hot-0 to destB
	h := &budgetHost{t: t, f: f, cps: map[uint64][]byte{}, signed: new(big.Int)}
	h.e = f.start(t)
	h.sealed = mustUnseal(t, h.e, &proto.UnsealRequest{Create: true}).Sealed
	r := mustUnseal(t, h.e, &proto.UnsealRequest{Sealed: h.sealed})
	h.key = r.AuditKey
	h.fx = &fixture{e: h.e, now: f.now, hot: f.hot}
	return h
}

// log returns the whole persisted log.
func (h *budgetHost) log() [][]byte {
	return append(append([][]byte(nil), h.prior...), recordsOf(h.t, h.e)...)
}

// storeCheckpoint polls until the newest checkpoint is stored and
// acknowledged, and returns its generation.
func (h *budgetHost) storeCheckpoint() uint64 {
	h.t.Helper()
	recordsOf(h.t, h.e) // the records so far are persisted: the checkpoint holds their head
	for range 100 {
		acked := h.cpAck
		cr, ok := h.e.Handle(context.Background(), &proto.CheckpointRequest{Ack: acked}).(*proto.CheckpointResponse)
		if !ok {
			h.t.Fatal("checkpoint request refused")
		}
		if len(cr.Sealed) == 0 && cr.Generation == acked && acked != 0 {
			return acked // acknowledged, and nothing newer to store
		}
		if len(cr.Sealed) > 0 {
			h.cps[cr.Generation] = cr.Sealed
		}
		h.cpAck = cr.Generation
	}
	h.t.Fatal("no checkpoint settled in 100 polls")
	return 0
}

// pay asks hot-0 to send wei to destB and counts what is signed.
func (h *budgetHost) pay(wei *big.Int) proto.Message {
	h.t.Helper()
	body := h.fx.body(h.t, "hot-0", transfer(h.t, 1, destB, wei), h.f.now.UnixMilli())
	s, err := stamp.Create(h.f.hot, body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := h.e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: s})
	if sr, ok := r.(*proto.SignResponse); ok && sr.Status == "" && len(sr.SignedTransaction) > 0 {
		h.signed.Add(h.signed, wei)
	}
	return r
}

// payUntilRefused pays 1 ETH until refused, and returns the refusal.
func (h *budgetHost) payUntilRefused() *proto.Error {
	h.t.Helper()
	for range 10 {
		if pe, ok := h.pay(ether(1)).(*proto.Error); ok {
			return pe
		}
	}
	h.t.Fatal("10 ETH signed against a 3 ETH limit")
	return nil
}

// restart starts a new enclave run with the whole log and checkpoint gen,
// and returns the boot record.
func (h *budgetHost) restart(gen uint64) audit.Record {
	h.t.Helper()
	h.prior = h.log()
	h.e = h.f.start(h.t)
	h.fx = &fixture{e: h.e, now: h.f.now, hot: h.f.hot, seqIDs: h.fx.seqIDs}
	h.cpAck = 0
	r := mustUnseal(h.t, h.e, &proto.UnsealRequest{Sealed: h.sealed, AuditHead: h.prior[len(h.prior)-1], Checkpoint: h.cps[gen]})
	boot, err := audit.VerifyRecord(r.AuditRecord, r.AuditKey)
	if err != nil {
		h.t.Fatal(err)
	}
	return boot
}

func (h *budgetHost) last() audit.Record {
	h.t.Helper()
	l := h.log()
	r, err := audit.VerifyRecord(l[len(l)-1], h.key)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// TestReplayBudgetAcrossRestarts is the attack of issue 11 item 4 that
// detection cannot see: the host acknowledges checkpoint G, lets the
// enclave spend, never lets a newer checkpoint be acknowledged, and
// restarts the enclave with G and its whole log three times. Every record
// names G, so no rollback is detected; the records' unacknowledged count
// makes each restart charge what G's snapshot lacks, so the day holds what
// the first run signed and nothing more (docs/limits.md, "The replay
// bound": at most M in all, here 3 ETH a day; P is taken as M).
func TestReplayBudgetAcrossRestarts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxUnacked int
		firstRun   int64 // ETH the first run signs before it is refused
		refusal    string
	}{
		{"RequireFresh C=2", 2, 2, "checkpoint"},
		{"no RequireFresh", 0, 3, refusal.RuleRollingLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newBudgetHost(t, tc.maxUnacked)
			g := h.storeCheckpoint()
			pe := h.payUntilRefused()
			if pe.Rule != tc.refusal && !strings.Contains(pe.Message, tc.refusal) {
				t.Fatalf("first run refused by %s (%s), want %s", pe.Rule, pe.Message, tc.refusal)
			}
			if h.signed.Cmp(ether(tc.firstRun)) != 0 {
				t.Fatalf("first run signed %s wei, want %d ETH", h.signed, tc.firstRun)
			}
			if r := h.last(); r.Checkpoint != g || r.Unacknowledged != uint64(tc.firstRun) {
				t.Fatalf("the last record names checkpoint %d with %d unacknowledged, want %d with %d", r.Checkpoint, r.Unacknowledged, g, tc.firstRun)
			}
			for restore := 1; restore <= 3; restore++ {
				boot := h.restart(g)
				if boot.Rule != "" || len(audit.RollbackRules(boot)) != 0 {
					t.Fatalf("restore %d: rule %q: the attack is not a detectable rollback", restore, boot.Rule)
				}
				if !strings.Contains(boot.Summary, "charged at their worst case") || boot.Unacknowledged != uint64(tc.firstRun) {
					t.Fatalf("restore %d: boot record carries %d unacknowledged:\n%s", restore, boot.Unacknowledged, boot.Summary)
				}
				h.payUntilRefused()
			}
			if h.signed.Cmp(ether(tc.firstRun)) != 0 {
				t.Fatalf("%s wei signed in the day after 3 restores of the same checkpoint, want the first run's %d ETH (no more than M = 3 ETH)", h.signed, tc.firstRun)
			}
		})
	}
}

// TestReplayBudgetHonestCrash: a restart with the newest acknowledged
// checkpoint after a crash. When the checkpoint holds every transaction of
// the log, nothing is charged and the run goes on spending what is left;
// when transactions came after it, each rolling limit is charged its whole
// max (no sound per-transaction bound, so P = M) until the window moves on:
// the documented cost of an honest crash. Once a checkpoint holding the
// charge is acknowledged, later records no longer carry the count.
func TestReplayBudgetHonestCrash(t *testing.T) {
	h := newBudgetHost(t, 2)
	wantSigned(t, h.pay(ether(1)))
	g := h.storeCheckpoint()
	boot := h.restart(g)
	if strings.Contains(boot.Summary, "charged") || boot.Unacknowledged != 0 || boot.Rule != "" {
		t.Fatalf("a restart with a checkpoint holding the whole log charged something (%d):\n%s", boot.Unacknowledged, boot.Summary)
	}
	for range 2 {
		wantSigned(t, h.pay(ether(1)))
		h.storeCheckpoint()
	}
	wantRule(t, h.pay(ether(1)), refusal.RuleRollingLimit)
	if h.signed.Cmp(ether(3)) != 0 {
		t.Fatalf("%s wei signed", h.signed)
	}

	// A crash after a transaction the newest checkpoint does not hold.
	h2 := newBudgetHost(t, 2)
	wantSigned(t, h2.pay(ether(1)))
	g = h2.storeCheckpoint()
	wantSigned(t, h2.pay(ether(1)))
	boot = h2.restart(g)
	if !strings.Contains(boot.Summary, "1 transaction(s) were reserved after the snapshot") || boot.Unacknowledged != 1 {
		t.Fatalf("boot record (%d unacknowledged):\n%s", boot.Unacknowledged, boot.Summary)
	}
	wantRule(t, h2.pay(ether(1)), refusal.RuleRollingLimit) // the charge fills the day
	g = h2.storeCheckpoint()                                // holds the charge
	if r := h2.pay(ether(1)); !isRule(r, refusal.RuleRollingLimit) {
		t.Fatalf("after the checkpoint holding the charge: %#v", r)
	}
	if r := h2.last(); r.Unacknowledged != 0 || r.Checkpoint != g {
		t.Fatalf("after the checkpoint holding the charge, records carry checkpoint %d with %d unacknowledged", r.Checkpoint, r.Unacknowledged)
	}
	// The charge survives a restart with that checkpoint.
	h2.restart(g)
	wantRule(t, h2.pay(ether(1)), refusal.RuleRollingLimit)
	if h2.signed.Cmp(ether(2)) != 0 {
		t.Fatalf("%s wei signed", h2.signed)
	}
}

func isRule(m proto.Message, rule string) bool {
	pe, ok := m.(*proto.Error)
	return ok && pe.Rule == rule
}
