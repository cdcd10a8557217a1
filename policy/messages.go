package policy

import (
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
)

// PersonalMessage is a decoded EIP-191 personal_sign request.
type PersonalMessage struct {
	Client  stamp.PublicKey
	KeyID   string
	Message []byte
}

// EvaluatePersonalMessage decides whether a personal message may be signed.
func (p *Policy) EvaluatePersonalMessage(req *PersonalMessage) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	if !kr.personal {
		return deny(refusal.RulePersonalMessages, "personal messages are not allowed for key %q", req.KeyID)
	}
	// A Safe (checkSignatures, v > 30) takes an EIP-191 signature over a
	// 32-byte message as its owner's approval of that hash: signing one
	// would approve a transaction no policy rule has seen.
	if len(req.Message) == 32 && !kr.rawDigest {
		return deny(refusal.RuleRawDigest, "a 32-byte personal message is a bare digest in disguise (a Safe accepts it as an owner's transaction approval); raw-digest signing is off for key %q", req.KeyID)
	}
	return Decision{Allow: true}
}

// RawDigest is a request to sign a bare 32-byte digest, which nothing
// decodes. The API has no such request yet; the policy decides it already,
// so that the mode exists only behind the key's raw_digest switch.
type RawDigest struct {
	Client stamp.PublicKey
	KeyID  string
	Digest [32]byte
}

// EvaluateRawDigest decides whether a bare digest may be signed: only for a
// key whose raw_digest switch is on. Such a signature can authorise
// anything (a transaction, a permit, a Safe transaction) that no rule has
// seen, and reports no movements.
func (p *Policy) EvaluateRawDigest(req *RawDigest) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	if !kr.rawDigest {
		return deny(refusal.RuleRawDigest, "raw-digest signing is off for key %q", req.KeyID)
	}
	return Decision{Allow: true}
}

// Domain is the decoded EIP-712 domain of a typed-data request; fields the
// domain does not have are nil.
type Domain struct {
	Name, Version     *string
	ChainID           *big.Int
	VerifyingContract *ethtx.Address
}

// TypedData is a decoded EIP-712 request.
type TypedData struct {
	Client stamp.PublicKey
	KeyID  string
	// From is the signing key's address: the owner of what a Permit2
	// permit grants.
	From        ethtx.Address
	Domain      Domain
	PrimaryType string
	// Permit is the allowance the typed data grants (EIP-2612, Permit2),
	// nil if none; PermitErr is set when it looks like a grant but is not
	// exactly one of the known forms.
	Permit    *ethmsg.Permit
	PermitErr error
	// Data is the parsed document, which the policy reads when the typed
	// data is a Safe transaction (primary type SafeTx); a SafeTx request
	// without it is refused.
	Data *ethmsg.TypedData
}

// Safe's EIP-712 types (Safe 1.0.0 and later).
const (
	safeTxType        = "SafeTx"
	safeTxEncodeType  = "SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
	safeMessageType   = "SafeMessage"
	safeMessageReason = "a SafeMessage makes the Safe sign (EIP-1271) a message the policy cannot decode, such as a permit of the Safe's tokens"
)

// EvaluateTypedData decides whether typed data may be signed. Allowance
// grants (EIP-2612 Permit, Permit2) go through the allowance rules of the
// tokens they grant; Safe transactions (SafeTx) through the Safe rules, as
// execTransaction would run them; other typed data needs an allowlisted
// domain.
func (p *Policy) EvaluateTypedData(req *TypedData) Decision {
	kr, d, ok := p.keyFor(req.Client, req.KeyID)
	if !ok {
		return d
	}
	if req.PermitErr != nil {
		return deny(refusal.RuleAllowanceGrants, "typed data looks like an allowance grant but is not a known one: %v", req.PermitErr)
	}
	if pm := req.Permit; pm != nil {
		return p.evaluatePermit(kr, req, pm)
	}
	primary := req.PrimaryType
	if req.Data != nil && (primary == "" || req.Data.PrimaryType() == safeTxType || req.Data.PrimaryType() == safeMessageType) {
		primary = req.Data.PrimaryType()
	}
	switch primary {
	case safeTxType:
		return p.evaluateSafeTx(kr, req)
	case safeMessageType:
		return deny(refusal.RuleSafeTransactions, "%s: not allowed", safeMessageReason)
	}
	dom := req.Domain
	for _, r := range kr.domains {
		if dom.ChainID == nil || !dom.ChainID.IsUint64() || dom.ChainID.Uint64() != r.chain {
			continue
		}
		if dom.VerifyingContract == nil || *dom.VerifyingContract != r.contract {
			continue
		}
		if r.name != "" && (dom.Name == nil || *dom.Name != r.name) {
			continue
		}
		if r.version != "" && (dom.Version == nil || *dom.Version != r.version) {
			continue
		}
		return Decision{Allow: true}
	}
	return deny(refusal.RuleTypedDataDomains, "EIP-712 domain %s is not allowed for key %q", describeDomain(dom), req.KeyID)
}

