package testgen

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
)

// TypedData returns a random EIP-712 typed-data document (JSON): a random
// type graph (nested structs, arrays of structs, fixed-size, dynamic and
// nested arrays, recursion through dynamic arrays, names that are prefixes
// of one another or sort lower case after upper case) holding every atomic
// type, with values written in every form both ethmsg and go-ethereum
// accept, and a domain of a random subset of the EIP712Domain fields.
func TypedData(r *rand.Rand) []byte {
	g := &typedDoc{r: r}
	return g.generate()
}

// typedDoc is the state of one TypedData document.
type typedDoc struct {
	r     *rand.Rand
	types map[string][]typedField
}

type typedField struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

var typeNames = []string{"Mail", "Mail2", "Mailbox", "Person", "Human", "a", "B", "cCell", "Z_1", "order", "Order"}

var typedStrings = []string{"", "Hello, Bob!", "é🚀\u0000\"\\", "<script>", strings.Repeat("x", 100), "\u202eevil"}

// maxSafeInteger is 2^53-1, the largest integer a JSON number may hold.
const maxSafeInteger = 1<<53 - 1

// domainFields are the fields EIP712Domain may have, in EIP-712 order.
var domainFields = []struct{ name, typ string }{
	{"name", "string"}, {"version", "string"}, {"chainId", "uint256"},
	{"verifyingContract", "address"}, {"salt", "bytes32"},
}

func (g *typedDoc) generate() []byte {
	r := g.r
	k := 1 + r.IntN(5)
	perm := r.Perm(len(typeNames))
	names := make([]string, k)
	for i := range names {
		names[i] = typeNames[perm[i]]
	}
	g.types = map[string][]typedField{}
	for i, name := range names {
		nf := 1 + r.IntN(4)
		var fields []typedField
		for j := range nf {
			fname := fmt.Sprintf("f%d", j)
			var typ string
			switch c := r.IntN(10); {
			case c < 2 && i+1 < k: // a later type: the graph stays acyclic
				typ = names[i+1+r.IntN(k-i-1)] + g.dims(2, false)
			case c == 2 && r.IntN(3) == 0: // itself, through a dynamic array
				typ = name + g.dims(2, true)
			default:
				typ = g.atomic() + g.dims(3, false)
			}
			fields = append(fields, typedField{Name: fname, Type: typ})
		}
		g.types[name] = fields
	}
	if r.IntN(4) == 0 { // an unused type
		g.types["Unused"] = []typedField{{Name: "u", Type: "uint256[]"}}
	}
	domainTypes, domain := g.domain()
	g.types["EIP712Domain"] = domainTypes
	doc := map[string]any{
		"types":       g.types,
		"primaryType": names[0],
		"domain":      domain,
		"message":     g.structValue(names[0], 3),
	}
	js, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return js
}

// dims returns up to maxDims array dimensions, at least one dynamic if
// needDynamic.
func (g *typedDoc) dims(maxDims int, needDynamic bool) string {
	n := g.r.IntN(maxDims + 1)
	if needDynamic && n == 0 {
		n = 1
	}
	var b strings.Builder
	dyn := g.r.IntN(max(n, 1))
	for i := range n {
		if g.r.IntN(2) == 0 || needDynamic && i == dyn {
			b.WriteString("[]")
		} else {
			fmt.Fprintf(&b, "[%d]", 1+g.r.IntN(3))
		}
	}
	return b.String()
}

func (g *typedDoc) atomic() string {
	switch g.r.IntN(7) {
	case 0:
		return "address"
	case 1:
		return "bool"
	case 2:
		return "string"
	case 3:
		return "bytes"
	case 4:
		return "bytes" + strconv.Itoa(1+g.r.IntN(32))
	case 5:
		return "uint" + strconv.Itoa(8*(1+g.r.IntN(32)))
	default:
		return "int" + strconv.Itoa(8*(1+g.r.IntN(32)))
	}
}

func (g *typedDoc) domain() ([]typedField, map[string]any) {
	var fields []typedField
	values := map[string]any{}
	for len(fields) == 0 {
		for _, f := range domainFields {
			if g.r.IntN(2) == 0 {
				continue
			}
			fields = append(fields, typedField{Name: f.name, Type: f.typ})
			switch f.name {
			case "name", "version": // go-ethereum drops empty strings
				values[f.name] = "v" + typedStrings[g.r.IntN(len(typedStrings))]
			default:
				values[f.name] = g.atomicValue(parseTypeRef(f.typ))
			}
		}
	}
	return fields, values
}

func (g *typedDoc) structValue(name string, budget int) map[string]any {
	m := map[string]any{}
	for _, f := range g.types[name] {
		ref := parseTypeRef(f.Type)
		m[f.Name] = g.value(ref, len(ref.dims), budget-1)
	}
	return m
}

