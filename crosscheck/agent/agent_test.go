package agent

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/external"
	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gethtypes "github.com/ethereum/go-ethereum/core/types"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/nitrosign/nitrosign/agent"
	"github.com/nitrosign/nitrosign/agent/ethproxy"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// startAgent runs an agent against the dev stack st (in proxy mode to the
// node at upstream, if not empty; configured further by edit, if not nil),
// serving on TCP and on a Unix socket, and returns their endpoints (an http
// URL and a path).
func startAgent(t *testing.T, st *devstack.Stack, upstream string, edit func(*agent.Config)) (httpURL, socket string) {
	t.Helper()
	pcrs, err := devstack.ReadPCRs(st.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, err := os.ReadFile(st.NSMRootPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(rootPEM)
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Client: c, Check: client.EnclaveCheck{PCRs: pcrs, Roots: []*x509.Certificate{root}}}
	if edit != nil {
		edit(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if upstream != "" {
		px, err := ethproxy.New(ethproxy.Options{Upstream: upstream}, a)
		if err != nil {
			t.Fatal(err)
		}
		if err := px.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		a.SetProxy(px)
	}
	dir, err := os.MkdirTemp("", "ns-xagent-") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket = filepath.Join(dir, "agent.ipc")
	for _, addr := range []string{"127.0.0.1:0", socket} {
		ln, err := agent.Listen(addr, false)
		if err != nil {
			t.Fatal(err)
		}
		if addr != socket {
			httpURL = "http://" + ln.Addr().String()
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Serve(ctx, ln) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	return httpURL, socket
}

// TestExternalSigner: go-ethereum's accounts/external backend (what geth
// --signer and clef's users run) signs through the agent.
func TestExternalSigner(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	want := gethcommon.HexToAddress(st.Keys[0].Address)
	httpURL, socket := startAgent(t, st, "", nil)
	destB := gethcommon.HexToAddress(devstack.ExampleDestinationB)
	value := big.NewInt(100_000_000_000_000_000) // 0.1 ETH: no approval needed

	for _, ep := range []struct{ name, endpoint string }{{"HTTP", httpURL}, {"Unix socket", socket}} {
		t.Run(ep.name, func(t *testing.T) {
			be, err := external.NewExternalBackend(ep.endpoint)
			if err != nil {
				t.Fatal(err)
			}
			wallets := be.Wallets()
			if len(wallets) != 1 {
				t.Fatalf("%d wallets", len(wallets))
			}
			w := wallets[0]
			status, err := w.Status()
			if err != nil || status != "ok [version="+agent.ClefVersion+"]" {
				t.Fatalf("status %q, %v", status, err)
			}
			accts := w.Accounts()
			if len(accts) != 1 || accts[0].Address != want {
				t.Fatalf("accounts %v, want %s", accts, want.Hex())
			}
			acct := accts[0]

			for _, tc := range []struct {
				name  string
				chain int64
				tx    gethtypes.TxData
			}{
				{"legacy", 11155111, &gethtypes.LegacyTx{Nonce: 1, GasPrice: big.NewInt(25e9), Gas: 21000, To: &destB, Value: value}},
				{"EIP-2930", 1, &gethtypes.AccessListTx{ChainID: big.NewInt(1), Nonce: 2, GasPrice: big.NewInt(25e9), Gas: 30000, To: &destB, Value: value,
					AccessList: gethtypes.AccessList{{Address: destB, StorageKeys: []gethcommon.Hash{{1}}}}}},
				{"EIP-1559", 11155111, &gethtypes.DynamicFeeTx{ChainID: big.NewInt(11155111), Nonce: 3, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9), Gas: 21000, To: &destB, Value: value, Data: nil}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					unsigned := gethtypes.NewTx(tc.tx)
					signed, err := w.SignTx(acct, unsigned, big.NewInt(tc.chain))
					if err != nil {
						t.Fatal(err)
					}
					if signed.ChainId().Int64() != tc.chain || signed.Type() != unsigned.Type() || signed.Nonce() != unsigned.Nonce() {
						t.Fatalf("signed chain %v type %d nonce %d", signed.ChainId(), signed.Type(), signed.Nonce())
					}
					from, err := gethtypes.Sender(gethtypes.LatestSignerForChainID(big.NewInt(tc.chain)), signed)
					if err != nil || from != want {
						t.Fatalf("sender %s (%v), want %s", from.Hex(), err, want.Hex())
					}
					// The signed transaction is the one asked for.
					if gethtypes.LatestSignerForChainID(big.NewInt(tc.chain)).Hash(signed) != gethtypes.LatestSignerForChainID(big.NewInt(tc.chain)).Hash(unsigned) {
						t.Fatal("the signed transaction is not the one asked for")
					}
				})
			}

			text := []byte("nitrosign agent, via go-ethereum's external signer")
			sig, err := w.SignText(acct, text)
			if err != nil {
				t.Fatal(err)
			}
			checkSig(t, accounts.TextHash(text), sig, 0, want)

			sig, err = w.SignData(acct, accounts.MimetypeTextPlain, text)
			if err != nil {
				t.Fatal(err)
			}
			checkSig(t, accounts.TextHash(text), sig, 27, want)

			// data/typed: the typed data's JSON, which the backend sends as hex.
			var td apitypes.TypedData
			if err := json.Unmarshal([]byte(devstacktest.MailJSON), &td); err != nil {
				t.Fatal(err)
			}
			tdJSON, err := json.Marshal(td)
			if err != nil {
				t.Fatal(err)
			}
			tdHash, _, err := apitypes.TypedDataAndHash(td)
			if err != nil {
				t.Fatal(err)
			}
			sig, err = w.SignData(acct, accounts.MimetypeTypedData, tdJSON)
			if err != nil {
				t.Fatal(err)
			}
			checkSig(t, tdHash, sig, 27, want)

			if _, err := w.SignData(acct, accounts.MimetypeClique, []byte{0xc0}); err == nil {
				t.Fatal("a clique header was signed")
			}
		})
	}
}

// checkSig checks a 65-byte signature whose v is base+{0,1} over hash.
func checkSig(t *testing.T, hash []byte, sig []byte, base byte, want gethcommon.Address) {
	t.Helper()
	if len(sig) != 65 || (sig[64] != base && sig[64] != base+1) {
		t.Fatalf("signature %x, want v %d or %d", sig, base, base+1)
	}
	s := append([]byte(nil), sig...)
	s[64] -= base
	pub, err := gethcrypto.SigToPub(hash, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := gethcrypto.PubkeyToAddress(*pub); got != want {
		t.Fatalf("recovers %s, want %s", got.Hex(), want.Hex())
	}
}

// TestRawCalls calls the agent's methods with go-ethereum's rpc client and
// go-ethereum's own JSON, and checks the answers with go-ethereum.
func TestRawCalls(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	want := gethcommon.HexToAddress(st.Keys[0].Address)
	httpURL, socket := startAgent(t, st, "", nil)

	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(devstacktest.MailJSON), &td); err != nil {
		t.Fatal(err)
	}
	tdHash, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello from go-ethereum's rpc client")

	for _, ep := range []struct{ name, endpoint string }{{"HTTP", httpURL}, {"Unix socket", socket}} {
		t.Run(ep.name, func(t *testing.T) {
			c, err := rpc.Dial(ep.endpoint)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()

			var accts []gethcommon.Address
			if err := c.CallContext(ctx, &accts, "eth_accounts"); err != nil || len(accts) != 1 || accts[0] != want {
				t.Fatalf("eth_accounts %v, %v", accts, err)
			}
			for _, tc := range []struct {
				name   string
				method string
				args   []any
				hash   []byte
			}{
				{"account_signTypedData with apitypes.TypedData", "account_signTypedData", []any{want, td}, tdHash},
				{"eth_signTypedData_v4 with apitypes.TypedData", "eth_signTypedData_v4", []any{want, td}, tdHash},
				{"eth_sign", "eth_sign", []any{want, hexutil.Bytes(msg)}, accounts.TextHash(msg)},
				{"personal_sign", "personal_sign", []any{hexutil.Bytes(msg), want}, accounts.TextHash(msg)},
				{"account_signData data/typed", "account_signData", []any{apitypes.DataTyped.Mime, want, td}, tdHash},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var sig hexutil.Bytes
					if err := c.CallContext(ctx, &sig, tc.method, tc.args...); err != nil {
						t.Fatal(err)
					}
					checkSig(t, tc.hash, sig, 27, want)
				})
			}

			t.Run("eth_signTransaction", func(t *testing.T) {
				to := gethcommon.HexToAddress(devstack.ExampleDestinationA)
				args := map[string]any{
					"from": want, "to": to, "gas": hexutil.Uint64(21000), "nonce": hexutil.Uint64(9),
					"maxFeePerGas": (*hexutil.Big)(big.NewInt(30e9)), "maxPriorityFeePerGas": (*hexutil.Big)(big.NewInt(1e9)),
					"value": (*hexutil.Big)(big.NewInt(1e15)), "chainId": (*hexutil.Big)(big.NewInt(1)),
				}
				var raw hexutil.Bytes
				if err := c.CallContext(ctx, &raw, "eth_signTransaction", args); err != nil {
					t.Fatal(err)
				}
				var tx gethtypes.Transaction
				if err := tx.UnmarshalBinary(raw); err != nil {
					t.Fatal(err)
				}
				from, err := gethtypes.Sender(gethtypes.LatestSignerForChainID(tx.ChainId()), &tx)
				if err != nil || from != want || tx.Nonce() != 9 || *tx.To() != to || tx.ChainId().Int64() != 1 || tx.Type() != gethtypes.DynamicFeeTxType {
					t.Fatalf("signed nonce %d to %v chain %v type %d, from %s (%v)", tx.Nonce(), tx.To(), tx.ChainId(), tx.Type(), from.Hex(), err)
				}
			})

			t.Run("a policy refusal keeps its code and rule", func(t *testing.T) {
				var sig hexutil.Bytes
				other := td
				other.Domain.VerifyingContract = "0x1111111111111111111111111111111111111111"
				err := c.CallContext(ctx, &sig, "eth_signTypedData_v4", want, other)
				var de rpc.DataError
				var ec rpc.Error
				if !asError(err, &ec) || ec.ErrorCode() != -32000 || !asError(err, &de) {
					t.Fatalf("got %v", err)
				}
				data, _ := json.Marshal(de.ErrorData())
				var d struct{ Code, Rule string }
				json.Unmarshal(data, &d)
				if d.Code != "policy_denied" || d.Rule != "typed_data_domains" {
					t.Fatalf("data %s", data)
				}
			})
		})
	}
}

// asError is errors.As for the interfaces of go-ethereum's rpc errors.
func asError[T any](err error, target *T) bool {
	if e, ok := err.(T); ok {
		*target = e
		return true
	}
	return false
}
