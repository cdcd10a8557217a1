package stamp

import (
	"crypto/sha512"
	"hash/maphash"
	"sync/atomic"

	"filippo.io/edwards25519"
)

// Ed25519 verification with decompressed keys kept between calls.
//
// crypto/ed25519.Verify decodes the public key on every call: a square root
// in the field, some 4 µs of the enclave's 100 or so per sign request. Client
// keys are few and long-lived, so verifyEd25519 keeps each key that has
// verified a signature in keyCache, already decoded and negated, and skips
// the decoding from then on. Everything else is crypto/ed25519's own
// verification (crypto/internal/fips140/ed25519, verifyWithDom for pure
// Ed25519), step by step, with filippo.io/edwards25519, the upstream of Go's
// internal copy of the same code: it accepts exactly what
// crypto/ed25519.Verify accepts, which the tests check against it (RFC 8032
// vectors, crafted edge cases, and a differential fuzz target).

// keyCacheSets is the number of two-entry sets of keyCache: room for every
// client a policy may register (policy's maxClients is 1024) with few
// collisions. A full cache costs 4096 words of slots and about 200 bytes per
// key held.
const keyCacheSets = 2048

// cachedKey is an Ed25519 public key with its point, negated as
// verification uses it. It is never modified once published in keyCache.
type cachedKey struct {
	enc  [ed25519KeySize]byte
	negA edwards25519.Point
}

// keyCache maps public key encodings to their cachedKey: a two-way set
// associative table of atomic pointers, so that lookups take no lock and a
// new key replaces at most one old one. Its hash is seeded at random per
// process, so whoever chooses keys cannot aim them at a client's set.
// Nothing in it affects an answer: a key that is not found is decoded, as
// crypto/ed25519 would decode it, so a flood of new keys only costs the
// clients it evicts one decoding each.
var keyCache struct {
	seed  maphash.Seed
	slots [2 * keyCacheSets]atomic.Pointer[cachedKey]
}

func init() { keyCache.seed = maphash.MakeSeed() }

// keySet returns the index of the first slot of enc's set in keyCache, and
// which of its two slots a new key replaces when both are taken.
func keySet(enc *[ed25519KeySize]byte) (first int, victim int) {
	h := maphash.Comparable(keyCache.seed, *enc)
	return int(h%keyCacheSets) * 2, int(h>>63) & 1
}

// lookupKey returns the cached key for enc, or nil.
func lookupKey(enc *[ed25519KeySize]byte) *cachedKey {
	i, _ := keySet(enc)
	for j := i; j < i+2; j++ {
		if k := keyCache.slots[j].Load(); k != nil && k.enc == *enc {
			return k
		}
	}
	return nil
}

// storeKey publishes k in keyCache: in an empty slot of its set if there
// is one, else in place of one of the two keys there.
func storeKey(k *cachedKey) {
	i, victim := keySet(&k.enc)
	for j := i; j < i+2; j++ {
		if keyCache.slots[j].CompareAndSwap(nil, k) {
			return
		}
	}
	keyCache.slots[i+victim].Store(k)
}

// verifyEd25519 reports whether sig is a valid Ed25519 signature (RFC 8032,
// pure Ed25519) of msg under the 32-byte public key pub, with the answer of
// crypto/ed25519.Verify for every pub, msg and sig. (For a pub of another
// length, on which crypto/ed25519.Verify panics, it returns false.)
//
// A key that verifies a signature, and that [CheckPublicKey] would accept,
// is kept decoded in keyCache for later calls. Keys are cached only then,
// so that a stream of made-up keys with made-up signatures costs no more
// than verifying them, and the cache holds only keys that clients may hold:
// a key is published only after it has proved itself.
func verifyEd25519(pub, msg, sig []byte) bool {
	if len(pub) != ed25519KeySize || len(sig) != ed25519SigSize {
		return false
	}
	enc := (*[ed25519KeySize]byte)(pub)
	key := lookupKey(enc)
	fresh := key == nil
	if fresh {
		// crypto/ed25519.NewPublicKey: SetBytes refuses an encoding that
		// is not a point on the curve, and accepts the same non-canonical
		// ones (y not reduced modulo p, and x zero with the sign bit set).
		key = &cachedKey{enc: *enc}
		if _, err := key.negA.SetBytes(pub); err != nil {
			return false
		}
		key.negA.Negate(&key.negA)
	}

	// The three most significant bits of S must be zero (S < 2^253), as in
	// crypto/ed25519, before S is checked to be fully reduced below.
	if sig[63]&224 != 0 {
		return false
	}

	// k = SHA-512(R || A || M), reduced modulo l.
	kh := sha512.New()
	kh.Write(sig[:32])
	kh.Write(pub)
	kh.Write(msg)
	var digest [sha512.Size]byte
	k, err := edwards25519.NewScalar().SetUniformBytes(kh.Sum(digest[:0]))
	if err != nil {
		panic("stamp: internal error: a SHA-512 digest is not 64 bytes")
	}

	// S must be the canonical encoding of a scalar below l, else the
	// signature is malleable (S + l verifies as well as S).
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}

	// [S]B = R + [k]A, checked as [k](-A) + [S]B = R on R's encoding.
	var R edwards25519.Point
	R.VarTimeDoubleScalarBaseMult(k, &key.negA, S)
	if [32]byte(R.Bytes()) != [32]byte(sig[:32]) {
		return false
	}

	if fresh && checkEd25519(pub) == nil {
		storeKey(key)
	}
	return true
}
