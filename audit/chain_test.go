package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	xhkdf "golang.org/x/crypto/hkdf"
)

// goldenPub is the audit public key for the master seed 32 bytes of 0x01,
// and goldenSig the signature of goldenRecord under it (docs/audit.md).
const (
	goldenPub = "f8ed249632b4de5a44a2502a7df8bd94ec969ab68405d7e037fd7dc161a98fc2"
	goldenSig = "9c101daa22031bce199f6d6807d06facd8fff11913150193bfc6caba8bf0bae8e786709f27b558d8512712185b13dee7b63ffc19424e3fda20eefd2817d2060a"
)

func TestNewSignerDerivation(t *testing.T) {
	seed := testSeed(1)
	s, err := NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	// Cross-check with x/crypto's HKDF: salt empty, info KeyInfo.
	k := make([]byte, 32)
	if _, err := io.ReadFull(xhkdf.New(sha256.New, seed, nil, []byte(KeyInfo)), k); err != nil {
		t.Fatal(err)
	}
	want := ed25519.NewKeyFromSeed(k).Public().(ed25519.PublicKey)
	if !bytes.Equal(s.PublicKey(), want) {
		t.Fatalf("public key %x, want %x", s.PublicKey(), want)
	}
	if got := hex.EncodeToString(s.PublicKey()); got != goldenPub {
		t.Errorf("public key for seed 01…01 is %s, want %s", got, goldenPub)
	}
	if !bytes.Equal(seed, testSeed(1)) {
		t.Fatal("NewSigner modified the seed")
	}

	again, _ := NewSigner(testSeed(1))
	if !bytes.Equal(again.PublicKey(), s.PublicKey()) {
		t.Fatal("same seed, different audit keys")
	}
	other, _ := NewSigner(testSeed(2))
	if bytes.Equal(other.PublicKey(), s.PublicKey()) {
		t.Fatal("different seeds, same audit key")
	}
	// The audit key is not the key a seed gives directly.
	if bytes.Equal(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), s.PublicKey()) {
		t.Fatal("the audit key is the raw seed's key")
	}
	longer, err := NewSigner(append(testSeed(1), 0))
	if err != nil || bytes.Equal(longer.PublicKey(), s.PublicKey()) {
		t.Fatalf("a longer seed: %v", err)
	}
	for _, n := range []int{0, 16, 31} {
		if _, err := NewSigner(make([]byte, n)); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
			t.Errorf("seed of %d bytes: %v", n, err)
		}
	}
}

func TestGoldenSignature(t *testing.T) {
	s := testSigner(t, 1)
	r := goldenRecord
	if err := signRecord(s, &r); err != nil {
		t.Fatal(err)
	}
	line, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	msg := SignaturePrefix + strings.Replace(goldenLine, `,"sig":""`, "", 1)
	if !ed25519.Verify(s.PublicKey(), []byte(msg), r.Sig) {
		t.Fatal("the signature is not over the documented message")
	}
	if got := hex.EncodeToString(r.Sig); got != goldenSig {
		t.Errorf("signature %s, want %s", got, goldenSig)
	}
	if _, err := VerifyRecord(line, s.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if h := r.Hash(); hex.EncodeToString(h[:]) != "dd44a3f4e65c12df76426727691d03d9b4ff178918cc5e501b2e31058d7b1004" {
		t.Errorf("signed record hash %x", h)
	}
}

func TestSignerRedacted(t *testing.T) {
	s := testSigner(t, 1)
	secret := [][]byte{s.priv.Seed(), s.priv}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("signer", "s", s)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("signer", "s", s)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprintf("%v", []any{s, struct{ S *Signer }{s}}), logged.String(),
	} {
		for _, k := range secret {
			for _, enc := range []string{hex.EncodeToString(k), fmt.Sprint(k), fmt.Sprintf("%x", k)} {
				if strings.Contains(out, enc) {
					t.Fatalf("private key in %q", out)
				}
			}
		}
	}
	if !strings.Contains(s.String(), hex.EncodeToString(s.PublicKey())) {
		t.Errorf("String %q does not show the public key", s)
	}
}

func TestSignerDestroy(t *testing.T) {
	s := testSigner(t, 1)
	priv := s.priv
	c := newLegacyChain(s, Head{})
	if _, _, err := c.Append(Record{Kind: KindGenesis, Decision: "created"}, true); err != nil {
		t.Fatal(err)
	}
	s.Destroy()
	if !bytes.Equal(priv, make([]byte, len(priv))) {
		t.Fatal("Destroy left the private key in memory")
	}
	head := c.Head()
	if _, _, err := c.Append(Record{Kind: KindBoot, Decision: "booted"}, true); err == nil || !strings.Contains(err.Error(), "destroyed") {
		t.Fatalf("Append after Destroy: %v", err)
	}
	if c.Head() != head {
		t.Fatal("a failed Append moved the head")
	}
	s.Destroy() // twice is fine
}

