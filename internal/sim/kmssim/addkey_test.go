package kmssim

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestAddKey checks that a key added with a chosen id is served under its
// ARN in the simulator's account and region, kept in the state file, and
// that bad or duplicate ids are refused without changing anything.
func TestAddKey(t *testing.T) {
	const id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	state := filepath.Join(t.TempDir(), "state.json")
	opts := Options{StatePath: state, AccountID: "444455556666", Region: "eu-west-1",
		Identities: []Identity{{AccessKeyID: DefaultAccessKeyID, SecretAccessKey: DefaultSecretAccessKey,
			ARN: "arn:aws:iam::444455556666:role/nitrosign-dev", Policy: AdminIdentityPolicy}}}
	s := newServer(t, opts)
	arn, err := s.AddKey(id, "stands in")
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:kms:eu-west-1:444455556666:key/" + id; arn != want {
		t.Fatalf("ARN %s, want %s", arn, want)
	}
	tests := []struct{ name, id, want string }{
		{"duplicate", id, "exists"},
		{"not a UUID", "mrk-1234abcd12ab34cd56ef1234567890ab", "not a lower-case UUID"},
		{"upper case", strings.ToUpper(id), "not a lower-case UUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AddKey(tt.id, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AddKey(%q): %v, want %q", tt.id, err, tt.want)
			}
		})
	}
	c := newClient(s, opts.Identities[0])
	out, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.KeyMetadata.Arn) != arn {
		t.Fatalf("DescribeKey: %s", aws.ToString(out.KeyMetadata.Arn))
	}
	s.Close()
	again := newServer(t, opts)
	if !again.HasKey(id) || again.HasKey("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fa") {
		t.Fatal("the state file does not hold exactly the added key")
	}
}
