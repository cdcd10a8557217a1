// Package calldata cross-checks package
// github.com/nitrosign/nitrosign/calldata against go-ethereum's
// accounts/abi: random calls of every function it decodes, packed by
// go-ethereum, decode to their arguments; whatever it accepts (fuzzed),
// go-ethereum unpacks to the same values; and its selectors are
// go-ethereum's Keccak-256 of their methods. It holds only tests.
package calldata
