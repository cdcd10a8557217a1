// Package txargs cross-checks package
// github.com/nitrosign/nitrosign/agent/txargs against go-ethereum: the
// transaction objects go-ethereum's wallets send (Clef's SendTxArgs, as
// its accounts/external backend marshals it, and the node API's
// TransactionArgs shape) parse to the transaction go-ethereum builds from
// them, and SignedJSON is the JSON go-ethereum writes for the signed
// transaction. It holds only tests.
package txargs
