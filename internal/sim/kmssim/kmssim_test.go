package kmssim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	smithy "github.com/aws/smithy-go"

	"github.com/nitrosign/nitrosign/enclave/cms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
)

// The principals of the tests: the dev identity administers keys, the
// enclave's role session unseals.
const (
	enclaveRole = "arn:aws:iam::111122223333:role/nitrosign-enclave"
	adminRole   = DefaultPrincipal
)

var enclaveIdentity = Identity{
	AccessKeyID:     "ASIAENCLAVE000000001",
	SecretAccessKey: "enclave-secret",
	SessionToken:    "enclave-session-token",
	ARN:             "arn:aws:sts::111122223333:assumed-role/nitrosign-enclave/i-0123456789abcdef0",
	// GenerateRandom is on no key: the role's IAM policy pins the image.
	Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:GenerateRandom","Resource":"*",
		"Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:PCR0":"` + hex.EncodeToString(testImage.PCR0[:]) + `"}}}]}`,
}

var (
	testImage  = nsmsim.MeasureBytes([]byte("enclave binary"), []byte(`{"genesis":1}`))
	otherImage = nsmsim.MeasureBytes([]byte("enclave binary v2"), []byte(`{"genesis":1}`))
)

// enclaveKey is the enclave's ephemeral RSA-2048 key, made once: key
// generation is slow under the race detector.
var enclaveKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// enclavePolicy is the shape of key policy `nitrosign kms-policy` prints:
// the admin administers, the enclave's role unseals if its image is
// pcr0 (compared as conditionKey), and nobody gets plaintext without an
// attestation document.
func enclavePolicy(conditionKey string, pcr0 []byte) string {
	return `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Administer", "Effect": "Allow", "Principal": {"AWS": "` + adminRole + `"},
     "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:Encrypt"], "Resource": "*"},
    {"Sid": "EnclaveUnseal", "Effect": "Allow", "Principal": {"AWS": "` + enclaveRole + `"},
     "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
     "Condition": {"StringEqualsIgnoreCase": {"` + conditionKey + `": "` + strings.ToUpper(hex.EncodeToString(pcr0)) + `"}}},
    {"Sid": "DenyUnattested", "Effect": "Deny", "Principal": "*",
     "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
     "Condition": {"Null": {"` + conditionKey + `": "true"}}}
  ]
}`
}

// openPolicy lets the account use the key as IAM allows, without the
// default policy's Deny: for the round trips of plain Encrypt and Decrypt.
const openPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

type fixture struct {
	srv   *Server
	nsm   *nsmsim.Server
	admin *kms.Client
	encl  *kms.Client
}

func newNSM(t *testing.T, opts nsmsim.Options) *nsmsim.Server {
	t.Helper()
	if opts.Image == (nsmsim.Measurement{}) && !opts.Debug {
		opts.Image = testImage
	}
	n, err := nsmsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func rootOf(t testing.TB, n *nsmsim.Server) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(n.RootPEM())
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newFixture starts a simulated NSM (image testImage) and a simulated KMS
// trusting its root and those of extra, with the admin and the enclave as
// identities.
func newFixture(t *testing.T, extra ...*nsmsim.Server) *fixture {
	t.Helper()
	n := newNSM(t, nsmsim.Options{})
	roots := []*x509.Certificate{rootOf(t, n)}
	for _, e := range extra {
		roots = append(roots, rootOf(t, e))
	}
	s := newServer(t, Options{
		Roots:      roots,
		Identities: []Identity{DefaultIdentity(), enclaveIdentity},
	})
	return &fixture{srv: s, nsm: n, admin: newClient(s, DefaultIdentity()), encl: newClient(s, enclaveIdentity)}
}

// newClient is the real SDK client, configured as the enclave and the dev
// stack configure it.
func newClient(s *Server, id Identity, optFns ...func(*kms.Options)) *kms.Client {
	cfg := aws.Config{
		Region:      s.Region(),
		Credentials: credentials.NewStaticCredentialsProvider(id.AccessKeyID, id.SecretAccessKey, id.SessionToken),
		HTTPClient:  s.Client(),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
	return kms.NewFromConfig(cfg, append([]func(*kms.Options){func(o *kms.Options) { o.BaseEndpoint = aws.String(s.URL()) }}, optFns...)...)
}

// attest returns a document from n carrying the enclave key's public key.
func attest(t *testing.T, n nsm.Device) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&enclaveKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := n.Attest(context.Background(), nsm.AttestRequest{PublicKey: spki})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func recipientFor(doc []byte) *types.RecipientInfo {
	return &types.RecipientInfo{KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256, AttestationDocument: doc}
}

// open opens a CiphertextForRecipient as the enclave does, with
// enclave/cms.
func open(t *testing.T, ber []byte) []byte {
	t.Helper()
	env, err := cms.Parse(ber)
	if err != nil {
		t.Fatalf("cms.Parse: %v", err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&enclaveKey().PublicKey)
	skid := sha256.Sum256(spki)
	pt, err := env.Decrypt(enclaveKey(), cms.WithSubjectKeyID(skid[:]))
	if err != nil {
		t.Fatalf("cms Decrypt: %v", err)
	}
	return pt
}

// code returns the AWS error code of err, or "" for none.
func code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func createKey(t *testing.T, c *kms.Client, policy string) string {
	t.Helper()
	in := &kms.CreateKeyInput{Description: aws.String("test key")}
	if policy != "" {
		in.Policy = aws.String(policy)
	}
	out, err := c.CreateKey(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return *out.KeyMetadata.KeyId
}

func TestOperations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	out, err := f.admin.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("seal"), Policy: aws.String(openPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	md := out.KeyMetadata
	if _, ok := parseUUID(*md.KeyId); !ok || *md.Arn != "arn:aws:kms:us-east-1:111122223333:key/"+*md.KeyId ||
		*md.AWSAccountId != DefaultAccountID || md.KeySpec != types.KeySpecSymmetricDefault || md.KeyState != types.KeyStateEnabled ||
		!md.Enabled || *md.Description != "seal" || md.CreationDate == nil || time.Since(*md.CreationDate) > time.Minute {
		t.Errorf("CreateKey metadata: %+v", md)
	}
	keyID := *md.KeyId

	for _, id := range []string{keyID, *md.Arn} {
		d, err := f.admin.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if err != nil || *d.KeyMetadata.KeyId != keyID || !d.KeyMetadata.CreationDate.Equal(*md.CreationDate) {
			t.Errorf("DescribeKey(%s) = %+v, %v", id, d, err)
		}
	}

	list, err := f.admin.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(list.Keys) != 1 || *list.Keys[0].KeyId != keyID || *list.Keys[0].KeyArn != *md.Arn || list.Truncated {
		t.Errorf("ListKeys = %+v, %v", list, err)
	}

	pol, err := f.admin.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)})
	if err != nil || *pol.Policy != openPolicy || *pol.PolicyName != "default" {
		t.Errorf("GetKeyPolicy = %+v, %v", pol, err)
	}

	ec := map[string]string{"purpose": "seed", "enclave": "1"}
	enc, err := f.admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("secret seed"), EncryptionContext: ec})
	if err != nil || *enc.KeyId != *md.Arn || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Fatalf("Encrypt = %+v, %v", enc, err)
	}
	dec, err := f.admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil || string(dec.Plaintext) != "secret seed" || *dec.KeyId != *md.Arn || dec.CiphertextForRecipient != nil || dec.KeyMaterialId == nil {
		t.Fatalf("Decrypt = %+v, %v", dec, err)
	}

	for _, in := range []*kms.GenerateDataKeyInput{
		{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256},
		{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes128},
		{KeyId: aws.String(keyID), NumberOfBytes: aws.Int32(1024), EncryptionContext: ec},
	} {
		gdk, err := f.admin.GenerateDataKey(ctx, in)
		if err != nil {
			t.Fatalf("GenerateDataKey(%v, %v): %v", in.KeySpec, in.NumberOfBytes, err)
		}
		want := map[types.DataKeySpec]int{types.DataKeySpecAes256: 32, types.DataKeySpecAes128: 16, "": 1024}[in.KeySpec]
		if len(gdk.Plaintext) != want || gdk.CiphertextForRecipient != nil || *gdk.KeyId != *md.Arn {
			t.Fatalf("GenerateDataKey(%v) = %d bytes of plaintext, %+v", in.KeySpec, len(gdk.Plaintext), gdk)
		}
		dec, err := f.admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, KeyId: aws.String(keyID), EncryptionContext: in.EncryptionContext})
		if err != nil || !bytes.Equal(dec.Plaintext, gdk.Plaintext) {
			t.Fatalf("Decrypt of the data key = %+v, %v", dec, err)
		}
	}

	rnd, err := f.admin.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(48)})
	if err != nil || len(rnd.Plaintext) != 48 || bytes.Equal(rnd.Plaintext, make([]byte, 48)) {
		t.Fatalf("GenerateRandom = %+v, %v", rnd, err)
	}

	newPolicy := enclavePolicy("kms:RecipientAttestation:ImageSha384", testImage.PCR0[:])
	if _, err := f.admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(newPolicy)}); err != nil {
		t.Fatal(err)
	}
	if pol, err := f.admin.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)}); err != nil || *pol.Policy != newPolicy {
		t.Errorf("GetKeyPolicy after PutKeyPolicy = %v, %v", pol, err)
	}
	// The new policy no longer lets the admin decrypt.
	if _, err := f.admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}); code(err) != "AccessDeniedException" {
		t.Errorf("Decrypt under the enclave policy, without a Recipient: %v", err)
	}

	if _, err := f.admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x"), DryRun: aws.Bool(true)}); code(err) != "DryRunOperationException" {
		t.Errorf("Encrypt with DryRun: %v", err)
	}
	var dry *types.DryRunOperationException
	if _, err := f.admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x"), DryRun: aws.Bool(true)}); !errors.As(err, &dry) {
		t.Errorf("Encrypt with DryRun: %T %v, want *types.DryRunOperationException", err, err)
	}
}

func TestListKeysPages(t *testing.T) {
	f := newFixture(t)
	var want []string
	for range 5 {
		want = append(want, createKey(t, f.admin, ""))
	}
	var got []string
	p := kms.NewListKeysPaginator(f.admin, &kms.ListKeysInput{Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			got = append(got, *k.KeyId)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListKeys pages: %v, want %v", got, want)
	}
	if _, err := f.admin.ListKeys(context.Background(), &kms.ListKeysInput{Marker: aws.String("nope")}); code(err) != "InvalidMarkerException" {
		t.Errorf("ListKeys with a bad marker: %v", err)
	}
}

// TestRecipient runs the enclave's sealing and unsealing end to end: a
// document from the simulated NSM carrying an RSA-2048 key, and the
// answers opened with enclave/cms.
func TestRecipient(t *testing.T) {
	for _, condKey := range []string{"kms:RecipientAttestation:ImageSha384", "kms:RecipientAttestation:PCR0"} {
		t.Run(condKey, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			keyID := createKey(t, f.admin, enclavePolicy(condKey, testImage.PCR0[:]))
			doc := attest(t, f.nsm)
			ec := map[string]string{"nitrosign": "seed"}

			gdk, err := f.encl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
				KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec, Recipient: recipientFor(doc),
			})
			if err != nil {
				t.Fatalf("GenerateDataKey with a Recipient: %v", err)
			}
			if gdk.Plaintext != nil || gdk.CiphertextForRecipient == nil || gdk.CiphertextBlob == nil || gdk.KeyMaterialId != nil {
				t.Fatalf("GenerateDataKey with a Recipient answered Plaintext %x, CiphertextForRecipient %d bytes, CiphertextBlob %d bytes, KeyMaterialId %v",
					gdk.Plaintext, len(gdk.CiphertextForRecipient), len(gdk.CiphertextBlob), gdk.KeyMaterialId)
			}
			dataKey := open(t, gdk.CiphertextForRecipient)
			if len(dataKey) != 32 {
				t.Fatalf("the data key is %d bytes", len(dataKey))
			}

			dec, err := f.encl.Decrypt(ctx, &kms.DecryptInput{
				CiphertextBlob: gdk.CiphertextBlob, KeyId: aws.String(keyID), EncryptionContext: ec, Recipient: recipientFor(doc),
			})
			if err != nil {
				t.Fatalf("Decrypt with a Recipient: %v", err)
			}
			if dec.Plaintext != nil || !bytes.Equal(open(t, dec.CiphertextForRecipient), dataKey) {
				t.Fatalf("Decrypt with a Recipient: Plaintext %x, and the envelope holds another key", dec.Plaintext)
			}

			rnd, err := f.encl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1024), Recipient: recipientFor(doc)})
			if err != nil {
				t.Fatalf("GenerateRandom with a Recipient: %v", err)
			}
			if b := open(t, rnd.CiphertextForRecipient); rnd.Plaintext != nil || len(b) != 1024 {
				t.Fatalf("GenerateRandom with a Recipient: Plaintext %x, %d bytes in the envelope", rnd.Plaintext, len(b))
			}

			// Two envelopes of one key differ: fresh content key and IV.
			dec2, err := f.encl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, EncryptionContext: ec, Recipient: recipientFor(doc)})
			if err != nil || bytes.Equal(dec2.CiphertextForRecipient, dec.CiphertextForRecipient) {
				t.Fatalf("two Decrypts gave the same envelope, or %v", err)
			}

			// Without the document, the enclave's own role is refused by the
			// explicit Deny.
			_, err = f.encl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, EncryptionContext: ec})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" ||
				apiErr.ErrorMessage() != "User: "+enclaveIdentity.ARN+" is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/"+keyID+" with an explicit deny in a resource-based policy" {
				t.Fatalf("Decrypt without a Recipient: %v", err)
			}
			if d, ok := f.srv.LastDenial(); !ok || !d.Explicit || d.StatementSID != "DenyUnattested" || d.ImageSHA384 != "" || d.Operation != "Decrypt" {
				t.Errorf("LastDenial after a Decrypt without a Recipient: %+v", d)
			}
		})
	}
}

// TestImageChange is the dev stack's --accept-new-image: a new image is
// refused until an admin puts a policy naming its measurement.
func TestImageChange(t *testing.T) {
	// The new image runs on another simulated NSM, with a CA of its own
	// that the KMS trusts too.
	other := newNSM(t, nsmsim.Options{Image: otherImage})
	f := newFixture(t, other)
	ctx := context.Background()
	keyID := createKey(t, f.admin, enclavePolicy("kms:RecipientAttestation:ImageSha384", testImage.PCR0[:]))
	gdk, err := f.encl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(attest(t, f.nsm))})
	if err != nil {
		t.Fatal(err)
	}
	want := open(t, gdk.CiphertextForRecipient)

	newDoc := attest(t, other)
	_, err = f.encl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, Recipient: recipientFor(newDoc)})
	var apiErr smithy.APIError
	wantMsg := "User: " + enclaveIdentity.ARN + " is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/" + keyID +
		" because no resource-based policy allows the kms:Decrypt action"
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" || apiErr.ErrorMessage() != wantMsg {
		t.Fatalf("Decrypt by another image: %v\nwant AccessDeniedException: %s", err, wantMsg)
	}
	d, ok := f.srv.LastDenial()
	if !ok || d.Explicit || d.ImageSHA384 != hex.EncodeToString(otherImage.PCR0[:]) || d.PCR0 != d.ImageSHA384 ||
		!slices.Equal(d.Expected, []string{strings.ToUpper(hex.EncodeToString(testImage.PCR0[:]))}) ||
		d.Action != "kms:Decrypt" || d.Principal != enclaveIdentity.ARN || !strings.HasSuffix(d.Resource, keyID) || d.Message != wantMsg {
		t.Fatalf("LastDenial = %+v", d)
	}
	// GenerateRandom: the role's IAM policy pins the image too.
	if _, err := f.encl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), Recipient: recipientFor(newDoc)}); code(err) != "AccessDeniedException" ||
		!strings.Contains(err.Error(), "no identity-based policy allows the kms:GenerateRandom action") {
		t.Fatalf("GenerateRandom by another image: %v", err)
	}

	if _, err := f.admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(enclavePolicy("kms:RecipientAttestation:ImageSha384", otherImage.PCR0[:]))}); err != nil {
		t.Fatal(err)
	}
	dec, err := f.encl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, Recipient: recipientFor(newDoc)})
	if err != nil || !bytes.Equal(open(t, dec.CiphertextForRecipient), want) {
		t.Fatalf("Decrypt by the accepted new image: %v", err)
	}
	if _, err := f.encl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, Recipient: recipientFor(attest(t, f.nsm))}); code(err) != "AccessDeniedException" {
		t.Fatalf("Decrypt by the old image after the policy change: %v", err)
	}
}

// TestDefaultPolicy: a key made without a policy gives plaintext to
// nobody, but answers attested requests of the account.
func TestDefaultPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	keyID := createKey(t, f.admin, "")
	pol, err := f.admin.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)})
	if err != nil || *pol.Policy != DefaultKeyPolicy(DefaultAccountID) {
		t.Fatalf("GetKeyPolicy of a key made without a policy: %v, %v", pol, err)
	}
	enc, err := f.admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt under the default policy: %v", err)
	}
	for name, call := range map[string]func() error{
		"Decrypt": func() error {
			_, err := f.admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := f.admin.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256})
			return err
		},
	} {
		err := call()
		if code(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "kms:"+name) || !strings.Contains(err.Error(), "explicit deny in a resource-based policy") {
			t.Errorf("%s without a Recipient under the default policy: %v", name, err)
		}
	}
	// With a Recipient, the admin (whose IAM policy allows kms:*) gets the
	// data key in an envelope.
	gdk, err := f.admin.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(attest(t, f.nsm))})
	if err != nil || len(open(t, gdk.CiphertextForRecipient)) != 32 {
		t.Fatalf("GenerateDataKey with a Recipient under the default policy: %v", err)
	}
	// The enclave's role has no IAM permission on the key: the default
	// policy delegates to IAM.
	_, err = f.encl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(attest(t, f.nsm))})
	if code(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "because no identity-based policy allows the kms:GenerateDataKey action") {
		t.Fatalf("GenerateDataKey by a role without IAM permission: %v", err)
	}
	if d, _ := f.srv.LastDenial(); !d.IdentityPolicy || d.Explicit || d.ImageSHA384 != hex.EncodeToString(testImage.PCR0[:]) {
		t.Errorf("LastDenial = %+v", d)
	}
}

func TestCiphertextIntegrity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	keyA := createKey(t, f.admin, openPolicy)
	keyB := createKey(t, f.admin, openPolicy)
	ec := map[string]string{"a": "1", "b": "2"}
	enc, err := f.admin.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyA), Plaintext: []byte("payload"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	blob := enc.CiphertextBlob
	uuidB, _ := parseUUID(keyB)
	flip := func(i int) []byte {
		b := bytes.Clone(blob)
		b[i] ^= 1
		return b
	}
	rewritten := bytes.Clone(blob)
	copy(rewritten[1:17], uuidB[:])

	otherServer := newServer(t, Options{})
	otherClient := newClient(otherServer, DefaultIdentity())
	foreignKey := createKey(t, otherClient, openPolicy)
	foreign, err := otherClient.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(foreignKey), Plaintext: []byte("payload"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		blob  []byte
		ec    map[string]string
		keyID *string
		want  string
	}{
		{name: "intact", blob: blob, ec: ec},
		{name: "intact with its key id", blob: blob, ec: ec, keyID: aws.String(keyA)},
		{name: "version changed", blob: flip(0), ec: ec, want: "InvalidCiphertextException"},
		{name: "key id changed", blob: flip(5), ec: ec, want: "InvalidCiphertextException"},
		{name: "rewritten to the other key", blob: rewritten, ec: ec, want: "InvalidCiphertextException"},
		{name: "nonce changed", blob: flip(20), ec: ec, want: "InvalidCiphertextException"},
		{name: "ciphertext changed", blob: flip(30), ec: ec, want: "InvalidCiphertextException"},
		{name: "tag changed", blob: flip(len(blob) - 1), ec: ec, want: "InvalidCiphertextException"},
		{name: "truncated", blob: blob[:len(blob)-1], ec: ec, want: "InvalidCiphertextException"},
		{name: "too short", blob: blob[:20], ec: ec, want: "InvalidCiphertextException"},
		{name: "extended", blob: append(bytes.Clone(blob), 0), ec: ec, want: "InvalidCiphertextException"},
		{name: "another simulator's blob", blob: foreign.CiphertextBlob, ec: ec, want: "InvalidCiphertextException"},
		{name: "no encryption context", blob: blob, want: "InvalidCiphertextException"},
		{name: "a pair missing", blob: blob, ec: map[string]string{"a": "1"}, want: "InvalidCiphertextException"},
		{name: "a value changed", blob: blob, ec: map[string]string{"a": "1", "b": "3"}, want: "InvalidCiphertextException"},
		{name: "a pair added", blob: blob, ec: map[string]string{"a": "1", "b": "2", "c": "3"}, want: "InvalidCiphertextException"},
		{name: "names and values moved", blob: blob, ec: map[string]string{"a": "1b", "": "2"}, want: "InvalidCiphertextException"},
		{name: "the other key's id", blob: blob, ec: ec, keyID: aws.String(keyB), want: "IncorrectKeyException"},
		{name: "an unknown key id", blob: blob, ec: ec, keyID: aws.String("00000000-0000-4000-8000-000000000000"), want: "NotFoundException"},
		{name: "an alias", blob: blob, ec: ec, keyID: aws.String("alias/seal"), want: "NotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := f.admin.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: tc.blob, EncryptionContext: tc.ec, KeyId: tc.keyID})
			if got := code(err); got != tc.want {
				t.Fatalf("Decrypt: %v, want %s", err, tc.want)
			}
			if tc.want == "" && string(dec.Plaintext) != "payload" {
				t.Fatalf("Decrypt = %q", dec.Plaintext)
			}
			if tc.want == "InvalidCiphertextException" {
				var ice *types.InvalidCiphertextException
				if !errors.As(err, &ice) {
					t.Fatalf("Decrypt: %T, want *types.InvalidCiphertextException", err)
				}
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		client *kms.Client
		want   string
	}{
		{"unknown access key", newClient(f.srv, Identity{AccessKeyID: "AKIAUNKNOWN000000001", SecretAccessKey: "x"}), "UnrecognizedClientException"},
		{"wrong secret", newClient(f.srv, Identity{AccessKeyID: DefaultAccessKeyID, SecretAccessKey: "wrong"}), "InvalidSignatureException"},
		{"session token where none is issued", newClient(f.srv, Identity{AccessKeyID: DefaultAccessKeyID, SecretAccessKey: DefaultSecretAccessKey, SessionToken: "t"}), "UnrecognizedClientException"},
		{"session token missing", newClient(f.srv, Identity{AccessKeyID: enclaveIdentity.AccessKeyID, SecretAccessKey: enclaveIdentity.SecretAccessKey}), "UnrecognizedClientException"},
		{"session token wrong", newClient(f.srv, Identity{AccessKeyID: enclaveIdentity.AccessKeyID, SecretAccessKey: enclaveIdentity.SecretAccessKey, SessionToken: "other"}), "UnrecognizedClientException"},
		{"other region", newClient(f.srv, DefaultIdentity(), func(o *kms.Options) { o.Region = "eu-west-1" }), "InvalidSignatureException"},
		{"good", f.admin, ""},
		{"good, with a session token", f.encl, "AccessDeniedException"}, // authenticated; its IAM policy allows no ListKeys
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.ListKeys(ctx, &kms.ListKeysInput{})
			if got := code(err); got != tc.want {
				t.Fatalf("ListKeys: %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("clock skew", func(t *testing.T) {
		for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
			s := newServer(t, Options{Now: func() time.Time { return time.Now().Add(skew) }})
			_, err := newClient(s, DefaultIdentity()).ListKeys(ctx, &kms.ListKeysInput{})
			if code(err) != "InvalidSignatureException" || !strings.Contains(err.Error(), "Signature") {
				t.Errorf("skew %v: %v", skew, err)
			}
		}
	})
}

// signed returns a request to s signed by id with the SDK's own signer
// (not the simulator's verifier) at time at.
func signed(t testing.TB, s *Server, id Identity, target, body string, at time.Time, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if edit != nil {
		edit(req)
	}
	digest := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: id.AccessKeyID, SecretAccessKey: id.SecretAccessKey, SessionToken: id.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(digest[:]), "kms", s.Region(), at); err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req and returns the status and the decoded JSON answer.
func do(t *testing.T, s *Server, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Error("no x-amzn-RequestId")
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %q is not a JSON object: %v", b, err)
	}
	return resp.StatusCode, m
}

func TestProtocolErrors(t *testing.T) {
	f := newFixture(t)
	big := `{"Plaintext":"` + strings.Repeat("A", DefaultMaxRequestSize) + `"}`
	for _, tc := range []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantType   string
	}{
		{"GET", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, f.srv.URL()+"/", nil)
			return r
		}, 405, "UnknownOperationException"},
		{"other path", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), func(r *http.Request) { r.URL.Path = "/v1" })
		}, 404, "UnknownOperationException"},
		{"no X-Amz-Target", func() *http.Request { return signed(t, f.srv, DefaultIdentity(), "", "{}", time.Now(), nil) }, 400, "UnknownOperationException"},
		{"unknown operation", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "TrentService.Sign", "{}", time.Now(), nil)
		}, 400, "UnknownOperationException"},
		{"other service", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "AmazonSSM.ListKeys", "{}", time.Now(), nil)
		}, 400, "UnknownOperationException"},
		{"target without service", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "ListKeys", "{}", time.Now(), nil)
		}, 400, "UnknownOperationException"},
		{"target in lower case", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "TrentService.listKeys", "{}", time.Now(), nil)
		}, 400, "UnknownOperationException"},
		{"form content type", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), func(r *http.Request) {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			})
		}, 400, "UnknownOperationException"},
		{"not signed", func() *http.Request {
			r := signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), nil)
			r.Header.Del("Authorization")
			return r
		}, 403, "MissingAuthenticationTokenException"},
		{"another algorithm", func() *http.Request {
			r := signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
			return r
		}, 400, "IncompleteSignatureException"},
		{"no signature", func() *http.Request {
			r := signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), nil)
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
			return r
		}, 400, "IncompleteSignatureException"},
		{"body changed after signing", func() *http.Request {
			r := signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), nil)
			r.Body = io.NopCloser(strings.NewReader("{ }"))
			r.ContentLength = 3
			return r
		}, 400, "InvalidSignatureException"},
		{"target changed after signing", func() *http.Request {
			r := signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), nil)
			r.Header.Set("X-Amz-Target", "TrentService.CreateKey")
			return r
		}, 400, "InvalidSignatureException"},
		{"too large", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "TrentService.Encrypt", big, time.Now(), nil)
		}, 413, "RequestEntityTooLargeException"},
		{"too large, chunked", func() *http.Request {
			r := signed(t, f.srv, DefaultIdentity(), "TrentService.Encrypt", big, time.Now(), nil)
			r.ContentLength = -1 // Transfer-Encoding: chunked, no Content-Length
			return r
		}, 413, "RequestEntityTooLargeException"},
		{"signed by the SDK's signer with extra headers", func() *http.Request {
			return signed(t, f.srv, DefaultIdentity(), "TrentService.ListKeys", "{}", time.Now(), func(r *http.Request) {
				r.Header.Set("X-Extra", "  spaced   out  value ")
				r.Header.Add("X-Multi", "a")
				r.Header.Add("X-Multi", "b")
				r.URL.RawQuery = "b=2&a=1&a=0&c=%20x"
			})
		}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := do(t, f.srv, tc.req())
			if status != tc.wantStatus || tc.wantType != "" && m["__type"] != tc.wantType {
				t.Fatalf("answer %d %v, want %d %s", status, m, tc.wantStatus, tc.wantType)
			}
		})
	}
}

func TestDecoding(t *testing.T) {
	f := newFixture(t)
	keyID := createKey(t, f.admin, openPolicy)
	for _, tc := range []struct {
		name, target, body string
		wantStatus         int
		wantType, wantMsg  string
	}{
		{"unknown members ignored", "TrentService.Encrypt",
			`{"KeyId":"` + keyID + `","Plaintext":"eA==","FutureMember":{"nested":[1,2,{"x":null}]},"Another":true}`, 200, "", ""},
		{"null is absent", "TrentService.Encrypt",
			`{"KeyId":"` + keyID + `","Plaintext":"eA==","EncryptionContext":null,"DryRun":null}`, 200, "", ""},
		{"empty body is an empty input", "TrentService.ListKeys", ``, 200, "", ""},
		{"member names are case-sensitive", "TrentService.Encrypt",
			`{"keyId":"` + keyID + `","Plaintext":"eA=="}`, 400, "ValidationException",
			"1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"two errors", "TrentService.Encrypt", `{}`, 400, "ValidationException",
			"2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null"},
		{"duplicate member", "TrentService.Encrypt",
			`{"KeyId":"` + keyID + `","KeyId":"other","Plaintext":"eA=="}`, 400, "SerializationException", ""},
		{"duplicate nested member", "TrentService.Encrypt",
			`{"KeyId":"` + keyID + `","Plaintext":"eA==","EncryptionContext":{"a":"1","a":"2"}}`, 400, "SerializationException", ""},
		{"wrong type", "TrentService.GenerateRandom", `{"NumberOfBytes":"32"}`, 400, "SerializationException", ""},
		{"fraction", "TrentService.GenerateRandom", `{"NumberOfBytes":3.5}`, 400, "SerializationException", ""},
		{"out of int32", "TrentService.GenerateRandom", `{"NumberOfBytes":4294967296}`, 400, "SerializationException", ""},
		{"bad base64", "TrentService.Encrypt", `{"KeyId":"` + keyID + `","Plaintext":"!!"}`, 400, "SerializationException", ""},
		{"not an object", "TrentService.ListKeys", `[]`, 400, "SerializationException", ""},
		{"trailing data", "TrentService.ListKeys", `{} {}`, 400, "SerializationException", ""},
		{"truncated", "TrentService.ListKeys", `{"Limit":`, 400, "SerializationException", ""},
		{"too deep", "TrentService.ListKeys", `{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 400, "SerializationException", ""},
		{"Recipient not an object", "TrentService.GenerateRandom", `{"NumberOfBytes":8,"Recipient":"x"}`, 400, "SerializationException", ""},
		{"Recipient members are case-sensitive", "TrentService.GenerateRandom", `{"NumberOfBytes":8,"Recipient":{"keyEncryptionAlgorithm":"RSAES_OAEP_SHA_256","AttestationDocument":"eA=="}}`,
			400, "ValidationException", "1 validation error detected: Value null at 'recipient.keyEncryptionAlgorithm' failed to satisfy constraint: Member must not be null"},
		{"both KeySpec and NumberOfBytes", "TrentService.GenerateDataKey", `{"KeyId":"` + keyID + `","KeySpec":"AES_256","NumberOfBytes":32}`,
			400, "ValidationException", "Please specify either number of bytes or key spec."},
		{"neither KeySpec nor NumberOfBytes", "TrentService.GenerateDataKey", `{"KeyId":"` + keyID + `"}`,
			400, "ValidationException", "Please specify either number of bytes or key spec."},
		{"NumberOfBytes 0", "TrentService.GenerateRandom", `{"NumberOfBytes":0}`, 400, "ValidationException",
			"1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"NumberOfBytes 1025", "TrentService.GenerateDataKey", `{"KeyId":"` + keyID + `","NumberOfBytes":1025}`, 400, "ValidationException", ""},
		{"unknown KeySpec", "TrentService.GenerateDataKey", `{"KeyId":"` + keyID + `","KeySpec":"AES_512"}`, 400, "ValidationException",
			"1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"},
		{"plaintext too long", "TrentService.Encrypt", `{"KeyId":"` + keyID + `","Plaintext":"` + strings.Repeat("AAAA", 1366) + `"}`, 400, "ValidationException",
			"1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"empty key id", "TrentService.DescribeKey", `{"KeyId":""}`, 400, "ValidationException", ""},
		{"malformed key id", "TrentService.DescribeKey", `{"KeyId":"not-a-key"}`, 404, "NotFoundException", "Invalid keyId 'not-a-key'"},
		{"key of another region", "TrentService.DescribeKey", `{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/` + keyID + `"}`, 404, "NotFoundException", ""},
		{"RSA algorithm on a symmetric key", "TrentService.Encrypt", `{"KeyId":"` + keyID + `","Plaintext":"eA==","EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}`, 400, "InvalidKeyUsageException", ""},
		{"asymmetric key", "TrentService.CreateKey", `{"KeySpec":"ECC_SECG_P256K1","KeyUsage":"SIGN_VERIFY"}`, 400, "UnsupportedOperationException", ""},
		{"custom key store", "TrentService.GenerateRandom", `{"NumberOfBytes":8,"CustomKeyStoreId":"cks-1234567890abcdef0"}`, 400, "CustomKeyStoreNotFoundException", ""},
		{"other policy name", "TrentService.GetKeyPolicy", `{"KeyId":"` + keyID + `","PolicyName":"other"}`, 404, "NotFoundException", ""},
		{"malformed policy", "TrentService.PutKeyPolicy", `{"KeyId":"` + keyID + `","Policy":"{\"Statement\":[]}"}`, 400, "MalformedPolicyDocumentException", ""},
		{"unevaluated operator", "TrentService.PutKeyPolicy", `{"KeyId":"` + keyID + `","Policy":` + strconvQuote(
			`{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"a"}}}}`) + `}`,
			400, "MalformedPolicyDocumentException", "statement 1: kmssim does not evaluate the condition operator 'ForAnyValue:StringEquals'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := do(t, f.srv, signed(t, f.srv, DefaultIdentity(), tc.target, tc.body, time.Now(), nil))
			if status != tc.wantStatus || tc.wantType != "" && m["__type"] != tc.wantType || tc.wantMsg != "" && m["message"] != tc.wantMsg {
				t.Fatalf("answer %d %v\nwant %d %s %q", status, m, tc.wantStatus, tc.wantType, tc.wantMsg)
			}
		})
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestAttestationRefused(t *testing.T) {
	stale := newNSM(t, nsmsim.Options{Now: func() time.Time { return time.Now().Add(-24 * time.Hour) }})
	debug := newNSM(t, nsmsim.Options{Debug: true})
	f := newFixture(t, stale, debug)
	ctx := context.Background()
	keyID := createKey(t, f.admin, "")
	docWith := func(n nsm.Device, pub []byte) []byte {
		doc, err := n.Attest(ctx, nsm.AttestRequest{PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSPKI, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallSPKI, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	stranger := newNSM(t, nsmsim.Options{}) // a CA the KMS does not trust

	for _, tc := range []struct {
		name, wantMsg string
		recipient     *types.RecipientInfo
	}{
		{"not a document", "attestation: cose", recipientFor([]byte("not a document"))},
		{"no public key", "carries no public_key", recipientFor(docWith(f.nsm, nil))},
		{"public key not SPKI", "not a DER SubjectPublicKeyInfo", recipientFor(docWith(f.nsm, []byte("raw key bytes")))},
		{"EC public key", "not an RSA key", recipientFor(docWith(f.nsm, ecSPKI))},
		{"RSA-1024", "1024-bit RSA key", recipientFor(docWith(f.nsm, smallSPKI))},
		{"expired", "attestation: validity", recipientFor(attest(t, stale))},
		{"untrusted root", "attestation: root", recipientFor(attest(t, stranger))},
		{"other algorithm", "Member must satisfy enum value set: [RSAES_OAEP_SHA_256]",
			&types.RecipientInfo{KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_1", AttestationDocument: attest(t, f.nsm)}},
		{"no algorithm", "recipient.keyEncryptionAlgorithm", &types.RecipientInfo{AttestationDocument: attest(t, f.nsm)}},
		{"no document", "recipient.attestationDocument", &types.RecipientInfo{KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.admin.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, Recipient: tc.recipient})
			if code(err) != "ValidationException" || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("GenerateDataKey: %v, want ValidationException with %q", err, tc.wantMsg)
			}
		})
	}

	// A debug-mode enclave's document is valid; its all-zero PCR0 is for
	// the policy to refuse.
	pinned := createKey(t, f.admin, enclavePolicy("kms:RecipientAttestation:PCR0", testImage.PCR0[:]))
	_, err := f.encl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(pinned), KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(attest(t, debug))})
	if code(err) != "AccessDeniedException" {
		t.Fatalf("GenerateDataKey by a debug-mode enclave: %v", err)
	}
	if d, _ := f.srv.LastDenial(); d.PCR0 != strings.Repeat("00", 48) {
		t.Errorf("LastDenial.PCR0 = %q", d.PCR0)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A policy naming only the enclave: the admin could never change it.
	locked := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + enclaveRole + `"},"Action":"kms:Decrypt","Resource":"*"}]}`
	if _, err := f.admin.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(locked)}); code(err) != "MalformedPolicyDocumentException" ||
		!strings.Contains(err.Error(), "will not allow you to update the key policy in the future") {
		t.Fatalf("CreateKey with a locking policy: %v", err)
	}
	keyID := createKey(t, f.admin, "")
	if _, err := f.admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(locked)}); code(err) != "MalformedPolicyDocumentException" {
		t.Fatalf("PutKeyPolicy with a locking policy: %v", err)
	}
	if _, err := f.admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(locked), BypassPolicyLockoutSafetyCheck: true}); err != nil {
		t.Fatalf("PutKeyPolicy with BypassPolicyLockoutSafetyCheck: %v", err)
	}
	if _, err := f.admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(openPolicy)}); code(err) != "AccessDeniedException" {
		t.Fatalf("PutKeyPolicy on a locked key: %v", err)
	}
	if _, err := f.admin.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)}); code(err) != "AccessDeniedException" {
		t.Fatalf("DescribeKey on a locked key: %v", err)
	}
	// An identity without an IAM policy cannot make keys.
	if _, err := f.encl.CreateKey(ctx, &kms.CreateKeyInput{}); code(err) != "AccessDeniedException" ||
		!strings.Contains(err.Error(), "is not authorized to perform: kms:CreateKey because no identity-based policy allows the kms:CreateKey action") {
		t.Fatalf("CreateKey by the enclave: %v", err)
	}
}

