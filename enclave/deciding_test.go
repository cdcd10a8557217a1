package enclave_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
)

// TestDecisionsInProgress: the requests that may append a decision record
// (sign, approve) count as in progress, which a poll waits for before it
// closes the open batch, until their handler returns: a signature waiting
// for its acknowledgement no longer counts (else its batch would wait for
// itself until the delay), nor does a refused request.
func TestDecisionsInProgress(t *testing.T) {
	for typ := proto.Type(0); typ < 256; typ++ {
		want := typ == proto.TypeSignRequest || typ == proto.TypeApprovalRequest
		if got := enclave.Decides(typ); got != want {
			t.Errorf("request type %v counts as a decision: %v, want %v", typ, got, want)
		}
	}
	f := manualFixture(t, 0, time.Minute)
	answer := f.sendAsync(t, f.hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), f.now.UnixMilli()))
	waitRecords(t, f.e, 2)
	deadline := time.Now().Add(10 * time.Second)
	for enclave.DecisionsInProgress(f.e) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d decisions in progress while the signature waits for its acknowledgement, want 0", enclave.DecisionsInProgress(f.e))
		}
		time.Sleep(time.Millisecond)
	}
	st := fetch(t, f.e, 1)
	ack(t, f.e, st.Records[len(st.Records)-1])
	if _, ok := (<-answer).(*proto.SignResponse); !ok {
		t.Fatal("no signature after the acknowledgement")
	}
	f.send(t, f.hot, []byte("not a request")) // refused before any decision
	if n := enclave.DecisionsInProgress(f.e); n != 0 {
		t.Fatalf("%d decisions in progress after a refused request, want 0", n)
	}
}
