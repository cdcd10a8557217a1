package agent

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/accounts/external"
	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/nitrosign/nitrosign/agent"
	"github.com/nitrosign/nitrosign/crosscheck/internal/simnode"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

// TestClefTransactor: go-ethereum's bind.NewClefTransactor signs with
// clef.SignTx(account, tx, nil) and leaves the chain id to Clef's
// --chainid, so the external backend sends no chainId (a legacy
// transaction, and bind's dynamic-fee transactions, whose chain id is 0).
// The agent fills it in as Clef does: from --chain-id when it only signs
// (the bound contract's backend is then the node), from the node in proxy
// mode (the backend is the agent). Each transaction, 0.1 ETH to a dev
// destination through bind.BoundContract.RawTransact, is mined on a
// simulated chain with Sepolia's id, sent by the enclave's address.
func TestClefTransactor(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	from := gethcommon.HexToAddress(st.Keys[0].Address)
	node := simnode.StartChain(t, types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(10), simnode.Ether)}}, big.NewInt(11155111))
	sepolia := func(c *agent.Config) { c.ChainID = big.NewInt(11155111) }
	signingOnly, _ := startAgent(t, st, "", sepolia)
	proxy, _ := startAgent(t, st, node.URL, sepolia)
	to := gethcommon.HexToAddress(devstack.ExampleDestinationB)
	value := big.NewInt(100_000_000_000_000_000) // 0.1 ETH

	type sentTx struct {
		name string
		hash gethcommon.Hash
		typ  uint8
	}
	var sent []sentTx
	for _, mode := range []struct{ name, signer, backend string }{
		{"signing only, --chain-id", signingOnly, node.URL},
		{"proxy mode", proxy, proxy},
	} {
		for _, tc := range []struct {
			name     string
			gasPrice *big.Int // set: bind makes a legacy transaction
			typ      uint8
		}{
			{"dynamic fee", nil, types.DynamicFeeTxType},
			{"legacy", big.NewInt(30e9), types.LegacyTxType},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				clef, err := external.NewExternalSigner(mode.signer)
				if err != nil {
					t.Fatal(err)
				}
				backend, err := ethclient.Dial(mode.backend)
				if err != nil {
					t.Fatal(err)
				}
				defer backend.Close()
				accts := clef.Accounts()
				if len(accts) != 1 || accts[0].Address != from {
					t.Fatalf("account_list %v, want %s", accts, from.Hex())
				}
				opts := bind.NewClefTransactor(clef, accts[0])
				opts.Value = value
				opts.GasPrice = tc.gasPrice
				// bind estimates gas only for an address with code; a
				// transfer to an account names its gas.
				opts.GasLimit = 21000
				contract := bind.NewBoundContract(to, abi.ABI{}, backend, backend, backend)
				tx, err := contract.RawTransact(opts, nil)
				if err != nil {
					t.Fatalf("RawTransact: %v", err)
				}
				sent = append(sent, sentTx{mode.name + "/" + tc.name, tx.Hash(), tc.typ})
			})
		}
	}
	// One block for all: bind took each nonce from the node's pool.
	node.Mine()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard, not an assertion
	defer cancel()
	for i, s := range sent {
		rcpt, err := node.Receipt(ctx, s.hash)
		if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("%s: receipt %+v, %v", s.name, rcpt, err)
		}
		mined, _, err := node.Backend.Client().TransactionByHash(ctx, s.hash)
		if err != nil {
			t.Fatal(err)
		}
		sender, err := types.Sender(types.LatestSignerForChainID(big.NewInt(11155111)), mined)
		if err != nil || sender != from || mined.ChainId().Int64() != 11155111 || mined.Type() != s.typ ||
			mined.Nonce() != uint64(i) || *mined.To() != to || mined.Value().Cmp(value) != 0 {
			t.Fatalf("%s: mined from %s (%v), chain %v, type %d, nonce %d, to %v, value %v", s.name, sender.Hex(), err, mined.ChainId(), mined.Type(), mined.Nonce(), mined.To(), mined.Value())
		}
	}
	// A request for another chain is refused, as Clef refuses it.
	clef, err := external.NewExternalSigner(signingOnly)
	if err != nil {
		t.Fatal(err)
	}
	other := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 9, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9), Gas: 21000, To: &to, Value: value})
	if _, err := clef.SignTx(accounts.Account{Address: from}, other, nil); err == nil {
		t.Fatal("a transaction for chain 1 was signed by an agent on chain 11155111")
	}
}
