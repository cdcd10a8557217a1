package kmspolicy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func pcr(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }

func TestKeyPolicy(t *testing.T) {
	out, err := KeyPolicy(Options{PCR0: [][]byte{pcr(0xab)}, Account: "123456789012", Role: "arn:aws:iam::123456789012:role/signer-parent"})
	if err != nil {
		t.Fatal(err)
	}
	var p keyPolicy
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(pcr(0xab))
	if len(p.Statement) != 6 {
		t.Fatalf("%d statements", len(p.Statement))
	}
	admin, allow, denyNull, denyOther := p.Statement[0], p.Statement[1], p.Statement[2], p.Statement[3]
	for _, a := range admin.Action {
		if a == "kms:*" || a == "kms:Decrypt" || strings.HasPrefix(a, "kms:Generate") {
			t.Errorf("administration may use the key: %s", a)
		}
	}
	if allow.Effect != "Allow" || allow.Principal["AWS"] != "arn:aws:iam::123456789012:role/signer-parent" ||
		allow.Condition["StringEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] != want {
		t.Errorf("allow statement %+v", allow)
	}
	if denyNull.Effect != "Deny" || denyNull.Principal["AWS"] != "*" || denyNull.Condition["Null"]["kms:RecipientAttestation:ImageSha384"] != "true" {
		t.Errorf("deny-without-attestation statement %+v", denyNull)
	}
	if denyOther.Effect != "Deny" || denyOther.Condition["StringNotEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] != want {
		t.Errorf("deny-other-images statement %+v", denyOther)
	}
	importAllow, denyEncrypt := p.Statement[4], p.Statement[5]
	if importAllow.Effect != "Allow" || strings.Join(importAllow.Action, ",") != "kms:Encrypt" ||
		importAllow.Condition["StringEquals"]["kms:EncryptionContext:nitrosign:purpose"] != "key-import" {
		t.Errorf("import statement %+v", importAllow)
	}
	if denyEncrypt.Effect != "Deny" || denyEncrypt.Principal["AWS"] != "*" || strings.Join(denyEncrypt.Action, ",") != "kms:Encrypt" ||
		denyEncrypt.Condition["StringNotEquals"]["kms:EncryptionContext:nitrosign:purpose"] != "key-import" {
		t.Errorf("encrypt deny statement %+v", denyEncrypt)
	}
	for _, s := range []statement{allow, denyNull, denyOther} {
		if strings.Join(s.Action, ",") != "kms:Decrypt,kms:GenerateDataKey" {
			t.Errorf("%s actions %v", s.Sid, s.Action)
		}
	}
}

func TestKeyPolicyUpgradeListsBothImages(t *testing.T) {
	out, err := KeyPolicy(Options{PCR0: [][]byte{pcr(1), pcr(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(hex.EncodeToString(pcr(1)))) || !bytes.Contains(out, []byte(hex.EncodeToString(pcr(2)))) {
		t.Error("an image is missing")
	}
	if !bytes.Contains(out, []byte(placeholderRole)) || !bytes.Contains(out, []byte(placeholderAccount)) {
		t.Error("without --account and --role, placeholders must make the policy unusable as is")
	}
}

func TestKeyPolicyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		msg  string
	}{
		{"no PCR0", Options{}, "required"},
		{"short PCR0", Options{PCR0: [][]byte{make([]byte, 32)}}, "48 bytes"},
		{"debug-mode PCR0", Options{PCR0: [][]byte{make([]byte, 48)}}, "debug-mode"},
		{"bad account", Options{PCR0: [][]byte{pcr(1)}, Account: "12345"}, "12 digits"},
		{"bad role", Options{PCR0: [][]byte{pcr(1)}, Role: "arn:aws:iam::123456789012:user/bob"}, "role ARN"},
	} {
		if _, err := KeyPolicy(tc.o); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.msg)
		}
	}
}

// A request to KMS, for evalPolicy: who (principal ARN and account), which
// action, and the request's condition keys.
type kmsRequest struct {
	principal, account, action string
	keys                       map[string]string
}

// evalPolicy decides req under the key policy p the way KMS does, for the
// statement forms KeyPolicy writes: an explicit Deny wins, then any Allow,
// else the implicit deny. It assumes the worst of the account's IAM
// policies: a statement naming an account's root ARN allows every
// principal of that account (IAM may delegate it to anyone there).
func evalPolicy(t *testing.T, p keyPolicy, req kmsRequest) bool {
	t.Helper()
	keys := map[string]string{"aws:PrincipalArn": req.principal}
	for k, v := range req.keys {
		keys[k] = v
	}
	req.keys = keys
	allowed := false
	for _, s := range p.Statement {
		if !principalMatches(s.Principal["AWS"], req) || !actionMatches(s, req.action) || !conditionsHold(t, s.Condition, req.keys) {
			continue
		}
		switch s.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		default:
			t.Fatalf("statement %s: effect %q", s.Sid, s.Effect)
		}
	}
	return allowed
}

