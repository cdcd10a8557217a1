package kmssim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/nitrosign/nitrosign/attestation"
	"github.com/nitrosign/nitrosign/enclave/cms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seeds in testdata/fuzz")

// updateHow is the command that rewrites the committed seeds.
const updateHow = "go test ./internal/sim/kmssim -run TestSeedCorpus -update-corpus"

// fuzzTime is the fuzzing server's clock: when the real AWS attestation
// document of testdata/aws/nitro is valid (its leaf from 14:37:36 to
// 17:37:39 UTC), so that seeds carrying it get past the certificate
// checks.
var fuzzTime = time.Date(2024, 9, 7, 15, 0, 0, 0, time.UTC)

// The fuzzing server's keys, with fixed ids and secrets so that the seeds
// are the same on every run.
const (
	fuzzOpenKey    = "11111111-2222-4333-8444-555555555555"
	fuzzEnclaveKey = "66666666-7777-4888-8999-aaaaaaaaaaaa"
)

// awsDocument is the real AWS document (raw CBOR). Its public_key is 1024
// bytes of 0x01, so a Recipient carrying it fails after the document
// verifies.
func awsDocument(t testing.TB) []byte {
	t.Helper()
	b64, err := os.ReadFile("../../../testdata/aws/nitro/attestation_production.b64")
	if err != nil {
		t.Fatalf("the real AWS document is missing: %v (it lives in testdata/aws/nitro)", err)
	}
	doc, err := attestation.Decode(b64)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// newFuzzServer returns a simulator at fuzzTime trusting the AWS root and
// a simulated NSM's, holding the two fuzzing keys: one open to the
// account, one under the enclave policy.
func newFuzzServer(t testing.TB) (*Server, *nsmsim.Server) {
	t.Helper()
	clock := func() time.Time { return fuzzTime }
	n, err := nsmsim.New(nsmsim.Options{Image: testImage, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	s, err := New(Options{
		Roots:      []*x509.Certificate{attestation.AWSRootG1(), rootOf(t, n)},
		Identities: []Identity{DefaultIdentity(), enclaveIdentity},
		Now:        clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i, kp := range []struct{ id, policy string }{
		{fuzzOpenKey, openPolicy},
		{fuzzEnclaveKey, enclavePolicy("kms:RecipientAttestation:ImageSha384", testImage.PCR0[:])},
	} {
		p, err := parsePolicy(kp.policy, true)
		if err != nil {
			t.Fatal(err)
		}
		k, err := s.newKey(kp.id, bytes.Repeat([]byte{byte(i + 1)}, secretSize), fuzzTime, "fuzz", kp.policy, p)
		if err != nil {
			t.Fatal(err)
		}
		s.keys[k.id] = k
		s.order = append(s.order, k.id)
	}
	return s, n
}

// fixedBlob is a ciphertext blob of s's key id with a zero nonce: the same
// on every run, unlike key.seal's.
func fixedBlob(t testing.TB, s *Server, id string, plaintext []byte, ctx map[string]string) []byte {
	t.Helper()
	k := s.keys[id]
	blob := make([]byte, blobHeaderSize+blobNonceSize)
	blob[0] = blobVersion
	copy(blob[1:], k.uuid[:])
	aad := append(slices.Clone(blob[:blobHeaderSize]), encodeContext(ctx)...)
	return k.aead.Seal(blob, blob[blobHeaderSize:], plaintext, aad)
}

// handlerSeeds returns the named seeds of FuzzHandler that are the same on
// every run: "Operation\nbody" for every operation, valid and broken.
func handlerSeeds(t testing.TB) map[string][]byte {
	s, _ := newFuzzServer(t)
	b64 := base64.StdEncoding.EncodeToString
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ec := map[string]string{"nitrosign": "seed"}
	blob := b64(fixedBlob(t, s, fuzzOpenKey, []byte("payload"), ec))
	sealed := b64(fixedBlob(t, s, fuzzEnclaveKey, bytes.Repeat([]byte{7}, 32), ec))
	awsRecipient := `{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"` + b64(awsDocument(t)) + `"}`
	enclave := enclavePolicy("kms:RecipientAttestation:ImageSha384", testImage.PCR0[:])
	seeds := map[string]string{
		"create key":                        "CreateKey\n{}",
		"create key with policy":            "CreateKey\n" + js(map[string]any{"Policy": enclave, "Description": "d", "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}),
		"create key locking out":            "CreateKey\n" + js(map[string]any{"Policy": strings.ReplaceAll(enclave, adminRole, enclaveRole)}),
		"create key bypass":                 "CreateKey\n" + js(map[string]any{"Policy": strings.ReplaceAll(enclave, adminRole, enclaveRole), "BypassPolicyLockoutSafetyCheck": true}),
		"create key asymmetric":             `CreateKey` + "\n" + `{"KeySpec":"RSA_2048","KeyUsage":"ENCRYPT_DECRYPT"}`,
		"create key tags":                   `CreateKey` + "\n" + `{"Tags":[{"TagKey":"a","TagValue":"b"}],"MultiRegion":false}`,
		"describe key":                      "DescribeKey\n" + `{"KeyId":"` + fuzzOpenKey + `"}`,
		"describe key by arn":               "DescribeKey\n" + `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/` + fuzzOpenKey + `"}`,
		"describe key alias":                "DescribeKey\n" + `{"KeyId":"alias/seal"}`,
		"list keys":                         "ListKeys\n{}",
		"list keys page":                    "ListKeys\n" + `{"Limit":1,"Marker":"` + fuzzOpenKey + `"}`,
		"get key policy":                    "GetKeyPolicy\n" + `{"KeyId":"` + fuzzEnclaveKey + `","PolicyName":"default"}`,
		"put key policy":                    "PutKeyPolicy\n" + js(map[string]any{"KeyId": fuzzOpenKey, "Policy": openPolicy}),
		"put key policy conditions":         "PutKeyPolicy\n" + js(map[string]any{"KeyId": fuzzOpenKey, "Policy": policyOf(stmt("Allow", `{"AWS":"111122223333"}`, `"kms:*"`, `{"StringLikeIfExists":{"aws:PrincipalArn":"arn:*"},"Null":{"kms:RecipientAttestation:PCR0":false}}`))}),
		"encrypt":                           "Encrypt\n" + `{"KeyId":"` + fuzzOpenKey + `","Plaintext":"cGF5bG9hZA==","EncryptionContext":{"nitrosign":"seed"}}`,
		"encrypt dry run":                   "Encrypt\n" + `{"KeyId":"` + fuzzOpenKey + `","Plaintext":"cGF5bG9hZA==","DryRun":true}`,
		"decrypt":                           "Decrypt\n" + `{"CiphertextBlob":"` + blob + `","EncryptionContext":{"nitrosign":"seed"}}`,
		"decrypt wrong context":             "Decrypt\n" + `{"CiphertextBlob":"` + blob + `","EncryptionContext":{"nitrosign":"other"}}`,
		"decrypt with key id":               "Decrypt\n" + `{"CiphertextBlob":"` + blob + `","KeyId":"` + fuzzEnclaveKey + `","EncryptionContext":{"nitrosign":"seed"}}`,
		"decrypt sealed with aws recipient": "Decrypt\n" + `{"CiphertextBlob":"` + sealed + `","EncryptionContext":{"nitrosign":"seed"},"Recipient":` + awsRecipient + `}`,
		"decrypt sealed":                    "Decrypt\n" + `{"CiphertextBlob":"` + sealed + `","EncryptionContext":{"nitrosign":"seed"}}`,
		"generate data key":                 "GenerateDataKey\n" + `{"KeyId":"` + fuzzOpenKey + `","KeySpec":"AES_256","EncryptionContext":{"a":"b"}}`,
		"generate data key bytes":           "GenerateDataKey\n" + `{"KeyId":"` + fuzzOpenKey + `","NumberOfBytes":7}`,
		"generate data key bad recipient":   "GenerateDataKey\n" + `{"KeyId":"` + fuzzEnclaveKey + `","KeySpec":"AES_256","Recipient":{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"hEShATgioFk="}}`,
		"generate random":                   "GenerateRandom\n" + `{"NumberOfBytes":32}`,
		"generate random aws recipient":     "GenerateRandom\n" + `{"NumberOfBytes":32,"Recipient":` + awsRecipient + `}`,
		"generate random custom store":      "GenerateRandom\n" + `{"NumberOfBytes":32,"CustomKeyStoreId":"cks-1"}`,

		"no body":           "ListKeys",
		"unknown operation": "Sign\n{}",
		"empty operation":   "\n{}",
		"unknown members":   "Encrypt\n" + `{"KeyId":"` + fuzzOpenKey + `","Plaintext":"eA==","Future":{"a":[1,{"b":null}]}}`,
		"case of members":   "Encrypt\n" + `{"keyid":"` + fuzzOpenKey + `","plaintext":"eA=="}`,
		"duplicate member":  "GenerateRandom\n" + `{"NumberOfBytes":1,"NumberOfBytes":2}`,
		"deep":              "ListKeys\n" + `{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"bad base64":        "Decrypt\n" + `{"CiphertextBlob":"*"}`,
		"wrong type":        "GenerateRandom\n" + `{"NumberOfBytes":"1"}`,
		"fraction":          "GenerateRandom\n" + `{"NumberOfBytes":1e3}`,
		"null":              "ListKeys\nnull",
		"array":             "ListKeys\n[]",
		"trailing":          "ListKeys\n{}x",
		"invalid utf-8":     "DescribeKey\n{\"KeyId\":\"\xff\xfe\"}",
		"escaped surrogate": "DescribeKey\n" + `{"KeyId":"\ud800"}`,
		"recipient string":  "GenerateRandom\n" + `{"NumberOfBytes":1,"Recipient":"RSAES_OAEP_SHA_256"}`,
		"huge number":       "ListKeys\n" + `{"Limit":123456789012345678901234567890}`,
	}
	out := map[string][]byte{}
	for name, v := range seeds {
		out[name] = []byte(v)
	}
	return out
}

// TestSeedCorpus checks that testdata/fuzz/FuzzHandler holds every seed.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzHandler", "seed_", '_', handlerSeeds(t), *updateCorpus, updateHow)
}

// errorCodes are the codes the simulator answers with.
var errorCodes = map[string]bool{
	"UnknownOperationException": true, "SerializationException": true, "ValidationException": true,
	"NotFoundException": true, "MalformedPolicyDocumentException": true, "UnsupportedOperationException": true,
	"IncorrectKeyException": true, "InvalidCiphertextException": true, "DryRunOperationException": true,
	"AccessDeniedException": true, "InvalidKeyUsageException": true, "CustomKeyStoreNotFoundException": true,
	"LimitExceededException": true, "InvalidMarkerException": true,
}

// FuzzHandler sends "Operation\nbody" to the simulator as a signed request
// of the dev identity and checks that it never panics and always answers
// in the protocol's shape: JSON with an error code it documents and the
// status that goes with it, never a server error, and with a Recipient
// never Plaintext beside CiphertextForRecipient, which enclave/cms
// parses. The committed corpus is in testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	for _, b := range handlerSeeds(f) {
		f.Add(b)
	}
	s, n := newFuzzServer(f)
	// Seeds that differ at every run: documents of the simulated NSM with
	// the enclave's key.
	spki, _ := x509.MarshalPKIXPublicKey(&enclaveKey().PublicKey)
	doc, err := n.Attest(context.Background(), nsm.AttestRequest{PublicKey: spki})
	if err != nil {
		f.Fatal(err)
	}
	rcp := `{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"` + base64.StdEncoding.EncodeToString(doc) + `"}`
	sealed := base64.StdEncoding.EncodeToString(fixedBlob(f, s, fuzzEnclaveKey, bytes.Repeat([]byte{7}, 32), nil))
	f.Add([]byte("GenerateDataKey\n" + `{"KeyId":"` + fuzzEnclaveKey + `","KeySpec":"AES_256","Recipient":` + rcp + `}`))
	f.Add([]byte("Decrypt\n" + `{"CiphertextBlob":"` + sealed + `","Recipient":` + rcp + `}`))
	f.Add([]byte("GenerateRandom\n" + `{"NumberOfBytes":1024,"Recipient":` + rcp + `}`))

	statuses := map[int]bool{200: true, 400: true, 404: true, 412: true, 413: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, body, _ := bytes.Cut(data, []byte("\n"))
		req := httptest.NewRequest(http.MethodPost, "https://kms.us-east-1.amazonaws.com/", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Amz-Target", targetPrefix+string(op))
		digest := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: DefaultAccessKeyID, SecretAccessKey: DefaultSecretAccessKey}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(digest[:]), "kms", s.Region(), fuzzTime); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, req)

		if !statuses[rec.Code] {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var answer map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("the answer %q is not a JSON object: %v", rec.Body, err)
		}
		if rec.Code != http.StatusOK {
			var typ string
			if json.Unmarshal(answer["__type"], &typ) != nil || !errorCodes[typ] {
				t.Fatalf("status %d with __type %s", rec.Code, answer["__type"])
			}
			return
		}
		if _, known := operations[string(op)]; !known {
			t.Fatalf("200 for operation %q", op)
		}
		if env, ok := answer["CiphertextForRecipient"]; ok {
			if _, ok := answer["Plaintext"]; ok {
				t.Fatal("both Plaintext and CiphertextForRecipient")
			}
			var ber []byte
			if err := json.Unmarshal(env, &ber); err != nil {
				t.Fatal(err)
			}
			if _, err := cms.Parse(ber); err != nil {
				t.Fatalf("CiphertextForRecipient does not parse: %v", err)
			}
		}
	})
}
