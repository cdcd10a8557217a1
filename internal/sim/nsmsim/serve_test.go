package nsmsim

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire/nsmwiretest"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// TestServeConnRefuses: the server answers a malformed request with an
// error response of op 0, then closes the connection.
func TestServeConnRefuses(t *testing.T) {
	valid := &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 4}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "garbage", in: nsmwiretest.Frame([]byte("garbage")), want: "malformed request"},
		{name: "oversized frame", in: []byte{0, 0, 0x10, 1}, want: "frame too large: 4097 bytes, limit 4096"},
		{name: "huge frame", in: []byte{0xff, 0xff, 0xff, 0xff}, want: "frame too large"},
		{name: "empty frame", in: []byte{0, 0, 0, 0}, want: "empty frame"},
		{name: "version 2", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 2, Op: nsmwire.OpRandom, Length: 4})), want: "unsupported version 2"},
		{name: "version 2 with new fields", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, map[uint64]any{1: 2, 2: 1, 9: "new"})), want: "unsupported version 2"},
		{name: "unknown op", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 1, Op: 3})), want: "unknown op 3"},
		{name: "random of 0", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom})), want: "random request for 0 bytes"},
		{name: "random too many", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: nsmwire.MaxRandomChunk + 1})), want: "random request for 4097 bytes"},
		{name: "random with nonce", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpRandom, Length: 1, Nonce: []byte{1}})), want: "random request with attestation fields"},
		{name: "attest with length", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Length: 1})), want: "attest request with a length"},
		{name: "nonce too large", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, &nsmwire.Request{Version: 1, Op: nsmwire.OpAttest, Nonce: make([]byte, nsmwire.MaxFieldSize+1)})), want: "nonce is 1025 bytes"},
		{name: "missing field", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, map[uint64]any{1: 1, 2: 2, 6: 4})), want: "not in canonical encoding"},
		{name: "null field", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, map[uint64]any{1: 1, 2: 2, 3: nil, 4: []byte{}, 5: []byte{}, 6: 4})), want: "not in canonical encoding"},
		{name: "non-shortest integer", in: nsmwiretest.Frame(bytes.Replace(nsmwiretest.MustEncode(t, valid), []byte{0x06, 0x04}, []byte{0x06, 0x18, 0x04}, 1)), want: "not in canonical encoding"},
		{name: "trailing bytes", in: nsmwiretest.Frame(append(nsmwiretest.MustEncode(t, valid), 0)), want: "malformed request"},
		{name: "tag", in: nsmwiretest.Frame(append([]byte{0xd8, 0x18}, nsmwiretest.MustEncode(t, valid)...)), want: "malformed request"},
		{name: "text for bytes", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, map[uint64]any{1: 1, 2: 1, 3: "n", 4: []byte{}, 5: []byte{}, 6: 0})), want: "malformed request"},
		{name: "array", in: nsmwiretest.Frame(nsmwiretest.MustEncode(t, []any{1, 2})), want: "malformed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := net.Pipe()
			errc := make(chan error, 1)
			go func() { errc <- ServeConn(context.Background(), s, &nsmwiretest.FakeDevice{}) }()
			defer c.Close()
			go c.Write(tt.in)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			p, err := nsmwire.ReadFrame(c, nsmwire.MaxResponseFrame)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp, err := nsmwire.UnmarshalResponse(p)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Op != nsmwire.OpNone || !strings.Contains(resp.Error, tt.want) {
				t.Errorf("answer op %d error %q, want op 0 and %q", resp.Op, resp.Error, tt.want)
			}
			if err := <-errc; err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nsmsim: serve: ") {
				t.Errorf("ServeConn = %v, want an error with %q", err, tt.want)
			}
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Error("the connection stayed open")
			}
		})
	}
}

func TestServeConnEnds(t *testing.T) {
	// A clean close by the client ends ServeConn with nil.
	c, s := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- ServeConn(context.Background(), s, &nsmwiretest.FakeDevice{}) }()
	r := nsm.NewRemote(c)
	if _, err := r.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := <-errc; err != nil {
		t.Errorf("ServeConn after the client closed = %v", err)
	}
	// So does the end of its context, promptly.
	c2, s2 := net.Pipe()
	defer c2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- ServeConn(ctx, s2, &nsmwiretest.FakeDevice{}) }()
	cancel()
	select {
	case err := <-errc2:
		if err != nil {
			t.Errorf("ServeConn after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not end with its context")
	}
}

// FuzzServeConn feeds a byte stream as requests to ServeConn: it never
// panics, writes only valid responses, ends cleanly exactly when the stream
// is nothing but valid requests, and then answers each one. (Until the
// server moved here from package nsm, this was the server half of nsm's
// FuzzRemote, which now fuzzes the client alone; the seeds are the same.)
func FuzzServeConn(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		sc := nsmwiretest.NewScriptConn(stream)
		err := ServeConn(context.Background(), sc, &nsmwiretest.FakeDevice{})
		var answers int
		out := bytes.NewReader(sc.Written())
		for {
			p, rerr := nsmwire.ReadFrame(out, nsmwire.MaxResponseFrame)
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				t.Fatalf("the server wrote a bad frame: %v", rerr)
			}
			if _, rerr := nsmwire.UnmarshalResponse(p); rerr != nil {
				t.Fatalf("the server wrote a bad response: %v", rerr)
			}
			answers++
		}
		n, valid := nsmwiretest.ValidRequests(stream)
		switch {
		case valid && err != nil:
			t.Fatalf("valid requests, but ServeConn = %v", err)
		case valid && answers != n:
			t.Fatalf("%d valid requests, %d answers", n, answers)
		case !valid && err == nil:
			t.Fatal("invalid requests, but ServeConn ended cleanly")
		case !valid && answers > n+1:
			t.Fatalf("%d valid requests before a bad one, %d answers", n, answers)
		}
	})
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./internal/sim/nsmsim -run TestSeedCorpus -update-corpus.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzServeConn", "seed_", '_', nsmwiretest.Streams(t), *updateCorpus, "go test ./internal/sim/nsmsim -run TestSeedCorpus -update-corpus")
}
