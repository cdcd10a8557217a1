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
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy"
)

// A Summary is a list of key: value lines in a fixed order.
type Summary struct {
	Lines []Line
}

// Line is one line of a summary. Value is what the request alone
// determines, as a decoding without the policy and without the enclave's
// keys computes it byte for byte (addresses, raw amounts, methods,
// arguments, the digest): what an approver's own machine can check.
// Labels are what the policy and the enclave's key store add when the
// line is shown (an address's label or token name, an amount in the
// token's units, the signing key's id and path, "this key"): kept apart,
// so that a comparison of substance ignores them as whole fields and
// never has to take them out of text.
type Line struct {
	Key, Value string
	Labels     []Label
}

// A Label is text a line shows that the policy or the key store adds:
// Text is shown in place of Value[At:End], or inserted at At when End ==
// At (a label after an address). At and End are byte offsets into Value,
// in order, and a line's labels never overlap.
type Label struct {
	At, End int
	Text    string
}

// Shown is the line's value as shown: Value with its labels in place.
func (l Line) Shown() string {
	if len(l.Labels) == 0 {
		return l.Value
	}
	var b strings.Builder
	at := 0
	for _, lb := range l.Labels {
		b.WriteString(l.Value[at:lb.At])
		b.WriteString(lb.Text)
		at = lb.End
	}
	b.WriteString(l.Value[at:])
	return b.String()
}

// Check reports whether the line's labels are well formed: in order, not
// overlapping, within Value and on its rune boundaries (so that Shown
// stays valid UTF-8 and never splits a character). Lines from elsewhere
// (the host's answer) are checked before they are shown or compared.
func (l Line) Check() error {
	at := 0
	for i, lb := range l.Labels {
		switch {
		case lb.At < at || lb.End < lb.At || lb.End > len(l.Value):
			return fmt.Errorf("label %d: bytes %d to %d out of order or past the value (%d bytes)", i, lb.At, lb.End, len(l.Value))
		case !runeStart(l.Value, lb.At) || !runeStart(l.Value, lb.End):
			return fmt.Errorf("label %d: bytes %d to %d split a character", i, lb.At, lb.End)
		}
		at = lb.End
	}
	return nil
}

// runeStart reports whether offset i of s is at a rune boundary.
func runeStart(s string, i int) bool { return i == len(s) || utf8.RuneStart(s[i]) }

