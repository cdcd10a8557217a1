package summary

import (
	"fmt"

	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/policy"
)

// TypedData summarises EIP-712 typed data: its domain, primary type, every
// value of the message (one line each, by path), and the digest. p may be
// nil.
func TypedData(td *ethmsg.TypedData, key Key, p *policy.Policy) Summary {
	var b builder
	dom := td.Domain()
	n := names{p: p, keyID: key.ID}
	if dom.ChainID != nil && dom.ChainID.IsUint64() {
		n.chain = dom.ChainID.Uint64()
	}
	b.add("request", "EIP-712 typed data")
	from(&b, key)
	var parts [][]part
	if dom.Name != nil {
		parts = append(parts, []part{text("name " + quoteWithin(*dom.Name, MaxValueLen, ""))})
	}
	if dom.Version != nil {
		parts = append(parts, []part{text("version " + quoteWithin(*dom.Version, MaxValueLen, ""))})
	}
	if dom.ChainID != nil {
		parts = append(parts, []part{text("chainId " + chain(dom.ChainID))})
	}
	if dom.VerifyingContract != nil {
		parts = append(parts, []part{text("verifyingContract "), n.addr(*dom.VerifyingContract)})
	}
	if dom.Salt != nil {
		parts = append(parts, []part{text(fmt.Sprintf("salt 0x%x", *dom.Salt))})
	}
	if len(parts) == 0 {
		parts = append(parts, []part{text("empty")})
	}
	b.addParts("domain", joinParts(parts, ", ")...)
	b.add("primary type", "%s", td.PrimaryType())
	permit(&b, n, td)
	value(&b, n, "message", td.Message())
	return b.done("digest", "0x%x", td.Hash())
}

// value adds the lines of one typed-data value. Field and type names are
// identifiers (ethmsg refuses others), so they are shown as they are.
func value(b *builder, n names, path string, v *ethmsg.Value) {
	switch v.Kind {
	case ethmsg.KindStruct:
		if len(v.Fields) == 0 {
			b.add(path, "%s {}", v.Type)
		}
		for _, f := range v.Fields {
			value(b, n, path+"."+f.Name, f.Value)
		}
	case ethmsg.KindArray:
		if len(v.Elems) == 0 {
			b.add(path, "%s, empty", v.Type)
		}
		for i, e := range v.Elems {
			value(b, n, fmt.Sprintf("%s[%d]", path, i), e)
		}
	case ethmsg.KindAddress:
		b.addParts(path, n.addr(v.Address))
	case ethmsg.KindBool:
		b.add(path, "%t", v.Bool)
	case ethmsg.KindUint, ethmsg.KindInt:
		b.add(path, "%s (%s)", v.Int, v.Type)
	case ethmsg.KindFixedBytes, ethmsg.KindBytes:
		b.add(path, "%s", hexWithin(v.Bytes, MaxValueLen, fmt.Sprintf("%s, %d bytes", v.Type, len(v.Bytes))))
	case ethmsg.KindString:
		b.add(path, "%s", quoteWithin(v.String, MaxValueLen, ""))
	default:
		b.add(path, "(%s)", v.Kind)
	}
}

// permit adds what an allowance grant grants, before the raw message.
func permit(b *builder, n names, td *ethmsg.TypedData) {
	pm, err := td.Permit()
	if err != nil {
		b.add("permit", "looks like an allowance grant but is not a known one: %v", err)
		return
	}
	if pm == nil {
		return
	}
	b.addParts("permit", text(fmt.Sprintf("%s: ", pm.Kind)), n.addr(pm.Spender), text(" may move the tokens below"))
	if pm.Owner != nil {
		b.addParts("permit.owner", n.addr(*pm.Owner))
	}
	for i, g := range pm.Grants {
		amount := n.amount(g.Token, g.Amount)
		if g.Unlimited {
			amount = text("unlimited")
		}
		parts := []part{amount, text(" of "), n.addr(g.Token)}
		if g.Expiration != nil {
			parts = append(parts, text(fmt.Sprintf(", allowance expires at %s (Unix time)", g.Expiration)))
		}
		b.addParts(fmt.Sprintf("permit.grants[%d]", i), parts...)
	}
	if pm.Deadline != nil {
		b.add("permit.deadline", "%s (Unix time; the signature is accepted until then)", pm.Deadline)
	}
	if pm.Witness != nil {
		b.add("permit.witness", "%s %s", pm.Witness.Type, pm.Witness.Name)
	}
}
