// Package summary renders decoded requests as canonical, human-readable
// text: what a transaction or message does, in the terms a person checks
// (chain, from, to and its label, asset and amount in units, method and
// arguments, fees, the digest to be signed).
//
// A summary is a function of the decoded request and the policy only, so
// that anyone holding both (an approver's own machine, an auditor reading
// the log) computes the same text as the enclave, byte for byte. Every
// string that came from the request is quoted with Go syntax (strconv.Quote),
// so control characters, bidirectional overrides and line breaks cannot
// forge lines; numbers are exact decimals; addresses are EIP-55.
//
// # Size
//
// A summary is stored in an audit record, and a record that does not fit
// in the host protocol (proto.MaxAuditRecordLen) cannot be persisted, so a
// summary is bounded whatever the request holds. In the record the text is
// a JSON string, where a line break, '"' and '\' take 2 bytes and other
// control characters 6, so every cap counts bytes as written there
// (audit.EscapedLen), never fewer than the text's own: quoting a message
// of zero bytes, then escaping it for JSON, grows it five times, and a cap
// on the raw length would not hold.
//
//   - A value taken from the request or the policy (a personal message, a
//     typed-data string or bytes value, a domain name or version, a label)
//     is shown whole up to [MaxMessageLen] (messages) or [MaxValueLen]
//     (the others). A longer one keeps its longest prefix that fits, then
//     "..." and its length and SHA-256, so that the record still shows
//     what was signed and can be matched with the request:
//     "Sign in to exa"... (13200 bytes, sha256 <64 hex digits>), or
//     0x1901ab... (3000 bytes, not UTF-8, sha256 <64 hex digits>). The
//     "..." follows the closing quote or the hex digits, where no whole
//     value has it. Calldata and init code are never printed, only
//     decoded or counted.
//   - Any one line value is capped at [MaxLineLen], a backstop that the
//     caps above keep out of reach.
//   - A whole summary is capped at [MaxSize] escaped bytes and [MaxLines]
//     lines: the lines past a cap are left out, so what is shown is the
//     beginning of the whole, a "truncated" line says how many, and the
//     last line, the digest to be signed, is always kept.
//
// docs/audit.md shows examples.
package summary

import (
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
)

// A Summary is a list of key: value lines in a fixed order.
type Summary struct {
	Lines []Line
}

// Line is one line of a summary.
type Line struct {
	Key, Value string
}