func principalMatches(p any, req kmsRequest) bool {
	arn, _ := p.(string)
	switch {
	case arn == "*":
		return true
	case strings.HasSuffix(arn, ":root"):
		return strings.HasPrefix(arn, "arn:aws:iam::"+req.account+":")
	default:
		return arn == req.principal
	}
}

func actionMatches(s statement, action string) bool {
	match := func(list []string) bool {
		for _, a := range list {
			if strings.EqualFold(a, action) || strings.HasSuffix(a, "*") && strings.HasPrefix(strings.ToLower(action), strings.ToLower(strings.TrimSuffix(a, "*"))) {
				return true
			}
		}
		return false
	}
	if s.NotAction != nil {
		return !match(s.NotAction)
	}
	return match(s.Action)
}

func conditionsHold(t *testing.T, c map[string]map[string]any, keys map[string]string) bool {
	for op, kv := range c {
		for k, v := range kv {
			var want []string
			switch v := v.(type) {
			case string:
				want = []string{v}
			case []any:
				for _, x := range v {
					want = append(want, x.(string))
				}
			default:
				t.Fatalf("condition %s %s: value %T", op, k, v)
			}
			got, present := keys[k]
			anyEqual := func(fold bool) bool {
				for _, w := range want {
					if got == w || fold && strings.EqualFold(got, w) {
						return true
					}
				}
				return false
			}
			var holds bool
			switch op {
			case "StringEquals":
				holds = present && anyEqual(false)
			case "StringEqualsIgnoreCase":
				holds = present && anyEqual(true)
			case "StringNotEquals", "ArnNotEquals":
				holds = !present || !anyEqual(false)
			case "StringNotEqualsIgnoreCase":
				holds = !present || !anyEqual(true)
			case "Null":
				holds = (want[0] == "true") == !present
			default:
				t.Fatalf("condition operator %s", op)
			}
			if !holds {
				return false
			}
		}
	}
	return true
}

