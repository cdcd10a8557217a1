// Package simnode runs go-ethereum's simulated backend (an in-process EVM
// and transaction pool, ethclient/simulated) behind a real JSON-RPC HTTP
// endpoint, so that tests can point a program that speaks to an Ethereum
// node (the agent's proxy mode, ethers, a wallet) at a chain whose blocks
// they control. It is for tests of the crosscheck module only.
//
// # Mining
//
// Blocks are made only when a test says so: [Node.Mine] seals the pending
// transactions into a block, [Node.Drop] empties the pool as if the
// network had dropped them, and [Node.AutoMine] seals a block whenever
// the pool holds a transaction, for tests that wait for receipts as a
// wallet does. Block timestamps advance by at least a second each, and
// blocks sealed faster than that come out slower (about two seconds apart
// in our runs, against milliseconds for the first): tests that wait for
// many blocks in turn should batch their transactions.
package simnode

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
)

// Node is a running simulated chain with an HTTP JSON-RPC endpoint.
type Node struct {
	// Backend is go-ethereum's simulated backend; its Client talks to the
	// chain in process.
	Backend *simulated.Backend
	// URL is the HTTP JSON-RPC endpoint (eth, net, web3 and txpool
	// namespaces), on 127.0.0.1.
	URL string
	// ChainID is the chain's id (go-ethereum's dev chain, 1337, unless
	// StartChain chose another).
	ChainID *big.Int

	mu   sync.Mutex // serializes Mine and Drop with the auto-miner
	stop chan struct{}
	done chan struct{}
}

// Ether is 10^18 wei.
var Ether = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

// Start starts a chain whose genesis funds alloc, with every fork of
// go-ethereum's dev chain active (London's base fee, Cancun, Prague), and
// stops it when the test ends. It picks a free port, retrying a few times
// when another process takes the port first.
func Start(t testing.TB, alloc types.GenesisAlloc) *Node {
	t.Helper()
	return StartChain(t, alloc, nil)
}

// StartChain is Start with the chain id chainID (nil: 1337), for tests
// whose signer's policy allows only some chains.
func StartChain(t testing.TB, alloc types.GenesisAlloc, chainID *big.Int) *Node {
	t.Helper()
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("simnode: %v", err)
		}
		b, err := newBackend(alloc, port, chainID)
		if err != nil {
			lastErr = err
			continue
		}
		ctx := context.Background()
		id, err := b.Client().ChainID(ctx)
		if err != nil {
			b.Close()
			t.Fatalf("simnode: chain id: %v", err)
		}
		n := &Node{Backend: b, URL: fmt.Sprintf("http://127.0.0.1:%d", port), ChainID: id}
		t.Cleanup(func() {
			n.stopAutoMine()
			if err := b.Close(); err != nil {
				t.Errorf("simnode: close: %v", err)
			}
		})
		if err := n.waitTxIndex(); err != nil {
			t.Fatalf("simnode: %v", err)
		}
		return n
	}
	t.Fatalf("simnode: cannot start the node: %v", lastErr)
	return nil
}

// newBackend starts the simulated backend with HTTP on port; NewBackend
// panics when the node cannot start (the port taken), which is an error
// here.
func newBackend(alloc types.GenesisAlloc, port int, chainID *big.Int) (b *simulated.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("simnode: starting on port %d: %v", port, r)
		}
	}()
	return simulated.NewBackend(alloc, func(nc *node.Config, ec *ethconfig.Config) {
		if chainID != nil {
			cfg := *ec.Genesis.Config // a copy: the default is go-ethereum's shared value
			cfg.ChainID = new(big.Int).Set(chainID)
			ec.Genesis.Config = &cfg
		}
		nc.HTTPHost = "127.0.0.1"
		nc.HTTPPort = port
		nc.HTTPModules = []string{"eth", "net", "web3", "txpool"}
		nc.HTTPVirtualHosts = []string{"*"}
	}), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Mine seals the pending transactions into a new block and returns its
// hash.
func (n *Node) Mine() common.Hash {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.Backend.Commit()
}

// Drop removes every transaction from the pool, as if the network had
// dropped them.
func (n *Node) Drop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Backend.Rollback()
}

// AutoMine seals a block whenever the pool has a pending transaction,
// looking every interval, until the test ends.
func (n *Node) AutoMine(interval time.Duration) {
	n.mu.Lock()
	if n.stop != nil {
		n.mu.Unlock()
		return
	}
	n.stop, n.done = make(chan struct{}), make(chan struct{})
	stop, done := n.stop, n.done
	n.mu.Unlock()
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			count, err := n.Backend.Client().PendingTransactionCount(context.Background())
			if err == nil && count > 0 {
				n.Mine()
			}
		}
	}()
}

func (n *Node) stopAutoMine() {
	n.mu.Lock()
	stop, done := n.stop, n.done
	n.stop = nil
	n.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// waitTxIndex mines one empty block and waits until the node's
// transaction index answers: until the first block after genesis is
// indexed, go-ethereum answers eth_getTransactionReceipt with "transaction
// indexing is in progress" rather than a receipt or null, which clients
// (ethers, viem, go-ethereum's own) take for a failure. A synced node
// answers at once.
func (n *Node) waitTxIndex() error {
	n.Mine()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard, not an assertion
	defer cancel()
	for {
		_, err := n.Backend.Client().TransactionReceipt(ctx, common.Hash{})
		if errors.Is(err, ethereum.NotFound) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the transaction index is not ready: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Receipt returns the receipt of the transaction with hash, waiting for a
// block that holds it (mined by AutoMine or another goroutine) until ctx
// ends.
func (n *Node) Receipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	for {
		r, err := n.Backend.Client().TransactionReceipt(ctx, hash)
		if err == nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
