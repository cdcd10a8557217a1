package agent

import (
	"context"
	"math/big"
	"testing"
	"time"

	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/nitrosign/nitrosign/crosscheck/internal/simnode"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

// TestProxyModeMined: with go-ethereum's simulated backend as its upstream
// node (on Sepolia's chain id, which the dev policy allows), the agent
// fills in an eth_sendTransaction that names only from, to and value,
// signs it through the enclave and sends it; the block that mines it has
// the enclave's address as sender. go-ethereum's ethclient, pointed at the
// agent, reads the chain through it.
func TestProxyModeMined(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	from := gethcommon.HexToAddress(st.Keys[0].Address)
	node := simnode.StartChain(t, types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(10), simnode.Ether)}}, big.NewInt(11155111))
	httpURL, socket := startAgent(t, st, node.URL, nil)
	to := gethcommon.HexToAddress(devstack.ExampleDestinationB)
	value := big.NewInt(100_000_000_000_000_000) // 0.1 ETH

	for i, endpoint := range []string{httpURL, socket} {
		c, err := rpc.Dial(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ec := ethclient.NewClient(c)
		ctx := context.Background()
		if id, err := ec.ChainID(ctx); err != nil || id.Int64() != 11155111 {
			t.Fatalf("eth_chainId through the agent: %v, %v", id, err)
		}
		var hash gethcommon.Hash
		if err := c.CallContext(ctx, &hash, "eth_sendTransaction", map[string]any{"from": from, "to": to, "value": (*hexutil.Big)(value)}); err != nil {
			t.Fatal(err)
		}
		node.Mine()
		// Wait for the node's index of the new block, then read the
		// receipt through the agent.
		wctx, cancel := context.WithTimeout(ctx, time.Minute) // a guard, not an assertion
		_, werr := node.Receipt(wctx, hash)
		cancel()
		if werr != nil {
			t.Fatal(werr)
		}
		rcpt, err := ec.TransactionReceipt(ctx, hash)
		if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("receipt %+v, %v", rcpt, err)
		}
		tx, _, err := ec.TransactionByHash(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		sender, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
		if err != nil || sender != from || tx.Nonce() != uint64(i) || *tx.To() != to || tx.Value().Cmp(value) != 0 || tx.Type() != types.DynamicFeeTxType {
			t.Fatalf("mined from %s (%v), nonce %d, to %v, value %v, type %d", sender.Hex(), err, tx.Nonce(), tx.To(), tx.Value(), tx.Type())
		}
	}
	bal, err := node.Backend.Client().BalanceAt(context.Background(), to, nil)
	if err != nil || bal.Cmp(new(big.Int).Mul(value, big.NewInt(2))) != 0 {
		t.Fatalf("destination balance %v, %v", bal, err)
	}
}
