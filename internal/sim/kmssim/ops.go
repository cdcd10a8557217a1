package kmssim

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// call is one authenticated request.
type call struct {
	op   string
	id   *identity
	body []byte
	now  time.Time
	// encCtx is the request's encryption context, for the
	// kms:EncryptionContext:KEY condition keys.
	encCtx map[string]string
}

// operations are the KMS operations the simulator serves, by name.
var operations = map[string]func(*Server, *call) (any, *apiError){
	"CreateKey":       (*Server).createKey,
	"DescribeKey":     (*Server).describeKey,
	"ListKeys":        (*Server).listKeys,
	"GetKeyPolicy":    (*Server).getKeyPolicy,
	"PutKeyPolicy":    (*Server).putKeyPolicy,
	"Encrypt":         (*Server).encrypt,
	"Decrypt":         (*Server).decrypt,
	"GenerateDataKey": (*Server).generateDataKey,
	"GenerateRandom":  (*Server).generateRandom,
}

// Enumerations of the KMS API that inputs are validated against.
var (
	keySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2",
		"ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
	keyUsages            = []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"}
	origins              = []string{"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
	dataKeySpecs         = []string{"AES_256", "AES_128"}
	encryptionAlgorithms = []string{"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"}
)

const symmetricDefault = "SYMMETRIC_DEFAULT"

// DefaultKeyPolicy returns the key policy that CreateKey gives a key when
// the request has none. It is AWS's default key policy (the account may
// use the key as its IAM policies allow) plus one statement AWS's lacks:
// Decrypt and GenerateDataKey are denied to everyone unless the request
// carries a Recipient attestation document, so that only an enclave can
// see plaintext. It pins no image: the policy that `nitrosign kms-policy`
// prints does.
func DefaultKeyPolicy(accountID string) string {
	return `{
  "Version": "2012-10-17",
  "Id": "kmssim-default",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::` + accountID + `:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Deny plaintext outside an attested enclave (kmssim default)",
      "Effect": "Deny",
      "Principal": "*",
      "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
      "Resource": "*",
      "Condition": {"Null": {"kms:RecipientAttestation:ImageSha384": "true"}}
    }
  ]
}`
}

// getKey resolves a KeyId under the lock. Keys are never changed in place
// (PutKeyPolicy replaces the key), so the caller may use it unlocked.
func (s *Server) getKey(keyID string) (*key, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupKey(keyID)
}

// authorize evaluates the policies for the request, as evaluate describes,
// with a context of the caller's ARN and account and, with a Recipient,
// its attestation. k is nil for requests on no key; p is the key policy to
// evaluate (k's, or the new one of a lockout check). A refusal is recorded
// for LastDenial and answered with AccessDeniedException in AWS's words.
func (s *Server) authorize(c *call, action string, k *key, p *policy, rc *recipient) *apiError {
	resource := "*"
	if k != nil {
		resource = k.arn
	}
	principalARN := c.id.ARN
	if c.id.role != "" {
		principalARN = "arn:aws:iam::" + c.id.account + ":role/" + c.id.role
	}
	ctx := map[string]string{
		keyPrincipalARN:  principalARN,
		keyPrincipalAcct: c.id.account,
		keyCallerAccount: c.id.account,
	}
	rc.context(ctx)
	for k, v := range c.encCtx {
		ctx[strings.ToLower(keyEncryptionContextPrefix+k)] = v
	}
	d := evaluate(p, c.id, action, resource, ctx)
	if d.allowed {
		return nil
	}
	on, keyARN := "", ""
	if k != nil {
		on, keyARN = " on resource: "+k.arn, k.arn
	}
	kind, article := "resource-based", "a"
	if d.identity {
		kind, article = "identity-based", "an"
	}
	var msg string
	if d.explicit {
		msg = fmt.Sprintf("User: %s is not authorized to perform: %s%s with an explicit deny in %s %s policy",
			c.id.ARN, action, on, article, kind)
	} else {
		msg = fmt.Sprintf("User: %s is not authorized to perform: %s%s because no %s policy allows the %s action",
			c.id.ARN, action, on, kind, action)
	}
	denial := &Denial{
		Time:           c.now,
		Operation:      c.op,
		Action:         action,
		Principal:      c.id.ARN,
		Resource:       keyARN,
		Explicit:       d.explicit,
		StatementSID:   d.sid,
		IdentityPolicy: d.identity,
		ImageSHA384:    rc.measurement(),
		PCR0:           rc.measurement(),
		Expected:       d.expected,
		Message:        msg,
	}
	s.mu.Lock()
	s.lastDenial = denial
	s.mu.Unlock()
	return &apiError{status: http.StatusBadRequest, code: "AccessDeniedException", message: msg, upper: true}
}

// lockoutCheck refuses a key policy that would not let the caller put a
// key policy again, as KMS does unless BypassPolicyLockoutSafetyCheck.
func (s *Server) lockoutCheck(c *call, k *key, p *policy, bypass *bool) *apiError {
	if bypass != nil && *bypass {
		return nil
	}
	ctx := map[string]string{keyPrincipalAcct: c.id.account, keyCallerAccount: c.id.account}
	if evaluate(p, c.id, "kms:PutKeyPolicy", k.arn, ctx).allowed {
		return nil
	}
	return errMalformedPolicy("The new key policy will not allow you to update the key policy in the future.")
}

// keyMetadata is KeyMetadata as DescribeKey and CreateKey return it.
type keyMetadata struct {
	AWSAccountId          string
	KeyId                 string
	Arn                   string
	CreationDate          epochSeconds
	Enabled               bool
	Description           string
	KeyUsage              string
	KeyState              string
	Origin                string
	KeyManager            string
	CustomerMasterKeySpec string
	KeySpec               string
	EncryptionAlgorithms  []string
	MultiRegion           bool
	CurrentKeyMaterialId  string
}

func (s *Server) metadata(k *key) keyMetadata {
	return keyMetadata{
		AWSAccountId:          s.account,
		KeyId:                 k.id,
		Arn:                   k.arn,
		CreationDate:          epochSeconds(k.created),
		Enabled:               true,
		Description:           k.description,
		KeyUsage:              "ENCRYPT_DECRYPT",
		KeyState:              "Enabled",
		Origin:                "AWS_KMS",
		KeyManager:            "CUSTOMER",
		CustomerMasterKeySpec: symmetricDefault,
		KeySpec:               symmetricDefault,
		EncryptionAlgorithms:  []string{symmetricDefault},
		MultiRegion:           false,
		CurrentKeyMaterialId:  k.materialID(),
	}
}

type createKeyInput struct {
	Policy                         *string
	Description                    *string
	KeyUsage                       *string
	KeySpec                        *string
	CustomerMasterKeySpec          *string
	Origin                         *string
	CustomKeyStoreId               *string
	XksKeyId                       *string
	MultiRegion                    *bool
	BypassPolicyLockoutSafetyCheck *bool
}

func (s *Server) createKey(c *call) (any, *apiError) {
	var in createKeyInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.strLen("policy", in.Policy, 1, maxPolicySize)
	v.strLen("description", in.Description, 0, 8192)
	v.enum("keyUsage", in.KeyUsage, keyUsages...)
	v.enum("keySpec", in.KeySpec, keySpecs...)
	v.enum("customerMasterKeySpec", in.CustomerMasterKeySpec, keySpecs...)
	v.enum("origin", in.Origin, origins...)
	if err := v.err(); err != nil {
		return nil, err
	}
	for _, spec := range []*string{in.KeySpec, in.CustomerMasterKeySpec} {
		if spec != nil && *spec != symmetricDefault {
			return nil, errUnsupported("kmssim has symmetric encryption keys only (KeySpec SYMMETRIC_DEFAULT), not %s", *spec)
		}
	}
	switch {
	case in.KeyUsage != nil && *in.KeyUsage != "ENCRYPT_DECRYPT":
		return nil, errUnsupported("kmssim has symmetric encryption keys only (KeyUsage ENCRYPT_DECRYPT), not %s", *in.KeyUsage)
	case in.Origin != nil && *in.Origin != "AWS_KMS":
		return nil, errUnsupported("kmssim makes its own key material only (Origin AWS_KMS), not %s", *in.Origin)
	case in.MultiRegion != nil && *in.MultiRegion:
		return nil, errUnsupported("kmssim has no multi-Region keys")
	case in.XksKeyId != nil:
		return nil, errUnsupported("kmssim has no external key stores")
	case in.CustomKeyStoreId != nil:
		return nil, newError(http.StatusBadRequest, "CustomKeyStoreNotFoundException", "Custom key store %s does not exist", quote(*in.CustomKeyStoreId))
	}
	if err := s.authorize(c, "kms:CreateKey", nil, nil, nil); err != nil {
		return nil, err
	}
	text := DefaultKeyPolicy(s.account)
	if in.Policy != nil {
		text = *in.Policy
	}
	p, err := parsePolicy(text, true)
	if err != nil {
		return nil, errMalformedPolicy("%v", err)
	}
	description := ""
	if in.Description != nil {
		description = *in.Description
	}
	secret := make([]byte, secretSize)
	rand.Read(secret)
	k, err := s.newKey(newUUID(), secret, c.now.UTC(), description, text, p)
	clear(secret)
	if err != nil {
		return nil, errInternal("%v", err)
	}
	if apiErr := s.lockoutCheck(c, k, p, in.BypassPolicyLockoutSafetyCheck); apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) >= maxKeys {
		return nil, newError(http.StatusBadRequest, "LimitExceededException", "kmssim holds at most %d keys", maxKeys)
	}
	s.keys[k.id] = k
	s.order = append(s.order, k.id)
	if err := s.save(); err != nil {
		delete(s.keys, k.id)
		s.order = s.order[:len(s.order)-1]
		return nil, errInternal("%v", err)
	}
	return struct{ KeyMetadata keyMetadata }{s.metadata(k)}, nil
}