// String renders the summary as "key: value" lines, each ending in "\n",
// every value shown with its labels (Line.Shown): the text audit records
// keep.
func (s Summary) String() string {
	// One allocation: the size is known before anything is written, and
	// each line is shown in place rather than through Shown's string.
	n := 0
	for _, l := range s.Lines {
		n += len(l.Key) + 2 + shownLen(l) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for _, l := range s.Lines {
		b.WriteString(l.Key)
		b.WriteString(": ")
		writeShown(&b, l)
		b.WriteByte('\n')
	}
	return b.String()
}

// writeShown writes l.Shown() to b.
func writeShown(b *strings.Builder, l Line) {
	at := 0
	for _, lb := range l.Labels {
		b.WriteString(l.Value[at:lb.At])
		b.WriteString(lb.Text)
		at = lb.End
	}
	b.WriteString(l.Value[at:])
}

// shownLen is len(l.Shown()), without making it.
func shownLen(l Line) int {
	n := len(l.Value)
	for _, lb := range l.Labels {
		n += len(lb.Text) - (lb.End - lb.At)
	}
	return n
}

// shownEscapedLen is audit.EscapedLen(l.Shown()), without making it:
// EscapedLen counts byte by byte, so it adds up over the pieces.
func shownEscapedLen(l Line) int {
	n, at := 0, 0
	for _, lb := range l.Labels {
		n += audit.EscapedLen(l.Value[at:lb.At]) + audit.EscapedLen(lb.Text)
		at = lb.End
	}
	return n + audit.EscapedLen(l.Value[at:])
}

// Key identifies the signing key in a summary.
type Key struct {
	ID      string
	Address ethtx.Address
	Path    string

	// The from line's value and label, made once by NewKey for a key
	// that signs many requests, and the key they were made for (made):
	// a Key made otherwise, or changed since, makes them each time.
	hex, label string
	made       *Key
}

// NewKey returns the Key of id, at address, derived at path, with the text
// of its summary line made once: a summary of a request to a key made by
// NewKey costs neither the address's checksum (a Keccak-256 hash) nor the
// line's text.
func NewKey(id string, address ethtx.Address, path string) Key {
	return Key{ID: id, Address: address, Path: path, hex: address.Hex(), label: fromLabel(id, path), made: &Key{ID: id, Address: address, Path: path}}
}

// fromLabel is the label of the from line of key id at path.
func fromLabel(id, path string) string { return " (key " + id + ", " + path + ")" }

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

// chainTexts is how chain shows the chains of chainNames, made once.
var chainTexts = func() map[uint64]string {
	m := make(map[uint64]string, len(chainNames))
	for id, n := range chainNames {
		m[id] = strconv.FormatUint(id, 10) + " (" + n + ")"
	}
	return m
}()

func chain(id *big.Int) string {
	if id == nil {
		return "none"
	}
	if id.IsUint64() {
		if t, ok := chainTexts[id.Uint64()]; ok {
			return t
		}
	}
	return id.String()
}

// txKind is the request line of a transaction of type t: t's name, then
// " transaction", a constant for the known types.
func txKind(t ethtx.Type) string {
	switch t {
	case ethtx.TypeLegacy:
		return "legacy transaction"
	case ethtx.TypeAccessList:
		return "EIP-2930 transaction"
	case ethtx.TypeDynamicFee:
		return "EIP-1559 transaction"
	case ethtx.TypeBlob:
		return "EIP-4844 transaction"
	case ethtx.TypeSetCode:
		return "EIP-7702 transaction"
	}
	return t.String() + " transaction"
}

func gwei(v *big.Int) string { return ethtx.FormatUnits(v, 9) + " gwei" }

// names looks up labels and assets; a nil policy knows none.
type names struct {
	p     *policy.Policy
	keyID string
	chain uint64
}

// addr is address a, labelled with the policy's label for it or the
// symbol of the token it is.
func (n names) addr(a ethtx.Address) part {
	if n.p == nil {
		return part{value: a.Hex()}
	}
	p := part{value: n.p.Checksummed(a)}
	if l, ok := n.p.Label(n.keyID, n.chain, a); ok {
		p.label = labelText(l)
	} else if as, ok := n.p.Asset(n.chain, a); ok {
		p.label = " (" + as.Symbol + " token)"
	}
	return p
}

// labelText is the label text of an address the policy labels l:
// " (" + quoteWithin(l, MaxValueLen, "") + ")". A label of printable ASCII
// without '"' or '\\' within the cap, as most are, is quoted as itself
// (strconv.Quote adds the marks only), and made in one allocation.
func labelText(l string) string {
	if len(l) > MaxValueLen-quoteMarks || !plainASCII(l) {
		return " (" + quoteWithin(l, MaxValueLen, "") + ")"
	}
	var b strings.Builder
	b.Grow(len(l) + 5)
	b.WriteString(` ("`)
	b.WriteString(l)
	b.WriteString(`")`)
	return b.String()
}

// amount is an amount of the token at contract: a raw integer, shown in
// the token's units instead when the policy names the token.
func (n names) amount(contract ethtx.Address, v *big.Int) part {
	p := part{value: v.String() + " (raw units of " + contract.Hex() + ")"}
	if n.p != nil {
		if as, ok := n.p.Asset(n.chain, contract); ok {
			p.label, p.replace = ethtx.FormatUnits(v, int(as.Decimals))+" "+as.Symbol, true
		}
	}
	return p
}

// from adds the line naming the signing key: its address, then, as a
// label, its id and path, which only the enclave knows when the request
// names the key by its address.
func from(b *builder, key Key) {
	p := part{value: key.hex, label: key.label}
	if m := key.made; m == nil || m.ID != key.ID || m.Address != key.Address || m.Path != key.Path {
		p = part{value: key.Address.Hex(), label: fromLabel(key.ID, key.Path)}
	}
	b.addParts("from", p)
}

// Transaction summarises a decoded transaction that key is asked to sign.
// call is calldata.Decode(tx.Data); p may be nil.
func Transaction(tx *ethtx.Tx, call calldata.Call, key Key, digest [32]byte, p *policy.Policy) Summary {
	b := newBuilder(12, 4)
	transaction(&b, tx, call, key, digest, p)
	return Summary{Lines: b.lines}
}

// TransactionText is Transaction(tx, call, key, digest, p).String(), made
// without the lines: the text the enclave records for every transaction
// it decides, written line by line into one buffer.
func TransactionText(tx *ethtx.Tx, call calldata.Call, key Key, digest [32]byte, p *policy.Policy) string {
	b := builder{textMode: true}
	// Room for the usual transaction's text, in one allocation.
	b.text.Grow(768)
	transaction(&b, tx, call, key, digest, p)
	return b.text.String()
}

// transaction adds the lines of Transaction to b, the last one included.
func transaction(b *builder, tx *ethtx.Tx, call calldata.Call, key Key, digest [32]byte, p *policy.Policy) {
	// The common lines are made without fmt, the summary being made for
	// every request; the text is the same as fmt's (%s of a Type, %d of
	// a uint64).
	n := names{p: p, keyID: key.ID}
	if tx.ChainID != nil && tx.ChainID.IsUint64() {
		n.chain = tx.ChainID.Uint64()
	}
	b.addText("request", txKind(tx.Type))
	b.addText("chain", chain(tx.ChainID))
	from(b, key)
	b.addText("nonce", strconv.FormatUint(tx.Nonce, 10))
	if tx.To == nil {
		b.add("to", "none: contract creation (%d bytes of init code)", len(tx.Data))
	} else {
		b.addParts("to", n.addr(*tx.To))
	}
	var buf [128]byte
	b.addBytes("value", ethtx.AppendEther(buf[:0], tx.Value))
	if tx.To != nil {
		describeCall(b, n, "call", *tx.To, call, tx.Data)
	}
	fees(b, tx)
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
		parts := []part{text("delegate to "), n.addr(a.Address), text(fmt.Sprintf(" on %s, nonce %d, ", on, a.Nonce))}
		if who, err := a.Authority(); err == nil {
			parts = append(parts, text("signed by "), n.addr(who))
			if who == key.Address {
				// The key's address is the enclave's to know.
				parts = append(parts, part{label: ", this key"})
			}
		} else {
			parts = append(parts, text("signature invalid"))
		}
		b.addParts(fmt.Sprintf("authorization[%d]", i), parts...)
	}
	if len(tx.AccessList) > 0 {
		keys := 0
		for _, t := range tx.AccessList {
			keys += len(t.StorageKeys)
		}
		b.add("access list", "%d addresses, %d storage keys", len(tx.AccessList), keys)
	}
	b.finishBytes("digest", hex.AppendEncode(append(buf[:0], "0x"...), digest[:]))
}

