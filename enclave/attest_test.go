package enclave_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hf/nitrite"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
)

func TestAttest(t *testing.T) {
	hot, _ := stamp.GenerateSigner(stamp.Ed25519)
	other, _ := stamp.GenerateSigner(stamp.P256)
	sim, err := nsmsim.New(nsmsim.Options{Image: nsmsim.MeasureBytes([]byte("binary"), []byte("genesis"))})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	e, err := enclave.New(enclave.Config{Genesis: genesisJSON(t, hot.PublicKey(), other.PublicKey()), NSM: sim})
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("a fresh nonce from the verifier")
	resp, ok := e.Handle(context.Background(), &proto.AttestRequest{Nonce: nonce}).(*proto.AttestResponse)
	if !ok {
		t.Fatal("no attestation document")
	}
	res, err := nitrite.Verify(resp.Document, nitrite.VerifyOptions{Roots: sim.Roots(), CurrentTime: time.Now()})
	if err != nil {
		t.Fatalf("the document does not verify: %v", err)
	}
	d := res.Document
	if !bytes.Equal(d.Nonce, nonce) || len(d.PublicKey) != 32 {
		t.Errorf("nonce %q, public key %d bytes", d.Nonce, len(d.PublicKey))
	}
	pcrs := sim.PCRs()
	if !bytes.Equal(d.PCRs[0], pcrs[0][:]) {
		t.Error("PCR0 is not the simulator's measurement")
	}
	ud, err := userdata.Parse(d.UserData)
	if err != nil {
		t.Fatal(err)
	}
	want := e.UserData()
	if ud.KeysHash != want.KeysHash || ud.KeyCount != 2 || ud.PolicyHash != want.PolicyHash || ud.PolicyVersion != 7 || ud.Version != enclave.Version {
		t.Errorf("user data %+v, want %+v", ud, want)
	}
	// The keys hash is what a verifier recomputes from the keys answer.
	kr := e.Handle(context.Background(), &proto.KeysRequest{}).(*proto.KeysResponse)
	var ks []userdata.Key
	for _, k := range kr.Keys {
		ks = append(ks, userdata.Key{ID: k.ID, Address: k.Address, Path: k.Path})
	}
	if userdata.KeysHash(ks) != ud.KeysHash {
		t.Error("keys hash does not match the keys the enclave lists")
	}
}

func TestAttestWithoutNSM(t *testing.T) {
	f := newFixture(t)
	if e, ok := f.e.Handle(context.Background(), &proto.AttestRequest{}).(*proto.Error); !ok || e.Code != refusal.CodeUnavailable {
		t.Fatalf("attest without an NSM: %+v", e)
	}
}