func TestChainAppend(t *testing.T) {
	s := testSigner(t, 1)
	c := newLegacyChain(s, Head{})
	r, line, err := c.Append(Record{Seq: 99, Prev: [32]byte{1}, Sig: []byte{1}, Kind: KindGenesis, Decision: "created"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || r.Prev != ([32]byte{}) || !r.Signed() {
		t.Fatalf("genesis: seq %d prev %x signed %v (events are always signed)", r.Seq, r.Prev, r.Signed())
	}
	if c.Head() != (Head{Seq: 1, Hash: sha256.Sum256(line)}) {
		t.Fatal("head is not the hash of the line")
	}
	// Decisions are signed when asked, and after MaxUnsigned unsigned ones.
	var signed []uint64
	for i := 0; i < 2*MaxUnsigned+10; i++ {
		r, _, err := c.Append(sampleDecision(i), i == 3)
		if err != nil {
			t.Fatal(err)
		}
		if r.Signed() {
			signed = append(signed, r.Seq)
		}
	}
	want := []uint64{5, 5 + MaxUnsigned + 1, 5 + 2*(MaxUnsigned+1)}
	if fmt.Sprint(signed) != fmt.Sprint(want) {
		t.Fatalf("signed records %v, want %v", signed, want)
	}
	// The caller's slices are copied.
	approvers := []string{"a"}
	r, _, err = c.Append(Record{Kind: KindDecision, Decision: DecisionApproved, Approvers: approvers}, true)
	if err != nil {
		t.Fatal(err)
	}
	approvers[0] = "b"
	if r.Approvers[0] != "a" {
		t.Fatal("Append kept the caller's slice")
	}
	// A refused record leaves the head alone.
	head := c.Head()
	if _, _, err := c.Append(Record{Kind: "Bad Kind"}, true); err == nil {
		t.Fatal("bad kind accepted")
	}
	if c.Head() != head {
		t.Fatal("a refused record moved the head")
	}
}

func TestChainRestore(t *testing.T) {
	s := testSigner(t, 1)
	l := newTestLog(t, s, 5, allSigned)
	head := l.chain.Head()
	// A restarted enclave continues from the sealed head with a boot record.
	c := newLegacyChain(testSigner(t, 1), head)
	r, line, err := c.Append(Record{TimeMS: 1, Kind: KindBoot, Decision: "booted", Summary: "continues from " + head.String()}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != head.Seq+1 || r.Prev != head.Hash || !r.Signed() {
		t.Fatalf("boot record seq %d prev %x", r.Seq, r.Prev)
	}
	rep, err := Verify(bytes.NewReader(append(l.bytes(), append(line, '\n')...)), s.PublicKey(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Head != c.Head() || rep.Records != 6 {
		t.Fatalf("report %+v", rep)
	}
	full := newLegacyChain(s, Head{Seq: MaxSafeInteger, Hash: [32]byte{1}})
	if _, _, err := full.Append(Record{Kind: KindBoot}, true); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("append to a full log: %v", err)
	}
}

func TestVerifyRecord(t *testing.T) {
	s := testSigner(t, 1)
	l := newTestLog(t, s, 4, func(seq uint64) bool { return seq != 3 })
	for i, line := range l.lines {
		r, err := VerifyRecord(line, s.PublicKey())
		if i == 2 {
			if err == nil || !strings.Contains(err.Error(), "unsigned") {
				t.Fatalf("unsigned record: %v", err)
			}
			continue
		}
		if err != nil || r.Seq != uint64(i+1) {
			t.Fatalf("record %d: %v", i+1, err)
		}
	}
	if _, err := VerifyRecord(l.lines[0], testSigner(t, 2).PublicKey()); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("other key: %v", err)
	}
	if _, err := VerifyRecord(l.lines[0], nil); err == nil {
		t.Fatal("nil key accepted")
	}
	edited := bytes.Replace(l.lines[1], []byte(`"hot-0"`), []byte(`"hot-1"`), 1)
	if _, err := VerifyRecord(edited, s.PublicKey()); err == nil {
		t.Fatal("edited record accepted")
	}
	if _, err := VerifyRecord([]byte("{}"), s.PublicKey()); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestParseHead(t *testing.T) {
	h := Head{Seq: 42, Hash: sha256.Sum256([]byte("x"))}
	got, err := ParseHead(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseHead(%s) = %v, %v", h, got, err)
	}
	if got, err := ParseHead(Head{}.String()); err != nil || got != (Head{}) {
		t.Fatalf("empty head: %v %v", got, err)
	}
	for _, bad := range []string{
		"", "42", ":" + hex.EncodeToString(h.Hash[:]), "042:" + hex.EncodeToString(h.Hash[:]),
		"42:" + strings.ToUpper(hex.EncodeToString(h.Hash[:])), "42:abc", "42:" + hex.EncodeToString(h.Hash[:]) + "00",
		"-1:" + hex.EncodeToString(h.Hash[:]), "0:" + hex.EncodeToString(h.Hash[:]), "9007199254740992:" + hex.EncodeToString(h.Hash[:]),
	} {
		if _, err := ParseHead(bad); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
			t.Errorf("ParseHead(%q): %v", bad, err)
		}
	}
}
