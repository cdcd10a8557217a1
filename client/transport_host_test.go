package client_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// startRealHost runs the real host API in front of an in-process enclave
// over the vsock simulator, with the example genesis that registers
// clientKey, and returns the host's URL. Both stop when the test ends.
func startRealHost(t *testing.T, clientKey stamp.PublicKey) string {
	t.Helper()
	sim, err := vsocksim.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	g, err := devstack.ExampleGenesis(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	e, err := enclave.New(enclave.Config{Genesis: g})
	if err != nil {
		t.Fatal(err)
	}
	el, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	enclaveDone := make(chan struct{})
	go func() { e.Serve(ctx, el); close(enclaveDone) }()

	srv, err := host.New(&host.Config{Transport: sim.Endpoint(transport.ParentCID), DataDir: t.TempDir(), RequestTimeout: 5 * time.Second})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hostDone := make(chan struct{})
	go func() { srv.Serve(ctx, hl); close(hostDone) }()
	t.Cleanup(func() { cancel(); <-hostDone; <-enclaveDone })
	return "http://" + hl.Addr().String()
}

// post sends body to url's /v1/sign with hc and returns the status and the
// answer.
func post(t *testing.T, hc *http.Client, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := hc.Post(url+"/v1/sign", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func refusalOf(t *testing.T, data []byte) api.Error {
	t.Helper()
	var er api.ErrorResponse
	if err := json.Unmarshal(data, &er); err != nil {
		t.Fatalf("not an error answer: %s", data)
	}
	return er.Error
}

// TestStampingTransportRealHost runs the transport against the real host
// and enclave: a request the caller built and the transport stamped is
// signed by the example key; the same body again is a replay the enclave
// refuses; without the transport the host refuses the unstamped body; a
// body over the cap never leaves; and the caller's request is unchanged.
func TestStampingTransportRealHost(t *testing.T) {
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	url := startRealHost(t, signer.PublicKey())
	hc := &http.Client{Transport: client.NewStampingTransport(nil, signer), Timeout: 10 * time.Second}

	// GET /v1/keys through the same client: sent unstamped, answered.
	c, err := client.New(url, nil, &client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(context.Background())
	if err != nil || len(keys.Keys) != 1 || keys.Keys[0].ID != devstack.ExampleKeyID {
		t.Fatalf("keys: %+v, %v", keys, err)
	}

	to, err := ethtx.ParseAddress(devstack.ExampleDestinationA)
	if err != nil {
		t.Fatal(err)
	}
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 7, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(3e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: &to, Value: big.NewInt(1e15)}
	body, err := json.Marshal(&api.SignRequest{
		RequestID:      "transport-1",
		TimestampMS:    time.Now().UnixMilli(),
		Key:            devstack.ExampleKeyID,
		EthTransaction: api.NewEthTransaction(tx.EncodeUnsigned()),
	})
	if err != nil {
		t.Fatal(err)
	}

	// Stamped by the transport: signed.
	req, err := http.NewRequest(http.MethodPost, url+"/v1/sign", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	wantHeader := req.Header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, data)
	}
	var sr api.SignResponse
	if err := json.Unmarshal(data, &sr); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(sr.From, keys.Keys[0].Address) || sr.SignedTransaction == "" || sr.AuditSeq == 0 {
		t.Fatalf("answer %+v, want a transaction signed by %s", sr, keys.Keys[0].Address)
	}
	signed, err := hex.DecodeString(strings.TrimPrefix(sr.SignedTransaction, "0x"))
	if err != nil || len(signed) <= len(tx.EncodeUnsigned()) {
		t.Fatalf("signed transaction %q", sr.SignedTransaction)
	}
	// The caller's request is as it was built (its body spent, as the
	// RoundTripper contract allows).
	if req.Header.Get(stamp.Header) != "" || len(req.Header) != len(wantHeader) || req.ContentLength != int64(len(body)) || req.URL.String() != url+"/v1/sign" {
		t.Errorf("the caller's request changed: header %v, Content-Length %d, URL %s", req.Header, req.ContentLength, req.URL)
	}

	// The same body again: the enclave refuses the replay.
	status, data := post(t, hc, url, body)
	if e := refusalOf(t, data); status != http.StatusUnauthorized || e.Code != refusal.CodeReplayedRequest {
		t.Fatalf("replay: HTTP %d %+v, want 401 %s", status, e, refusal.CodeReplayedRequest)
	}

	// A fresh body without the transport: no stamp, refused.
	fresh := bytes.Replace(body, []byte("transport-1"), []byte("transport-2"), 1)
	status, data = post(t, http.DefaultClient, url, fresh)
	if e := refusalOf(t, data); status != http.StatusUnauthorized || e.Code != refusal.CodeUnauthorized {
		t.Fatalf("unstamped: HTTP %d %+v, want 401 %s", status, e, refusal.CodeUnauthorized)
	}
	// With it, the same fresh body is signed.
	if status, data = post(t, hc, url, fresh); status != http.StatusOK {
		t.Fatalf("fresh body: HTTP %d: %s", status, data)
	}

	// Over the cap: refused by the transport, before the host sees it.
	tooLarge := append(bytes.Clone(body[:len(body)-1]), []byte(`,"pad":"`+strings.Repeat("x", api.MaxBodySize)+`"}`)...)
	_, err = hc.Post(url+"/v1/sign", "application/json", bytes.NewReader(tooLarge))
	if !errors.Is(err, client.ErrNotStamped) || !strings.Contains(err.Error(), "limit 262144") {
		t.Fatalf("too large: %v, want ErrNotStamped", err)
	}
}
