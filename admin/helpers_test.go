package admin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/stamp"
)

// Fixed test material, so that signatures (and the committed fuzz corpus)
// are deterministic: Ed25519 is deterministic, and the P-256 test signer
// uses RFC 6979 nonces.

var (
	testGenesis  = sha256.Sum256([]byte("nitrosign test genesis A"))
	otherGenesis = sha256.Sum256([]byte("nitrosign test genesis B"))
	testNow      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	testNB       = testNow.Add(-time.Hour).UnixMilli()
	testNA       = testNow.Add(time.Hour).UnixMilli()
)

// detP256 is a stamp.Signer for P-256 with deterministic (RFC 6979)
// signatures.
type detP256 struct {
	priv *ecdsa.PrivateKey
	pub  stamp.PublicKey
}

func (d *detP256) PublicKey() stamp.PublicKey { return d.pub }

func (d *detP256) SignBody(body []byte) ([]byte, error) {
	h := sha256.Sum256(body)
	return d.priv.Sign(nil, h[:], crypto.SHA256)
}

func newDetP256(t testing.TB, seed string) *detP256 {
	t.Helper()
	scalar := sha256.Sum256([]byte(seed))
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	return &detP256{priv: priv, pub: stamp.PublicKey{Scheme: stamp.P256, Key: compress(t, &priv.PublicKey)}}
}

func compress(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	u, err := pub.Bytes()
	if err != nil || len(u) != 65 {
		t.Fatalf("p256 public key: %v", err)
	}
	c := make([]byte, 33)
	c[0] = 0x02 | u[64]&1
	copy(c[1:], u[1:33])
	return c
}

func ed25519Priv(seed string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(s[:])
}

func newEd(t testing.TB, seed string) stamp.Signer {
	t.Helper()
	s, err := stamp.NewEd25519Signer(ed25519Priv(seed))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testSigners returns the signers of the test set and one outsider,
// mallory.
func testSigners(t testing.TB) map[string]stamp.Signer {
	return map[string]stamp.Signer{
		"alice":   newEd(t, "alice"),
		"bob":     newDetP256(t, "bob"),
		"carol":   newEd(t, "carol"),
		"mallory": newEd(t, "mallory"),
	}
}

func member(t testing.TB, name string, s stamp.Signer) Member {
	t.Helper()
	pub := s.PublicKey()
	return Member{Name: name, Scheme: pub.Scheme, PublicKey: hex.EncodeToString(pub.Key)}
}

// testConfig: alice (Ed25519), bob (P-256), carol (Ed25519); quorum 2;
// policy changes need 3.
func testConfig(t testing.TB) Config {
	s := testSigners(t)
	return Config{
		Members:    []Member{member(t, "alice", s["alice"]), member(t, "bob", s["bob"]), member(t, "carol", s["carol"])},
		Quorum:     2,
		Thresholds: map[Kind]int{KindPolicyChange: 3},
	}
}

func testSet(t testing.TB) *Set {
	t.Helper()
	set, err := NewSet(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// Bodies of valid commands of every kind.
var validBodies = map[Kind]string{
	KindKeyCreate:    `{"key_id":"hot-1","path":"m/44'/60'/0'/0/1"}`,
	KindKeyImport:    `{"key_id":"legacy-1","encrypted_key":"00ff10"}`,
	KindSealRotate:   `{"kms_key_id":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}`,
	KindPolicyChange: `{"version":2,"policy_hash":"` + hex.EncodeToString(make([]byte, 32)) + `","document":{"version":2,"clients":[]}}`,
	KindPolicyCancel: `{"version":2,"policy_hash":"` + hex.EncodeToString(make([]byte, 32)) + `"}`,
	KindUnfreeze:     `{"freeze_seq":1234}`,
	KindFreeze:       `{"key_id":"hot-0","reason":"suspected client compromise"}`,
}

// rawCommand writes a command with exactly the given field values.
func rawCommand(kind Kind, genesis [32]byte, nb, na int64, body string) []byte {
	return fmt.Appendf(nil, `{"kind":%q,"genesis_hash":"%x","not_before_ms":%d,"not_after_ms":%d,"body":%s}`, kind, genesis, nb, na, body)
}

func validCommand(kind Kind) []byte {
	return rawCommand(kind, testGenesis, testNB, testNA, validBodies[kind])
}

// sigHex signs cmd with the named test signer.
func sigHex(t testing.TB, signers map[string]stamp.Signer, name string, cmd []byte) string {
	t.Helper()
	d := sha256.Sum256(cmd)
	sig, err := SignDigest(signers[name], DomainCommand, d)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(sig)
}

type rawSig struct {
	Admin     string `json:"admin"`
	Signature string `json:"signature"`
}

// rawEnvelope writes an envelope with exactly these signatures, in order.
func rawEnvelope(t testing.TB, cmd []byte, sigs ...rawSig) []byte {
	t.Helper()
	if sigs == nil {
		sigs = []rawSig{}
	}
	b, err := json.Marshal(struct {
		Command    string   `json:"command"`
		Signatures []rawSig `json:"signatures"`
	}{string(cmd), sigs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedBy returns an envelope of cmd signed by the named test signers.
func signedBy(t testing.TB, cmd []byte, names ...string) []byte {
	t.Helper()
	signers := testSigners(t)
	var sigs []rawSig
	for _, n := range names {
		sigs = append(sigs, rawSig{n, sigHex(t, signers, n, cmd)})
	}
	return rawEnvelope(t, cmd, sigs...)
}

func mustDecode(t testing.TB, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseDER splits an ASN.1 DER ECDSA signature.
func parseDER(t testing.TB, sig []byte) (r, s *big.Int) {
	t.Helper()
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 {
		t.Fatalf("not DER: %x", sig)
	}
	return v.R, v.S
}

// highS returns the other valid P-256 signature (r, n-s) of a hex DER
// signature.
func highS(t testing.TB, sigHex string) string {
	t.Helper()
	r, s := parseDER(t, mustDecode(t, sigHex))
	s.Sub(elliptic.P256().Params().N, s)
	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(der)
}
