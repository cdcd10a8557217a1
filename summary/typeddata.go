package summary

import (
	"fmt"
	"strconv"
	"strings"

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
	b.add("from", "%s (key %s, %s)", key.Address.Hex(), key.ID, key.Path)
	var parts []string
	if dom.Name != nil {
		parts = append(parts, "name "+strconv.Quote(*dom.Name))
	}
	if dom.Version != nil {
		parts = append(parts, "version "+strconv.Quote(*dom.Version))
	}
	if dom.ChainID != nil {
		parts = append(parts, "chainId "+chain(dom.ChainID))
	}
	if dom.VerifyingContract != nil {
		parts = append(parts, "verifyingContract "+n.addr(*dom.VerifyingContract))
	}
	if dom.Salt != nil {
		parts = append(parts, fmt.Sprintf("salt 0x%x", *dom.Salt))
	}
	if len(parts) == 0 {
		parts = append(parts, "empty")
	}
	b.add("domain", "%s", strings.Join(parts, ", "))
	b.add("primary type", "%s", td.PrimaryType())
	value(&b, n, "message", td.Message())
	b.add("digest", "0x%x", td.Hash())
	return b.done()
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
		b.add(path, "%s", n.addr(v.Address))
	case ethmsg.KindBool:
		b.add(path, "%t", v.Bool)
	case ethmsg.KindUint, ethmsg.KindInt:
		b.add(path, "%s (%s)", v.Int, v.Type)
	case ethmsg.KindFixedBytes, ethmsg.KindBytes:
		b.add(path, "0x%x (%s, %d bytes)", v.Bytes, v.Type, len(v.Bytes))
	case ethmsg.KindString:
		b.add(path, "%s", strconv.Quote(v.String))
	default:
		b.add(path, "(%s)", v.Kind)
	}
}
