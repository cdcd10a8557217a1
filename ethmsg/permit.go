package ethmsg

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
)

// Permit2Address is the address of Uniswap's Permit2 contract on Ethereum
// and the many chains where it was deployed at the same address, in EIP-55
// form.
const Permit2Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3"

// permit2Address is Permit2Address as an address.
var permit2Address = ethtx.Address{
	0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0xd4, 0x73, 0x03, 0x0f,
	0x11, 0x6d, 0xde, 0xe9, 0xf6, 0xb4, 0x3a, 0xc7, 0x8b, 0xa3,
}

// The type strings that the verifying contracts hash.
const (
	// eip2612EncodeType is the encodeType of an EIP-2612 Permit.
	eip2612EncodeType = "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"

	permit2DomainEncodeType = "EIP712Domain(string name,uint256 chainId,address verifyingContract)"
	permit2Name             = "Permit2"

	permitDetailsDef         = "PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"
	permitSingleEncodeType   = "PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)" + permitDetailsDef
	permitBatchEncodeType    = "PermitBatch(PermitDetails[] details,address spender,uint256 sigDeadline)" + permitDetailsDef
	tokenPermissionsDef      = "TokenPermissions(address token,uint256 amount)"
	permitTransferEncodeType = "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)" + tokenPermissionsDef
	permitBatchTransferType  = "PermitBatchTransferFrom(TokenPermissions[] permitted,address spender,uint256 nonce,uint256 deadline)" + tokenPermissionsDef
	// The witness variants: this prefix, then "<type> <name>)" of the
	// witness field, then the definitions of the structs referred to.
	permitWitnessStub      = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,"
	permitBatchWitnessStub = "PermitBatchWitnessTransferFrom(TokenPermissions[] permitted,address spender,uint256 nonce,uint256 deadline,"
)

// PermitKind is the scheme of a permit.
type PermitKind uint8

// The kinds of permits.
const (
	// PermitEIP2612 is an EIP-2612 permit: it sets the token's allowance
	// for Spender to the amount, which lasts until spent or changed.
	PermitEIP2612 PermitKind = iota + 1
	// Permit2Allowance is a Permit2 AllowanceTransfer permit (PermitSingle,
	// PermitBatch): it sets, inside Permit2, Spender's allowance over each
	// token to the amount until the grant's Expiration. It draws on the
	// ERC-20 allowance the owner gave Permit2 itself, usually unlimited.
	Permit2Allowance
	// Permit2Transfer is a Permit2 SignatureTransfer permit
	// (PermitTransferFrom, PermitBatchTransferFrom and their witness
	// variants): Spender may, once, transfer up to the amount of each token
	// from the owner to any recipient. No allowance remains.
	Permit2Transfer
)

func (k PermitKind) String() string {
	switch k {
	case PermitEIP2612:
		return "EIP-2612"
	case Permit2Allowance:
		return "Permit2 AllowanceTransfer"
	case Permit2Transfer:
		return "Permit2 SignatureTransfer"
	}
	return "PermitKind(" + strconv.Itoa(int(k)) + ")"
}

// Permit is what a typed-data permit grants, as [TypedData.Permit] reports
// it: one or more token amounts ([Permit.Grants]) to one Spender, valid on
// one chain until Deadline. All its values are copies; changing them
// changes nothing in the [TypedData].
type Permit struct {
	Kind PermitKind
	// PrimaryType is the message's struct type: Permit, PermitSingle,
	// PermitBatch, PermitTransferFrom, PermitBatchTransferFrom,
	// PermitWitnessTransferFrom or PermitBatchWitnessTransferFrom.
	PrimaryType string
	// ChainID is the domain's chainId, the chain on which the signature is
	// valid. Never nil.
	ChainID *big.Int
	// VerifyingContract is the domain's verifyingContract: the token for
	// an EIP-2612 permit, the Permit2 contract otherwise (not necessarily
	// [Permit2Address]).
	VerifyingContract ethtx.Address
	// Owner is the EIP-2612 message's owner, whose tokens are granted; the
	// token accepts the signature only if the owner signed it. Nil for
	// Permit2, whose messages do not name the owner: it is the signer.
	Owner *ethtx.Address
	// Spender is who may spend (EIP-2612, Permit2 allowance) or transfer
	// (Permit2 transfer) the tokens.
	Spender ethtx.Address
	// Nonce is the EIP-2612 nonce (the owner's next nonce at the token) or
	// the Permit2 SignatureTransfer nonce (unordered: any unused value);
	// nil for a Permit2 allowance, whose nonces are per grant.
	Nonce *big.Int
	// Deadline is the Unix time in seconds after which the signature is no
	// longer accepted: the message's deadline (EIP-2612, Permit2 transfer)
	// or sigDeadline (Permit2 allowance). It bounds when the grant can be
	// made, not how long an allowance lasts. Never nil.
	Deadline *big.Int
	// Grants lists what is granted, in message order; at least one. The
	// same token may appear more than once: in a Permit2 transfer batch the
	// amounts add up, in a Permit2 allowance batch the last one wins.
	Grants []Grant
	// Witness is the witness of PermitWitnessTransferFrom and
	// PermitBatchWitnessTransferFrom, nil otherwise.
	Witness *Witness
}

