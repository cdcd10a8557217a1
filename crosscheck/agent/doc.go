// Package agent cross-checks the nitrosign agent (package
// github.com/nitrosign/nitrosign/agent) against go-ethereum's own clients:
// go-ethereum's accounts/external backend (the Clef client) lists the
// accounts and signs transactions and messages through the agent, over
// HTTP and over the Unix socket, and go-ethereum's rpc client calls the
// Web3Signer methods with go-ethereum's own JSON (apitypes.TypedData); the
// answers are checked with go-ethereum's decoders and signature recovery.
// go-ethereum's bind.NewClefTransactor, which leaves the chain id to Clef,
// sends through a bind.BoundContract with the agent signing only
// (--chain-id) and in proxy mode. On go-ethereum's simulated chain
// (package crosscheck/internal/simnode, Sepolia's chain id), the proxy
// mode's sends are mined, and a send held for approvals keeps its nonce
// while later sends take the following ones.
// The agent runs against the dev stack with the real enclave binary. It
// holds only tests.
package agent
