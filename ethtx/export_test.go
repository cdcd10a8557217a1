package ethtx

// SeedCorpus gives the external tests (seed_test.go) the seeds of
// FuzzDecodeUnsigned: they bring the random transactions, from
// internal/testgen, which imports this package and so cannot be imported
// by its in-package tests.
var SeedCorpus = seedCorpus
