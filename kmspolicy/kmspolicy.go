// Package kmspolicy writes the key policy of the KMS key that seals the
// enclave's seed: decryption only for the attested enclave image (its PCR0),
// and, in the locked variant, no administration by the account. It is
// operator tooling (nitrosign kms-policy) and never runs in the enclave;
// see docs/kms.md.
package kmspolicy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Options are the inputs of KeyPolicy.
type Options struct {
	// PCR0 is the enclave image's measurement (48 bytes, SHA-384), as
	// nitro-cli build-enclave prints it. Several may be given during an
	// image upgrade.
	PCR0 [][]byte
	// Account is the AWS account id that administers the key (12 digits).
	Account string
	// Role is the ARN of the parent instance's role, which calls KMS on
	// the enclave's behalf (the enclave's requests carry its credentials).
	Role string

	// Locked gives the account no right to administer the key: it may
	// only read the key's metadata and policy, and encrypt keys to import.
	// Every other operation except the enclave's attested use is denied
	// to every principal but Admin (see LockedActions), so no IAM policy
	// in the account, the instance role's included, can change the key
	// policy, grant, disable or delete the key. AWS refuses to apply such
	// a policy unless the caller is Admin or passes
	// BypassPolicyLockoutSafetyCheck; see docs/kms.md.
	Locked bool
	// Admin, with Locked, is the ARN of the one principal (an IAM role or
	// user, or an account's root user) that keeps the right to administer
	// the key, its policy included. It may not be Role. Empty means
	// nobody: the policy can never be changed again, and the key never
	// disabled or deleted.
	Admin string
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	rolePattern    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	adminPattern   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:(root|(role|user)/[A-Za-z0-9+=,.@_/-]{1,512})$`)
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
	Action    []string                  `json:"Action,omitempty"`
	NotAction []string                  `json:"NotAction,omitempty"`
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

// adminActions are the administrative actions: everything but using the
// key. In the standard policy the account holds them (and IAM policies may
// delegate them); in a locked one only the admin principal, if any.
var adminActions = []string{
	"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
	"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
	"kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
}

// readActions are what the account keeps in a locked policy: reading the
// key's metadata, policy, grants and rotation status, which changes
// nothing.
var readActions = []string{"kms:Describe*", "kms:Get*", "kms:List*"}

// LockedActions are the only operations that a locked policy leaves open
// to principals other than its admin: the enclave's attested use (itself
// restricted by the attestation statements), Encrypt (restricted to the
// key-import purpose) and reading. Everything else, the actions AWS adds
// in the future included, is denied by NotAction: PutKeyPolicy,
// CreateGrant, ReEncrypt*, ReplicateKey, DisableKey, ScheduleKeyDeletion,
// ImportKeyMaterial, tagging (which IAM conditions may rely on), and so on.
var LockedActions = append(append([]string{}, attestedActions...), append([]string{"kms:Encrypt"}, readActions...)...)

// bypassActions are denied to everyone in a locked policy, the admin
// included: none is needed by nitrosign, and each is a way around the
// attestation statements that does not show as a policy change. A grant
// can allow ReEncryptFrom, and ReEncrypt decrypts inside KMS, without a
// Recipient, to re-encrypt the data key under a key of the caller's
// choosing; a multi-Region replica carries its own key policy. The admin
// can still lift this, visibly, with PutKeyPolicy.
var bypassActions = []string{"kms:CreateGrant", "kms:ReEncrypt*", "kms:ReplicateKey", "kms:UpdatePrimaryRegion"}

// KeyPolicy returns a KMS key policy (JSON) that lets Role use the key for
// Decrypt and GenerateDataKey only with a Recipient
// attestation document of one of the given images, and explicitly denies
// those operations to everyone otherwise, whatever other statements or IAM
// policies allow. Administration stays with the account, without the
// right to decrypt; or, with Locked, with Admin only, or with nobody.
func KeyPolicy(o Options) ([]byte, error) {
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
	admin := ""
	switch {
	case o.Admin != "" && !o.Locked:
		return nil, errors.New("kms: an admin principal is only for a locked policy")
	case o.Admin != "" && !adminPattern.MatchString(o.Admin):
		return nil, fmt.Errorf("kms: admin principal %q: want the ARN of an IAM role, an IAM user or an account's root user", o.Admin)
	case o.Admin != "" && strings.EqualFold(o.Admin, role):
		return nil, errors.New("kms: the admin principal must not be the instance role: the role would administer (and could re-policy) the key it uses")
	case o.Admin != "":
		admin = o.Admin
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
				Action:    adminActions,
				Resource:  "*",
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
	if o.Locked {
		lock(&p, account, admin)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return append(b, '\n'), nil
}

// lock turns the standard policy into the locked one: the account only
// reads; admin, if any, administers; everyone else is denied every action
// but LockedActions; and nobody may use the bypassActions.
func lock(p *keyPolicy, account, admin string) {
	p.ID = "nitrosign-sealing-key-locked"
	p.Statement[0] = statement{
		Sid:       "KeyReadOnly",
		Effect:    "Allow",
		Principal: map[string]any{"AWS": "arn:aws:iam::" + account + ":root"},
		Action:    readActions,
		Resource:  "*",
	}
	deny := statement{
		Sid:       "DenyAdministration",
		Effect:    "Deny",
		Principal: map[string]any{"AWS": "*"},
		NotAction: LockedActions,
		Resource:  "*",
	}
	if admin != "" {
		p.Statement = append(p.Statement, statement{
			Sid:       "KeyAdministrationByAdminOnly",
			Effect:    "Allow",
			Principal: map[string]any{"AWS": admin},
			Action:    adminActions,
			Resource:  "*",
		})
		deny.Sid = "DenyAdministrationExceptAdmin"
		// aws:PrincipalArn is the role's ARN for any session of it (not
		// the assumed-role session ARN), the user's, or the root user's.
		deny.Condition = map[string]map[string]any{"ArnNotEquals": {"aws:PrincipalArn": admin}}
	}
	p.Statement = append(p.Statement, deny, statement{
		Sid:       "DenyAttestationBypass",
		Effect:    "Deny",
		Principal: map[string]any{"AWS": "*"},
		Action:    bypassActions,
		Resource:  "*",
	})
}
