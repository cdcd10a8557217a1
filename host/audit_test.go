package host_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// realEnclave serves an in-process enclave with the example policy on the
// simulator.
func realEnclave(t *testing.T, sim *vsocksim.Sim, maxUnacked int) (*enclave.Enclave, stamp.Signer) {
	t.Helper()
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	g, err := devstack.ExampleGenesis(signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	e, err := enclave.New(enclave.Config{Genesis: g, MaxUnackedAudit: maxUnacked})
	if err != nil {
		t.Fatal(err)
	}
	l, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, signer
}

// runHost serves a host with a data directory; stop ends it.
func runHost(t *testing.T, sim *vsocksim.Sim, dir string) (srv *host.Server, url string, stop func()) {
	t.Helper()
	cfg := &host.Config{Transport: sim.Endpoint(transport.ParentCID), DataDir: dir, RequestTimeout: 2 * time.Second}
	if os.Getenv("HOST_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, l); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return s, "http://" + l.Addr().String(), stop
}

func transferTx(n int64) []byte {
	to, _ := ethtx.ParseAddress(devstack.ExampleDestinationA)
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: uint64(n), GasLimit: 21000,
		MaxFeePerGas: big.NewInt(3e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: &to, Value: big.NewInt(n)}
	return tx.EncodeUnsigned()
}

func verifyLog(t *testing.T, dir string, key []byte) *audit.Report {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	if len(paths) != 1 {
		t.Fatalf("audit logs %v, want one", paths)
	}
	f, err := os.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := audit.Verify(f, key, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("the persisted audit log does not verify: %v", err)
	}
	return rep
}

func TestAuditPersistedBeforeAnswers(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	dir := t.TempDir()
	_, url, _ := runHost(t, sim, dir)
	c, _ := client.New(url, signer, nil)
	var lastSeq uint64
	for i := range 20 {
		resp, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(int64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		lastSeq = resp.AuditSeq
		// The record of every signature the client holds is on disk.
		if rep := verifyLog(t, dir, e.UserData().AuditKey); rep.LastSeq < resp.AuditSeq {
			t.Fatalf("answer with audit_seq %d released; the log ends at %d", resp.AuditSeq, rep.LastSeq)
		}
	}
	// A refusal is recorded and persisted too.
	_, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, append([]byte{}, transferTx(5e18)...))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != refusal.CodePolicyDenied {
		t.Fatalf("over-limit: %v", err)
	}
	// The last signature's record is followed by its tree head, the
	// refusal's record and the refusal's tree head.
	if rep := verifyLog(t, dir, e.UserData().AuditKey); rep.LastSeq != lastSeq+3 {
		t.Fatalf("log ends at %d, want %d (the refusal's record and its tree head)", rep.LastSeq, lastSeq+3)
	}
}

// TestAuditHostCrashLosesNoRecord: a host that receives an answer and
// crashes before persisting its record never releases the signature; the
// next host fetches the record from the enclave, so the log stays whole.
func TestAuditHostCrashLosesNoRecord(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	dir := t.TempDir()
	srvA, urlA, stopA := runHost(t, sim, dir)
	c, _ := client.New(urlA, signer, nil)
	for i := range 5 {
		if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	// Host A's disk stops taking writes just as the next answers arrive,
	// and then host A dies.
	host.SetAuditWriteFailure(srvA, func() error { return errors.New("crash") })
	for i := range 3 {
		if resp, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(int64(100+i))); err == nil {
			t.Fatalf("a signature was released without its record: %+v", resp)
		}
	}
	stopA()
	head := e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq

	// Host B, on the same data directory, completes the log.
	_, _, _ = runHost(t, sim, dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := verifyLog(t, dir, e.UserData().AuditKey)
		if rep.LastSeq == head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log ends at %d; the enclave's head is %d", rep.LastSeq, head)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditFullDiskStopsSigning: when records cannot be written, no
// signature is released, and once the backlog is full the enclave itself
// stops deciding.
func TestAuditFullDiskStopsSigning(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 4)
	dir := t.TempDir()
	srv, url, _ := runHost(t, sim, dir)
	c, _ := client.New(url, signer, nil)
	if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(1)); err != nil {
		t.Fatal(err)
	}
	host.SetAuditWriteFailure(srv, func() error { return syscall.ENOSPC })
	for i := range 6 {
		_, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(int64(10+i)))
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != 503 {
			t.Fatalf("request %d with a full disk: %v, want 503", i, err)
		}
	}
	// The enclave refuses to decide on its own: its backlog is full.
	body, h, _ := mustStamp(t, signer)
	resp := e.Handle(context.Background(), &proto.SignRequest{Body: body, Stamp: h})
	if pe, ok := resp.(*proto.Error); !ok || pe.Code != refusal.CodeUnavailable {
		t.Fatalf("enclave with a full backlog: %+v, want unavailable", resp)
	}
}

func mustStamp(t *testing.T, s stamp.Signer) ([]byte, string, error) {
	t.Helper()
	c, _ := client.New("http://unused", s, nil)
	return c.StampRequest(&api.SignRequest{Key: devstack.ExampleKeyID, EthTransaction: api.NewEthTransaction(transferTx(77))})
}

// TestAuditEnclaveRestart: an enclave that restarts (a new audit key, its
// log starting again at 1) behind a running host gets a log of its own,
// and no answer is released whose record is not in it.
func TestAuditEnclaveRestart(t *testing.T) {
	sim := newSim(t)
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := devstack.ExampleGenesis(signer.PublicKey())
	start := func() (*enclave.Enclave, func()) {
		e, err := enclave.New(enclave.Config{Genesis: g})
		if err != nil {
			t.Fatal(err)
		}
		l, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Serve(ctx, l); close(done) }()
		return e, func() { cancel(); <-done }
	}
	e1, stop1 := start()
	dir := t.TempDir()
	_, url, _ := runHost(t, sim, dir)
	c, _ := client.New(url, signer, nil)
	for i := range 5 {
		if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	stop1()
	e2, stop2 := start()
	defer stop2()
	var last *api.SignResponse
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n < 3; {
		resp, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(int64(100+n)))
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("the host does not recover after the enclave's restart: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		last = resp
		n++
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "audit-*.log"))
	if len(logs) != 2 {
		t.Fatalf("audit logs %v, want one per enclave run", logs)
	}
	byKey := map[string][]byte{}
	for _, e := range []*enclave.Enclave{e1, e2} {
		k := e.UserData().AuditKey
		byKey[filepath.Join(dir, "audit-"+hex.EncodeToString(k)[:16]+".log")] = k
	}
	for path, key := range byKey {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(f, key, audit.VerifyOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if bytes.Equal(key, e2.UserData().AuditKey) && rep.LastSeq < last.AuditSeq {
			t.Fatalf("the second run's log ends at %d; an answer with audit_seq %d was released", rep.LastSeq, last.AuditSeq)
		}
	}
}
