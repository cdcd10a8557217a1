package proto

import (
	"fmt"
	"strings"
	"testing"
)

// TestCredentialsRequestPrintsNoSecret: no fmt verb prints the secret
// access key or the session token, even nested in another value.
func TestCredentialsRequestPrintsNoSecret(t *testing.T) {
	c := CredentialsRequest{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s3cr3t-value", SessionToken: "t0ken-value", ExpiresUnixMS: 5}
	nested := struct{ C CredentialsRequest }{c}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		for _, v := range []any{c, &c, nested} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, "s3cr3t") || strings.Contains(out, "t0ken") || strings.Contains(out, "733363723374") {
				t.Errorf("%s of %T prints a secret: %s", f, v, out)
			}
		}
	}
}
