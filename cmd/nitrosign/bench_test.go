package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/stamp"
)

func TestParseEnclaveBench(t *testing.T) {
	out := `goos: linux
BenchmarkHandleSign-2             	    6000	    180000 ns/op	      5555 signs/s	   21000 B/op	     120 allocs/op
BenchmarkHandleSignUnreleased-2   	    9000	    120000 ns/op	      8333 signs/s	   15000 B/op	      90 allocs/op
PASS
`
	path := filepath.Join(t.TempDir(), "bench.txt")
	os.WriteFile(path, []byte(out), 0o600)
	r, err := parseEnclaveBench(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.signsPerSec != 5555 || r.allocs != 120 || r.bytes != 21000 {
		t.Fatalf("parsed %+v, want BenchmarkHandleSign's figures", r)
	}
	// Several runs: the median of each figure.
	runs := out + `BenchmarkHandleSign-2   6000   180000 ns/op   7000 signs/s   20000 B/op   110 allocs/op
BenchmarkHandleSign-2   6000   180000 ns/op   5000 signs/s   22000 B/op   130 allocs/op
`
	os.WriteFile(path, []byte(runs), 0o600)
	if r, err = parseEnclaveBench(path); err != nil || r.signsPerSec != 5555 || r.allocs != 120 || r.bytes != 21000 || r.runs != 3 {
		t.Fatalf("parsed %+v, %v; want the medians of 3 runs", r, err)
	}
	os.WriteFile(path, []byte("BenchmarkHandleSignUnreleased-2 1 1 ns/op 5 signs/s\n"), 0o600)
	if _, err := parseEnclaveBench(path); err == nil {
		t.Error("a file without BenchmarkHandleSign parsed")
	}
}

// TestLoadCommand: nitrosign load --json against a host that signs
// everything reports what it sent, and --signed records every signature
// with the digest of its body.
func TestLoadCommand(t *testing.T) {
	dir := t.TempDir()
	s, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := stamp.MarshalPrivateKeyPEM(s)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, devstack.ClientKeyFile), pemBytes, 0o600)
	var seq int
	digests := map[uint64][32]byte{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := stamp.Verify(r.Header.Get(stamp.Header), body); err != nil {
			w.WriteHeader(401)
			return
		}
		seq++ // the test server's handlers may run concurrently: one client below
		digests[uint64(seq)] = sha256.Sum256(body)
		fmt.Fprintf(w, `{"from":"0x01","signature":"0x02","audit_seq":%d}`, seq)
	}))
	defer ts.Close()
	signed := filepath.Join(dir, "signed.bin")
	var out, errOut bytes.Buffer
	code := mainWithArgs([]string{"load", "--host", ts.URL, "--data-dir", dir, "--clients", "1", "--warmup", "10ms",
		"--requests", "25", "--prestamp", "--json", "--signed", signed}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep loadReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.Requests != 25 || rep.Errors != 0 || rep.PreStamped != 25 || rep.Sent != seq || rep.Signed != seq {
		t.Fatalf("report %+v; the host signed %d", rep, seq)
	}
	sigs, err := readSigned(signed)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != seq {
		t.Fatalf("%d signatures recorded, %d made", len(sigs), seq)
	}
	for _, s := range sigs {
		if digests[s.Seq] != s.Digest {
			t.Errorf("signature %d recorded with digest %x, the host signed %x", s.Seq, s.Digest, digests[s.Seq])
		}
	}
}