func (g *typedDoc) value(ref *typeRef, n, budget int) any {
	if n > 0 {
		length := ref.dims[n-1]
		if length == 0 {
			length = 0
			if budget > 0 {
				length = g.r.IntN(3)
			}
		}
		elems := make([]any, length)
		for i := range elems {
			elems[i] = g.value(ref, n-1, budget-1)
		}
		return elems
	}
	if ref.kind == kindStruct {
		return g.structValue(ref.base, budget)
	}
	return g.atomicValue(ref)
}

func (g *typedDoc) atomicValue(ref *typeRef) any {
	r := g.r
	switch ref.kind {
	case kindAddress:
		var a ethtx.Address
		for i := range a {
			a[i] = byte(r.UintN(256))
		}
		if r.IntN(2) == 0 {
			return "0x" + hex.EncodeToString(a[:])
		}
		return a.Hex()
	case kindBool:
		return r.IntN(2) == 0
	case kindString:
		return typedStrings[r.IntN(len(typedStrings))]
	case kindBytes, kindFixedBytes:
		n := ref.size
		if ref.kind == kindBytes {
			n = r.IntN(40)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		s := hex.EncodeToString(b)
		if r.IntN(4) == 0 {
			s = strings.ToUpper(s)
		}
		return "0x" + s
	case kindUint, kindInt:
		v := g.integer(ref)
		switch {
		case r.IntN(3) == 0 && v.IsInt64() && v.Int64() <= maxSafeInteger && v.Int64() >= -maxSafeInteger:
			return json.Number(v.String())
		case r.IntN(2) == 0 && v.Sign() >= 0:
			return "0x" + v.Text(16)
		default:
			return v.String()
		}
	}
	panic(fmt.Sprintf("testgen: unexpected kind %d of %s", ref.kind, ref.base))
}

// integer returns a random value in the range of ref, often an extreme.
func (g *typedDoc) integer(ref *typeRef) *big.Int {
	one := big.NewInt(1)
	bits := ref.bits
	if ref.kind == kindInt {
		bits--
	}
	max := new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)
	switch g.r.IntN(6) {
	case 0:
		return max
	case 1:
		if ref.kind == kindInt {
			return new(big.Int).Neg(new(big.Int).Lsh(one, uint(bits)))
		}
		return new(big.Int)
	case 2:
		if ref.kind == kindInt {
			return big.NewInt(-1)
		}
		return one
	}
	var buf [32]byte
	for i := range buf {
		buf[i] = byte(g.r.UintN(256))
	}
	// A random number of random bits, so that small values come up too.
	v := new(big.Int).SetBytes(buf[:])
	v.Rsh(v, uint(256-bits+g.r.IntN(bits)))
	if ref.kind == kindInt && g.r.IntN(2) == 0 {
		v.Neg(v)
	}
	return v
}

// typeKind is the kind of a type the generator writes. (The generator
// keeps its own reading of its types rather than ethmsg's, so that ethmsg's
// tests do not check ethmsg's parser with itself.)
type typeKind int

const (
	kindStruct typeKind = iota
	kindAddress
	kindBool
	kindString
	kindBytes
	kindFixedBytes
	kindUint
	kindInt
)

// typeRef is a type as the generator writes it: a base type and its array
// dimensions, left to right (0 for a dynamic one).
type typeRef struct {
	base string
	kind typeKind
	bits int // N of uintN and intN
	size int // N of bytesN
	dims []int
}

// parseTypeRef reads the types the generator writes, and no others.
func parseTypeRef(s string) *typeRef {
	ref := &typeRef{base: s}
	if i := strings.IndexByte(s, '['); i >= 0 {
		ref.base = s[:i]
		for _, d := range strings.Split(s[i+1:len(s)-1], "][") {
			n := 0
			if d != "" {
				n = atoi(d)
			}
			ref.dims = append(ref.dims, n)
		}
	}
	b := ref.base
	switch {
	case b == "address":
		ref.kind = kindAddress
	case b == "bool":
		ref.kind = kindBool
	case b == "string":
		ref.kind = kindString
	case b == "bytes":
		ref.kind = kindBytes
	case strings.HasPrefix(b, "bytes"):
		ref.kind, ref.size = kindFixedBytes, atoi(b[5:])
	case strings.HasPrefix(b, "uint"):
		ref.kind, ref.bits = kindUint, atoi(b[4:])
	case strings.HasPrefix(b, "int"):
		ref.kind, ref.bits = kindInt, atoi(b[3:])
	default:
		ref.kind = kindStruct
	}
	return ref
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
