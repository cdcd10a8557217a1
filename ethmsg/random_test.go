package ethmsg

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
)

// TestRandom parses random typed data: random type graphs (nested structs,
// arrays of structs, fixed-size, dynamic and nested arrays, recursion through
// dynamic arrays, names that are prefixes of one another or sort lower case
// after upper case) holding every atomic type, with values written in every
// form go-ethereum accepts too. crosscheck/ethmsg has the same generator and
// compares the hashes with go-ethereum's (keep the two in step).
func TestRandom(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 100
	}
	r := rand.New(rand.NewPCG(712, 191))
	var kinds [KindString + 1]int
	for i := range n {
		g := &randomDoc{r: r}
		js := g.generate()
		td, err := ParseTypedData(js)
		if err != nil {
			t.Fatalf("case %d: ParseTypedData: %v\n%s", i, err, js)
		}
		ds, mh := td.DomainSeparator(), td.MessageHash()
		if keccak256([]byte{0x19, 0x01}, ds[:], mh[:]) != td.Hash() {
			t.Fatalf("case %d: Hash() is not keccak256(0x19 0x01 || DomainSeparator() || MessageHash())\n%s", i, js)
		}
		if again, err := ParseTypedData(js); err != nil || again.Hash() != td.Hash() {
			t.Fatalf("case %d: second parse: %v", i, err)
		}
		countKinds(td.Message(), &kinds)
		if i < 12 {
			commitSeed(t, "FuzzParseTypedData", fmt.Sprintf("random-%d", i), string(js))
		}
	}
	for k := KindStruct; k <= KindString; k++ {
		if kinds[k] == 0 {
			t.Errorf("no value of kind %v was generated", k)
		}
	}
	t.Logf("values by kind: %v", kinds[1:])
}

func countKinds(v *Value, kinds *[KindString + 1]int) {
	kinds[v.Kind]++
	for _, f := range v.Fields {
		countKinds(f.Value, kinds)
	}
	for _, e := range v.Elems {
		countKinds(e, kinds)
	}
}

type randomDoc struct {
	r     *rand.Rand
	types map[string][]fieldSpec
}

type fieldSpec struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

var randomTypeNames = []string{"Mail", "Mail2", "Mailbox", "Person", "Human", "a", "B", "cCell", "Z_1", "order", "Order"}

var randomStrings = []string{"", "Hello, Bob!", "é🚀\u0000\"\\", "<script>", strings.Repeat("x", 100), "\u202eevil"}

func (g *randomDoc) generate() []byte {
	r := g.r
	k := 1 + r.IntN(5)
	perm := r.Perm(len(randomTypeNames))
	names := make([]string, k)
	for i := range names {
		names[i] = randomTypeNames[perm[i]]
	}
	g.types = map[string][]fieldSpec{}
	for i, name := range names {
		nf := 1 + r.IntN(4)
		var fields []fieldSpec
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
			fields = append(fields, fieldSpec{Name: fname, Type: typ})
		}
		g.types[name] = fields
	}
	if r.IntN(4) == 0 { // an unused type
		g.types["Unused"] = []fieldSpec{{Name: "u", Type: "uint256[]"}}
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
func (g *randomDoc) dims(maxDims int, needDynamic bool) string {
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

func (g *randomDoc) atomic() string {
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

func (g *randomDoc) domain() ([]fieldSpec, map[string]any) {
	var fields []fieldSpec
	values := map[string]any{}
	for len(fields) == 0 {
		for _, f := range domainFields {
			if g.r.IntN(2) == 0 {
				continue
			}
			fields = append(fields, fieldSpec{Name: f.name, Type: f.typ})
			switch f.name {
			case "name", "version": // go-ethereum drops empty strings
				values[f.name] = "v" + randomStrings[g.r.IntN(len(randomStrings))]
			default:
				ref, _ := parseTypeRef(f.typ)
				values[f.name] = g.atomicValue(ref)
			}
		}
	}
	return fields, values
}

func (g *randomDoc) structValue(name string, budget int) map[string]any {
	m := map[string]any{}
	for _, f := range g.types[name] {
		ref, err := parseTypeRef(f.Type)
		if err != nil {
			panic(err)
		}
		m[f.Name] = g.value(ref, len(ref.dims), budget-1)
	}
	return m
}

func (g *randomDoc) value(ref *typeRef, n, budget int) any {
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
	if ref.kind == KindStruct {
		return g.structValue(ref.base, budget)
	}
	return g.atomicValue(ref)
}

func (g *randomDoc) atomicValue(ref *typeRef) any {
	r := g.r
	switch ref.kind {
	case KindAddress:
		var a ethtx.Address
		for i := range a {
			a[i] = byte(r.UintN(256))
		}
		if r.IntN(2) == 0 {
			return "0x" + hex.EncodeToString(a[:])
		}
		return a.Hex()
	case KindBool:
		return r.IntN(2) == 0
	case KindString:
		return randomStrings[r.IntN(len(randomStrings))]
	case KindBytes, KindFixedBytes:
		n := ref.size
		if ref.kind == KindBytes {
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
	case KindUint, KindInt:
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
	panic(errors.New("unexpected kind " + ref.kind.String()))
}

// integer returns a random value in the range of ref, often an extreme.
func (g *randomDoc) integer(ref *typeRef) *big.Int {
	one := big.NewInt(1)
	bits := ref.bits
	if ref.kind == KindInt {
		bits--
	}
	max := new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)
	switch g.r.IntN(6) {
	case 0:
		return max
	case 1:
		if ref.kind == KindInt {
			return new(big.Int).Neg(new(big.Int).Lsh(one, uint(bits)))
		}
		return new(big.Int)
	case 2:
		if ref.kind == KindInt {
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
	if ref.kind == KindInt && g.r.IntN(2) == 0 {
		v.Neg(v)
	}
	return v
}