// Grant is one token amount a permit grants.
type Grant struct {
	// Token is the ERC-20 token: the domain's verifyingContract for
	// EIP-2612, the message's token for Permit2.
	Token ethtx.Address
	// Amount is in the token's smallest unit: the allowance (EIP-2612,
	// Permit2 allowance) or the most that may be transferred (Permit2
	// transfer). Never nil.
	Amount *big.Int
	// Unlimited reports that Amount is the largest value of its type:
	// 2^160-1 for a Permit2 allowance, which Permit2 then never decreases;
	// 2^256-1 otherwise, which EIP-2612 tokens commonly treat as infinite
	// and which caps a Permit2 transfer only by the owner's balance. An
	// amount just below is as good as unlimited: policy should cap Amount
	// rather than only test Unlimited.
	Unlimited bool
	// Expiration is, for a Permit2 allowance, the Unix time in seconds at
	// which the allowance lapses; 0 makes it last only for the block in
	// which the permit is used, 2^48-1 for ever. Nil for other kinds, whose
	// EIP-2612 allowance lasts until spent or changed and whose Permit2
	// transfer is single-use.
	Expiration *big.Int
	// Nonce is, for a Permit2 allowance, the grant's nonce (it must equal
	// the current nonce of the owner, token and spender); nil for other
	// kinds, whose nonce is [Permit.Nonce].
	Nonce *big.Int
}

// Witness is the extra data a Permit2 witness transfer commits to, chosen by
// the contract the spender is (UniswapX, for example, commits to its order).
type Witness struct {
	// Name is the witness field's name, by convention "witness".
	Name string
	// Type is the witness field's type as written, such as
	// "ExclusiveDutchOrder".
	Type string
	// Value is a copy of the decoded witness.
	Value *Value
}

// permitShape is how a permit's primary type must look.
type permitShape struct {
	kind PermitKind
	// batch is set when the grants are an array (details or permitted)
	// rather than one struct.
	batch bool
	// encodeType is the exact encodeType of the primary type, or "" when
	// witnessStub is set.
	encodeType string
	// witnessStub is the fixed prefix of the primary type's definition
	// for a witness variant: one more field follows, the witness.
	witnessStub string
}

// permitShapes maps the primary types of permits to their shapes. A
// document whose primary type is named here is a permit or is refused.
var permitShapes = map[string]permitShape{
	"Permit":                         {kind: PermitEIP2612, encodeType: eip2612EncodeType},
	"PermitSingle":                   {kind: Permit2Allowance, encodeType: permitSingleEncodeType},
	"PermitBatch":                    {kind: Permit2Allowance, batch: true, encodeType: permitBatchEncodeType},
	"PermitTransferFrom":             {kind: Permit2Transfer, encodeType: permitTransferEncodeType},
	"PermitBatchTransferFrom":        {kind: Permit2Transfer, batch: true, encodeType: permitBatchTransferType},
	"PermitWitnessTransferFrom":      {kind: Permit2Transfer, witnessStub: permitWitnessStub},
	"PermitBatchWitnessTransferFrom": {kind: Permit2Transfer, batch: true, witnessStub: permitBatchWitnessStub},
}

var (
	maxUint160 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
	maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
)

