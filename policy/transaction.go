package policy

import (
	"fmt"
	"math/big"
	"slices"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// A Decision is the outcome of evaluating a request.
type Decision struct {
	Allow bool
	// Rule names the rule that refused (empty when allowed): one of the
	// stateless policy rules of package api/refusal.
	Rule string
	// Reason says why, for humans; it holds no secrets.
	Reason string
	// Label is the allowlist label of the request's destination (the
	// recipient of a transfer, the spender of a grant, the Safe of a Safe
	// transaction, the contract of a generic call), when it has one.
	Label string
	// Movements lists the value an allowed request moves, in the order the
	// chain would move it; empty when refused. Gas fees are not movements.
	Movements []Movement
	// Grants lists the allowances an allowed request grants or revokes,
	// in order; empty when refused.
	Grants []Grant
}

// Movement is value that an allowed request moves: native coin or an ERC-20
// token amount, or NFTs. The stateful rules (rolling limits, approvals)
// count them.
type Movement struct {
	ChainID uint64
	// Asset is the token or NFT contract; zero for the native coin.
	Asset ethtx.Address
	// From is the account whose funds move: the signing key
	// ([Transaction.From]) for its own transfers, a Safe for the calls a
	// Safe transaction makes (the Safe's funds, not the key's), the "from"
	// of a transferFrom.
	From ethtx.Address
	// To is the recipient.
	To ethtx.Address
	// Amount is in base units (wei, token units); for NFTs, the number of
	// tokens of TokenID (1 for ERC-721). Never nil, never zero: nothing is
	// reported for zero amounts.
	Amount *big.Int
	// TokenID is the NFT's id, nil for the native coin and ERC-20 tokens.
	TokenID *big.Int
}

// GrantKind is how an allowance is granted.
type GrantKind string

// The kinds of grants.
const (
	GrantApprove           GrantKind = "approve"           // ERC-20 approve, ERC-721 approve of one token
	GrantIncreaseAllowance GrantKind = "increaseAllowance" // adds Amount to the allowance
	GrantApprovalForAll    GrantKind = "setApprovalForAll" // ERC-721/1155 operator of all tokens
	GrantEIP2612           GrantKind = "EIP-2612"          // signed Permit
	GrantPermit2Allowance  GrantKind = "Permit2 AllowanceTransfer"
	GrantPermit2Transfer   GrantKind = "Permit2 SignatureTransfer" // a single transfer of up to Amount
)

// Grant is an allowance that an allowed request grants (or revokes: Amount
// zero). Grants are not movements: nothing moves until the spender spends.
type Grant struct {
	ChainID uint64
	Kind    GrantKind
	// Token is the ERC-20 token or the NFT contract.
	Token ethtx.Address
	// Owner is whose tokens the spender may spend: the signing key, a
	// Safe, or an EIP-2612 permit's owner.
	Owner   ethtx.Address
	Spender ethtx.Address
	// Amount is the allowance in base units (for increaseAllowance, what
	// is added); nil means unlimited (the largest integer of its type) or,
	// for setApprovalForAll, all of the owner's tokens; zero is a
	// revocation.
	Amount *big.Int
	// TokenID is the token of an ERC-721 approve, nil otherwise.
	TokenID *big.Int
}

// Counted lists what the stateful rules count for the decision
// (stateful.Counted: value that rolling limits and approval thresholds
// count), in order:
// every movement of the native coin or a token, and every ERC-20 allowance
// grant (approve, increaseAllowance, EIP-2612 Permit, Permit2 permits) of
// a non-zero amount, as its amount to the spender. Each grant counts on
// its own, so that repeated grants add up whatever they do to the
// allowance on chain (approve sets it, increaseAllowance adds to it: a
// spender that spends between two approvals gets both). Not counted:
// revocations (grants of 0), NFT movements and grants (limits and
// thresholds name only the native coin and tokens; for setApprovalForAll
// see [Decision.OperatorGrants]), and nothing for a refusal.
func (d Decision) Counted() []stateful.Counted {
	if !d.Allow {
		return nil
	}
	return d.AppendCounted(make([]stateful.Counted, 0, len(d.Movements)+len(d.Grants)))
}

// AppendCounted appends d.Counted() to out and returns the result: out
// itself when d does not allow. A caller with room of its own (the
// enclave, for every request) spares Counted's allocation.
func (d Decision) AppendCounted(out []stateful.Counted) []stateful.Counted {
	if !d.Allow {
		return out
	}
	for _, m := range d.Movements {
		if m.TokenID != nil || m.Amount == nil || m.Amount.Sign() <= 0 {
			continue
		}
		out = append(out, stateful.Counted{ChainID: m.ChainID, Asset: m.Asset, To: m.To, Amount: m.Amount})
	}
	for _, g := range d.Grants {
		if g.Kind == GrantApprovalForAll || g.TokenID != nil {
			continue
		}
		switch {
		case g.Amount == nil:
			out = append(out, stateful.Counted{ChainID: g.ChainID, Asset: g.Token, To: g.Spender, Unlimited: true, Grant: string(g.Kind)})
		case g.Amount.Sign() > 0:
			out = append(out, stateful.Counted{ChainID: g.ChainID, Asset: g.Token, To: g.Spender, Amount: g.Amount, Grant: string(g.Kind)})
		}
	}
	return out
}

// OperatorGrants returns the setApprovalForAll(operator, true) grants of
// the decision: each hands an operator every token of a collection, now
// and later, which no amount bounds. The enclave holds such a request for
// approval whenever the key has approvers (docs/policy.md).
func (d Decision) OperatorGrants() []Grant {
	var out []Grant
	for _, g := range d.Grants {
		if d.Allow && g.Kind == GrantApprovalForAll && g.Amount == nil {
			out = append(out, g)
		}
	}
	return out
}

func deny(rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Transaction is a decoded transaction request.
type Transaction struct {
	// Client is the stamp public key that made the request.
	Client stamp.PublicKey
	// KeyID is the signing key asked for.
	KeyID string
	// From is the signing key's address: the sender, whose funds the
	// Movements of its own transfers move.
	From ethtx.Address
	Tx   *ethtx.Tx
	// Call is the decoded calldata (calldata.Decode(Tx.Data), as package
	// api/request decodes it), required for a call (Tx.To set): the policy
	// never decodes calldata, and refuses a call without it (rule
	// calldata). Nil for a contract creation.
	Call calldata.Call
}

// EvaluateTransaction decides whether tx may be signed. The rules are
// checked in the order docs/policy.md lists them; the first that refuses
// decides.
func (p *Policy) EvaluateTransaction(req *Transaction) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	tx := req.Tx
	if tx.ChainID == nil || !tx.ChainID.IsUint64() || !slices.Contains(kr.chains, tx.ChainID.Uint64()) {
		return deny(refusal.RuleChains, "chain %s is not allowed for key %q", tx.ChainID, req.KeyID)
	}
	chain := tx.ChainID.Uint64()
	if d := kr.checkType(tx.Type); d != nil {
		return *d
	}
	e := &evaluator{p: p, keyID: req.KeyID, cr: kr.perChain[chain]}
	if d := e.fees(tx); d != nil {
		return *d
	}
	if tx.To == nil {
		return deny(refusal.RuleContractCreation, "contract creation is not allowed for key %q", req.KeyID)
	}
	// The policy judges decoded calldata only, and never decodes it
	// itself: the caller decoded it once (package api/request), and
	// malformed calldata was refused there (bad_request), before any
	// policy. A call without its decoded calldata is a caller's bug, and
	// refused.
	if req.Call == nil {
		return deny(refusal.RuleCalldata, "the calldata of the call to %s was not decoded (a bug of the caller): refusing", tx.To.Hex())
	}
	label, denied := e.call(req.From, *tx.To, tx.Value, req.Call, "")
	if denied != nil {
		return *denied
	}
	return e.allow(label)
}

// evaluator checks the calls of one request against the rules of one key on
// one chain, collecting what they move and grant.
type evaluator struct {
	p      *Policy
	keyID  string
	cr     *chainRule
	moves  []Movement
	grants []Grant
}

func (e *evaluator) allow(label string) Decision {
	return Decision{Allow: true, Label: label, Movements: e.moves, Grants: e.grants}
}

// refuse returns a refusal whose reason is where (the path to an inner
// call, or "") followed by the formatted message.
func (e *evaluator) refuse(rule, where, format string, args ...any) *Decision {
	d := deny(rule, where+format, args...)
	return &d
}

func (e *evaluator) move(asset, from, to ethtx.Address, amount, tokenID *big.Int) {
	if amount == nil || amount.Sign() == 0 {
		return
	}
	e.moves = append(e.moves, Movement{ChainID: e.cr.chain, Asset: asset, From: from, To: to, Amount: cloneInt(amount), TokenID: cloneInt(tokenID)})
}

func (e *evaluator) grant(kind GrantKind, token, owner, spender ethtx.Address, amount, tokenID *big.Int) {
	e.grants = append(e.grants, Grant{ChainID: e.cr.chain, Kind: kind, Token: token, Owner: owner, Spender: spender, Amount: cloneInt(amount), TokenID: cloneInt(tokenID)})
}

// fees checks the gas limit and fees against the chain's caps, and that
// the priority fee does not exceed the max fee (which no node accepts
// either).
func (e *evaluator) fees(tx *ethtx.Tx) *Decision {
	if tx.MaxFeePerGas != nil && tx.MaxPriorityFeePerGas != nil && tx.MaxPriorityFeePerGas.Cmp(tx.MaxFeePerGas) > 0 {
		return e.refuse(refusal.RuleFeeCaps, "", "priority fee %s exceeds the max fee %s", gwei(tx.MaxPriorityFeePerGas), gwei(tx.MaxFeePerGas))
	}
	f := e.cr.fees
	if f == nil {
		return nil
	}
	if tx.GasLimit > f.gasLimit {
		return e.refuse(refusal.RuleFeeCaps, "", "gas limit %d exceeds the cap of %d on chain %d", tx.GasLimit, f.gasLimit, e.cr.chain)
	}
	for _, c := range []struct {
		name     string
		v, limit *big.Int
	}{
		{"gas price", tx.GasPrice, f.gasPrice},
		{"max fee per gas", tx.MaxFeePerGas, f.maxFee},
		{"max priority fee per gas", tx.MaxPriorityFeePerGas, f.maxPrio},
	} {
		if c.v != nil && c.v.Cmp(c.limit) > 0 {
			return e.refuse(refusal.RuleFeeCaps, "", "%s %s exceeds the cap of %s on chain %d", c.name, gwei(c.v), gwei(c.limit), e.cr.chain)
		}
	}
	return nil
}

func gwei(v *big.Int) string { return ethtx.FormatUnits(v, 9) + " gwei" }

// value returns v, or 0 for nil.
func value(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

// call checks the call that sender makes to `to` with value wei and the
// decoded calldata c, as the chain would run it: from the key for the
// transaction itself, from a Safe for the calls of a Safe transaction. It
// returns the label of the call's destination, or a refusal.
func (e *evaluator) call(sender, to ethtx.Address, val *big.Int, c calldata.Call, where string) (string, *Decision) {
	val = value(val)
	switch c := c.(type) {
	case *calldata.NoCall:
		return e.nativeTransfer(sender, to, val, where)
	case *calldata.Unknown:
		return e.generic(sender, to, val, c, where)
	case *calldata.MultiSend:
		return "", e.refuse(refusal.RuleMultiSend, where, "multiSend to %s is allowed only as a Safe's DELEGATECALL to an allowlisted MultiSendCallOnly", to.Hex())
	case *calldata.SafeExecTransaction:
		if val.Sign() != 0 {
			return "", e.refuse(refusal.RuleCallValue, where, "execTransaction to %s carries %s: Safe transactions must carry no value", to.Hex(), ethtx.FormatEther(val))
		}
		return e.safe(to, c, where)
	}

	tok, nft := e.cr.tokens[to], e.cr.nfts[to]
	noRule := func() (string, *Decision) {
		kind := ""
		switch {
		case tok != nil:
			kind = " (an ERC-20 token)"
		case nft != nil:
			kind = fmt.Sprintf(" (an %s collection)", nftStandardName(nft.standard))
		}
		return "", e.refuse(refusal.RuleCalldata, where, "call %s to %s%s is not allowed: no rule of key %q on chain %d allows it", c.Method(), to.Hex(), kind, e.keyID, e.cr.chain)
	}
	erc721 := nft != nil && nft.standard == standardERC721
	erc1155 := nft != nil && nft.standard == standardERC1155
	switch c := c.(type) {
	case *calldata.ERC20Transfer:
		if tok == nil {
			return noRule()
		}
		if d := e.noValue(c, to, val, where); d != nil {
			return "", d
		}
		return e.tokenTransfer(tok, sender, c.To, c.Amount, false, where)
	case *calldata.TransferFrom:
		switch {
		case tok != nil:
			if d := e.noValue(c, to, val, where); d != nil {
				return "", d
			}
			return e.tokenTransfer(tok, c.From, c.To, c.Value, true, where)
		case erc721:
			if d := e.noValue(c, to, val, where); d != nil {
				return "", d
			}
			return e.nftTransfer(nft, c.From, c.To, c.Value, big.NewInt(1), where)
		}
		return noRule()
	case *calldata.SafeTransferFrom721:
		if !erc721 {
			return noRule()
		}
		if d := e.noValue(c, to, val, where); d != nil {
			return "", d
		}
		return e.nftTransfer(nft, c.From, c.To, c.TokenID, big.NewInt(1), where)
	case *calldata.SafeTransferFrom1155:
		if !erc1155 {
			return noRule()
		}
		if d := e.noValue(c, to, val, where); d != nil {
			return "", d
		}
		return e.nftTransfer(nft, c.From, c.To, c.ID, c.Amount, where)
	case *calldata.Approve:
		switch {
		case tok != nil:
			if d := e.noValue(c, to, val, where); d != nil {
				return "", d
			}
			return e.allowance(tok, GrantApprove, sender, c.Spender, c.Amount, c.Amount.Cmp(maxUint256) == 0, where)
		case erc721:
			if d := e.noValue(c, to, val, where); d != nil {
				return "", d
			}
			return e.nftApprove(nft, sender, c.Spender, c.Amount, where)
		}
		return noRule()
	case *calldata.IncreaseAllowance:
		if tok == nil {
			return noRule()
		}
		if d := e.noValue(c, to, val, where); d != nil {
			return "", d
		}
		return e.allowance(tok, GrantIncreaseAllowance, sender, c.Spender, c.Added, c.Added.Cmp(maxUint256) == 0, where)
	case *calldata.SetApprovalForAll:
		if nft == nil {
			return noRule()
		}
		if d := e.noValue(c, to, val, where); d != nil {
			return "", d
		}
		return e.approvalForAll(nft, sender, c.Operator, c.Approved, where)
	}
	// A Call type this package does not know yet: fail closed.
	return "", e.refuse(refusal.RuleCalldata, where, "call %T to %s is not allowed: the policy has no rule for it", c, to.Hex())
}

func nftStandardName(s string) string {
	if s == standardERC1155 {
		return "ERC-1155"
	}
	return "ERC-721"
}

// noValue refuses a token, NFT or allowance call that carries native coin:
// those functions are not payable, and coin sent along would go to the
// contract, which no rule allows.
func (e *evaluator) noValue(c calldata.Call, to ethtx.Address, val *big.Int, where string) *Decision {
	if val.Sign() == 0 {
		return nil
	}
	return e.refuse(refusal.RuleCallValue, where, "call %s to %s carries %s: it must carry no value", c.Method(), to.Hex(), ethtx.FormatEther(val))
}

// nativeTransfer checks a plain transfer of val wei from sender to `to`.
func (e *evaluator) nativeTransfer(sender, to ethtx.Address, val *big.Int, where string) (string, *Decision) {
	nr := e.cr.native
	if nr == nil {
		return "", e.refuse(refusal.RuleNativeTransfers, where, "native transfers are not allowed for key %q on chain %d", e.keyID, e.cr.chain)
	}
	label, ok := nr.dests[to]
	if !ok {
		return "", e.refuse(refusal.RuleDestinations, where, "%s is not on the allowlist of key %q for chain %d", to.Hex(), e.keyID, e.cr.chain)
	}
	if val.Cmp(nr.max) > 0 {
		return "", e.refuse(refusal.RuleMaxPerTransaction, where, "value %s exceeds the per-transaction limit of %s", ethtx.FormatEther(val), ethtx.FormatEther(nr.max))
	}
	e.move(ethtx.Address{}, sender, to, val, nil)
	return label, nil
}

// generic checks a call of a function the enclave does not decode: only a
// contract rule naming exactly this contract and selector allows it, with
// any arguments.
func (e *evaluator) generic(sender, to ethtx.Address, val *big.Int, c *calldata.Unknown, where string) (string, *Decision) {
	k := e.cr.contracts[to]
	var f *functionRule
	if k != nil {
		f = k.functions[c.ID]
	}
	if f == nil {
		return "", e.refuse(refusal.RuleCalldata, where, "unknown call (selector 0x%x) to %s is not allowed: no contract-call rule of key %q on chain %d matches", c.ID, to.Hex(), e.keyID, e.cr.chain)
	}
	if val.Cmp(f.maxValue) > 0 {
		return "", e.refuse(refusal.RuleCallValue, where, "call 0x%x to %s carries %s, more than its limit of %s", c.ID, to.Hex(), ethtx.FormatEther(val), ethtx.FormatEther(f.maxValue))
	}
	e.move(ethtx.Address{}, sender, to, val, nil)
	return k.label, nil
}

// tokenTransfer checks an ERC-20 transfer (or transferFrom) of amount of
// tok from `from` to `to`.
func (e *evaluator) tokenTransfer(tok *tokenRule, from, to ethtx.Address, amount *big.Int, transferFrom bool, where string) (string, *Decision) {
	t := tok.transfers
	if t == nil {
		return "", e.refuse(refusal.RuleTokenTransfers, where, "transfers of token %s are not allowed for key %q on chain %d", tok.addr.Hex(), e.keyID, e.cr.chain)
	}
	if transferFrom && !t.transferFrom {
		return "", e.refuse(refusal.RuleTokenTransfers, where, "transferFrom of token %s is not allowed for key %q on chain %d (only transfer)", tok.addr.Hex(), e.keyID, e.cr.chain)
	}
	label, ok := t.dests[to]
	if !ok {
		return "", e.refuse(refusal.RuleDestinations, where, "%s is not an allowlisted recipient of token %s for key %q on chain %d", to.Hex(), tok.addr.Hex(), e.keyID, e.cr.chain)
	}
	if amount.Cmp(t.max) > 0 {
		return "", e.refuse(refusal.RuleMaxPerTransaction, where, "amount %s of token %s exceeds the per-transaction limit of %s", e.p.formatAmount(e.cr.chain, tok.addr, amount), tok.addr.Hex(), e.p.formatAmount(e.cr.chain, tok.addr, t.max))
	}
	e.move(tok.addr, from, to, amount, nil)
	return label, nil
}

// allowance checks an ERC-20 allowance grant by owner to spender: a
// revocation (approve of 0) to anyone, otherwise only to an allowlisted
// spender, up to its cap, unlimited only where the cap says "unlimited".
func (e *evaluator) allowance(tok *tokenRule, kind GrantKind, owner, spender ethtx.Address, amount *big.Int, unlimited bool, where string) (string, *Decision) {
	if kind == GrantApprove && amount.Sign() == 0 {
		e.grant(kind, tok.addr, owner, spender, amount, nil)
		return e.cr.labels[spender], nil
	}
	sp, ok := tok.spenders[spender]
	if !ok {
		return "", e.refuse(refusal.RuleAllowanceGrants, where, "%s grant of token %s to %s: not an allowlisted spender of key %q on chain %d", kind, tok.addr.Hex(), spender.Hex(), e.keyID, e.cr.chain)
	}
	if d := e.checkCap(tok, kind, spender, sp, amount, unlimited, where); d != nil {
		return "", d
	}
	if unlimited {
		amount = nil
	}
	e.grant(kind, tok.addr, owner, spender, amount, nil)
	return sp.label, nil
}

func (e *evaluator) checkCap(tok *tokenRule, kind GrantKind, spender ethtx.Address, sp spenderRule, amount *big.Int, unlimited bool, where string) *Decision {
	if sp.max == nil {
		return nil
	}
	if unlimited {
		return e.refuse(refusal.RuleAllowanceCaps, where, "%s grant of an unlimited allowance of token %s to %s: its cap is %s, not \"unlimited\"", kind, tok.addr.Hex(), spender.Hex(), e.p.formatAmount(e.cr.chain, tok.addr, sp.max))
	}
	if amount.Cmp(sp.max) > 0 {
		return e.refuse(refusal.RuleAllowanceCaps, where, "%s grant of %s of token %s to %s exceeds its cap of %s", kind, e.p.formatAmount(e.cr.chain, tok.addr, amount), tok.addr.Hex(), spender.Hex(), e.p.formatAmount(e.cr.chain, tok.addr, sp.max))
	}
	return nil
}

// nftTransfer checks a transfer of count tokens id of an NFT collection.
func (e *evaluator) nftTransfer(nft *nftRule, from, to ethtx.Address, id, count *big.Int, where string) (string, *Decision) {
	if len(nft.dests) == 0 {
		return "", e.refuse(refusal.RuleNFTTransfers, where, "transfers of %s collection %s are not allowed for key %q on chain %d", nftStandardName(nft.standard), nft.addr.Hex(), e.keyID, e.cr.chain)
	}
	label, ok := nft.dests[to]
	if !ok {
		return "", e.refuse(refusal.RuleDestinations, where, "%s is not an allowlisted recipient of collection %s for key %q on chain %d", to.Hex(), nft.addr.Hex(), e.keyID, e.cr.chain)
	}
	e.move(nft.addr, from, to, count, id)
	return label, nil
}

// nftApprove checks an ERC-721 approve of one token: to an allowlisted
// operator, or to the zero address, which clears the token's approval.
func (e *evaluator) nftApprove(nft *nftRule, owner, spender ethtx.Address, id *big.Int, where string) (string, *Decision) {
	if spender == (ethtx.Address{}) {
		e.grant(GrantApprove, nft.addr, owner, spender, new(big.Int), id)
		return "", nil
	}
	label, ok := nft.operators[spender]
	if !ok {
		return "", e.refuse(refusal.RuleAllowanceGrants, where, "approve of token %s of collection %s to %s: not an allowlisted operator of key %q on chain %d", id, nft.addr.Hex(), spender.Hex(), e.keyID, e.cr.chain)
	}
	e.grant(GrantApprove, nft.addr, owner, spender, big.NewInt(1), id)
	return label, nil
}

// approvalForAll checks setApprovalForAll: approving only an allowlisted
// operator, revoking anyone.
func (e *evaluator) approvalForAll(nft *nftRule, owner, operator ethtx.Address, approved bool, where string) (string, *Decision) {
	if !approved {
		e.grant(GrantApprovalForAll, nft.addr, owner, operator, new(big.Int), nil)
		return e.cr.labels[operator], nil
	}
	label, ok := nft.operators[operator]
	if !ok {
		return "", e.refuse(refusal.RuleAllowanceGrants, where, "setApprovalForAll of collection %s to %s: not an allowlisted operator of key %q on chain %d", nft.addr.Hex(), operator.Hex(), e.keyID, e.cr.chain)
	}
	e.grant(GrantApprovalForAll, nft.addr, owner, operator, nil, nil)
	return label, nil
}

// safeTx is a Safe transaction: the call a Safe makes once its owners have
// signed, from execTransaction calldata or SafeTx typed data.
type safeTx struct {
	safe           ethtx.Address
	to             ethtx.Address
	value          *big.Int
	operation      calldata.Operation
	inner          calldata.Call
	gasPrice       *big.Int
	gasToken       ethtx.Address
	refundReceiver ethtx.Address
}

// safe checks execTransaction called on `to`.
func (e *evaluator) safe(to ethtx.Address, c *calldata.SafeExecTransaction, where string) (string, *Decision) {
	return e.safeTx(&safeTx{
		safe: to, to: c.To, value: c.Value, operation: c.Operation, inner: c.Inner,
		gasPrice: c.GasPrice, gasToken: c.GasToken, refundReceiver: c.RefundReceiver,
	}, where)
}

// safeTx checks a Safe transaction: the Safe must be allowlisted, pay no
// refund, and run either a CALL to anything but itself, or a DELEGATECALL
// of multiSend on an allowlisted MultiSendCallOnly whose every entry is a
// CALL to anything but the Safe; each call is then checked by the key's
// rules as the Safe would make it.
func (e *evaluator) safeTx(st *safeTx, where string) (string, *Decision) {
	label, ok := e.cr.safes[st.safe]
	if !ok {
		return "", e.refuse(refusal.RuleSafeTransactions, where, "Safe transaction for %s: not an allowlisted Safe of key %q on chain %d", st.safe.Hex(), e.keyID, e.cr.chain)
	}
	if value(st.gasPrice).Sign() != 0 || st.gasToken != (ethtx.Address{}) || st.refundReceiver != (ethtx.Address{}) {
		return "", e.refuse(refusal.RuleSafeRefund, where, "Safe transaction for %s pays a gas refund (gasPrice %s, gasToken %s, refundReceiver %s): gasPrice, gasToken and refundReceiver must be zero", st.safe.Hex(), value(st.gasPrice), st.gasToken.Hex(), st.refundReceiver.Hex())
	}
	in := where + fmt.Sprintf("in the transaction of Safe %s: ", st.safe.Hex())
	val := value(st.value)
	switch st.operation {
	case calldata.OperationCall:
		if st.to == st.safe {
			return "", e.refuse(refusal.RuleSafeSelfCall, in, "a call to the Safe itself (%s) could change its owners, threshold, guard, modules, fallback handler or implementation", describe(st.inner))
		}
		if _, d := e.call(st.safe, st.to, val, st.inner, in); d != nil {
			return "", d
		}
		return label, nil
	case calldata.OperationDelegateCall:
		if _, ok := e.cr.multisend[st.to]; !ok {
			return "", e.refuse(refusal.RuleSafeOperation, in, "DELEGATECALL to %s (%s): a Safe may DELEGATECALL only an allowlisted MultiSendCallOnly; a delegatecall runs that code with all of the Safe's authority (the Bybit theft)", st.to.Hex(), describe(st.inner))
		}
		ms, ok := st.inner.(*calldata.MultiSend)
		if !ok {
			return "", e.refuse(refusal.RuleSafeOperation, in, "DELEGATECALL to MultiSendCallOnly %s runs %s, not multiSend", st.to.Hex(), describe(st.inner))
		}
		if val.Sign() != 0 {
			return "", e.refuse(refusal.RuleCallValue, in, "DELEGATECALL to MultiSendCallOnly %s carries %s: it must carry no value", st.to.Hex(), ethtx.FormatEther(val))
		}
		for i, entry := range ms.Calls {
			at := in + fmt.Sprintf("MultiSend call %d: ", i)
			if entry.Operation != calldata.OperationCall {
				return "", e.refuse(refusal.RuleSafeOperation, at, "%s to %s (%s): MultiSend entries must be CALLs", entry.Operation, entry.To.Hex(), describe(entry.Call))
			}
			if entry.To == st.safe || entry.To == (ethtx.Address{}) {
				return "", e.refuse(refusal.RuleSafeSelfCall, at, "a call to the Safe itself (%s, to %s, which MultiSend runs against the Safe) could change its owners, threshold, guard, modules, fallback handler or implementation", describe(entry.Call), entry.To.Hex())
			}
			if _, d := e.call(st.safe, entry.To, entry.Value, entry.Call, at); d != nil {
				return "", d
			}
		}
		return label, nil
	}
	return "", e.refuse(refusal.RuleSafeOperation, in, "operation %s is neither CALL nor DELEGATECALL", st.operation)
}

// describe names a call for a message.
func describe(c calldata.Call) string {
	switch c := c.(type) {
	case nil:
		return "no call"
	case *calldata.NoCall:
		return "no calldata"
	case *calldata.Unknown:
		return fmt.Sprintf("unknown call, selector 0x%x", c.ID)
	}
	return c.Method()
}
