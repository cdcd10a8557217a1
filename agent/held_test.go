package agent

import (
	"fmt"
	"math/big"
	"testing"
	"time"
)

// TestForgottenApprovalEnds: an approval the agent forgets (expired, or
// the oldest when it keeps maxPending) is reported to the proxy, which
// releases the nonce a send held for it.
func TestForgottenApprovalEnds(t *testing.T) {
	fp := &fakeProxy{chainID: big.NewInt(1)}
	a := newFakeAgent(t, newFakeHost(t), func(c *Config) { c.Proxy = fp })
	now := time.Now()
	a.remember("expired", &pendingRequest{expires: now.Add(-time.Second)})
	a.remember("live", &pendingRequest{expires: now.Add(time.Hour)})
	fp.mu.Lock()
	ended := append([]string(nil), fp.ended...)
	fp.mu.Unlock()
	if len(ended) != 1 || ended[0] != "expired" {
		t.Fatalf("ended %v, want [expired]", ended)
	}
	for i := range maxPending {
		a.remember(fmt.Sprint("later-", i), &pendingRequest{expires: now.Add(2 * time.Hour)})
	}
	fp.mu.Lock()
	ended = append([]string(nil), fp.ended...)
	fp.mu.Unlock()
	if len(ended) != 2 || ended[1] != "live" {
		t.Fatalf("ended %v, want the oldest (live) dropped at %d", ended, maxPending)
	}
}
