// Package devstack cross-checks the whole signing path against
// go-ethereum: it runs the real enclave binary behind the host in the
// simulated dev stack (github.com/nitrosign/nitrosign/internal/devstack),
// signs transactions and messages through the host's HTTP API, and checks
// the answers (signed transactions, hashes, digests, signatures) with
// go-ethereum. It holds only tests.
package devstack