// chainFor returns the evaluator for the chain of a typed-data domain, or a
// refusal when the key may not sign for it.
func (p *Policy) chainFor(kr *keyRule, keyID string, chain *big.Int, what string) (*evaluator, *Decision) {
	if chain == nil {
		d := deny(refusal.RuleChains, "%s without a domain chainId: it would be valid on every chain", what)
		return nil, &d
	}
	if !chain.IsUint64() || !slices.Contains(kr.chains, chain.Uint64()) {
		d := deny(refusal.RuleChains, "%s for chain %s: the chain is not allowed for key %q", what, chain, keyID)
		return nil, &d
	}
	return &evaluator{p: p, keyID: keyID, cr: kr.perChain[chain.Uint64()]}, nil
}

// evaluatePermit checks a signed allowance grant. Each granted token must
// be allowlisted on the permit's chain, and the spender allowlisted for it
// and within its cap; a grant of zero (a revocation, or a transfer of
// nothing) may go to anyone. A Permit2 permit draws on the ERC-20 allowance
// the key gave the Permit2 contract, so that contract (the domain's
// verifyingContract) must be an allowlisted spender of each token too.
// Amounts of the same token in a Permit2 transfer batch add up.
func (p *Policy) evaluatePermit(kr *keyRule, req *TypedData, pm *ethmsg.Permit) Decision {
	e, denied := p.chainFor(kr, req.KeyID, pm.ChainID, fmt.Sprintf("%s permit %s", pm.Kind, pm.PrimaryType))
	if denied != nil {
		return *denied
	}
	kind := GrantEIP2612
	switch pm.Kind {
	case ethmsg.Permit2Allowance:
		kind = GrantPermit2Allowance
	case ethmsg.Permit2Transfer:
		kind = GrantPermit2Transfer
	}
	owner := req.From
	if pm.Owner != nil {
		owner = *pm.Owner
	}

	// The amount per token that the caps apply to: each grant's, or for a
	// transfer batch the sum over the batch.
	type total struct {
		amount    *big.Int
		unlimited bool
	}
	totals := map[ethtx.Address]*total{}
	for _, g := range pm.Grants {
		t := totals[g.Token]
		switch {
		case t == nil:
			totals[g.Token] = &total{amount: new(big.Int).Set(g.Amount), unlimited: g.Unlimited}
		case kind == GrantPermit2Transfer:
			t.amount.Add(t.amount, g.Amount)
			t.unlimited = t.unlimited || g.Unlimited
		default:
			// An allowance batch keeps the last grant of a token: check
			// each, the largest decides.
			if g.Amount.Cmp(t.amount) > 0 {
				t.amount.Set(g.Amount)
			}
			t.unlimited = t.unlimited || g.Unlimited
		}
	}

	label := ""
	for _, g := range pm.Grants {
		tok := e.cr.tokens[g.Token]
		if tok == nil {
			return deny(refusal.RuleAllowanceGrants, "%s permit of token %s to %s: the token is not allowlisted for key %q on chain %d", pm.Kind, g.Token.Hex(), pm.Spender.Hex(), req.KeyID, e.cr.chain)
		}
		if kind != GrantEIP2612 {
			if _, ok := tok.spenders[pm.VerifyingContract]; !ok {
				return deny(refusal.RuleAllowanceGrants, "%s permit of token %s: the Permit2 contract %s is not an allowlisted spender of the token for key %q on chain %d", pm.Kind, g.Token.Hex(), pm.VerifyingContract.Hex(), req.KeyID, e.cr.chain)
			}
		}
		t := totals[g.Token]
		if t.amount.Sign() == 0 {
			e.grant(kind, g.Token, owner, pm.Spender, t.amount, nil)
			continue
		}
		sp, ok := tok.spenders[pm.Spender]
		if !ok {
			return deny(refusal.RuleAllowanceGrants, "%s permit of token %s to %s: not an allowlisted spender of key %q on chain %d", pm.Kind, g.Token.Hex(), pm.Spender.Hex(), req.KeyID, e.cr.chain)
		}
		if d := e.checkCap(tok, kind, pm.Spender, sp, t.amount, t.unlimited, ""); d != nil {
			return *d
		}
		amount := g.Amount
		if g.Unlimited {
			amount = nil
		}
		e.grant(kind, g.Token, owner, pm.Spender, amount, nil)
		label = sp.label
	}
	return e.allow(label)
}