type keyIDInput struct {
	KeyId *string
}

// keyFor validates and resolves the KeyId of an input.
func (s *Server) keyFor(keyID *string) (*key, *apiError) {
	var v validation
	v.required("keyId", keyID != nil)
	v.strLen("keyId", keyID, 1, 2048)
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.getKey(*keyID)
}

func (s *Server) describeKey(c *call) (any, *apiError) {
	var in keyIDInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	k, err := s.keyFor(in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "kms:DescribeKey", k, k.policy, nil); err != nil {
		return nil, err
	}
	return struct{ KeyMetadata keyMetadata }{s.metadata(k)}, nil
}

type listKeysInput struct {
	Limit  *int32
	Marker *string
}

type keyListEntry struct {
	KeyId  string
	KeyArn string
}

type listKeysOutput struct {
	Keys       []keyListEntry
	NextMarker string `json:",omitempty"`
	Truncated  bool
}

func (s *Server) listKeys(c *call) (any, *apiError) {
	var in listKeysInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.intRange("limit", in.Limit, 1, 1000)
	v.strLen("marker", in.Marker, 1, 1024)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := s.authorize(c, "kms:ListKeys", nil, nil, nil); err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if in.Marker != nil {
		i := slices.Index(s.order, *in.Marker)
		if i < 0 {
			return nil, newError(http.StatusBadRequest, "InvalidMarkerException", "Invalid marker %s", quote(*in.Marker))
		}
		start = i + 1
	}
	out := listKeysOutput{Keys: []keyListEntry{}}
	for _, id := range s.order[start:] {
		if len(out.Keys) == limit {
			out.Truncated = true
			out.NextMarker = out.Keys[len(out.Keys)-1].KeyId
			break
		}
		out.Keys = append(out.Keys, keyListEntry{KeyId: id, KeyArn: s.keys[id].arn})
	}
	return out, nil
}

