package enclave_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

// A request signed before the enclave's clock jumped a day ahead (which
// lets the replay guard forget it) and was set back is refused as stale
// when replayed, not signed again; a new request stamped after the guard's
// horizon is signed.
func TestReplayAfterClockSetBack(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hot, _ := stamp.NewEd25519Signer(edPriv)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := stamp.NewP256Signer(p256)
	start := time.UnixMilli(1_800_000_000_000)
	var clock atomic.Pointer[time.Time]
	clock.Store(&start)
	e, err := enclave.New(enclave.Config{
		Genesis:          genesisJSON(t, hot.PublicKey(), other.PublicKey()),
		Now:              func() time.Time { return *clock.Load() },
		MaxReplayEntries: 1000, // one shard: the jump ahead reaches the first request's entry
	})
	if err != nil {
		t.Fatal(err)
	}
	startAcks(t, e)
	f := &fixture{e: e, now: start, hot: hot}
	signed := func(resp proto.Message) bool { _, ok := resp.(*proto.SignResponse); return ok }

	first := f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), start.UnixMilli())
	if resp := f.send(t, hot, first); !signed(resp) {
		t.Fatalf("first request: %+v", resp)
	}
	ahead := start.Add(24 * time.Hour)
	clock.Store(&ahead)
	if resp := f.send(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), ahead.UnixMilli())); !signed(resp) {
		t.Fatalf("request a day ahead: %+v", resp)
	}
	back := start.Add(time.Second)
	clock.Store(&back)
	resp := f.send(t, hot, first)
	if pe, ok := resp.(*proto.Error); !ok || pe.Code != refusal.CodeStaleRequest {
		t.Fatalf("replay after the clock was set back: %+v, want stale_request", resp)
	}
	// Back to a minute after the day ahead: a new request is judged as usual.
	later := ahead.Add(time.Minute)
	clock.Store(&later)
	if resp := f.send(t, hot, f.body(t, "hot-0", transfer(t, 1, destA, big.NewInt(1)), later.UnixMilli())); !signed(resp) {
		t.Fatalf("new request once the clock caught up: %+v", resp)
	}
}