func TestState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.json")
	s1, err := New(Options{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	c1 := newClient(s1, DefaultIdentity())
	keyID := createKey(t, c1, openPolicy)
	other := createKey(t, c1, "")
	enc, err := c1.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	newPolicy := strings.Replace(openPolicy, "Enable IAM User Permissions", "Changed", 1)
	if _, err := c1.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(newPolicy)}); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}

	s2 := newServer(t, Options{StatePath: path})
	c2 := newClient(s2, DefaultIdentity())
	dec, err := c2.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "kept" {
		t.Fatalf("Decrypt after a restart: %v, %v", dec, err)
	}
	if pol, err := c2.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)}); err != nil || *pol.Policy != newPolicy {
		t.Fatalf("GetKeyPolicy after a restart: %v, %v", pol, err)
	}
	list, err := c2.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(list.Keys) != 2 || *list.Keys[0].KeyId != keyID || *list.Keys[1].KeyId != other {
		t.Fatalf("ListKeys after a restart: %v, %v", list, err)
	}

	for name, edit := range map[string]func(string) string{
		"not JSON":      func(string) string { return "{" },
		"other account": func(s string) string { return strings.Replace(s, DefaultAccountID, "444455556666", 1) },
		"unknown field": func(s string) string { return strings.Replace(s, `"format"`, `"extra": 1, "format"`, 1) },
		"short secret":  func(s string) string { return strings.Replace(s, `"secret": "`, `"secret": "AAAA`+`", "x": "`, 1) },
	} {
		data, _ := os.ReadFile(path)
		bad := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(bad, []byte(edit(string(data))), 0o600)
		if s, err := New(Options{StatePath: bad}); err == nil || !strings.HasPrefix(err.Error(), "kmssim: state: ") {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: New = %v", name, err)
		}
	}
}