type keyPolicyInput struct {
	KeyId                          *string
	PolicyName                     *string
	Policy                         *string
	BypassPolicyLockoutSafetyCheck *bool
}

// policyName checks PolicyName, which is "default" if given: a key has one
// policy.
func policyName(name *string) *apiError {
	var v validation
	v.strLen("policyName", name, 1, 128)
	if err := v.err(); err != nil {
		return err
	}
	if name != nil && *name != "default" {
		return errNotFound("No such policy exists: %s (a key's only policy is \"default\")", quote(*name))
	}
	return nil
}

func (s *Server) getKeyPolicy(c *call) (any, *apiError) {
	var in keyPolicyInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	k, err := s.keyFor(in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := policyName(in.PolicyName); err != nil {
		return nil, err
	}
	if err := s.authorize(c, "kms:GetKeyPolicy", k, k.policy, nil); err != nil {
		return nil, err
	}
	return struct{ Policy, PolicyName string }{k.policyText, "default"}, nil
}

func (s *Server) putKeyPolicy(c *call) (any, *apiError) {
	var in keyPolicyInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.required("keyId", in.KeyId != nil)
	v.strLen("keyId", in.KeyId, 1, 2048)
	v.required("policy", in.Policy != nil)
	v.strLen("policy", in.Policy, 1, maxPolicySize)
	if err := v.err(); err != nil {
		return nil, err
	}
	k, err := s.getKey(*in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := policyName(in.PolicyName); err != nil {
		return nil, err
	}
	if err := s.authorize(c, "kms:PutKeyPolicy", k, k.policy, nil); err != nil {
		return nil, err
	}
	p, perr := parsePolicy(*in.Policy, true)
	if perr != nil {
		return nil, errMalformedPolicy("%v", perr)
	}
	if err := s.lockoutCheck(c, k, p, in.BypassPolicyLockoutSafetyCheck); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.keys[k.id]
	if !ok {
		return nil, errNotFound("Key '%s' does not exist", k.arn)
	}
	next := *cur
	next.policyText, next.policy = *in.Policy, p
	s.keys[k.id] = &next
	if err := s.save(); err != nil {
		s.keys[k.id] = cur
		return nil, errInternal("%v", err)
	}
	return struct{}{}, nil
}

// checkAlgorithm checks EncryptionAlgorithm: a symmetric key takes
// SYMMETRIC_DEFAULT only.
func checkAlgorithm(alg *string) *apiError {
	var v validation
	v.enum("encryptionAlgorithm", alg, encryptionAlgorithms...)
	if err := v.err(); err != nil {
		return err
	}
	if alg != nil && *alg != symmetricDefault {
		return newError(http.StatusBadRequest, "InvalidKeyUsageException",
			"The encryption algorithm %s is not compatible with the type of key (SYMMETRIC_DEFAULT).", *alg)
	}
	return nil
}

type encryptInput struct {
	KeyId               *string
	Plaintext           []byte
	EncryptionContext   map[string]string
	EncryptionAlgorithm *string
	DryRun              *bool
}

type encryptOutput struct {
	CiphertextBlob      []byte
	KeyId               string
	EncryptionAlgorithm string
}

func (s *Server) encrypt(c *call) (any, *apiError) {
	var in encryptInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.required("keyId", in.KeyId != nil)
	v.strLen("keyId", in.KeyId, 1, 2048)
	v.required("plaintext", in.Plaintext != nil)
	v.blobLen("plaintext", in.Plaintext, 1, 4096)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkAlgorithm(in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	k, err := s.getKey(*in.KeyId)
	if err != nil {
		return nil, err
	}
	c.encCtx = in.EncryptionContext
	if err := s.authorize(c, "kms:Encrypt", k, k.policy, nil); err != nil {
		return nil, err
	}
	if in.DryRun != nil && *in.DryRun {
		return nil, errDryRun()
	}
	return encryptOutput{CiphertextBlob: k.seal(in.Plaintext, in.EncryptionContext), KeyId: k.arn, EncryptionAlgorithm: symmetricDefault}, nil
}

// plaintextOutput holds the plaintext of Decrypt, GenerateDataKey and
// GenerateRandom: Plaintext, or with a Recipient CiphertextForRecipient
// alone (AWS leaves Plaintext out then).
type plaintextOutput struct {
	CiphertextBlob         []byte `json:",omitempty"`
	Plaintext              []byte `json:",omitempty"`
	CiphertextForRecipient []byte `json:",omitempty"`
	KeyId                  string `json:",omitempty"`
	KeyMaterialId          string `json:",omitempty"`
	EncryptionAlgorithm    string `json:",omitempty"`
}

// deliver puts plaintext into out: in clear, or enveloped for rc.
func deliver(out *plaintextOutput, plaintext []byte, rc *recipient, k *key) *apiError {
	if rc == nil {
		out.Plaintext = plaintext
		if k != nil {
			out.KeyMaterialId = k.materialID()
		}
		return nil
	}
	defer clear(plaintext)
	env, err := rc.envelope(plaintext)
	if err != nil {
		return errInternal("%v", err)
	}
	out.CiphertextForRecipient = env
	return nil
}

type decryptInput struct {
	CiphertextBlob      []byte
	KeyId               *string
	EncryptionContext   map[string]string
	EncryptionAlgorithm *string
	Recipient           *recipientInfo
	DryRun              *bool
}

func (s *Server) decrypt(c *call) (any, *apiError) {
	var in decryptInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.required("ciphertextBlob", in.CiphertextBlob != nil)
	v.blobLen("ciphertextBlob", in.CiphertextBlob, 1, 6144)
	v.strLen("keyId", in.KeyId, 1, 2048)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkAlgorithm(in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	var named *key
	if in.KeyId != nil {
		var err *apiError
		if named, err = s.getKey(*in.KeyId); err != nil {
			return nil, err
		}
	}
	id, ok := blobKeyID(in.CiphertextBlob)
	if !ok {
		return nil, errInvalidCiphertext()
	}
	s.mu.Lock()
	k := s.keys[id]
	s.mu.Unlock()
	if k == nil {
		return nil, errInvalidCiphertext()
	}
	if named != nil && named.id != k.id {
		return nil, errIncorrectKey()
	}
	var rc *recipient
	if in.Recipient != nil {
		var err *apiError
		if rc, err = s.verifyRecipient(in.Recipient, c.now); err != nil {
			return nil, err
		}
	}
	c.encCtx = in.EncryptionContext
	if err := s.authorize(c, "kms:Decrypt", k, k.policy, rc); err != nil {
		return nil, err
	}
	if in.DryRun != nil && *in.DryRun {
		return nil, errDryRun()
	}
	pt, err := k.open(in.CiphertextBlob, in.EncryptionContext)
	if err != nil {
		return nil, errInvalidCiphertext()
	}
	out := plaintextOutput{KeyId: k.arn, EncryptionAlgorithm: symmetricDefault}
	if apiErr := deliver(&out, pt, rc, k); apiErr != nil {
		return nil, apiErr
	}
	return out, nil
}

type generateDataKeyInput struct {
	KeyId             *string
	KeySpec           *string
	NumberOfBytes     *int32
	EncryptionContext map[string]string
	Recipient         *recipientInfo
	DryRun            *bool
}

func (s *Server) generateDataKey(c *call) (any, *apiError) {
	var in generateDataKeyInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.required("keyId", in.KeyId != nil)
	v.strLen("keyId", in.KeyId, 1, 2048)
	v.enum("keySpec", in.KeySpec, dataKeySpecs...)
	v.intRange("numberOfBytes", in.NumberOfBytes, 1, 1024)
	if err := v.err(); err != nil {
		return nil, err
	}
	if (in.KeySpec == nil) == (in.NumberOfBytes == nil) {
		return nil, newError(http.StatusBadRequest, "ValidationException", "Please specify either number of bytes or key spec.")
	}
	n := 0
	switch {
	case in.NumberOfBytes != nil:
		n = int(*in.NumberOfBytes)
	case *in.KeySpec == "AES_256":
		n = 32
	default:
		n = 16
	}
	k, err := s.getKey(*in.KeyId)
	if err != nil {
		return nil, err
	}
	var rc *recipient
	if in.Recipient != nil {
		if rc, err = s.verifyRecipient(in.Recipient, c.now); err != nil {
			return nil, err
		}
	}
	c.encCtx = in.EncryptionContext
	if err := s.authorize(c, "kms:GenerateDataKey", k, k.policy, rc); err != nil {
		return nil, err
	}
	if in.DryRun != nil && *in.DryRun {
		return nil, errDryRun()
	}
	dataKey := make([]byte, n)
	rand.Read(dataKey)
	out := plaintextOutput{CiphertextBlob: k.seal(dataKey, in.EncryptionContext), KeyId: k.arn}
	if err := deliver(&out, dataKey, rc, k); err != nil {
		return nil, err
	}
	return out, nil
}

type generateRandomInput struct {
	NumberOfBytes    *int32
	CustomKeyStoreId *string
	Recipient        *recipientInfo
}

func (s *Server) generateRandom(c *call) (any, *apiError) {
	var in generateRandomInput
	if err := decodeInput(c.body, &in); err != nil {
		return nil, err
	}
	var v validation
	v.required("numberOfBytes", in.NumberOfBytes != nil)
	v.intRange("numberOfBytes", in.NumberOfBytes, 1, 1024)
	v.strLen("customKeyStoreId", in.CustomKeyStoreId, 1, 64)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != nil {
		return nil, newError(http.StatusBadRequest, "CustomKeyStoreNotFoundException", "Custom key store %s does not exist", quote(*in.CustomKeyStoreId))
	}
	var rc *recipient
	if in.Recipient != nil {
		var err *apiError
		if rc, err = s.verifyRecipient(in.Recipient, c.now); err != nil {
			return nil, err
		}
	}
	if err := s.authorize(c, "kms:GenerateRandom", nil, nil, rc); err != nil {
		return nil, err
	}
	b := make([]byte, *in.NumberOfBytes)
	rand.Read(b)
	var out plaintextOutput
	if err := deliver(&out, b, rc, nil); err != nil {
		return nil, err
	}
	return out, nil
}
