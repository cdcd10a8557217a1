package vsocksim_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/transport"
)

func TestSimConnectsParentAndEnclave(t *testing.T) {
	sim, err := vsocksim.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if fi, err := os.Stat(sim.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("sim dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	// The enclave side joins through the spec, as the enclave process does.
	tr, err := transport.Parse(sim.Spec(), 16)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tr.Listen(transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	c, err := sim.Endpoint(transport.ParentCID).Dial(context.Background(), 16, transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestSimCloseRemovesOwnDirOnly(t *testing.T) {
	sim, err := vsocksim.New("")
	if err != nil {
		t.Fatal(err)
	}
	dir := sim.Dir()
	sim.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("own dir still there: %v", err)
	}

	given, err := os.MkdirTemp("", "vsg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(given)
	sim, err = vsocksim.New(given)
	if err != nil {
		t.Fatal(err)
	}
	sim.Close()
	if _, err := os.Stat(given); err != nil {
		t.Fatalf("a directory the caller gave was removed: %v", err)
	}
}

func TestSimRefusesLongDir(t *testing.T) {
	_, err := vsocksim.New("/tmp/" + strings.Repeat("x", 100))
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("err = %v, want too long", err)
	}
	if _, err := os.Stat("/tmp/" + strings.Repeat("x", 100)); !os.IsNotExist(err) {
		t.Fatalf("a refused directory was created: %v", err)
	}
}