// TestEnvelopeMatchesKMS checks the envelope's layout against the real
// CiphertextForRecipient of testdata/aws/kms: given the sample's
// fields, marshalEnvelope writes the sample byte for byte.
func TestEnvelopeMatchesKMS(t *testing.T) {
	data, err := os.ReadFile("../../../testdata/aws/kms/ciphertext_for_recipient_parse_vectors.json")
	if err != nil {
		t.Fatalf("the real KMS samples are missing: %v (they live in testdata/aws/kms)", err)
	}
	var vectors map[string]struct {
		Input string `json:"input_ber_hex"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	sample, err := hex.DecodeString(vectors["aws_kms_sample"].Input)
	if err != nil || len(sample) == 0 {
		t.Fatalf("aws_kms_sample: %v", err)
	}
	env, err := cms.Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	if got := marshalEnvelope(env.SubjectKeyID, env.EncryptedKey, env.IV, env.Ciphertext); !bytes.Equal(got, sample) {
		t.Fatalf("marshalEnvelope:\n got %x\nwant %x", got, sample)
	}
}

func TestConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	keyID := createKey(t, f.admin, enclavePolicy("kms:RecipientAttestation:ImageSha384", testImage.PCR0[:]))
	doc := attest(t, f.nsm)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for range 3 {
				gdk, err := f.encl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, Recipient: recipientFor(doc)})
				if err != nil {
					errs <- err
					return
				}
				if _, err := f.encl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob, Recipient: recipientFor(doc)}); err != nil {
					errs <- err
					return
				}
				if i == 0 {
					if _, err := f.admin.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(enclavePolicy("kms:RecipientAttestation:ImageSha384", testImage.PCR0[:]))}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"bad account", Options{AccountID: "12345"}},
		{"bad region", Options{Region: "US East"}},
		{"empty roots", Options{Roots: []*x509.Certificate{}}},
		{"nil root", Options{Roots: []*x509.Certificate{nil}}},
		{"tiny request cap", Options{MaxRequestSize: 10}},
		{"bad access key", Options{Identities: []Identity{{AccessKeyID: "short", SecretAccessKey: "x", ARN: adminRole}}}},
		{"no secret", Options{Identities: []Identity{{AccessKeyID: DefaultAccessKeyID, ARN: adminRole}}}},
		{"bad ARN", Options{Identities: []Identity{{AccessKeyID: DefaultAccessKeyID, SecretAccessKey: "x", ARN: "arn:aws:s3:::bucket"}}}},
		{"identity policy with a principal", Options{Identities: []Identity{{AccessKeyID: DefaultAccessKeyID, SecretAccessKey: "x", ARN: adminRole,
			Policy: `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`}}}},
		{"duplicate access key", Options{Identities: []Identity{DefaultIdentity(), DefaultIdentity()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("New accepted the options")
			}
			if !strings.HasPrefix(err.Error(), "kmssim: ") || err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestCACertPEM(t *testing.T) {
	s := newServer(t, Options{Hosts: []string{"kms.us-east-1.amazonaws.com", "10.0.0.1"}})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	conn, err := s.Client().Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	conn.Body.Close()
	leaf := conn.TLS.PeerCertificates[0]
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "kms.us-east-1.amazonaws.com", "10.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("the certificate is not valid for %s: %v", host, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("a second Close:", err)
	}
	if _, err := s.Client().Get(s.URL() + "/"); err == nil {
		t.Fatal("the server answers after Close")
	}
}

func ExampleServer_LastDenial() {
	srv, err := New(Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	// ... the enclave's Decrypt was refused ...
	if d, ok := srv.LastDenial(); ok {
		fmt.Printf("KMS refused %s: the policy expects image %v, the enclave is %s\n", d.Action, d.Expected, d.ImageSHA384)
	}
	// Output:
}