// evaluateSafeTx checks SafeTx typed data, an owner's signature of a Safe
// transaction, by the same rules as execTransaction calldata.
func (p *Policy) evaluateSafeTx(kr *keyRule, req *TypedData) Decision {
	td := req.Data
	if td == nil {
		return deny(refusal.RuleSafeTransactions, "SafeTx typed data without the document to decode: refused")
	}
	if enc, _ := td.EncodeType(safeTxType); enc != safeTxEncodeType {
		return deny(refusal.RuleSafeTransactions, "SafeTx typed data of type %q, not Safe's %s", enc, safeTxEncodeType)
	}
	dom := td.Domain()
	if dom.VerifyingContract == nil {
		return deny(refusal.RuleSafeTransactions, "SafeTx typed data without a verifyingContract (the Safe)")
	}
	e, denied := p.chainFor(kr, req.KeyID, dom.ChainID, "SafeTx")
	if denied != nil {
		return *denied
	}
	m := td.Message()
	r := fieldReader{v: m}
	st := &safeTx{
		safe:           *dom.VerifyingContract,
		to:             r.address("to"),
		value:          r.uint("value"),
		gasPrice:       r.uint("gasPrice"),
		gasToken:       r.address("gasToken"),
		refundReceiver: r.address("refundReceiver"),
	}
	data := r.bytes("data")
	op := r.uint("operation")
	if r.err != nil {
		return deny(refusal.RuleSafeTransactions, "SafeTx: %v", r.err)
	}
	switch op.Uint64() {
	case 0:
		st.operation = calldata.OperationCall
	case 1:
		st.operation = calldata.OperationDelegateCall
	default:
		return deny(refusal.RuleSafeOperation, "SafeTx operation %s is neither CALL (0) nor DELEGATECALL (1)", op)
	}
	inner, err := calldata.Decode(data)
	if err != nil {
		return deny(refusal.RuleCalldata, "SafeTx data: %v", err)
	}
	st.inner = inner
	label, d := e.safeTx(st, "")
	if d != nil {
		return *d
	}
	return e.allow(label)
}

// fieldReader reads fields of a typed-data struct whose type was checked;
// the first problem is kept in err.
type fieldReader struct {
	v   *ethmsg.Value
	err error
}

func (r *fieldReader) field(name string, k ethmsg.Kind) *ethmsg.Value {
	if r.err != nil {
		return nil
	}
	f, ok := r.v.Field(name)
	if !ok || f == nil || f.Kind != k || (k == ethmsg.KindUint && f.Int == nil) {
		r.err = fmt.Errorf("field %s is not a %v", name, k)
		return nil
	}
	return f
}

func (r *fieldReader) address(name string) ethtx.Address {
	if f := r.field(name, ethmsg.KindAddress); f != nil {
		return f.Address
	}
	return ethtx.Address{}
}

func (r *fieldReader) uint(name string) *big.Int {
	if f := r.field(name, ethmsg.KindUint); f != nil {
		return f.Int
	}
	return new(big.Int)
}

func (r *fieldReader) bytes(name string) []byte {
	if f := r.field(name, ethmsg.KindBytes); f != nil {
		return f.Bytes
	}
	return nil
}

func describeDomain(d Domain) string {
	var parts []string
	if d.Name != nil {
		parts = append(parts, fmt.Sprintf("name %q", *d.Name))
	}
	if d.Version != nil {
		parts = append(parts, fmt.Sprintf("version %q", *d.Version))
	}
	if d.ChainID != nil {
		parts = append(parts, "chainId "+d.ChainID.String())
	}
	if d.VerifyingContract != nil {
		parts = append(parts, "verifyingContract "+d.VerifyingContract.Hex())
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
