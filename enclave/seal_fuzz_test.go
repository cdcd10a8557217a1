package enclave

import (
	"bytes"
	"flag"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/policy/stateful"
)

var updateSealCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora of FuzzParseSealedSeed and FuzzOpenCheckpoint")

func sealedSeedSeeds(t testing.TB) map[string][]byte {
	dk := bytes.Repeat([]byte{7}, 32)
	seed := bytes.Repeat([]byte{9}, 32)
	good, err := sealSeed(bytes.NewReader(make([]byte, 64)), 1, "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555", []byte("kms ciphertext blob"), dk, seed)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"valid":             good,
		"truncated":         good[:len(good)-1],
		"extended":          append(bytes.Clone(good), 0),
		"magic_only":        []byte(sealMagic),
		"version_2":         append([]byte(sealMagic), 2),
		"generation_0":      append([]byte(sealMagic), 1, 0, 0, 0, 0),
		"zero_key_len":      append([]byte(sealMagic), 1, 0, 0, 0, 1, 0, 0),
		"huge_key_len":      append([]byte(sealMagic), 1, 0, 0, 0, 1, 0xff, 0xff),
		"empty":             {},
		"not_a_blob_at_all": []byte("hello"),
	}
}

func checkpointSeeds(t testing.TB) map[string][]byte {
	key := bytes.Repeat([]byte{3}, 32)
	good, err := sealCheckpoint(bytes.NewReader(make([]byte, 64)), key, &checkpoint{Generation: 4, TimeMS: 5, AuditSeq: 6, Keys: []checkpointKey{{ID: "k", Path: "m/0"}}, Limits: []byte{1, 2}, Frozen: []stateful.FreezeInfo{{Key: "k", Seq: 3}},
		AppendedSeq: 8, AppendedHash: [32]byte{8}, SealGen: 2})
	if err != nil {
		t.Fatal(err)
	}
	v1 := bytes.Clone(good)
	v1[len(checkpointMagic)] = 1
	return map[string][]byte{
		"valid":      good,
		"version_1":  v1,
		"truncated":  good[:len(good)-1],
		"flipped":    append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1),
		"magic_only": []byte(checkpointMagic),
		"empty":      {},
	}
}

// FuzzParseSealedSeed: the sealed seed comes from the host. Parsing never
// panics, and a blob that parses re-seals to itself (strict: one encoding).
func FuzzParseSealedSeed(f *testing.F) {
	for _, s := range sealedSeedSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSealedSeed(b)
		if err != nil {
			return
		}
		if len(s.box) != seedSize+16 || len(s.nonce) != sealNonceSize || s.gen == 0 || s.keyID == "" || len(s.kmsBlob) == 0 {
			t.Fatalf("parsed a malformed blob: %+v", s)
		}
		if !bytes.Equal(append(append(bytes.Clone(s.ad), s.nonce...), s.box...), b) {
			t.Fatal("the parts do not make up the blob")
		}
		if _, err := s.open(bytes.Repeat([]byte{7}, 32)); err == nil && !bytes.Equal(b, sealedSeedSeeds(t)["valid"]) {
			t.Fatal("a blob other than the valid seed opened")
		}
	})
}

// FuzzOpenCheckpoint: checkpoints come from the host; only one sealed by
// the key opens, and nothing panics.
func FuzzOpenCheckpoint(f *testing.F) {
	for _, s := range checkpointSeeds(f) {
		f.Add(s)
	}
	key := bytes.Repeat([]byte{3}, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := openCheckpoint(key, b)
		if err != nil {
			return
		}
		if !bytes.Equal(b, checkpointSeeds(t)["valid"]) {
			t.Fatal("a checkpoint not sealed by the key opened")
		}
		if c.Generation != 4 {
			t.Fatalf("opened %+v", c)
		}
	})
}

// TestSealSeedCorpus keeps the committed seed corpora in step with the
// seeds above (go test ./enclave -run TestSealSeedCorpus -update-corpus).
func TestSealSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzParseSealedSeed", "seed_", '_', sealedSeedSeeds(t), *updateSealCorpus, "go test ./enclave -run TestSealSeedCorpus -update-corpus")
	fuzzseed.Sync(t, "FuzzOpenCheckpoint", "seed_", '_', checkpointSeeds(t), *updateSealCorpus, "go test ./enclave -run TestSealSeedCorpus -update-corpus")
}
