// Package ethtx cross-checks package github.com/nitrosign/nitrosign/ethtx
// against go-ethereum, an independent implementation: decoding, signing
// hashes, signed encodings, transaction hashes, sender and EIP-7702
// authority recovery, and RFC 6979 signatures, on random transactions of
// every type. It holds only tests; it lives in the crosscheck module so
// that go-ethereum is never a requirement of the main module.
package ethtx
