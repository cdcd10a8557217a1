// Package clients runs the JavaScript wallet libraries that hot-wallet
// services use, ethers v6 and viem, unchanged, through `nitrosign agent`
// in proxy mode, against a chain of go-ethereum's simulated backend. It
// holds only tests.
//
// # Why
//
// The agent's promise is that a service keeps its wallet code and only
// points it at the agent: ethers' JsonRpcProvider(agent).getSigner() and
// viem's wallet client with a JSON-RPC account send transactions that the
// agent fills in, the enclave signs and the node mines, and sign typed
// data and messages that the libraries' own verifiers accept. Fakes of the
// agent or the node would prove that against our reading of the
// protocols; here both are real: the dev stack with the real enclave
// binary, the agent pinned to its PCRs and root, and go-ethereum's
// simulated backend behind its own JSON-RPC server (internal/simnode),
// mining a block whenever a transaction reaches its pool.
//
// # What is checked
//
// The node tests (clients/js/test/agent.e2e.mjs and agent-viem.e2e.mjs)
// assert what each library sees: receipts with status success and the
// enclave's address as sender, signatures that ethers' verifyTypedData
// and verifyMessage, and viem's, recover to that address. After each run,
// the Go side reads the chain itself, so that the test fails even if the
// JavaScript assertions were wrong: the run's blocks hold exactly one
// transaction, to the destination, of the value the test sent, whose
// sender go-ethereum recovers as the enclave's address; the sender's
// nonce went up by one and the destination's balance by the value. And the
// agent's request log (one JSON line per request) shows that the library
// made exactly the signing calls expected of it (eth_sendTransaction, not
// a transaction it signed and sent itself), for the enclave's address,
// and that every request was answered without error.
//
// # A fresh chain
//
// go-ethereum answers eth_getTransactionReceipt of an unknown transaction
// with an error ("transaction indexing is in progress") until its
// transaction indexer has run once, on the first block after genesis; the
// libraries give up on that error. The test mines an empty block and waits
// for the index before the libraries run, as a synced node would answer.
//
// # Skips
//
// Without node (20 or later) or without clients/js/node_modules (`npm ci
// --prefix clients/js`; `make test` runs it before the tests of both
// modules), the tests skip with a hint, except when CI is set: then they
// fail, so that CI proves what it claims.
package clients
