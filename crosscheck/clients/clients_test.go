package clients

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/nitrosign/nitrosign/agent"
	"github.com/nitrosign/nitrosign/agent/ethproxy"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/crosscheck/internal/simnode"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// jsDir is the JavaScript client's package, whose node_modules hold
// ethers and viem and whose test/ holds the node tests run here.
var jsDir = filepath.Join("..", "..", "clients", "js")

// nodeTimeout bounds a node run: a guard against a hung process, not an
// assertion about speed.
const nodeTimeout = 5 * time.Minute

// minNodeMajor is the oldest Node clients/js supports (package.json's
// engines).
const minNodeMajor = 20

// mineEvery is how often the simulated node looks for pending
// transactions to mine: the wallets poll for receipts every 250 ms.
const mineEvery = 25 * time.Millisecond

// TestWalletLibraries runs ethers v6 and viem, unchanged, through the
// agent in proxy mode in front of a simulated Sepolia whose genesis funds
// the enclave's address, then checks on the chain what each run sent.
func TestWalletLibraries(t *testing.T) {
	node := needNode(t)
	needModules(t)

	st := devstacktest.Start(t, t.TempDir())
	from := gethcommon.HexToAddress(st.Keys[0].Address)
	to := gethcommon.HexToAddress(devstack.ExampleDestinationB)
	chain := simnode.StartChain(t, types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(10), simnode.Ether)}}, big.NewInt(11155111))
	waitTxIndex(t, chain)
	chain.AutoMine(mineEvery)
	agentLog := new(logBuffer)
	agentURL := startAgent(t, st, chain.URL, agentLog)

	for _, tc := range []struct {
		name   string
		script string
		value  *big.Int       // what the script sends to NITROSIGN_AGENT_TO
		signs  map[string]int // the signing calls the library makes, by method
	}{
		{"ethers v6", "test/agent.e2e.mjs", milliEther(10),
			map[string]int{"eth_sendTransaction": 1, "eth_signTypedData_v4": 1, "personal_sign": 1}},
		{"viem", "test/agent-viem.e2e.mjs", milliEther(20),
			map[string]int{"eth_sendTransaction": 1, "eth_signTypedData_v4": 1, "personal_sign": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ec := chain.Backend.Client()
			startBlock, err := ec.BlockNumber(ctx)
			if err != nil {
				t.Fatal(err)
			}
			nonce, err := ec.NonceAt(ctx, from, nil)
			if err != nil {
				t.Fatal(err)
			}
			balance, err := ec.BalanceAt(ctx, to, nil)
			if err != nil {
				t.Fatal(err)
			}

			env := []string{
				"NITROSIGN_AGENT_URL=" + agentURL,
				"NITROSIGN_AGENT_ADDRESS=" + from.Hex(),
				"NITROSIGN_AGENT_TO=" + to.Hex(),
			}
			logStart := agentLog.Len()
			runNodeTest(t, node, env, tc.script, agentLog)
			checkRequests(t, agentLog, logStart, from, tc.signs)

			// The chain, read by go-ethereum: one transaction since the
			// run began, the one the script sent, signed by the enclave.
			endBlock, err := ec.BlockNumber(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var mined []*types.Transaction
			for n := startBlock + 1; n <= endBlock; n++ {
				b, err := ec.BlockByNumber(ctx, new(big.Int).SetUint64(n))
				if err != nil {
					t.Fatal(err)
				}
				mined = append(mined, b.Transactions()...)
			}
			if len(mined) != 1 {
				t.Fatalf("blocks %d to %d hold %d transactions, want the one the script sent", startBlock+1, endBlock, len(mined))
			}
			tx := mined[0]
			sender, err := types.Sender(types.LatestSignerForChainID(chain.ChainID), tx)
			if err != nil || sender != from {
				t.Errorf("mined transaction %s: sender %s (%v), want the enclave's %s", tx.Hash().Hex(), sender.Hex(), err, from.Hex())
			}
			// The wallets leave the fees to the agent, which fills in
			// EIP-1559 fees on a chain with a base fee.
			if tx.To() == nil || *tx.To() != to || tx.Value().Cmp(tc.value) != 0 || tx.Nonce() != nonce || tx.ChainId().Cmp(chain.ChainID) != 0 || tx.Type() != types.DynamicFeeTxType {
				t.Errorf("mined transaction %s: to %v, value %v, nonce %d, chain %v, type %d; want to %s, value %v, nonce %d, chain %v, type %d",
					tx.Hash().Hex(), tx.To(), tx.Value(), tx.Nonce(), tx.ChainId(), tx.Type(), to.Hex(), tc.value, nonce, chain.ChainID, types.DynamicFeeTxType)
			}
			rcpt, err := ec.TransactionReceipt(ctx, tx.Hash())
			if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
				t.Errorf("receipt of %s: %+v, %v", tx.Hash().Hex(), rcpt, err)
			}
			if got, err := ec.NonceAt(ctx, from, nil); err != nil || got != nonce+1 {
				t.Errorf("sender's nonce %d (%v), want %d", got, err, nonce+1)
			}
			want := new(big.Int).Add(balance, tc.value)
			if got, err := ec.BalanceAt(ctx, to, nil); err != nil || got.Cmp(want) != 0 {
				t.Errorf("destination's balance %v (%v), want %v", got, err, want)
			}
		})
	}
}

