package kms

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// PolicyOptions are the inputs of KeyPolicy.
type PolicyOptions struct {
	// PCR0 is the enclave image's measurement (48 bytes, SHA-384), as
	// nitro-cli build-enclave prints it. Several may be given during an
	// image upgrade.
	PCR0 [][]byte
	// Account is the AWS account id that administers the key (12 digits).
	Account string
	// Role is the ARN of the parent instance's role, which calls KMS on
	// the enclave's behalf (the enclave's requests carry its credentials).
	Role string
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	rolePattern    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
)

// Placeholders used when an option is not given, so that the printed
// policy cannot be applied by mistake without editing.
const (
	placeholderAccount = "ACCOUNT_ID"
	placeholderRole    = "arn:aws:iam::ACCOUNT_ID:role/ENCLAVE_PARENT_ROLE"
)

type statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Principal map[string]any            `json:"Principal"`
	Action    []string                  `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

type keyPolicy struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id"`
	Statement []statement `json:"Statement"`
}

// Key import: an operator encrypts an existing private key under the
// sealing key with KMS Encrypt and this encryption context (plus
// "nitrosign:key-id": the new key's id); only the attested enclave can
// decrypt it. The key policy allows Encrypt with this purpose only, so that
// nobody can make a ciphertext blob of a data key of their choosing, for a
// forged sealed seed.
const (
	ImportContextKey = "kms:EncryptionContext:nitrosign:purpose"
	ImportPurpose    = "key-import"
)

// attestedActions are the key operations the enclave uses with a Recipient.
// (GenerateRandom is not tied to a key, so a key policy cannot govern it:
// the role's IAM policy must pin the image for it.)
var attestedActions = []string{"kms:Decrypt", "kms:GenerateDataKey"}

// KeyPolicy returns a KMS key policy (JSON) that lets Role use the key for
// Decrypt and GenerateDataKey only with a Recipient
// attestation document of one of the given images, and explicitly denies
// those operations to everyone otherwise, whatever other statements or IAM
// policies allow. Administration stays with the account, without the
// right to decrypt.
func KeyPolicy(o PolicyOptions) ([]byte, error) {
	if len(o.PCR0) == 0 {
		return nil, errors.New("kms: at least one PCR0 is required")
	}
	var pcrs []string
	for i, p := range o.PCR0 {
		if len(p) != 48 {
			return nil, fmt.Errorf("kms: PCR0 #%d: want 48 bytes (SHA-384), got %d", i+1, len(p))
		}
		if strings.Trim(hex.EncodeToString(p), "0") == "" {
			return nil, fmt.Errorf("kms: PCR0 #%d is all zeros: that is a debug-mode enclave, whose memory the parent can read; never release keys to it", i+1)
		}
		pcrs = append(pcrs, hex.EncodeToString(p))
	}
	account, role := placeholderAccount, placeholderRole
	if o.Account != "" {
		if !accountPattern.MatchString(o.Account) {
			return nil, fmt.Errorf("kms: account %q: want 12 digits", o.Account)
		}
		account = o.Account
	}
	if o.Role != "" {
		if !rolePattern.MatchString(o.Role) {
			return nil, fmt.Errorf("kms: role %q: want an IAM role ARN", o.Role)
		}
		role = o.Role
	}
	var values any = pcrs[0]
	if len(pcrs) > 1 {
		values = pcrs
	}
	p := keyPolicy{
		Version: "2012-10-17",
		ID:      "nitrosign-sealing-key",
		Statement: []statement{
			{
				Sid:       "KeyAdministrationWithoutUse",
				Effect:    "Allow",
				Principal: map[string]any{"AWS": "arn:aws:iam::" + account + ":root"},
				Action: []string{
					"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
					"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
					"kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
				},
				Resource: "*",
			},
			{
				Sid:       "EnclaveUseWithAttestation",
				Effect:    "Allow",
				Principal: map[string]any{"AWS": role},
				Action:    attestedActions,
				Resource:  "*",
				Condition: map[string]map[string]any{
					"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": values},
				},
			},
			{
				Sid:       "DenyUseWithoutAttestation",
				Effect:    "Deny",
				Principal: map[string]any{"AWS": "*"},
				Action:    attestedActions,
				Resource:  "*",
				Condition: map[string]map[string]any{
					"Null": {"kms:RecipientAttestation:ImageSha384": "true"},
				},
			},
			{
				Sid:       "DenyUseByOtherImages",
				Effect:    "Deny",
				Principal: map[string]any{"AWS": "*"},
				Action:    attestedActions,
				Resource:  "*",
				Condition: map[string]map[string]any{
					"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": values},
				},
			},
			{
				Sid:       "OperatorKeyImport",
				Effect:    "Allow",
				Principal: map[string]any{"AWS": "arn:aws:iam::" + account + ":root"},
				Action:    []string{"kms:Encrypt"},
				Resource:  "*",
				Condition: map[string]map[string]any{
					"StringEquals": {ImportContextKey: ImportPurpose},
				},
			},
			{
				Sid:       "DenyEncryptExceptKeyImport",
				Effect:    "Deny",
				Principal: map[string]any{"AWS": "*"},
				Action:    []string{"kms:Encrypt"},
				Resource:  "*",
				Condition: map[string]map[string]any{
					"StringNotEquals": {ImportContextKey: ImportPurpose},
				},
			},
		},
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return append(b, '\n'), nil
}
