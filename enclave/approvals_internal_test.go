package enclave

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/stamp"
)

// TestApprovalQuotas: the store admits a request only within the global
// count, the client's count, the client's bytes and the global bytes, and
// each refusal names its quota; dropping a request credits its client.
func TestApprovalQuotas(t *testing.T) {
	var a approvals
	n := 0
	hold := func(client string, cost int) *pending {
		n++
		p := &pending{id: fmt.Sprint(n), clientID: client, cost: cost, expires: time.UnixMilli(1)}
		a.add(p)
		return p
	}
	wantRefusal := func(client string, cost int, want string) {
		t.Helper()
		if got := a.admit(client, cost); !strings.Contains(got, want) || want == "" && got != "" {
			t.Fatalf("admit(%s, %d) = %q, want %q", client, cost, got, want)
		}
	}
	// A client's count.
	var first *pending
	for i := range MaxPendingPerClient {
		wantRefusal("a", 1, "")
		if p := hold("a", 1); i == 0 {
			first = p
		}
	}
	wantRefusal("a", 1, "this client's approvals quota is full")
	wantRefusal("b", 1, "")
	a.drop(first)
	wantRefusal("a", 1, "")
	// A client's bytes.
	wantRefusal("b", MaxPendingBytesPerClient+1, "this client's approvals byte quota is full")
	hold("b", MaxPendingBytesPerClient)
	wantRefusal("b", 1, "this client's approvals byte quota is full")
	// The global bytes: eight clients at their byte quota fill it.
	for c := range 7 {
		hold(fmt.Sprint("c", c), MaxPendingBytesPerClient)
	}
	wantRefusal("d", 1, "the approvals store's byte budget is full")
	// The global count.
	a = approvals{}
	for c := range MaxPending / MaxPendingPerClient {
		for range MaxPendingPerClient {
			hold(fmt.Sprint("c", c), 1)
		}
	}
	wantRefusal("d", 1, "the approvals store is full")
	if a.bytes != MaxPending || len(a.byClient) != MaxPending/MaxPendingPerClient {
		t.Fatalf("accounts: %d bytes, %d clients", a.bytes, len(a.byClient))
	}
	for _, p := range a.m {
		a.drop(p)
	}
	if a.bytes != 0 || len(a.byClient) != 0 || len(a.m) != 0 {
		t.Fatalf("after dropping all: %d bytes, %d clients, %d held", a.bytes, len(a.byClient), len(a.m))
	}
}

// TestPreverified checks that an approval's signature verified before the
// locks stands in for the verification under them only for the same key
// and digest: otherwise (the policy changed the approver's key, say) it
// is verified again, with the same result as admin.VerifyDigest.
func TestPreverified(t *testing.T) {
	signer := func() stamp.Signer {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := stamp.NewEd25519Signer(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := signer(), signer()
	digest, other := [32]byte{1}, [32]byte{2}
	sig, err := admin.SignDigest(a, api.DomainApprove, digest)
	if err != nil {
		t.Fatal(err)
	}
	pre := preverified{done: true, key: a.PublicKey(), digest: digest, err: admin.VerifyDigest(a.PublicKey(), api.DomainApprove, digest, sig)}
	if pre.err != nil {
		t.Fatal(pre.err)
	}
	for _, tc := range []struct {
		name   string
		pre    preverified
		key    stamp.PublicKey
		digest [32]byte
		ok     bool
	}{
		{"same key and digest", pre, a.PublicKey(), digest, true},
		{"another key", pre, b.PublicKey(), digest, false},
		{"another digest", pre, a.PublicKey(), other, false},
		{"not preverified", preverified{}, a.PublicKey(), digest, true},
		{"a failure preverified", preverified{done: true, key: a.PublicKey(), digest: digest, err: errors.New("bad")}, a.PublicKey(), digest, false},
	} {
		err := tc.pre.verify(tc.key, api.DomainApprove, tc.digest, sig)
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify = %v, want ok %v", tc.name, err, tc.ok)
		}
		if !tc.pre.done || !tc.pre.key.Equal(tc.key) || tc.pre.digest != tc.digest {
			if want := admin.VerifyDigest(tc.key, api.DomainApprove, tc.digest, sig); (err == nil) != (want == nil) {
				t.Errorf("%s: verify = %v, admin.VerifyDigest = %v", tc.name, err, want)
			}
		}
	}
}
