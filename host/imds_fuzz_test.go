package host

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateIMDSCorpus = flag.Bool("update-imds-corpus", false, "rewrite the FuzzIMDS seed corpus")

var imdsFuzzNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func imdsSeeds() map[string][]byte {
	good := `{"Code":"Success","LastUpdated":"2026-11-21T11:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLEEXAMPLE01","SecretAccessKey":"secretsecret","Token":"tokentoken","Expiration":"2026-11-21T18:00:00Z"}`
	return map[string][]byte{
		"valid":     []byte(good),
		"failure":   []byte(strings.Replace(good, "Success", "Failure", 1)),
		"expired":   []byte(strings.Replace(good, "2026-11-21T18", "2026-11-21T10", 1)),
		"no_token":  []byte(strings.Replace(good, `"Token":"tokentoken",`, "", 1)),
		"not_json":  []byte("<html>"),
		"role":      []byte("nitrosign-parent\n"),
		"two_roles": []byte("a\nb\n"),
		"empty":     {},
		"token":     []byte("AQAEAFg2q0pSZXhhbXBsZXRva2VuZXhhbXBsZXRva2VuZXhhbXBsZQ=="),
		"token_nl":  []byte("AQAEAFg2q0pS\n"),
	}
}

// FuzzIMDS: the metadata service's answers (a session token, the role
// listing, the credentials) are parsed strictly; nothing panics, an
// accepted token is printable ASCII within its cap, an accepted answer
// has every field and has not expired, and no error quotes the secret.
func FuzzIMDS(f *testing.F) {
	for _, s := range imdsSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseRole(b)
		// A session token is accepted only if it can be sent as a header
		// value as it is.
		if validToken(b) && (len(b) > maxIMDSToken || strings.ContainsFunc(string(b), func(r rune) bool { return r <= ' ' || r > '~' })) {
			t.Fatalf("token %q accepted", b)
		}
		c, err := parseIMDSCredentials(b, imdsFuzzNow)
		if err != nil {
			// The secret and the token of the answer are never quoted
			// (other fields may be).
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				for _, f := range []string{"SecretAccessKey", "Token"} {
					v, _ := m[f].(string)
					if code, _ := m["Code"].(string); len(v) >= 8 && v != code && strings.Contains(err.Error(), v) {
						t.Fatalf("an error quotes the %s: %v", f, err)
					}
				}
			}
			return
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" || !c.Expires.After(imdsFuzzNow) {
			t.Fatalf("accepted %v", c)
		}
	})
}

func TestIMDSSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzIMDS", "seed_", '_', imdsSeeds(), *updateIMDSCorpus, "go test ./host -run TestIMDSSeedCorpus -update-imds-corpus")
}
