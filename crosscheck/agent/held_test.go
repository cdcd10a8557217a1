package agent

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/crosscheck/internal/simnode"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
	"github.com/nitrosign/nitrosign/stamp"
)

// decide has the dev approvers decide on the request id: every approver
// approves, or the first rejects.
func decide(t *testing.T, st *devstack.Stack, id string, approve bool) {
	t.Helper()
	c, err := client.New(st.URL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.Approval(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := client.CheckApproval(p)
	if err != nil {
		t.Fatal(err)
	}
	decision, approvers := api.DecisionApprove, devstack.ApproverCount
	if !approve {
		decision, approvers = api.DecisionReject, 1
	}
	for i := 1; i <= approvers; i++ {
		pemBytes, err := os.ReadFile(filepath.Join(st.DataDir, devstack.ApproverKeyFile(i)))
		if err != nil {
			t.Fatal(err)
		}
		signer, err := stamp.ParseSignerPEM(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		req, err := client.NewApproval(signer, devstack.ApproverName(i), id, decision, digest)
		if err != nil {
			t.Fatal(err)
		}
		var ae *client.APIError
		if _, _, err := c.Approve(ctx, req); err != nil && (approve || !errors.As(err, &ae) || ae.Code != "approval_rejected") {
			t.Fatalf("approver %d: %v", i, err)
		}
	}
}

// rpcErrorOf returns the code and data of a JSON-RPC error answered to
// go-ethereum's rpc client.
func rpcErrorOf(t *testing.T, err error) (int, map[string]any) {
	t.Helper()
	var ec rpc.Error
	var de rpc.DataError
	if !asError(err, &ec) {
		t.Fatalf("not a JSON-RPC error: %v", err)
	}
	data := map[string]any{}
	if asError(err, &de) {
		b, _ := json.Marshal(de.ErrorData())
		json.Unmarshal(b, &data)
	}
	return ec.ErrorCode(), data
}

// TestHeldSendKeepsItsNonce: in proxy mode on Sepolia's chain id, a send
// above the dev policy's approval threshold (0.5 ETH) is answered pending
// and keeps its nonce; the next send gets the following nonce and reaches
// the node; once both approvers approve, nitrosign_approval sends the held
// transaction and both are mined with consecutive nonces. A rejected
// send's nonce goes to the next send, and everything mines.
func TestHeldSendKeepsItsNonce(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	from := gethcommon.HexToAddress(st.Keys[0].Address)
	node := simnode.StartChain(t, types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(10), simnode.Ether)}}, big.NewInt(11155111))
	httpURL, _ := startAgent(t, st, node.URL, nil)
	c, err := rpc.Dial(httpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	to := gethcommon.HexToAddress(devstack.ExampleDestinationB)
	small := big.NewInt(100_000_000_000_000_000) // 0.1 ETH
	large := big.NewInt(800_000_000_000_000_000) // 0.8 ETH: both approvers
	sendTx := func(value *big.Int) (gethcommon.Hash, error) {
		var h gethcommon.Hash
		err := c.CallContext(ctx, &h, "eth_sendTransaction", map[string]any{"from": from, "to": to, "value": (*hexutil.Big)(value)})
		return h, err
	}
	sendHeld := func() string {
		t.Helper()
		_, err := sendTx(large)
		code, data := rpcErrorOf(t, err)
		id, _ := data["approval_id"].(string)
		if code != -32001 || id == "" {
			t.Fatalf("0.8 ETH: code %d, data %v; want -32001 with an approval id", code, data)
		}
		return id
	}
	sendSmall := func() gethcommon.Hash {
		t.Helper()
		h, err := sendTx(small)
		if err != nil {
			t.Fatalf("0.1 ETH: %v", err)
		}
		if _, pending, err := node.Backend.Client().TransactionByHash(ctx, h); err != nil || !pending {
			t.Fatalf("0.1 ETH did not reach the node's pool: pending %v, %v", pending, err)
		}
		return h
	}
	// mined checks that the transactions are mined, sent by the enclave's
	// address, with the nonces want.
	mined := func(hashes []gethcommon.Hash, want []uint64) {
		t.Helper()
		for i, h := range hashes {
			wctx, cancel := context.WithTimeout(ctx, time.Minute) // a guard, not an assertion
			rcpt, err := node.Receipt(wctx, h)
			cancel()
			if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("transaction %d (%s): receipt %+v, %v", i, h.Hex(), rcpt, err)
			}
			tx, _, err := node.Backend.Client().TransactionByHash(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			sender, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
			if err != nil || sender != from || tx.Nonce() != want[i] {
				t.Fatalf("transaction %d: sender %s (%v), nonce %d; want %s, nonce %d", i, sender.Hex(), err, tx.Nonce(), from.Hex(), want[i])
			}
		}
	}

	// Approved: 0.8 ETH holds nonce 0; 0.1 ETH gets 1.
	id := sendHeld()
	h1 := sendSmall()
	decide(t, st, id, true)
	var h0 gethcommon.Hash
	if err := c.CallContext(ctx, &h0, "nitrosign_approval", id); err != nil {
		t.Fatalf("nitrosign_approval: %v", err)
	}
	node.Mine()
	mined([]gethcommon.Hash{h0, h1}, []uint64{0, 1})

	// Rejected: 0.8 ETH holds nonce 2; 0.1 ETH gets 3; after the
	// rejection the next 0.1 ETH gets 2 and fills the hole.
	id = sendHeld()
	h3 := sendSmall()
	decide(t, st, id, false)
	var res any
	code, data := rpcErrorOf(t, c.CallContext(ctx, &res, "nitrosign_approval", id))
	if code != -32000 || data["code"] != "approval_rejected" || data["rule"] != "approvals" {
		t.Fatalf("nitrosign_approval of the rejected send: code %d, data %v", code, data)
	}
	h2 := sendSmall()
	node.Mine()
	mined([]gethcommon.Hash{h2, h3}, []uint64{2, 3})
	if n, err := node.Backend.Client().NonceAt(ctx, from, nil); err != nil || n != 4 {
		t.Fatalf("the sender's nonce after mining: %d, %v; want 4", n, err)
	}
	bal, err := node.Backend.Client().BalanceAt(ctx, to, nil)
	if want := new(big.Int).Add(large, new(big.Int).Mul(small, big.NewInt(3))); err != nil || bal.Cmp(want) != 0 {
		t.Fatalf("destination balance %v, %v; want %v", bal, err, want)
	}
}
