package stamp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

// Tests of verifyEd25519: that it answers exactly as crypto/ed25519.Verify
// does, whether the key is in keyCache or not.

// agree checks that verifyEd25519 and crypto/ed25519.Verify give the same
// answer for (pub, msg, sig), twice, so that a key the first call put in
// keyCache is checked from the cache as well, and returns the answer.
func agree(t testing.TB, pub, msg, sig []byte) bool {
	t.Helper()
	want := ed25519.Verify(pub, msg, sig)
	for i := range 2 {
		if got := verifyEd25519(pub, msg, sig); got != want {
			t.Fatalf("call %d: verifyEd25519 = %v, crypto/ed25519.Verify = %v\npub %x\nmsg %x\nsig %x", i+1, got, want, pub, msg, sig)
		}
	}
	return want
}

// rfc8032Vectors holds RFC 8032 §7.1 TEST 1, 2 and 3 (which are also the
// first three lines of testdata/ed25519/sign.input.gz): secret key, public
// key, message, signature.
var rfc8032Vectors = [][4]string{
	{
		"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
		"",
		"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	},
	{
		"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
		"72",
		"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
	},
	{
		"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
		"af82",
		"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
	},
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutations returns copies of sig with one bit flipped in each byte, the
// variations a verifier must refuse for a valid signature.
func mutations(b []byte) [][]byte {
	var out [][]byte
	for i := range b {
		m := bytes.Clone(b)
		m[i] ^= 1 << (i % 8)
		out = append(out, m)
	}
	return out
}

func TestVerifyEd25519RFC8032(t *testing.T) {
	for i, v := range rfc8032Vectors {
		seed, pub, msg, sig := mustHex(t, v[0]), mustHex(t, v[1]), mustHex(t, v[2]), mustHex(t, v[3])
		priv := ed25519.NewKeyFromSeed(seed)
		if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) || !bytes.Equal(ed25519.Sign(priv, msg), sig) {
			t.Fatalf("TEST %d: the vector does not match crypto/ed25519", i+1)
		}
		if !verifyEd25519(pub, msg, sig) {
			t.Errorf("TEST %d: verifyEd25519 refuses the RFC 8032 signature", i+1)
		}
		if !agree(t, pub, msg, sig) {
			t.Errorf("TEST %d: does not verify", i+1)
		}
		for _, m := range mutations(sig) {
			if agree(t, pub, msg, m) {
				t.Errorf("TEST %d: a mutated signature %x verifies", i+1, m)
			}
		}
		for _, m := range mutations(pub) {
			agree(t, m, msg, sig)
		}
		agree(t, pub, append(bytes.Clone(msg), 0), sig)
	}
}

// TestVerifyEd25519SignInput checks every vector of sign.input.gz, Go's
// selection of 128 of the test vectors of the Ed25519 reference
// implementation, which crypto/ed25519 tests itself with (copied from Go's
// src/crypto/ed25519/testdata), and a mutation of each.
func TestVerifyEd25519SignInput(t *testing.T) {
	f, err := os.Open("testdata/ed25519/sign.input.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		parts := strings.Split(sc.Text(), ":")
		if len(parts) != 5 {
			t.Fatalf("line %d: %d fields", n, len(parts))
		}
		pub, msg, sig := mustHex(t, parts[1]), mustHex(t, parts[2]), mustHex(t, parts[3])
		sig = sig[:ed25519.SignatureSize] // the signed message follows
		if !agree(t, pub, msg, sig) {
			t.Errorf("line %d: does not verify", n)
		}
		m := bytes.Clone(sig)
		m[n%64] ^= 0x10
		if agree(t, pub, msg, m) {
			t.Errorf("line %d: a mutated signature verifies", n)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 128 {
		t.Fatalf("read %d vectors, want the file's 128", n)
	}
}

// leBytes returns v as 32 little-endian bytes.
func leBytes(v *big.Int) []byte {
	b := v.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// edgeKeys returns public key encodings verification must handle: a real
// key, the eight points of small order with each sign bit, non-canonical
// encodings (y at or above p, x zero with the sign bit set), a real point
// plus a small-order one (mixed order), and encodings of no point.
func edgeKeys(t testing.TB, real []byte) map[string][]byte {
	keys := map[string][]byte{"real": real}
	for i, p := range torsion(t) {
		enc := p.encode()
		keys[fmt.Sprintf("small-order-%d", i)] = bytes.Clone(enc[:])
		enc[31] ^= 0x80
		keys[fmt.Sprintf("small-order-%d-other-sign", i)] = bytes.Clone(enc[:])
	}
	for name, y := range map[string]*big.Int{
		"y=p (0)":       new(big.Int).Set(edP),
		"y=p+1 (1)":     new(big.Int).Add(edP, big.NewInt(1)),
		"y=p+2 (2)":     new(big.Int).Add(edP, big.NewInt(2)),
		"y=p+3 (3)":     new(big.Int).Add(edP, big.NewInt(3)),
		"y=p+9 (9)":     new(big.Int).Add(edP, big.NewInt(9)),
		"y=2^255-1(18)": new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1)),
		"y=2":           big.NewInt(2),
		"y=3":           big.NewInt(3),
		"y=5":           big.NewInt(5),
	} {
		enc := leBytes(y)
		keys[name] = enc
		neg := bytes.Clone(enc)
		neg[31] |= 0x80
		keys[name+" sign"] = neg
	}
	// A real point with a point of order 8 added: not of small order,
	// so a client could hold it, and cofactorless verification treats it
	// differently from its prime-order part.
	var re [32]byte
	copy(re[:], real)
	a, ok := edDecode(re)
	if !ok {
		t.Fatal("the real key does not decode")
	}
	for _, p := range torsion(t) {
		if !p.mul(big.NewInt(4)).equal(edIdentity()) { // order 8
			enc := a.add(p).encode()
			keys["mixed-order"] = enc[:]
			break
		}
	}
	keys["all-zero"] = make([]byte, 32)
	keys["all-ff"] = bytes.Repeat([]byte{0xff}, 32)
	return keys
}

// edgeSigs returns signatures verification must handle, built on valid,
// a valid signature: S out of range in each way crypto/ed25519 checks (the
// top three bits, then S < l), R of small order or non-canonical, the
// forgery (R, S) = (small-order point, 0), and all-zero and all-ff bytes.
func edgeSigs(t testing.TB, valid []byte) map[string][]byte {
	sigs := map[string][]byte{"valid": valid}
	s := new(big.Int).SetBytes(reverse(valid[32:]))
	withS := func(v *big.Int) []byte {
		return append(bytes.Clone(valid[:32]), leBytes(v)...)
	}
	sigs["S plus l"] = withS(new(big.Int).Add(s, edL))
	sigs["S=l"] = withS(edL)
	sigs["S=l-1"] = withS(new(big.Int).Sub(edL, big.NewInt(1)))
	sigs["S=0"] = withS(big.NewInt(0))
	sigs["S=2^253-1"] = withS(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 253), big.NewInt(1)))
	for _, bit := range []byte{0x20, 0x40, 0x80} {
		m := bytes.Clone(valid)
		m[63] |= bit
		sigs[fmt.Sprintf("S|%#x<<248", bit)] = m
	}
	// R non-canonically encoded: y + p, where it fits in 255 bits.
	var rEnc [32]byte
	copy(rEnc[:], valid[:32])
	sign := rEnc[31] & 0x80
	rEnc[31] &= 0x7f
	y := new(big.Int).SetBytes(reverse(rEnc[:]))
	if yp := new(big.Int).Add(y, edP); yp.BitLen() <= 255 {
		enc := leBytes(yp)
		enc[31] |= sign
		sigs["R non-canonical"] = append(enc, valid[32:]...)
	}
	flipped := bytes.Clone(valid)
	flipped[31] ^= 0x80
	sigs["R other sign"] = flipped
	for i, p := range torsion(t) {
		enc := p.encode()
		sigs[fmt.Sprintf("R=small-order-%d,S=0", i)] = append(bytes.Clone(enc[:]), make([]byte, 32)...)
		sigs[fmt.Sprintf("R=small-order-%d,S", i)] = append(bytes.Clone(enc[:]), valid[32:]...)
		enc[31] ^= 0x80
		sigs[fmt.Sprintf("R=small-order-%d-other-sign,S=0", i)] = append(bytes.Clone(enc[:]), make([]byte, 32)...)
	}
	sigs["identity R non-canonical, S=0"] = append(leBytes(new(big.Int).Add(edP, big.NewInt(1))), make([]byte, 32)...)
	sigs["all-zero"] = make([]byte, 64)
	sigs["all-ff"] = bytes.Repeat([]byte{0xff}, 64)
	return sigs
}

