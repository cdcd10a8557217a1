package nsmsim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// protectedHeader is the COSE protected header of every AWS document, the
// encoding of {1: -35} (alg: ES384).
var protectedHeader = []byte{0xa1, 0x01, 0x38, 0x22}

// payload is an attestation document's payload. Its fields are encoded in
// this order, which is AWS's (not sorted); nil byte strings are null.
type payload struct {
	ModuleID    string          `cbor:"module_id"`
	Digest      string          `cbor:"digest"`
	Timestamp   uint64          `cbor:"timestamp"`
	PCRs        cbor.RawMessage `cbor:"pcrs"`
	Certificate []byte          `cbor:"certificate"`
	CABundle    [][]byte        `cbor:"cabundle"`
	PublicKey   []byte          `cbor:"public_key"`
	UserData    []byte          `cbor:"user_data"`
	Nonce       []byte          `cbor:"nonce"`
}

var (
	// docEncMode keeps struct fields in declaration order and encodes nil
	// byte strings as null, as AWS does.
	docEncMode cbor.EncMode
	// pcrEncMode sorts the PCR map's integer keys ascending, as AWS does.
	pcrEncMode cbor.EncMode
)

func init() {
	var err error
	if docEncMode, err = (cbor.EncOptions{Sort: cbor.SortNone, NilContainers: cbor.NilContainerAsNull}).EncMode(); err != nil {
		panic("nsmsim: cbor options: " + err.Error())
	}
	if pcrEncMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic("nsmsim: cbor options: " + err.Error())
	}
}

// encodePCRs encodes the pcrs map: indexes 0..15 to 48-byte values.
func encodePCRs(pcrs *[16][48]byte) (cbor.RawMessage, error) {
	m := make(map[uint64][]byte, len(pcrs))
	for i := range pcrs {
		m[uint64(i)] = pcrs[i][:]
	}
	return pcrEncMode.Marshal(m)
}

// sign1 returns the untagged COSE_Sign1 of payload p, signed by key with
// ES384.
func sign1(key *ecdsa.PrivateKey, p *payload) ([]byte, error) {
	pb, err := docEncMode.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("nsmsim: encode payload: %w", err)
	}
	tbs, err := docEncMode.Marshal([]any{"Signature1", protectedHeader, []byte{}, pb})
	if err != nil {
		return nil, fmt.Errorf("nsmsim: encode Sig_structure: %w", err)
	}
	digest := sha512.Sum384(tbs)
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("nsmsim: sign: %w", err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	doc, err := docEncMode.Marshal([]any{protectedHeader, map[uint64]any{}, pb, sig})
	if err != nil {
		return nil, fmt.Errorf("nsmsim: encode COSE_Sign1: %w", err)
	}
	return doc, nil
}
