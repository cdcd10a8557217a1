package ethtx

import "github.com/decred/dcrd/dcrec/secp256k1/v4"

// SeedCorpus gives the external tests (seed_test.go) the seeds of
// FuzzDecodeUnsigned: they bring the random transactions, from
// internal/testgen, which imports this package and so cannot be imported
// by its in-package tests.
var SeedCorpus = seedCorpus

// NonceCandidates returns the first n nonces that Sign would try for key d
// and hash h, in order.
func NonceCandidates(d *secp256k1.ModNScalar, h *[32]byte, n int) []secp256k1.ModNScalar {
	var g rfc6979
	g.init(d, h)
	out := make([]secp256k1.ModNScalar, n)
	for i := range out {
		out[i] = g.next()
	}
	return out
}
