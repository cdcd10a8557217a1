package nsm_test

import (
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire/nsmwiretest"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// FuzzRemote feeds a byte stream as responses to a remote device doing
// Attest and then Read(16 bytes): it never panics, returns only documents
// within the size limits and full buffers, and writes only valid requests.
// (The server half, which fed the same stream to ServeConn, moved with the
// server to package internal/sim/nsmsim as FuzzServeConn, with the same
// seeds.)
func FuzzRemote(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		cc := nsmwiretest.NewScriptConn(stream)
		r := nsm.NewRemote(cc)
		doc, err := r.Attest(context.Background(), nsm.AttestRequest{Nonce: []byte("n")})
		if err == nil && (len(doc) == 0 || len(doc) > nsm.MaxDocumentSize) {
			t.Fatalf("a document of %d bytes", len(doc))
		}
		var refused *nsm.RemoteError
		if errors.As(err, &refused) && (refused.Message == "" || len(refused.Message) > nsmwire.MaxErrorSize) {
			t.Fatalf("refusal %q", refused.Message)
		}
		p := make([]byte, 16)
		if k, err := r.Read(p); err == nil && k != len(p) || err != nil && k != 0 {
			t.Fatalf("Read = %d, %v", k, err)
		}
		r.Close()
		if _, valid := nsmwiretest.ValidRequests(cc.Written()); !valid {
			t.Fatal("the client wrote an invalid request")
		}
	})
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./enclave/nsm -run TestSeedCorpus -update-corpus.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzRemote", "seed_", '_', nsmwiretest.Streams(t), *updateCorpus, "go test ./enclave/nsm -run TestSeedCorpus -update-corpus")
}