// appendGwei appends gwei(v) to dst.
func appendGwei(dst []byte, v *big.Int) []byte {
	return append(ethtx.AppendUnits(dst, v, 9), " gwei"...)
}

func fees(b *builder, tx *ethtx.Tx) {
	// gas and max stay on the stack (only their digits are allocated).
	var gas, max, blobGas big.Int
	gas.SetUint64(tx.GasLimit)
	switch {
	case tx.GasPrice != nil:
		max.Mul(&gas, tx.GasPrice)
		var buf [320]byte
		l := strconv.AppendUint(append(buf[:0], "gas limit "...), tx.GasLimit, 10)
		l = appendGwei(append(l, ", gas price "...), tx.GasPrice)
		l = ethtx.AppendEther(append(l, "; at most "...), &max)
		b.addBytes("fees", l)
	case tx.MaxFeePerGas != nil:
		max.Mul(&gas, tx.MaxFeePerGas)
		if tx.MaxFeePerBlobGas != nil {
			// Each blob uses 2^17 blob gas (EIP-4844 GAS_PER_BLOB).
			blobGas.SetUint64(uint64(len(tx.BlobVersionedHashes)) << 17)
			max.Add(&max, blobGas.Mul(&blobGas, tx.MaxFeePerBlobGas))
		}
		var buf [320]byte
		l := strconv.AppendUint(append(buf[:0], "gas limit "...), tx.GasLimit, 10)
		l = appendGwei(append(l, ", max fee "...), tx.MaxFeePerGas)
		l = appendGwei(append(l, ", priority fee "...), tx.MaxPriorityFeePerGas)
		l = ethtx.AppendEther(append(l, "; at most "...), &max)
		b.addBytes("fees", l)
	default:
		b.add("fees", "gas limit %d", tx.GasLimit)
	}
}

