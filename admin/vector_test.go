package admin

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/stamp"
)

// The worked example of docs/governance.md, signed with the RFC 8032
// section 7.1 TEST 1 key. Keep the two in step.
const (
	vectorSeed     = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	vectorPub      = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	vectorGenesis  = "0000000000000000000000000000000000000000000000000000000000000001"
	vectorCommand  = `{"kind":"unfreeze","genesis_hash":"` + vectorGenesis + `","not_before_ms":1767225600000,"not_after_ms":1767312000000,"body":{"freeze_seq":42}}`
	vectorDigest   = "4760628b4f8403bd7759b7f8d54021a8d276fd06e8fe738ff76f42d3d5cd24f5"
	vectorMessage  = "6e6974726f7369676e2061646d696e20636f6d6d616e642076310a" + vectorDigest
	vectorSig      = "bffbd8c7b86d8c52071dc066a173249ef4e2fb6dad267c98c6fab99c05768c09857587caca7bd55a338f419c3d4fcc3e62d29bc90c30f989c4684742790f420b"
	vectorEnvelope = `{
  "command": "{\"kind\":\"unfreeze\",\"genesis_hash\":\"0000000000000000000000000000000000000000000000000000000000000001\",\"not_before_ms\":1767225600000,\"not_after_ms\":1767312000000,\"body\":{\"freeze_seq\":42}}",
  "signatures": [
    {
      "admin": "alice",
      "signature": "` + vectorSig + `"
    }
  ]
}
`
)

func TestDocVector(t *testing.T) {
	s, err := stamp.NewEd25519Signer(ed25519.NewKeyFromSeed(mustDecode(t, vectorSeed)))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(s.PublicKey().Key); got != vectorPub {
		t.Fatalf("public key %s, want %s", got, vectorPub)
	}
	d := sha256.Sum256([]byte(vectorCommand))
	if got := hex.EncodeToString(d[:]); got != vectorDigest {
		t.Errorf("digest %s, want %s", got, vectorDigest)
	}
	if got := hex.EncodeToString(message(DomainCommand, d)); got != vectorMessage {
		t.Errorf("message %s, want %s", got, vectorMessage)
	}
	sig, err := Sign(s, "alice", []byte(vectorCommand))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sig.Sig); got != vectorSig {
		t.Errorf("signature %s, want %s", got, vectorSig)
	}
	e, err := NewEnvelope([]byte(vectorCommand), sig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != vectorEnvelope {
		t.Errorf("envelope\n%s\nwant\n%s", b, vectorEnvelope)
	}
	set, err := ParseConfig([]byte(`{"members":[{"name":"alice","scheme":"ed25519","public_key":"` + vectorPub + `"}],"quorum":1}`))
	if err != nil {
		t.Fatal(err)
	}
	genesis := [32]byte(mustDecode(t, vectorGenesis))
	cmd, names, err := set.Verify([]byte(vectorEnvelope), time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), genesis)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := cmd.Unfreeze(); err != nil || u.FreezeSeq != 42 || !slices.Equal(names, []string{"alice"}) {
		t.Fatalf("%+v %v %v", u, names, err)
	}
}
