package kms

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func pcr(b byte) []byte { return bytes.Repeat([]byte{b}, 48) }

func TestKeyPolicy(t *testing.T) {
	out, err := KeyPolicy(PolicyOptions{PCR0: [][]byte{pcr(0xab)}, Account: "123456789012", Role: "arn:aws:iam::123456789012:role/signer-parent"})
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
	out, err := KeyPolicy(PolicyOptions{PCR0: [][]byte{pcr(1), pcr(2)}})
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
		o    PolicyOptions
		msg  string
	}{
		{"no PCR0", PolicyOptions{}, "required"},
		{"short PCR0", PolicyOptions{PCR0: [][]byte{make([]byte, 32)}}, "48 bytes"},
		{"debug-mode PCR0", PolicyOptions{PCR0: [][]byte{make([]byte, 48)}}, "debug-mode"},
		{"bad account", PolicyOptions{PCR0: [][]byte{pcr(1)}, Account: "12345"}, "12 digits"},
		{"bad role", PolicyOptions{PCR0: [][]byte{pcr(1)}, Role: "arn:aws:iam::123456789012:user/bob"}, "role ARN"},
	} {
		if _, err := KeyPolicy(tc.o); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.msg)
		}
	}
}
