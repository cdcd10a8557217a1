package enclave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// batchLog returns an audit log whose polls close a batch at records
// records or after delay.
func batchLog(t *testing.T, records int, delay time.Duration) *auditLog {
	t.Helper()
	s, err := audit.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a := newAuditLog(s, 1000)
	a.batchRecords, a.batchDelay = records, delay
	return a
}

func appendDecision(t *testing.T, a *auditLog) uint64 {
	t.Helper()
	_, seq, err := a.append(audit.Record{TimeMS: 1, Kind: audit.KindDecision, Decision: "signed", Summary: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// poll is a host's poll from seq from, waiting up to waitMS; it returns the
// kinds of the records handed over.
func poll(t *testing.T, a *auditLog, from uint64, waitMS uint32) []string {
	t.Helper()
	resp, err := a.handle(context.Background(), &proto.AuditRequest{From: from, WaitMS: waitMS})
	if err != nil {
		t.Fatal(err)
	}
	kinds := make([]string, len(resp.Records))
	for i, line := range resp.Records {
		r, err := audit.Unmarshal(line)
		if err != nil {
			t.Fatal(err)
		}
		kinds[i] = r.Kind
	}
	return kinds
}

func pollAsync(t *testing.T, a *auditLog, from uint64, waitMS uint32) <-chan []string {
	got := make(chan []string, 1)
	go func() {
		resp, err := a.handle(context.Background(), &proto.AuditRequest{From: from, WaitMS: waitMS})
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		kinds := make([]string, len(resp.Records))
		for i, line := range resp.Records {
			r, _ := audit.Unmarshal(line)
			kinds[i] = r.Kind
		}
		got <- kinds
	}()
	return got
}

func wantKinds(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("handed over %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("handed over %v, want %v", got, want)
		}
	}
}

const (
	d  = audit.KindDecision
	th = audit.KindTreeHead
)

// inProgress notes a decision in progress on a until the test ends: a
// request that may still append a record, which polls wait for.
func inProgress(t *testing.T, a *auditLog) {
	a.beginDecision()
	t.Cleanup(a.endDecision)
}

// TestBatchClosesOnSize: while decisions are in progress, a poll that
// finds fewer than batchRecords records waiting for a tree head (and none
// older than the delay) waits, and closes the batch when the
// batchRecords-th arrives: one tree head for all of them.
func TestBatchClosesOnSize(t *testing.T) {
	a := batchLog(t, 4, time.Hour)
	inProgress(t, a)
	appendDecision(t, a)
	got := pollAsync(t, a, 1, proto.MaxAuditWaitMS)
	appendDecision(t, a)
	appendDecision(t, a)
	select {
	case k := <-got:
		t.Fatalf("the poll returned %v before the batch was full", k)
	case <-time.After(20 * time.Millisecond):
	}
	appendDecision(t, a)
	select {
	case k := <-got:
		wantKinds(t, k, d, d, d, d, th)
	case <-time.After(4 * time.Second):
		t.Fatal("the poll did not return once the batch was full")
	}
}

// TestBatchClosesOnDelay: a record waits for its tree head at most the
// delay, even while a decision is in progress (one that never ends), not
// for the host's whole wait; a poll that finds a record older than the
// delay closes its batch at once.
func TestBatchClosesOnDelay(t *testing.T) {
	a := batchLog(t, 1000, 10*time.Millisecond)
	inProgress(t, a)
	got := pollAsync(t, a, 1, proto.MaxAuditWaitMS)
	appendDecision(t, a)
	select {
	case k := <-got:
		wantKinds(t, k, d, th)
	case <-time.After(proto.MaxAuditWaitMS * time.Millisecond / 2):
		t.Fatal("the poll waited for the host's wait, not the batch delay")
	}
	appendDecision(t, a)
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	wantKinds(t, poll(t, a, 3, proto.MaxAuditWaitMS), d, th)
	if time.Since(start) > proto.MaxAuditWaitMS*time.Millisecond/2 {
		t.Fatal("a poll that found a batch past its delay waited")
	}
}

// TestBatchClosesWhenDecisionsEnd: a poll closes the batch as soon as no
// decision is in progress that could join it, long before its size or
// delay: it waits while one is (even once that one's record is appended,
// until it ends), and closes the batch when the last one ends; a poll
// that finds records and no decision in progress closes at once.
func TestBatchClosesWhenDecisionsEnd(t *testing.T) {
	a := batchLog(t, 1000, time.Hour)
	a.beginDecision() // request A
	a.beginDecision() // request B
	appendDecision(t, a)
	a.endDecision() // A is done; B may still append
	got := pollAsync(t, a, 1, proto.MaxAuditWaitMS)
	appendDecision(t, a) // B's record
	select {
	case k := <-got:
		t.Fatalf("the poll returned %v while a decision was in progress", k)
	case <-time.After(20 * time.Millisecond):
	}
	a.endDecision() // B is done: nobody can join the batch
	select {
	case k := <-got:
		wantKinds(t, k, d, d, th)
	case <-time.After(proto.MaxAuditWaitMS * time.Millisecond / 2):
		t.Fatal("the poll did not close the batch when the last decision in progress ended")
	}
	appendDecision(t, a) // a record with nothing in progress
	start := time.Now()
	wantKinds(t, poll(t, a, 4, proto.MaxAuditWaitMS), d, th)
	if time.Since(start) > proto.MaxAuditWaitMS*time.Millisecond/2 {
		t.Fatal("a poll that found records and no decision in progress waited")
	}
	if n := a.deciding.Load(); n != 0 {
		t.Fatalf("%d decisions in progress at the end, want 0", n)
	}
}

// TestBatchHostWait: a host that does not wait gets the batch closed at
// once (as before), and a poll whose wait ends before the batch is due
// closes it then.
func TestBatchHostWait(t *testing.T) {
	a := batchLog(t, 1000, time.Hour)
	inProgress(t, a)
	appendDecision(t, a)
	wantKinds(t, poll(t, a, 1, 0), d, th)
	appendDecision(t, a)
	wantKinds(t, poll(t, a, 3, 20), d, th)
	// Nothing waiting: the poll waits its time and hands over nothing.
	wantKinds(t, poll(t, a, 5, 20))
}

// TestBatchEventsDoNotWait: an event appended while a poll waits for a
// batch to fill is handed over at once, with the batch closed after it.
func TestBatchEventsDoNotWait(t *testing.T) {
	a := batchLog(t, 1000, time.Hour)
	inProgress(t, a)
	appendDecision(t, a)
	got := pollAsync(t, a, 1, proto.MaxAuditWaitMS)
	time.Sleep(10 * time.Millisecond)
	if _, _, err := a.appendEvent(audit.Record{TimeMS: 1, Kind: "freeze", Decision: "frozen", Summary: "test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-got:
		wantKinds(t, k, d, "freeze", th)
	case <-time.After(proto.MaxAuditWaitMS * time.Millisecond / 2):
		t.Fatal("the poll did not return with the event")
	}
}

// TestBatchReleaseWaitsForHead: a record handed over only with its tree
// head; acknowledging the decision alone (a host that knows its line)
// releases nothing, and the tail left is closed by the next poll.
func TestBatchReleaseWaitsForHead(t *testing.T) {
	a := batchLog(t, 2, time.Hour)
	seq := appendDecision(t, a)
	appendDecision(t, a)
	resp, err := a.handle(context.Background(), &proto.AuditRequest{From: 1, WaitMS: 10})
	if err != nil || len(resp.Records) != 3 {
		t.Fatalf("poll: %v, %d records", err, len(resp.Records))
	}
	h := sha256.Sum256(resp.Records[0])
	appendDecision(t, a) // record 4, in the open batch
	if _, err := a.handle(context.Background(), &proto.AuditRequest{Ack: seq, AckHash: h[:]}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := a.awaitAck(ctx, seq, time.Hour); err == nil {
		t.Fatal("a decision acknowledged without its tree head was released")
	}
	h = sha256.Sum256(resp.Records[2])
	if _, err := a.handle(context.Background(), &proto.AuditRequest{Ack: 3, AckHash: h[:]}); err != nil {
		t.Fatal(err)
	}
	if err := a.awaitAck(context.Background(), seq, time.Second); err != nil {
		t.Fatal(err)
	}
	if a.tail != 1 {
		t.Fatalf("tail %d after the acknowledgement, want record 4", a.tail)
	}
	wantKinds(t, poll(t, a, 4, 0), d, th)
}
