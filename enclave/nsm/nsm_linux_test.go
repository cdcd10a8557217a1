//go:build linux

package nsm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// TestIntegrationOpen talks to the real NSM. It runs only inside a Nitro
// enclave.
func TestIntegrationOpen(t *testing.T) {
	if _, err := os.Stat(DefaultSpec); errors.Is(err, os.ErrNotExist) {
		t.Skip("no /dev/nsm: run this test inside a Nitro enclave (for example, in an enclave image built from the test binary)")
	}
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := make([]byte, 1000)
	if n, err := d.Read(p); n != len(p) || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if bytes.Equal(p, make([]byte, len(p))) {
		t.Error("the NSM gave 1000 zero bytes")
	}
	doc, err := d.Attest(context.Background(), AttestRequest{Nonce: []byte("nitrosign")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("nitrosign")) {
		t.Error("the document does not carry the nonce")
	}
}
