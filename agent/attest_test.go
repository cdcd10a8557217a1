package agent

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

// TestKeyCreatedSince: a request for an address the last attestation did
// not list attests again, once, before it is refused; and not more often
// than minOnDemandAttest.
func TestKeyCreatedSince(t *testing.T) {
	h := newFakeHost(t)
	a := newFakeAgent(t, h, nil)
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	newAddr := h.addKey(k)
	msg := "0x" + hex.EncodeToString([]byte("hi"))

	// Within minOnDemandAttest of the last attestation: refused.
	if _, jerr := call(t, a, "personal_sign", msg, newAddr.Hex()); jerr == nil || jerr.Code != jsonrpc.CodeInvalidParams {
		t.Fatalf("right after an attestation: %v", jerr)
	}
	// Later: attested again, and signed.
	a.mu.Lock()
	a.lastAttempt = time.Now().Add(-2 * minOnDemandAttest)
	a.mu.Unlock()
	if _, jerr := call(t, a, "personal_sign", msg, newAddr.Hex()); jerr != nil {
		t.Fatalf("after a new attestation: %v", jerr)
	}
	accts, err := a.Accounts(context.Background())
	if err != nil || len(accts) != 2 || accts[1] != newAddr {
		t.Fatalf("accounts %v, %v", accts, err)
	}
	// An address that is still unknown is refused after one attestation.
	a.mu.Lock()
	a.lastAttempt = time.Now().Add(-2 * minOnDemandAttest)
	a.mu.Unlock()
	if _, jerr := call(t, a, "personal_sign", msg, "0x1111111111111111111111111111111111111111"); jerr == nil || jerr.Code != jsonrpc.CodeInvalidParams {
		t.Fatalf("unknown: %v", jerr)
	}
}

// TestReattestLoop: the background loop attests again every Reattest, and
// a failure is retried until it succeeds.
func TestReattestLoop(t *testing.T) {
	h := newFakeHost(t)
	a := newFakeAgent(t, h, func(c *Config) { c.Reattest = time.Millisecond })
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	newAddr := h.addKey(k)
	// The loop picks the new key up without a request for it.
	for {
		accts, err := a.Accounts(context.Background())
		if err == nil && len(accts) == 2 && accts[1] == newAddr {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