// Permit reports the allowance grant the typed data makes, if any.
//
// A signed permit moves tokens without a transaction from the signer: whoever
// holds the signature submits it. Permit recognises the permits that grant
// ERC-20 allowances or transfers, so that policy can treat them as the
// allowance grants they are:
//
//   - EIP-2612 Permit, whose encodeType must be exactly
//     Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline),
//     signed for the token itself (the domain's verifyingContract);
//   - Uniswap Permit2 AllowanceTransfer: PermitSingle and PermitBatch, with
//     PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce);
//   - Uniswap Permit2 SignatureTransfer: PermitTransferFrom and
//     PermitBatchTransferFrom, with TokenPermissions(address token,uint256 amount),
//     and their witness variants PermitWitnessTransferFrom and
//     PermitBatchWitnessTransferFrom, whose fifth field (the witness) may
//     have any name and any type, as Permit2 lets the integrating contract
//     choose it.
//
// A permit is recognised by the exact encodeType of the primary type (its
// definition and those of the structs it refers to), never by names alone:
// the contract that verifies the signature hashes its own fixed type string,
// so only an exact match is the permit the contract knows. The other way
// round, a document that names a permit type, or is signed for Permit2,
// without being exactly one of the permits above is refused with an error
// rather than reported as "not a permit", so that policy fails closed on
// near misses (a renamed or reordered field, a uint256 where Permit2 has a
// uint160, DAI's pre-EIP-2612 Permit(address holder,...,bool allowed), an
// ERC-4494 NFT Permit, a Permit2 look-alike signed for another domain).
//
// The Permit2 domain is EIP712Domain(string name,uint256 chainId,address
// verifyingContract) with name "Permit2", exactly as the Permit2 contract
// hashes it. A document counts as signed for Permit2 when its domain name is
// "Permit2" or its verifyingContract is [Permit2Address]; such a document
// must carry one of Permit2's primary types in exactly Permit2's domain, or
// Permit refuses it: Permit2 verifies no other type, and a signature that
// claims Permit2 for anything else has no honest use. The verifying contract
// itself is not required to be [Permit2Address]: Permit2 is deployed
// elsewhere on some chains, so Permit reports it in
// [Permit.VerifyingContract] and the policy decides (it allowlists domains
// by chain and contract). A look-alike contract named "Permit2" is still
// treated as granting what the message says, the cautious reading.
//
// Permit returns nil and no error when the document is not a permit: its
// primary type is none of the permit types above and it is not signed for
// Permit2. It returns an error starting with "ethmsg: permit: " when the
// document looks like a permit but is not exactly one (policy must refuse
// it); when an EIP-2612 permit's domain lacks the verifyingContract (the
// token) or the chainId (without which the signature is good on every
// chain, so the policy could not tell where it grants); and when a batch
// grants nothing (an empty details or permitted array). Each call returns
// fresh copies.
func (td *TypedData) Permit() (*Permit, error) {
	dom := td.Domain()
	primary := td.primaryType
	permit2Domain := dom.Name != nil && *dom.Name == permit2Name ||
		dom.VerifyingContract != nil && *dom.VerifyingContract == permit2Address

	shape, named := permitShapes[primary]
	if !named {
		if permit2Domain {
			return nil, fmt.Errorf("ethmsg: permit: primary type %s is signed for Permit2 (%s) but is none of Permit2's types", quote(primary), describePermitDomain(dom))
		}
		return nil, nil
	}
	if err := td.checkPermitShape(primary, shape); err != nil {
		return nil, err
	}

	p := &Permit{Kind: shape.kind, PrimaryType: primary}
	if shape.kind == PermitEIP2612 {
		switch {
		case permit2Domain:
			return nil, fmt.Errorf("ethmsg: permit: EIP-2612 Permit signed for Permit2 (%s), which verifies no such type", describePermitDomain(dom))
		case dom.VerifyingContract == nil:
			return nil, fmt.Errorf("ethmsg: permit: EIP-2612 Permit without a domain verifyingContract (the token)")
		case dom.ChainID == nil:
			return nil, fmt.Errorf("ethmsg: permit: EIP-2612 Permit without a domain chainId (the signature would be valid on every chain)")
		}
	} else {
		domainEnc := encodeType(td.types, domainType)
		if domainEnc != permit2DomainEncodeType || dom.Name == nil || *dom.Name != permit2Name {
			return nil, fmt.Errorf("ethmsg: permit: %s outside the Permit2 domain (%s): want %s with name %q", primary, describePermitDomain(dom), permit2DomainEncodeType, permit2Name)
		}
	}
	if dom.ChainID == nil || dom.VerifyingContract == nil { // checked above
		return nil, fmt.Errorf("ethmsg: permit: internal error: domain without chainId or verifyingContract")
	}
	p.ChainID = dom.ChainID
	p.VerifyingContract = *dom.VerifyingContract

	r := &permitReader{}
	m := td.message
	switch shape.kind {
	case PermitEIP2612:
		owner := r.address(m, "owner")
		p.Owner = &owner
		p.Spender = r.address(m, "spender")
		p.Nonce = r.uint(m, "nonce")
		p.Deadline = r.uint(m, "deadline")
		p.Grants = []Grant{{Token: p.VerifyingContract, Amount: r.uint(m, "value")}}
	case Permit2Allowance:
		for _, d := range r.structs(m, "details", shape.batch) {
			p.Grants = append(p.Grants, Grant{
				Token:      r.address(d, "token"),
				Amount:     r.uint(d, "amount"),
				Expiration: r.uint(d, "expiration"),
				Nonce:      r.uint(d, "nonce"),
			})
		}
		p.Spender = r.address(m, "spender")
		p.Deadline = r.uint(m, "sigDeadline")
	case Permit2Transfer:
		for _, tp := range r.structs(m, "permitted", shape.batch) {
			p.Grants = append(p.Grants, Grant{Token: r.address(tp, "token"), Amount: r.uint(tp, "amount")})
		}
		p.Spender = r.address(m, "spender")
		p.Nonce = r.uint(m, "nonce")
		p.Deadline = r.uint(m, "deadline")
		if shape.witnessStub != "" {
			p.Witness = r.witness(m, td.types[primary])
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(p.Grants) == 0 {
		return nil, fmt.Errorf("ethmsg: permit: %s grants no token (empty array)", primary)
	}
	limit := maxUint256
	if p.Kind == Permit2Allowance {
		limit = maxUint160
	}
	for i := range p.Grants {
		p.Grants[i].Unlimited = p.Grants[i].Amount.Cmp(limit) == 0
	}
	return p, nil
}

// checkPermitShape refuses a document whose primary type is named like a
// permit but is not exactly that permit.
func (td *TypedData) checkPermitShape(primary string, shape permitShape) error {
	if shape.witnessStub == "" {
		if enc := encodeType(td.types, primary); enc != shape.encodeType {
			return fmt.Errorf("ethmsg: permit: primary type %s is not the permit of that name: encodeType %s, want %s", primary, quote(enc), shape.encodeType)
		}
		return nil
	}
	// The stub fixes the first four fields (names and types hold no comma
	// or space, so a prefix match is a field-by-field match); one more
	// field, the witness, must follow, and TokenPermissions must be
	// Permit2's.
	st := td.types[primary]
	if len(st.fields) != 5 || !strings.HasPrefix(st.def, shape.witnessStub) {
		return fmt.Errorf("ethmsg: permit: primary type %s is not the permit of that name: definition %s, want %s<witness type> <witness name>)", primary, quote(st.def), shape.witnessStub)
	}
	if tp := td.types["TokenPermissions"]; tp == nil || tp.def != tokenPermissionsDef {
		def := ""
		if tp != nil {
			def = tp.def
		}
		return fmt.Errorf("ethmsg: permit: %s with TokenPermissions %s, want %s", primary, quote(def), tokenPermissionsDef)
	}
	return nil
}

// describePermitDomain renders the parts of a domain that decide whether it
// is Permit2's, for errors.
func describePermitDomain(d Domain) string {
	var parts []string
	if d.Name != nil {
		parts = append(parts, "name "+quote(*d.Name))
	}
	if d.VerifyingContract != nil {
		parts = append(parts, "verifyingContract "+d.VerifyingContract.Hex())
	}
	if len(parts) == 0 {
		return "no name or verifyingContract"
	}
	return strings.Join(parts, ", ")
}

// permitReader reads the fields of a message whose types Permit has
// checked. A field that is missing or of another kind cannot occur; should
// it, the first such problem is kept in err and reported, rather than a
// panic.
type permitReader struct {
	err error
}

// field returns v's field name, which must be of kind k.
func (r *permitReader) field(v *Value, name string, k Kind) *Value {
	if r.err != nil {
		return nil
	}
	f, ok := v.Field(name)
	if !ok || f == nil || f.Kind != k || (k == KindUint && f.Int == nil) {
		r.err = fmt.Errorf("ethmsg: permit: internal error: field %s is not a %v", quote(name), k)
		return nil
	}
	return f
}

func (r *permitReader) address(v *Value, name string) ethtx.Address {
	if f := r.field(v, name, KindAddress); f != nil {
		return f.Address
	}
	return ethtx.Address{}
}

// uint returns a copy of the unsigned integer field name.
func (r *permitReader) uint(v *Value, name string) *big.Int {
	if f := r.field(v, name, KindUint); f != nil {
		return new(big.Int).Set(f.Int)
	}
	return nil
}

// structs returns the struct field name as a list of one, or, for a
// batch, the elements of the array field name, each a struct.
func (r *permitReader) structs(v *Value, name string, batch bool) []*Value {
	if !batch {
		if f := r.field(v, name, KindStruct); f != nil {
			return []*Value{f}
		}
		return nil
	}
	f := r.field(v, name, KindArray)
	if f == nil {
		return nil
	}
	for _, e := range f.Elems {
		if e == nil || e.Kind != KindStruct {
			r.err = fmt.Errorf("ethmsg: permit: internal error: field %s is not an array of structs", quote(name))
			return nil
		}
	}
	return f.Elems
}

// witness returns the fifth field of a witness transfer, of type st.
func (r *permitReader) witness(m *Value, st *structType) *Witness {
	if r.err != nil {
		return nil
	}
	if m == nil || len(m.Fields) != 5 || len(st.fields) != 5 || m.Fields[4].Value == nil {
		r.err = fmt.Errorf("ethmsg: permit: internal error: no witness field")
		return nil
	}
	f := st.fields[4]
	return &Witness{Name: f.name, Type: f.typ.typeAt(len(f.typ.dims)), Value: m.Fields[4].Value.clone()}
}
