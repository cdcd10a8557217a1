// Package ethmsg cross-checks package github.com/nitrosign/nitrosign/ethmsg
// against go-ethereum's EIP-712 signer (signer/core/apitypes) and its
// personal-message hash (accounts.TextHash): every document ethmsg accepts
// must hash as go-ethereum hashes it, its domain separator, message hash and
// encodeType included. Cases come from go-ethereum's own test files and
// vectors, random type graphs, the documents of ethmsg's table tests (read
// from the seed corpora ethmsg commits), and fuzzing. It holds only tests.
package ethmsg