func reverse(b []byte) []byte {
	r := bytes.Clone(b)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return r
}

// TestVerifyEd25519EdgeCases compares verifyEd25519 with
// crypto/ed25519.Verify on every pairing of crafted keys and signatures,
// over several messages, and checks that both accept what they should: the
// valid signature, and the known forgeries under small-order keys.
func TestVerifyEd25519EdgeCases(t *testing.T) {
	seed := sha256.Sum256([]byte("nitrosign stamp edge case key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	msgs := [][]byte{nil, {}, testBody, bytes.Repeat([]byte{0xa5}, 1000)}
	keys := edgeKeys(t, pub)
	accepted := map[string]bool{}
	for _, msg := range msgs {
		for sname, sig := range edgeSigs(t, ed25519.Sign(priv, msg)) {
			for kname, key := range keys {
				if agree(t, key, msg, sig) {
					accepted[kname+" / "+sname] = true
				}
			}
		}
	}
	if !accepted["real / valid"] {
		t.Error("the valid signature does not verify")
	}
	// Under the identity as key, (R, S) = (identity, 0) verifies for
	// every message: the forgery CheckPublicKey exists for.
	forgery := false
	for k := range accepted {
		forgery = forgery || strings.HasPrefix(k, "small-order-") && strings.Contains(k, ",S=0")
	}
	if !forgery {
		t.Error("no small-order forgery verifies: the cases do not reach what they should")
	}
	for k := range accepted {
		if strings.HasPrefix(k, "real / ") && k != "real / valid" {
			t.Errorf("accepted %s", k)
		}
	}
	t.Logf("%d of %d pairings verify", len(accepted), len(msgs)*len(keys)*len(edgeSigs(t, make([]byte, 64))))
}

// TestVerifyEd25519Lengths checks wrong lengths: a signature of any length
// but 64 bytes verifies under no key, as in crypto/ed25519; a key of any
// length but 32 bytes, on which crypto/ed25519.Verify panics (and which
// Verify never passes), verifies nothing.
func TestVerifyEd25519Lengths(t *testing.T) {
	seed := sha256.Sum256([]byte("nitrosign stamp length key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, testBody)
	for _, n := range []int{0, 1, 32, 63, 65, 128} {
		s := make([]byte, n)
		copy(s, sig)
		agree(t, pub, testBody, s)
	}
	agree(t, pub, testBody, append(bytes.Clone(sig), 0))
	for _, n := range []int{0, 31, 33, 64} {
		k := make([]byte, n)
		copy(k, pub)
		if verifyEd25519(k, testBody, sig) {
			t.Errorf("a %d-byte key verifies", n)
		}
	}
}

// TestKeyCache checks what keyCache holds: a key that verified a signature
// and may be registered, and nothing for a bad signature or for a
// small-order key, even when a forgery verifies under it.
func TestKeyCache(t *testing.T) {
	seed := sha256.Sum256([]byte("nitrosign stamp cache key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	enc := (*[32]byte)(pub)
	sig := ed25519.Sign(priv, testBody)

	bad := bytes.Clone(sig)
	bad[0] ^= 1
	if verifyEd25519(pub, testBody, bad) || lookupKey(enc) != nil {
		t.Fatal("a bad signature put its key in the cache")
	}
	if !verifyEd25519(pub, testBody, sig) {
		t.Fatal("does not verify")
	}
	k := lookupKey(enc)
	if k == nil {
		t.Fatal("a verified key is not in the cache")
	}
	if !verifyEd25519(pub, testBody, sig) || lookupKey(enc) != k {
		t.Fatal("the cached key was not used")
	}
	if verifyEd25519(pub, testBody, bad) {
		t.Fatal("a bad signature verifies with the cached key")
	}

	identity := mustHex(t, "0100000000000000000000000000000000000000000000000000000000000000")
	forged := append(bytes.Clone(identity), make([]byte, 32)...)
	if !agree(t, identity, testBody, forged) {
		t.Skip("crypto/ed25519 refuses the small-order forgery by itself")
	}
	if lookupKey((*[32]byte)(identity)) != nil {
		t.Fatal("a small-order key is in the cache")
	}
}

// TestKeyCacheEviction fills one set of keyCache beyond its two slots and
// checks that every key still verifies, from the cache or decoded again.
func TestKeyCacheEviction(t *testing.T) {
	type signed struct{ pub, sig []byte }
	var set []signed
	want := -1
	for i := 0; len(set) < 4; i++ {
		seed := sha256.Sum256(fmt.Appendf(nil, "nitrosign eviction key %d", i))
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		s, _ := keySet((*[32]byte)(pub))
		if want < 0 {
			want = s
		}
		if s == want {
			set = append(set, signed{pub, ed25519.Sign(priv, testBody)})
		}
		if i > 1<<16 {
			t.Fatal("no four keys share a set")
		}
	}
	saved := [2]*cachedKey{keyCache.slots[want].Load(), keyCache.slots[want+1].Load()}
	defer func() {
		keyCache.slots[want].Store(saved[0])
		keyCache.slots[want+1].Store(saved[1])
	}()
	keyCache.slots[want].Store(nil)
	keyCache.slots[want+1].Store(nil)
	for round := range 3 {
		for i, k := range set {
			if !verifyEd25519(k.pub, testBody, k.sig) {
				t.Fatalf("round %d: key %d does not verify", round, i)
			}
			if lookupKey((*[32]byte)(k.pub)) == nil {
				t.Fatalf("round %d: key %d is not in the cache just after it verified", round, i)
			}
		}
	}
	held := 0
	for _, k := range set {
		if lookupKey((*[32]byte)(k.pub)) != nil {
			held++
		}
	}
	if held > 2 {
		t.Fatalf("a set of two slots holds %d keys", held)
	}
}

// FuzzVerifyEd25519 compares verifyEd25519 with crypto/ed25519.Verify on
// real signatures, mutated: keyXor and sigXor are XORed into the public
// key and the signature (bytes past their length are appended, making a
// signature of the wrong length; a key keeps its 32 bytes), and the
// signature is checked over verifyMsg when it is not empty, else over msg.
func FuzzVerifyEd25519(f *testing.F) {
	for name, s := range ed25519FuzzSeeds(f) {
		f.Add(s.keySeed, s.msg, s.verifyMsg, s.keyXor, s.sigXor)
		if *update {
			fuzzseed.Write(f, "FuzzVerifyEd25519", name, s.keySeed, s.msg, s.verifyMsg, s.keyXor, s.sigXor)
		}
	}
	f.Fuzz(func(t *testing.T, keySeed, msg, verifyMsg, keyXor, sigXor []byte) {
		if len(msg) > 4096 || len(verifyMsg) > 4096 || len(keyXor) > 32 || len(sigXor) > 128 {
			return
		}
		seed := sha256.Sum256(keySeed)
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := bytes.Clone(priv.Public().(ed25519.PublicKey))
		sig := ed25519.Sign(priv, msg)
		for i, b := range keyXor {
			pub[i] ^= b
		}
		for i, b := range sigXor {
			if i < len(sig) {
				sig[i] ^= b
			} else {
				sig = append(sig, b)
			}
		}
		if len(verifyMsg) > 0 {
			msg = verifyMsg
		}
		ok := agree(t, pub, msg, sig)
		unmutated := len(verifyMsg) == 0 && len(sigXor) <= ed25519.SignatureSize &&
			bytes.Count(keyXor, []byte{0}) == len(keyXor) && bytes.Count(sigXor, []byte{0}) == len(sigXor)
		if !ok && unmutated {
			t.Fatal("an unmutated signature does not verify")
		}
	})
}

type ed25519FuzzSeed struct{ keySeed, msg, verifyMsg, keyXor, sigXor []byte }

// ed25519FuzzSeeds returns FuzzVerifyEd25519's seeds: the edge cases of
// TestVerifyEd25519EdgeCases as XOR masks over one key's signature of
// testBody.
func ed25519FuzzSeeds(f *testing.F) map[string]ed25519FuzzSeed {
	keySeed := []byte("fuzz key")
	seed := sha256.Sum256(keySeed)
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, testBody)
	xor := func(a, b []byte) []byte {
		out := bytes.Clone(b)
		for i := range min(len(a), len(b)) {
			out[i] ^= a[i]
		}
		return out
	}
	seeds := map[string]ed25519FuzzSeed{
		"valid":         {keySeed, testBody, nil, nil, nil},
		"empty message": {keySeed, nil, nil, nil, nil},
		"other message": {keySeed, testBody, []byte("other"), nil, nil},
		"long sig":      {keySeed, testBody, nil, nil, make([]byte, 65)},
	}
	for name, k := range edgeKeys(f, pub) {
		seeds["key "+name] = ed25519FuzzSeed{keySeed, testBody, nil, xor(pub, k), nil}
	}
	for name, s := range edgeSigs(f, sig) {
		seeds["sig "+name] = ed25519FuzzSeed{keySeed, testBody, nil, nil, xor(sig, s)}
	}
	seeds["identity key forgery"] = ed25519FuzzSeed{keySeed, testBody, nil,
		xor(pub, mustHex(f, "0100000000000000000000000000000000000000000000000000000000000000")),
		xor(sig, append(mustHex(f, "0100000000000000000000000000000000000000000000000000000000000000"), make([]byte, 32)...))}
	return seeds
}