// String renders the summary as "key: value" lines, each ending in "\n".
func (s Summary) String() string {
	var b strings.Builder
	for _, l := range s.Lines {
		b.WriteString(l.Key)
		b.WriteString(": ")
		b.WriteString(l.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

// Key identifies the signing key in a summary.
type Key struct {
	ID      string
	Address ethtx.Address
	Path    string
}

// chainNames names well-known chains. Unknown chains are shown by id only.
var chainNames = map[uint64]string{
	1:        "Ethereum",
	10:       "OP Mainnet",
	56:       "BNB Smart Chain",
	137:      "Polygon PoS",
	8453:     "Base",
	17000:    "Holesky",
	42161:    "Arbitrum One",
	560048:   "Hoodi",
	11155111: "Sepolia",
}

func chain(id *big.Int) string {
	if id == nil {
		return "none"
	}
	if id.IsUint64() {
		if n, ok := chainNames[id.Uint64()]; ok {
			return fmt.Sprintf("%s (%s)", id, n)
		}
	}
	return id.String()
}

func gwei(v *big.Int) string { return ethtx.FormatUnits(v, 9) + " gwei" }

// names looks up labels and assets; a nil policy knows none.
type names struct {
	p     *policy.Policy
	keyID string
	chain uint64
}

func (n names) addr(a ethtx.Address) string {
	if n.p != nil {
		if l, ok := n.p.Label(n.keyID, n.chain, a); ok {
			return a.Hex() + " (" + quoteWithin(l, MaxValueLen, "") + ")"
		}
		if as, ok := n.p.Asset(n.chain, a); ok {
			return a.Hex() + " (" + as.Symbol + " token)"
		}
	}
	return a.Hex()
}

// amount renders an amount of the token at contract, in its units when the
// policy names the token, else as a raw integer.
func (n names) amount(contract ethtx.Address, v *big.Int) string {
	if n.p != nil {
		if as, ok := n.p.Asset(n.chain, contract); ok {
			return ethtx.FormatUnits(v, int(as.Decimals)) + " " + as.Symbol
		}
	}
	return v.String() + " (raw units of " + contract.Hex() + ")"
}

// Transaction summarises a decoded transaction that key is asked to sign.
// call is calldata.Decode(tx.Data); p may be nil.
func Transaction(tx *ethtx.Tx, call calldata.Call, key Key, digest [32]byte, p *policy.Policy) Summary {
	var b builder
	n := names{p: p, keyID: key.ID}
	if tx.ChainID != nil && tx.ChainID.IsUint64() {
		n.chain = tx.ChainID.Uint64()
	}
	b.add("request", "%s transaction", tx.Type)
	b.add("chain", "%s", chain(tx.ChainID))
	b.add("from", "%s (key %s, %s)", key.Address.Hex(), key.ID, key.Path)
	b.add("nonce", "%d", tx.Nonce)
	if tx.To == nil {
		b.add("to", "none: contract creation (%d bytes of init code)", len(tx.Data))
	} else {
		b.add("to", "%s", n.addr(*tx.To))
	}
	b.add("value", "%s", ethtx.FormatEther(tx.Value))
	if tx.To != nil {
		describeCall(&b, n, "call", *tx.To, call, tx.Data)
	}
	fees(&b, tx)
	if tx.Type == ethtx.TypeBlob {
		b.add("blobs", "%d, max fee per blob gas %s", len(tx.BlobVersionedHashes), gwei(tx.MaxFeePerBlobGas))
		for i, h := range tx.BlobVersionedHashes {
			b.add(fmt.Sprintf("blobs[%d]", i), "versioned hash 0x%x", h)
		}
	}
	for i, a := range tx.AuthorizationList {
		on := "chain " + chain(a.ChainID)
		if a.ChainID.Sign() == 0 {
			on = "any chain (chain id 0)"
		}
		signer := "signature invalid"
		if who, err := a.Authority(); err == nil {
			signer = "signed by " + n.addr(who)
			if who == key.Address {
				signer += ", this key"
			}
		}
		b.add(fmt.Sprintf("authorization[%d]", i), "delegate to %s on %s, nonce %d, %s", n.addr(a.Address), on, a.Nonce, signer)
	}
	if len(tx.AccessList) > 0 {
		keys := 0
		for _, t := range tx.AccessList {
			keys += len(t.StorageKeys)
		}
		b.add("access list", "%d addresses, %d storage keys", len(tx.AccessList), keys)
	}
	return b.done("digest", "0x%x", digest)
}

func fees(b *builder, tx *ethtx.Tx) {
	gas := new(big.Int).SetUint64(tx.GasLimit)
	switch {
	case tx.GasPrice != nil:
		max := new(big.Int).Mul(gas, tx.GasPrice)
		b.add("fees", "gas limit %d, gas price %s; at most %s", tx.GasLimit, gwei(tx.GasPrice), ethtx.FormatEther(max))
	case tx.MaxFeePerGas != nil:
		max := new(big.Int).Mul(gas, tx.MaxFeePerGas)
		if tx.MaxFeePerBlobGas != nil {
			// Each blob uses 2^17 blob gas (EIP-4844 GAS_PER_BLOB).
			blobGas := new(big.Int).SetUint64(uint64(len(tx.BlobVersionedHashes)) << 17)
			max.Add(max, blobGas.Mul(blobGas, tx.MaxFeePerBlobGas))
		}
		b.add("fees", "gas limit %d, max fee %s, priority fee %s; at most %s", tx.GasLimit, gwei(tx.MaxFeePerGas), gwei(tx.MaxPriorityFeePerGas), ethtx.FormatEther(max))
	default:
		b.add("fees", "gas limit %d", tx.GasLimit)
	}
}

// describeCall adds the lines of a decoded call made to contract.
func describeCall(b *builder, n names, prefix string, contract ethtx.Address, c calldata.Call, data []byte) {
	switch c := c.(type) {
	case nil:
		if len(data) == 0 {
			b.add(prefix, "none")
		} else {
			b.add(prefix, "not decoded (%d bytes)", len(data))
		}
	case *calldata.NoCall:
		b.add(prefix, "none")
	case *calldata.Unknown:
		b.add(prefix, "unknown function, selector 0x%x, %d bytes of arguments", c.ID, len(c.Args))
	case *calldata.ERC20Transfer:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".to", "%s", n.addr(c.To))
		b.add(prefix+".amount", "%s", n.amount(contract, c.Amount))
	case *calldata.TransferFrom:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".from", "%s", n.addr(c.From))
		b.add(prefix+".to", "%s", n.addr(c.To))
		b.add(prefix+".value", "%s (an amount for ERC-20, a token id for ERC-721)", n.amount(contract, c.Value))
	case *calldata.Approve:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".spender", "%s", n.addr(c.Spender))
		b.add(prefix+".amount", "%s", allowance(n, contract, c.Amount))
	case *calldata.IncreaseAllowance:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".spender", "%s", n.addr(c.Spender))
		b.add(prefix+".added", "%s", allowance(n, contract, c.Added))
	case *calldata.SafeTransferFrom721:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".from", "%s", n.addr(c.From))
		b.add(prefix+".to", "%s", n.addr(c.To))
		b.add(prefix+".token id", "%s", c.TokenID)
		if c.WithData {
			b.add(prefix+".data", "%d bytes", len(c.Data))
		}
	case *calldata.SafeTransferFrom1155:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".from", "%s", n.addr(c.From))
		b.add(prefix+".to", "%s", n.addr(c.To))
		b.add(prefix+".id", "%s", c.ID)
		b.add(prefix+".amount", "%s", c.Amount)
		b.add(prefix+".data", "%d bytes", len(c.Data))
	case *calldata.SetApprovalForAll:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".operator", "%s", n.addr(c.Operator))
		b.add(prefix+".approved", "%t (all tokens of %s)", c.Approved, contract.Hex())
	case *calldata.SafeExecTransaction:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".operation", "%s", c.Operation)
		b.add(prefix+".to", "%s", n.addr(c.To))
		b.add(prefix+".value", "%s", ethtx.FormatEther(c.Value))
		if c.GasPrice.Sign() != 0 || c.GasToken != (ethtx.Address{}) || c.RefundReceiver != (ethtx.Address{}) {
			b.add(prefix+".refund", "gas price %s of %s to %s", c.GasPrice, c.GasToken.Hex(), c.RefundReceiver.Hex())
		}
		b.add(prefix+".signatures", "%d bytes", len(c.Signatures))
		describeCall(b, n, prefix+".inner", c.To, c.Inner, c.Data)
	case *calldata.MultiSend:
		b.add(prefix, "%s, %d calls", c.Method(), len(c.Calls))
		for i, in := range c.Calls {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			b.add(p, "%s to %s, value %s", in.Operation, n.addr(in.To), ethtx.FormatEther(in.Value))
			describeCall(b, n, p+".call", in.To, in.Call, in.Data)
		}
	default:
		b.add(prefix, "%s", c.Method())
	}
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func allowance(n names, contract ethtx.Address, v *big.Int) string {
	if v.Cmp(maxUint256) == 0 {
		return "unlimited (2^256-1)"
	}
	return n.amount(contract, v)
}

// PersonalMessage summarises an EIP-191 personal message.
func PersonalMessage(msg []byte, key Key, digest [32]byte) Summary {
	var b builder
	b.add("request", "EIP-191 personal message")
	b.add("from", "%s (key %s, %s)", key.Address.Hex(), key.ID, key.Path)
	if utf8.Valid(msg) {
		b.add("message", "%s", quoteWithin(string(msg), MaxMessageLen, fmt.Sprintf("%d bytes", len(msg))))
	} else {
		b.add("message", "%s", hexWithin(msg, MaxMessageLen, fmt.Sprintf("%d bytes, not UTF-8", len(msg))))
	}
	return b.done("digest", "0x%x", digest)
}