// waitTxIndex mines an empty block and waits until the node's transaction
// index covers the chain. A fresh go-ethereum chain answers
// eth_getTransactionReceipt of a transaction it does not hold with the
// error "transaction indexing is in progress", rather than null, until its
// indexer has run once, which it does on the first block after genesis:
// ethers and viem take that error for a failure, not for "not mined yet",
// as they should from a node still syncing. A synced node answers null.
func waitTxIndex(t *testing.T, chain *simnode.Node) {
	t.Helper()
	chain.Mine()
	c, err := rpc.Dial(chain.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard, not an assertion
	defer cancel()
	for {
		var receipt map[string]any
		err := c.CallContext(ctx, &receipt, "eth_getTransactionReceipt", gethcommon.Hash{})
		if err == nil && receipt == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the node's transaction index is not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func milliEther(n int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e15))
}

// startAgent runs an agent against the dev stack st in proxy mode to the
// node at upstream, pinned to the stack's PCRs and root as `nitrosign
// agent` is, serving HTTP on a free loopback port, and returns its URL.
// The agent logs to log.
func startAgent(t *testing.T, st *devstack.Stack, upstream string, log io.Writer) string {
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
	if blk == nil {
		t.Fatalf("%s: no PEM block", st.NSMRootPath)
	}
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	// JSON, at debug level: checkRequests reads every request's line.
	logger := slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := agent.New(agent.Config{
		Client: c,
		Check:  client.EnclaveCheck{PCRs: pcrs, Roots: []*x509.Certificate{root}},
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	px, err := ethproxy.New(ethproxy.Options{Upstream: upstream, Logger: logger}, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.SetProxy(px)

	ln, err := agent.Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
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
	return "http://" + ln.Addr().String()
}

// logBuffer is the agent's log: written by its goroutines, shown when a
// run fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is the log's length so far.
func (b *logBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// signingMethods are the methods by which a wallet has a transaction or a
// message signed, or sends one.
var signingMethods = []string{
	"eth_sendTransaction", "eth_signTransaction", "eth_sendRawTransaction",
	"eth_sign", "personal_sign", "eth_signTypedData", "eth_signTypedData_v4",
}

// checkRequests reads the agent's request lines logged since offset start
// (one per JSON-RPC request): every request was answered without error,
// and the library made exactly the signing calls in want, each for the
// account from. So the wallet left filling and sending the transaction to
// the agent (eth_sendTransaction, not a transaction it signed and sent
// itself), and no library fell back to another method after an error.
func checkRequests(t *testing.T, log *logBuffer, start int, from gethcommon.Address, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(log.String()[start:]), "\n") {
		var rec struct {
			Msg, Method, Outcome, Account string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("agent log line %q: %v", line, err)
		}
		if rec.Msg != "request" {
			continue
		}
		if rec.Outcome != "ok" {
			t.Errorf("agent: %s answered %s", rec.Method, rec.Outcome)
		}
		if slices.Contains(signingMethods, rec.Method) {
			got[rec.Method]++
			if rec.Account != from.Hex() {
				t.Errorf("agent: %s for account %q, want %s", rec.Method, rec.Account, from.Hex())
			}
		}
	}
	for _, m := range signingMethods {
		if got[m] != want[m] {
			t.Errorf("agent: %d %s requests, want %d (all: %v)", got[m], m, want[m], got)
		}
	}
	if t.Failed() {
		t.Logf("agent log:\n%s", log.String()[start:])
	}
}

var tapCount = regexp.MustCompile(`(?m)^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$`)

// runNodeTest runs `node --test script` in clients/js with env added to
// the environment and shows its output (node's spec reporter); it fails
// the test if node fails, if any test failed, was cancelled, skipped or
// left to do, or if none passed. On failure it shows agentLog too.
func runNodeTest(t *testing.T, node string, env []string, script string, agentLog *logBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	// Two reporters: spec for people (standard error), TAP for the counts
	// (standard output).
	cmd := exec.CommandContext(ctx, node, "--test",
		"--test-reporter=spec", "--test-reporter-destination=stderr",
		"--test-reporter=tap", "--test-reporter-destination=stdout",
		script)
	cmd.Dir = jsDir
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()

	counts := map[string]string{}
	for _, m := range tapCount.FindAllStringSubmatch(stdout.String(), -1) {
		counts[m[1]] = m[2]
	}
	t.Logf("node --test %s:\n%s", script, stderr.String())
	if err != nil || counts["fail"] != "0" || counts["cancelled"] != "0" || counts["skipped"] != "0" || counts["todo"] != "0" || counts["pass"] == "" || counts["pass"] == "0" {
		t.Fatalf("node --test %s: %v (counts %v)\n--- TAP\n%s\n--- agent log\n%s", script, err, counts, stdout.String(), agentLog.String())
	}
	t.Logf("node --test %s: %s tests, %s passed", script, counts["tests"], counts["pass"])
}

// needNode returns node's path, or skips (fails under CI) with a hint when
// there is no node, or one older than minNodeMajor.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed (Node 20 or later with npm; .ci/run installs nodejs and npm with apt)")
	}
	out, err := exec.Command(node, "--version").Output()
	var major int
	if _, serr := fmt.Sscanf(string(out), "v%d.", &major); err != nil || serr != nil {
		t.Fatalf("node --version: %q: %v", out, err)
	}
	if major < minNodeMajor {
		missing(t, fmt.Sprintf("node %s is older than %d: install Node %d or later", strings.TrimSpace(string(out)), minNodeMajor, minNodeMajor))
	}
	return node
}

// needModules skips (fails under CI) unless clients/js/node_modules holds
// ethers and viem.
func needModules(t *testing.T) {
	t.Helper()
	for _, dep := range []string{"ethers", "viem"} {
		if _, err := os.Stat(filepath.Join(jsDir, "node_modules", dep, "package.json")); err != nil {
			missing(t, "clients/js/node_modules lacks "+dep+": run `npm ci --prefix clients/js` from the repository's root (make test does)")
		}
	}
}

func missing(t *testing.T, hint string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(hint + " (CI is set: not skipping)")
	}
	t.Skip(hint)
}

// cleanEnv is the environment without the variables the node tests read,
// so that only what the test sets reaches them.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NITROSIGN_") && !strings.HasPrefix(kv, "NODE_OPTIONS=") {
			env = append(env, kv)
		}
	}
	return env
}