// describeCall adds the lines of a decoded call made to contract.
func describeCall(b *builder, n names, prefix string, contract ethtx.Address, c calldata.Call, data []byte) {
	switch c := c.(type) {
	case nil:
		if len(data) == 0 {
			b.addText(prefix, "none")
		} else {
			b.add(prefix, "not decoded (%d bytes)", len(data))
		}
	case *calldata.NoCall:
		b.addText(prefix, "none")
	case *calldata.Unknown:
		b.add(prefix, "unknown function, selector 0x%x, %d bytes of arguments", c.ID, len(c.Args))
	case *calldata.ERC20Transfer:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".to", n.addr(c.To))
		b.addParts(prefix+".amount", n.amount(contract, c.Amount))
	case *calldata.TransferFrom:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".from", n.addr(c.From))
		b.addParts(prefix+".to", n.addr(c.To))
		b.addParts(prefix+".value", n.amount(contract, c.Value), text(" (an amount for ERC-20, a token id for ERC-721)"))
	case *calldata.Approve:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".spender", n.addr(c.Spender))
		b.addParts(prefix+".amount", allowance(n, contract, c.Amount))
	case *calldata.IncreaseAllowance:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".spender", n.addr(c.Spender))
		b.addParts(prefix+".added", allowance(n, contract, c.Added))
	case *calldata.SafeTransferFrom721:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".from", n.addr(c.From))
		b.addParts(prefix+".to", n.addr(c.To))
		b.add(prefix+".token id", "%s", c.TokenID)
		if c.WithData {
			b.add(prefix+".data", "%d bytes", len(c.Data))
		}
	case *calldata.SafeTransferFrom1155:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".from", n.addr(c.From))
		b.addParts(prefix+".to", n.addr(c.To))
		b.add(prefix+".id", "%s", c.ID)
		b.add(prefix+".amount", "%s", c.Amount)
		b.add(prefix+".data", "%d bytes", len(c.Data))
	case *calldata.SetApprovalForAll:
		b.add(prefix, "%s", c.Method())
		b.addParts(prefix+".operator", n.addr(c.Operator))
		b.add(prefix+".approved", "%t (all tokens of %s)", c.Approved, contract.Hex())
	case *calldata.SafeExecTransaction:
		b.add(prefix, "%s", c.Method())
		b.add(prefix+".operation", "%s", c.Operation)
		b.addParts(prefix+".to", n.addr(c.To))
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
			b.addParts(p, text(in.Operation.String()+" to "), n.addr(in.To), text(", value "+ethtx.FormatEther(in.Value)))
			describeCall(b, n, p+".call", in.To, in.Call, in.Data)
		}
	default:
		b.add(prefix, "%s", c.Method())
	}
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

func allowance(n names, contract ethtx.Address, v *big.Int) part {
	if v.Cmp(maxUint256) == 0 {
		return text("unlimited (2^256-1)")
	}
	return n.amount(contract, v)
}

// PersonalMessage summarises an EIP-191 personal message.
func PersonalMessage(msg []byte, key Key, digest [32]byte) Summary {
	var b builder
	b.add("request", "EIP-191 personal message")
	from(&b, key)
	if utf8.Valid(msg) {
		b.add("message", "%s", quoteWithin(string(msg), MaxMessageLen, fmt.Sprintf("%d bytes", len(msg))))
	} else {
		b.add("message", "%s", hexWithin(msg, MaxMessageLen, fmt.Sprintf("%d bytes, not UTF-8", len(msg))))
	}
	return b.done("digest", "0x%x", digest)
}
