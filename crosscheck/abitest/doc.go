// Package abitest cross-checks the test helper
// github.com/nitrosign/nitrosign/internal/abitest, with which policy and
// enclave tests build calldata, against go-ethereum's abi.Pack. It holds
// only tests.
package abitest
