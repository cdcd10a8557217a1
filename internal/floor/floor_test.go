package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/stamp"
)

// TestVerifyAndSign checks that the floor's enclave does the real work: it
// signs a body whose stamp verifies, and refuses a changed body, a changed
// stamp and a truncated payload.
func TestVerifyAndSign(t *testing.T) {
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"key":"hot-0","request_id":"r1"}`)
	st, err := stamp.Create(signer, body)
	if err != nil {
		t.Fatal(err)
	}
	payload := func(st string, body []byte) []byte {
		return append(append(binary.BigEndian.AppendUint16(nil, uint16(len(st))), st...), body...)
	}
	if _, ok := verifyAndSign(priv, payload(st, body)); !ok {
		t.Fatal("a valid stamp was refused")
	}
	other := bytes.Replace(body, []byte("r1"), []byte("r2"), 1)
	if _, ok := verifyAndSign(priv, payload(st, other)); ok {
		t.Error("a changed body was signed")
	}
	st2, _ := stamp.Create(signer, other)
	if _, ok := verifyAndSign(priv, payload(st2, body)); ok {
		t.Error("another body's stamp was accepted")
	}
	for _, p := range [][]byte{nil, {0}, {0xff, 0xff, 'a'}} {
		if _, ok := verifyAndSign(priv, p); ok {
			t.Errorf("payload %x was signed", p)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	f := appendFrame(nil, 42, []byte("ab"), []byte("c"))
	id, p, err := readFrame(bufio.NewReader(bytes.NewReader(f)), nil)
	if err != nil || id != 42 || string(p) != "abc" {
		t.Fatalf("got %d %q %v", id, p, err)
	}
	bad := binary.BigEndian.AppendUint32(nil, 4) // shorter than its id
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(append(bad, 0, 0, 0, 0, 0, 0, 0, 0))), nil); err == nil {
		t.Error("a frame shorter than its id was accepted")
	}
}
