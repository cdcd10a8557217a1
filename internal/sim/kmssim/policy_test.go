package kmssim

import (
	"strings"
	"testing"
)

const testKeyARN = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-4333-8444-555555555555"

func mustIdentity(t *testing.T, arn, iam string) *identity {
	t.Helper()
	id, err := newIdentity(Identity{AccessKeyID: "AKIATESTTESTTEST0001", SecretAccessKey: "x", ARN: arn, Policy: iam})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// stmt is a key policy statement with the given effect, principal JSON,
// action JSON and optional condition JSON.
func stmt(effect, principal, action, condition string) string {
	s := `{"Sid":"` + effect + `Sid","Effect":"` + effect + `","Principal":` + principal + `,"Action":` + action + `,"Resource":"*"`
	if condition != "" {
		s += `,"Condition":` + condition
	}
	return s + "}"
}

func policyOf(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func TestEvaluate(t *testing.T) {
	const (
		alice   = "arn:aws:iam::111122223333:user/alice"
		session = "arn:aws:sts::111122223333:assumed-role/enclave/i-0abc"
		pcr0    = "aabbcc"
		allIAM  = `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}`
	)
	ctxWith := map[string]string{keyImageSHA384: pcr0, keyPCRPrefix + "0": pcr0, keyPrincipalARN: alice}
	ctxWithout := map[string]string{keyPrincipalARN: alice}
	for _, tc := range []struct {
		name      string
		keyPolicy string // "" for a request on no key
		arn, iam  string
		action    string
		resource  string
		ctx       map[string]string
		allowed   bool
		explicit  bool
		identity  bool
	}{
		{name: "allow by ARN", keyPolicy: policyOf(stmt("Allow", `{"AWS":"`+alice+`"}`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "allow by ARN in a list", keyPolicy: policyOf(stmt("Allow", `{"AWS":["arn:aws:iam::111122223333:user/bob","`+alice+`"]}`, `["kms:Encrypt","kms:Decrypt"]`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "allow by *", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "allow by AWS *", keyPolicy: policyOf(stmt("Allow", `{"AWS":"*"}`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "another user", keyPolicy: policyOf(stmt("Allow", `{"AWS":"arn:aws:iam::111122223333:user/bob"}`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt"},
		{name: "a service principal never matches", keyPolicy: policyOf(stmt("Allow", `{"Service":"ec2.amazonaws.com"}`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt"},
		{name: "account without IAM", keyPolicy: policyOf(stmt("Allow", `{"AWS":"111122223333"}`, `"kms:*"`, "")), arn: alice, action: "kms:Decrypt", identity: true},
		{name: "account root with IAM", keyPolicy: policyOf(stmt("Allow", `{"AWS":"arn:aws:iam::111122223333:root"}`, `"kms:*"`, "")), arn: alice, iam: allIAM, action: "kms:Decrypt", allowed: true},
		{name: "another account with IAM", keyPolicy: policyOf(stmt("Allow", `{"AWS":"444455556666"}`, `"kms:*"`, "")), arn: alice, iam: allIAM, action: "kms:Decrypt"},
		{name: "IAM alone does not give a key", keyPolicy: policyOf(stmt("Allow", `{"AWS":"`+alice+`"}`, `"kms:Encrypt"`, "")), arn: alice, iam: allIAM, action: "kms:Decrypt"},
		{name: "key Deny beats key Allow", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `{"AWS":"`+alice+`"}`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt", explicit: true},
		{name: "Deny to the account covers its users", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `{"AWS":"111122223333"}`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:Decrypt", explicit: true},
		{name: "IAM Deny beats key Allow", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, "")), arn: alice,
			iam: `{"Statement":{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}}`, action: "kms:Decrypt", explicit: true, identity: true},
		{name: "role session by role", keyPolicy: policyOf(stmt("Allow", `{"AWS":"arn:aws:iam::111122223333:role/enclave"}`, `"kms:Decrypt"`, "")), arn: session, action: "kms:Decrypt", allowed: true},
		{name: "role session by role with a path", keyPolicy: policyOf(stmt("Allow", `{"AWS":"arn:aws:iam::111122223333:role/team/enclave"}`, `"kms:Decrypt"`, "")), arn: session, action: "kms:Decrypt", allowed: true},
		{name: "role session by session ARN", keyPolicy: policyOf(stmt("Allow", `{"AWS":"`+session+`"}`, `"kms:Decrypt"`, "")), arn: session, action: "kms:Decrypt", allowed: true},
		{name: "role session, other role", keyPolicy: policyOf(stmt("Allow", `{"AWS":"arn:aws:iam::111122223333:role/enclave2"}`, `"kms:Decrypt"`, "")), arn: session, action: "kms:Decrypt"},
		{name: "role session, role of another account", keyPolicy: policyOf(stmt("Allow", `{"AWS":"arn:aws:iam::444455556666:role/enclave"}`, `"kms:Decrypt"`, "")), arn: session, action: "kms:Decrypt"},
		{name: "action wildcard", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Generate*"`, "")), arn: alice, action: "kms:GenerateDataKey", allowed: true},
		{name: "action ?", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:?ecrypt"`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "action case", keyPolicy: policyOf(stmt("Allow", `"*"`, `"KMS:DECRYPT"`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "action *", keyPolicy: policyOf(stmt("Allow", `"*"`, `"*"`, "")), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "other action", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, "")), arn: alice, action: "kms:DescribeKey"},
		{name: "NotAction allows others", keyPolicy: policyOf(`{"Effect":"Allow","Principal":"*","NotAction":"kms:Decrypt","Resource":"*"}`), arn: alice, action: "kms:Encrypt", allowed: true},
		{name: "NotAction excludes", keyPolicy: policyOf(`{"Effect":"Allow","Principal":"*","NotAction":"kms:Decrypt","Resource":"*"}`), arn: alice, action: "kms:Decrypt"},
		{name: "resource of the key", keyPolicy: policyOf(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"` + testKeyARN + `"}`), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "resource of another key", keyPolicy: policyOf(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/other"}`), arn: alice, action: "kms:Decrypt"},
		{name: "resource wildcard", keyPolicy: policyOf(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:*:111122223333:key/*"}`), arn: alice, action: "kms:Decrypt", allowed: true},
		{name: "NotResource", keyPolicy: policyOf(`{"Effect":"Allow","Principal":"*","Action":"kms:*","NotResource":"` + testKeyARN + `"}`), arn: alice, action: "kms:Decrypt"},
		{name: "no key: IAM decides", arn: alice, iam: allIAM, action: "kms:GenerateRandom", resource: "*", allowed: true},
		{name: "no key, no IAM", arn: alice, action: "kms:GenerateRandom", resource: "*", identity: true},
		{name: "no key: IAM for a key only", arn: alice, iam: `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"` + testKeyARN + `"}}`, action: "kms:GenerateRandom", resource: "*", identity: true},

		// Conditions.
		{name: "ImageSha384 matches ignoring case", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"AABBCC"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, allowed: true},
		{name: "condition key case", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEqualsIgnoreCase":{"KMS:RECIPIENTATTESTATION:IMAGESHA384":"aabbcc"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, allowed: true},
		{name: "StringEquals is case-sensitive", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEquals":{"kms:RecipientAttestation:PCR0":"AABBCC"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith},
		{name: "one of several values", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEquals":{"kms:RecipientAttestation:PCR0":["001122","aabbcc"]}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, allowed: true},
		{name: "all keys must hold", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEquals":{"kms:RecipientAttestation:PCR0":"aabbcc","kms:RecipientAttestation:PCR1":"aabbcc"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith},
		{name: "all operators must hold", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEquals":{"kms:RecipientAttestation:PCR0":"aabbcc"},"StringLike":{"aws:PrincipalArn":"*:user/bob"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith},
		{name: "StringLike", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, allowed: true},
		{name: "missing key fails a positive operator", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"aabbcc"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWithout},
		{name: "IfExists passes a missing key", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEqualsIfExists":{"kms:RecipientAttestation:ImageSha384":"001122"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWithout, allowed: true},
		{name: "IfExists checks a present key", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"StringEqualsIfExists":{"kms:RecipientAttestation:ImageSha384":"001122"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith},
		{name: "negated operator passes a missing key", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `"*"`, `"kms:Decrypt"`, `{"StringNotEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"aabbcc"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWithout, explicit: true},
		{name: "negated operator, the value", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `"*"`, `"kms:Decrypt"`, `{"StringNotEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"AABBCC"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, allowed: true},
		{name: "negated operator, another value", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `"*"`, `"kms:Decrypt"`, `{"StringNotEquals":{"kms:RecipientAttestation:ImageSha384":"001122"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, explicit: true},
		{name: "StringNotLike", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `"*"`, `"kms:Decrypt"`, `{"StringNotLike":{"aws:PrincipalArn":"*:user/bob"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, explicit: true},
		{name: "Null true denies without attestation", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `"*"`, `"kms:Decrypt"`, `{"Null":{"kms:RecipientAttestation:ImageSha384":"true"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWithout, explicit: true},
		{name: "Null true passes with attestation", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:*"`, ""), stmt("Deny", `"*"`, `"kms:Decrypt"`, `{"Null":{"kms:RecipientAttestation:ImageSha384":true}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith, allowed: true},
		{name: "Null false requires the key", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"Null":{"kms:RecipientAttestation:PCR0":"false"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWithout},
		{name: "Bool on a missing key", keyPolicy: policyOf(stmt("Allow", `"*"`, `"kms:Decrypt"`, `{"Bool":{"aws:SecureTransport":"true"}}`)),
			arn: alice, action: "kms:Decrypt", ctx: ctxWith},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kp *policy
			if tc.keyPolicy != "" {
				var err error
				if kp, err = parsePolicy(tc.keyPolicy, true); err != nil {
					t.Fatal(err)
				}
			}
			resource := tc.resource
			if resource == "" {
				resource = testKeyARN
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = map[string]string{}
			}
			d := evaluate(kp, mustIdentity(t, tc.arn, tc.iam), tc.action, resource, ctx)
			if d.allowed != tc.allowed || d.explicit != tc.explicit || d.identity != tc.identity {
				t.Fatalf("evaluate = allowed %v, explicit %v, identity %v; want %v, %v, %v", d.allowed, d.explicit, d.identity, tc.allowed, tc.explicit, tc.identity)
			}
		})
	}
}

func TestParsePolicyRefuses(t *testing.T) {
	good := `{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`
	for _, tc := range []struct{ name, policy, want string }{
		{"empty", ``, "1 to 32768 characters"},
		{"too long", `{"Statement":` + good + `,"Id":"` + strings.Repeat("x", maxPolicySize) + `"}`, "1 to 32768 characters"},
		{"not JSON", `{`, "not valid JSON"},
		{"duplicate member", `{"Statement":` + good + `,"Statement":` + good + `}`, "duplicate member"},
		{"not an object", `[]`, "not a JSON object"},
		{"unknown element", `{"Statement":` + good + `,"Extra":1}`, "unknown element 'Extra'"},
		{"bad version", `{"Version":"2020-01-01","Statement":` + good + `}`, "Version"},
		{"no statement", `{"Version":"2012-10-17"}`, "no Statement"},
		{"empty statement list", `{"Statement":[]}`, "non-empty list"},
		{"effect case", `{"Statement":{"Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"}}`, "Effect"},
		{"no principal", `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}`, "must name a Principal"},
		{"NotPrincipal", `{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}}`, "NotPrincipal"},
		{"bad principal", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}}`, "AWS principal 'bob'"},
		{"principal string", `{"Statement":{"Effect":"Allow","Principal":"bob","Action":"kms:*","Resource":"*"}}`, "Principal"},
		{"empty principal", `{"Statement":{"Effect":"Allow","Principal":{},"Action":"kms:*","Resource":"*"}}`, "the Principal is empty"},
		{"Action and NotAction", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:Decrypt","Resource":"*"}}`, "exactly one of Action"},
		{"no action", `{"Statement":{"Effect":"Allow","Principal":"*","Resource":"*"}}`, "exactly one of Action"},
		{"action without service", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"Decrypt","Resource":"*"}}`, "SERVICE:ACTION"},
		{"no resource", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*"}}`, "exactly one of Resource"},
		{"resource number", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":1}}`, "Resource"},
		{"unknown operator", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"kms:x":"1"}}}}`, "NumericLessThan"},
		{"Null IfExists", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NullIfExists":{"kms:x":"true"}}}}`, "NullIfExists"},
		{"Null maybe", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Null":{"kms:x":"maybe"}}}}`, "true or false"},
		{"no condition values", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:x":[]}}}}`, "empty"},
		{"empty operator", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{}}}}`, "non-empty object"},
		{"condition key without prefix", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"PCR0":"1"}}}}`, "PREFIX:NAME"},
		{"condition value object", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:x":{"a":1}}}}}`, "other than strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy(tc.policy, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parsePolicy: %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := parsePolicy(`{"Statement":`+good+`}`, false); err == nil || !strings.Contains(err.Error(), "names no Principal") {
		t.Errorf("an identity policy with a Principal: %v", err)
	}
	if _, err := parsePolicy(DefaultKeyPolicy(DefaultAccountID), true); err != nil {
		t.Errorf("DefaultKeyPolicy: %v", err)
	}
	if _, err := parsePolicy(AdminIdentityPolicy, false); err != nil {
		t.Errorf("AdminIdentityPolicy: %v", err)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "abc", true},
		{"a*c", "abc", true},
		{"a*c", "abcd", false},
		{"*c", "abcabc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a**b", "ab", true},
		{"*a*b*", "xxaxxbxx", true},
		{"*a*b*", "xxbxxaxx", false},
		{"abc", "abd", false},
		{"abc", "ab", false},
	} {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
