// Package proxy cross-checks package
// github.com/nitrosign/nitrosign/agent/ethproxy against a real node:
// go-ethereum's simulated backend behind its JSON-RPC HTTP server
// (crosscheck/internal/simnode). Transactions the proxy fills, signs with a
// local key (standing in for the enclave) and sends are mined, with the
// key's address as sender, consecutive nonces under concurrency, and a
// transaction dropped from the pool replaced; Fill completes transaction
// objects as the node's own eth_fillTransaction does. It holds only tests.
package proxy