func TestKeyPolicyLocked(t *testing.T) {
	const (
		account   = "123456789012"
		role      = "arn:aws:iam::123456789012:role/signer-parent"
		acctAdmin = "arn:aws:iam::123456789012:role/Administrator"
		root      = "arn:aws:iam::123456789012:root"
		keyAdmin  = "arn:aws:iam::210987654321:role/nitrosign-key-admin"
		image     = "kms:RecipientAttestation:ImageSha384"
	)
	good := hex.EncodeToString(pcr(0xab))
	parse := func(o Options) keyPolicy {
		t.Helper()
		o.PCR0, o.Account, o.Role = [][]byte{pcr(0xab)}, account, role
		out, err := KeyPolicy(o)
		if err != nil {
			t.Fatal(err)
		}
		var p keyPolicy
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	standard := parse(Options{})
	withAdmin := parse(Options{Locked: true, Admin: keyAdmin})
	noAdmin := parse(Options{Locked: true})

	// The attestation and encryption statements are those of the standard
	// policy, unchanged, in both locked variants.
	for _, p := range []keyPolicy{withAdmin, noAdmin} {
		for i := 1; i < 6; i++ {
			a, _ := json.Marshal(standard.Statement[i])
			b, _ := json.Marshal(p.Statement[i])
			if !bytes.Equal(a, b) {
				t.Errorf("statement %d changed:\n%s\n%s", i, a, b)
			}
		}
		if p.Statement[1].Condition["StringEqualsIgnoreCase"][image] != good {
			t.Errorf("the attested use is not pinned to the image: %+v", p.Statement[1])
		}
		ro := p.Statement[0]
		if ro.Sid != "KeyReadOnly" || ro.Principal["AWS"] != root || strings.Join(ro.Action, ",") != "kms:Describe*,kms:Get*,kms:List*" {
			t.Errorf("the account's statement %+v", ro)
		}
	}
	if last := noAdmin.Statement[len(noAdmin.Statement)-2]; last.Sid != "DenyAdministration" || last.Condition != nil || last.Action != nil ||
		strings.Join(last.NotAction, ",") != "kms:Decrypt,kms:GenerateDataKey,kms:Encrypt,kms:Describe*,kms:Get*,kms:List*" {
		t.Errorf("deny statement %+v", last)
	}
	if d := withAdmin.Statement[len(withAdmin.Statement)-2]; d.Sid != "DenyAdministrationExceptAdmin" || d.Condition["ArnNotEquals"]["aws:PrincipalArn"] != keyAdmin {
		t.Errorf("deny statement %+v", d)
	}

	attested := map[string]string{image: good}
	otherImage := map[string]string{image: hex.EncodeToString(pcr(0xcd))}
	importCtx := map[string]string{ImportContextKey: ImportPurpose}
	seedCtx := map[string]string{ImportContextKey: "seed"}
	changes := []string{
		"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:CreateGrant", "kms:ReEncryptFrom",
		"kms:ReplicateKey", "kms:ImportKeyMaterial", "kms:DeleteImportedKeyMaterial", "kms:TagResource",
		"kms:UpdateKeyDescription", "kms:GenerateDataKeyWithoutPlaintext", "kms:SomeActionAWSAddsLater",
	}
	accountPrincipals := []string{role, acctAdmin, root}
	type check struct {
		p         keyPolicy
		principal string
		action    string
		keys      map[string]string
		want      bool
	}
	var checks []check
	for _, name := range []string{"standard", "withAdmin", "noAdmin"} {
		p := map[string]keyPolicy{"standard": standard, "withAdmin": withAdmin, "noAdmin": noAdmin}[name]
		// The enclave's use, the same under every variant.
		checks = append(checks,
			check{p, role, "kms:Decrypt", attested, true},
			check{p, role, "kms:GenerateDataKey", attested, true},
			check{p, role, "kms:Decrypt", nil, false},
			check{p, role, "kms:Decrypt", otherImage, false},
			check{p, acctAdmin, "kms:Decrypt", attested, false},
			check{p, keyAdmin, "kms:Decrypt", attested, false},
			check{p, acctAdmin, "kms:Encrypt", importCtx, true},
			check{p, acctAdmin, "kms:Encrypt", seedCtx, false},
			check{p, acctAdmin, "kms:DescribeKey", nil, true},
			check{p, root, "kms:GetKeyPolicy", nil, true},
		)
		for _, a := range changes {
			for _, who := range accountPrincipals {
				// The standard policy lets the account (so any principal an
				// IAM policy delegates to, the instance role included)
				// change the key: what the locked variants close.
				want := name == "standard" && (strings.HasPrefix(a, "kms:Put") || a == "kms:ScheduleKeyDeletion" || a == "kms:DisableKey" || a == "kms:CreateGrant" || a == "kms:UpdateKeyDescription" || a == "kms:DeleteImportedKeyMaterial" || a == "kms:TagResource")
				checks = append(checks, check{p, who, a, nil, want})
			}
		}
	}
	for _, a := range []string{"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:DisableKey", "kms:EnableKey", "kms:DescribeKey"} {
		checks = append(checks, check{withAdmin, keyAdmin, a, nil, true}, check{noAdmin, keyAdmin, a, nil, false})
	}
	for _, a := range []string{"kms:CreateGrant", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:ReplicateKey", "kms:UpdatePrimaryRegion"} {
		checks = append(checks, check{withAdmin, keyAdmin, a, nil, false})
	}
	for _, c := range checks {
		acct := c.principal[len("arn:aws:iam::") : len("arn:aws:iam::")+12]
		if got := evalPolicy(t, c.p, kmsRequest{principal: c.principal, account: acct, action: c.action, keys: c.keys}); got != c.want {
			t.Errorf("policy %s: %s %s %v: allowed %v, want %v", c.p.ID, c.principal, c.action, c.keys, got, c.want)
		}
	}
}

func TestKeyPolicyLockedRefuses(t *testing.T) {
	base := Options{PCR0: [][]byte{pcr(1)}, Account: "123456789012", Role: "arn:aws:iam::123456789012:role/parent"}
	for _, tc := range []struct {
		name          string
		locked        bool
		admin, errMsg string
	}{
		{"admin without locked", false, "arn:aws:iam::123456789012:role/admin", "only for a locked"},
		{"admin is the instance role", true, "arn:aws:iam::123456789012:role/parent", "must not be the instance role"},
		{"admin is an assumed-role session", true, "arn:aws:sts::123456789012:assumed-role/admin/bob", "want the ARN"},
		{"admin is a group", true, "arn:aws:iam::123456789012:group/admins", "want the ARN"},
		{"admin is a wildcard", true, "*", "want the ARN"},
	} {
		o := base
		o.Locked, o.Admin = tc.locked, tc.admin
		if _, err := KeyPolicy(o); err == nil || !strings.Contains(err.Error(), tc.errMsg) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.errMsg)
		}
	}
	for _, admin := range []string{"arn:aws:iam::210987654321:root", "arn:aws:iam::123456789012:user/break-glass", "arn:aws-us-gov:iam::123456789012:role/path/admin"} {
		o := base
		o.Locked, o.Admin = true, admin
		if _, err := KeyPolicy(o); err != nil {
			t.Errorf("admin %s: %v", admin, err)
		}
	}
}
