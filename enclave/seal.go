package enclave

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The sealed seed is the only copy of the enclave's master seed outside
// the enclave. Its format (all integers big-endian):
//
//	magic    "nitrosign sealed seed\n" (22 bytes)
//	version  1 byte: 1
//	gen      4 bytes: the sealing generation, 1 for the first sealing, +1
//	         at every re-wrap
//	keylen   2 bytes, then the KMS key ARN the data key was made under
//	bloblen  2 bytes, then KMS's ciphertext blob of the data key
//	nonce    12 bytes
//	box      AES-256-GCM of the 32-byte seed under the data key: 48 bytes
//
// The additional data of the box is everything before the nonce, so the
// key id, the generation and KMS's blob cannot be changed or swapped
// without the box failing to open. KMS binds the data key to the
// encryption context {"nitrosign:purpose": "seed", "nitrosign:generation":
// GEN}, so a data key made for anything else does not decrypt as this
// one's.
const (
	sealMagic      = "nitrosign sealed seed\n"
	sealVersion    = 1
	sealNonceSize  = 12
	maxKMSBlobSize = 6144 // KMS's own limit on a ciphertext blob
	maxKeyIDSize   = 2048
	dataKeySize    = 32
)

// sealedSeed is a parsed sealed seed.
type sealedSeed struct {
	gen     uint32
	keyID   string
	kmsBlob []byte
	ad      []byte // everything before the nonce
	nonce   []byte
	box     []byte
}

// encryptionContext is the KMS encryption context of a seed's data key.
func encryptionContext(gen uint32) map[string]string {
	return map[string]string{
		"nitrosign:purpose":    "seed",
		"nitrosign:generation": strconv.FormatUint(uint64(gen), 10),
	}
}

// sealSeed seals seed under dataKey, KMS's blob of which is kmsBlob.
func sealSeed(rand io.Reader, gen uint32, keyID string, kmsBlob, dataKey, seed []byte) ([]byte, error) {
	if len(keyID) == 0 || len(keyID) > maxKeyIDSize || len(kmsBlob) == 0 || len(kmsBlob) > maxKMSBlobSize {
		return nil, errors.New("enclave: seal: key id or KMS blob out of range")
	}
	if len(dataKey) != dataKeySize || len(seed) != seedSize {
		return nil, errors.New("enclave: seal: wrong data key or seed size")
	}
	b := make([]byte, 0, len(sealMagic)+1+4+2+len(keyID)+2+len(kmsBlob)+sealNonceSize+seedSize+16)
	b = append(b, sealMagic...)
	b = append(b, sealVersion)
	b = binary.BigEndian.AppendUint32(b, gen)
	b = binary.BigEndian.AppendUint16(b, uint16(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(kmsBlob)))
	b = append(b, kmsBlob...)
	ad := len(b)
	nonce := make([]byte, sealNonceSize)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("enclave: seal: nonce: %w", err)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	b = append(b, nonce...)
	return aead.Seal(b, nonce, seed, b[:ad]), nil
}

// parseSealedSeed strictly parses a sealed seed, without opening it.
func parseSealedSeed(b []byte) (*sealedSeed, error) {
	bad := func(what string) (*sealedSeed, error) {
		return nil, fmt.Errorf("enclave: sealed seed: %s", what)
	}
	if len(b) < len(sealMagic) || string(b[:len(sealMagic)]) != sealMagic {
		return bad("not a nitrosign sealed seed (wrong magic)")
	}
	r := b[len(sealMagic):]
	if len(r) < 1 || r[0] != sealVersion {
		return bad("unknown format version")
	}
	r = r[1:]
	if len(r) < 4 {
		return bad("truncated")
	}
	s := &sealedSeed{gen: binary.BigEndian.Uint32(r)}
	if s.gen == 0 {
		return bad("generation 0")
	}
	r = r[4:]
	field := func(max int) ([]byte, bool) {
		if len(r) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(r))
		if n == 0 || n > max || len(r) < 2+n {
			return nil, false
		}
		f := r[2 : 2+n]
		r = r[2+n:]
		return f, true
	}
	id, ok := field(maxKeyIDSize)
	if !ok {
		return bad("bad key id field")
	}
	s.keyID = string(id)
	if s.kmsBlob, ok = field(maxKMSBlobSize); !ok {
		return bad("bad KMS blob field")
	}
	if len(r) != sealNonceSize+seedSize+16 {
		return bad(fmt.Sprintf("box of %d bytes, want %d", len(r), sealNonceSize+seedSize+16))
	}
	s.ad = b[:len(b)-len(r)]
	s.nonce = r[:sealNonceSize]
	s.box = r[sealNonceSize:]
	return s, nil
}

// open opens the box with the data key KMS returned.
func (s *sealedSeed) open(dataKey []byte) ([]byte, error) {
	if len(dataKey) != dataKeySize {
		return nil, fmt.Errorf("enclave: sealed seed: KMS returned a data key of %d bytes", len(dataKey))
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	seed, err := aead.Open(nil, s.nonce, s.box, s.ad)
	if err != nil {
		return nil, errors.New("enclave: sealed seed: the box does not open under the data key KMS returned (altered or swapped)")
	}
	return seed, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	return cipher.NewGCM(block)
}

// stateKey derives the key that seals the enclave's checkpoints from the
// seed: only this seed's enclave can make or open them, and no KMS call is
// needed for each.
func stateKey(seed []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, seed, nil, "nitrosign checkpoint key v1", 32)
}
