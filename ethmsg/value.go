package ethmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// Kind says which of a [Value]'s fields holds its content.
type Kind uint8

// The kinds of values. Uint and Int values share [Value.Int]; Bytes and
// FixedBytes share [Value.Bytes].
const (
	KindInvalid    Kind = iota
	KindStruct          // Fields, in type order
	KindArray           // Elems
	KindAddress         // Address
	KindBool            // Bool
	KindUint            // Int, 0 <= Int < 2^N
	KindInt             // Int, -2^(N-1) <= Int < 2^(N-1)
	KindFixedBytes      // Bytes, exactly N of them
	KindBytes           // Bytes
	KindString          // String
)

var kindNames = [...]string{
	KindInvalid:    "invalid",
	KindStruct:     "struct",
	KindArray:      "array",
	KindAddress:    "address",
	KindBool:       "bool",
	KindUint:       "uint",
	KindInt:        "int",
	KindFixedBytes: "fixed bytes",
	KindBytes:      "bytes",
	KindString:     "string",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one decoded EIP-712 value. Kind says which other field holds its
// content; the others are zero.
type Value struct {
	Kind Kind
	// Type is the EIP-712 type as the document writes it, such as "Person",
	// "uint256[][2]" or "bytes32". An element of a Person[2] array has Type
	// "Person".
	Type string

	Fields  []Field       // KindStruct
	Elems   []*Value      // KindArray
	Int     *big.Int      // KindUint, KindInt
	Bytes   []byte        // KindBytes, KindFixedBytes
	Address ethtx.Address // KindAddress
	Bool    bool          // KindBool
	String  string        // KindString
}

// Field is a named member of a struct value.
type Field struct {
	Name  string
	Value *Value
}

// Field returns the value of the struct field name. It reports false when v
// is nil, not a struct, or has no such field.
func (v *Value) Field(name string) (*Value, bool) {
	if v == nil || v.Kind != KindStruct {
		return nil, false
	}
	for _, f := range v.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// clone returns a deep copy of v.
func (v *Value) clone() *Value {
	if v == nil {
		return nil
	}
	c := *v
	if v.Fields != nil {
		c.Fields = make([]Field, len(v.Fields))
		for i, f := range v.Fields {
			c.Fields[i] = Field{Name: f.Name, Value: f.Value.clone()}
		}
	}
	if v.Elems != nil {
		c.Elems = make([]*Value, len(v.Elems))
		for i, e := range v.Elems {
			c.Elems[i] = e.clone()
		}
	}
	if v.Int != nil {
		c.Int = new(big.Int).Set(v.Int)
	}
	if v.Bytes != nil {
		c.Bytes = bytes.Clone(v.Bytes)
	}
	return &c
}

// path is a JSON path, built as a linked list and rendered only for errors.
type path struct {
	parent *path
	key    string // a field name, or the root name
	index  int    // when key is ""
}

func (p *path) field(name string) *path { return &path{parent: p, key: name} }
func (p *path) elem(i int) *path        { return &path{parent: p, index: i} }

func (p *path) String() string {
	if p.parent == nil {
		return p.key
	}
	if p.key == "" {
		return p.parent.String() + "[" + strconv.Itoa(p.index) + "]"
	}
	return p.parent.String() + "." + p.key
}

// errorf returns an error about the value at p.
func (p *path) errorf(format string, args ...any) error {
	return fmt.Errorf("ethmsg: %s: %s", p, fmt.Sprintf(format, args...))
}

// decoder decodes JSON values against types. The JSON has passed
// strictjson, so syntax errors cannot occur, but are still handled.
type decoder struct {
	types  map[string]*structType
	dec    *json.Decoder
	values int // decoded so far, against MaxValues

	// domain is the path of the domain object while it is decoded, nil
	// otherwise. Only that object, never a struct of type EIP712Domain
	// nested in the message, may carry the absent fields absentDomainField
	// skips.
	domain *path
}

// decodeRoot decodes raw, the domain or message, as a struct of type name.
func (d *decoder) decodeRoot(raw []byte, name string, root string) (*Value, error) {
	if raw == nil {
		return nil, fmt.Errorf("ethmsg: %s: missing", root)
	}
	d.dec = json.NewDecoder(bytes.NewReader(raw))
	d.dec.UseNumber()
	p := &path{key: root}
	d.domain = nil
	if name == domainType && root == "domain" {
		d.domain = p
	}
	tok, err := d.token(p)
	if err != nil {
		return nil, err
	}
	v, err := d.structValue(tok, d.types[name], p, 1)
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return nil, p.errorf("trailing data")
	}
	return v, nil
}

func (d *decoder) token(p *path) (json.Token, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, p.errorf("invalid JSON: %v", err)
	}
	return tok, nil
}

// count accounts for one more value at depth.
func (d *decoder) count(p *path, depth int) error {
	if depth > MaxDepth {
		return p.errorf("nested deeper than %d levels", MaxDepth)
	}
	d.values++
	if d.values > MaxValues {
		return p.errorf("more than %d values in all", MaxValues)
	}
	return nil
}

// value decodes the value starting at tok, of type t with its n leftmost
// dimensions left.
func (d *decoder) value(tok json.Token, t *typeRef, n int, p *path, depth int) (*Value, error) {
	if n > 0 {
		return d.arrayValue(tok, t, n, p, depth)
	}
	if t.kind == KindStruct {
		return d.structValue(tok, d.types[t.base], p, depth)
	}
	if err := d.count(p, depth); err != nil {
		return nil, err
	}
	v := &Value{Kind: t.kind, Type: t.base}
	var err error
	switch t.kind {
	case KindAddress:
		s, ok := tok.(string)
		if !ok {
			return nil, p.errorf("address: want a string, got %s", strictjson.DescribeToken(tok))
		}
		v.Address, err = ethtx.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("ethmsg: %s: %w", p, stripPrefix{err, "ethtx: "})
		}
	case KindBool:
		b, ok := tok.(bool)
		if !ok {
			return nil, p.errorf("bool: want true or false, got %s", strictjson.DescribeToken(tok))
		}
		v.Bool = b
	case KindString:
		s, ok := tok.(string)
		if !ok {
			return nil, p.errorf("string: want a string, got %s", strictjson.DescribeToken(tok))
		}
		v.String = s
	case KindBytes, KindFixedBytes:
		s, ok := tok.(string)
		if !ok {
			return nil, p.errorf("%s: want a 0x-hex string, got %s", t.base, strictjson.DescribeToken(tok))
		}
		if t.kind == KindFixedBytes && len(s) != 2+2*t.size {
			return nil, p.errorf("%s: want 0x and %d hex digits, got %d characters", t.base, 2*t.size, len(s))
		}
		v.Bytes, err = decodeHex(s)
		if err != nil {
			return nil, p.errorf("%s: %v", t.base, err)
		}
	case KindUint, KindInt:
		v.Int, err = parseInteger(tok, t)
		if err != nil {
			return nil, p.errorf("%s: %v", t.base, err)
		}
	default:
		return nil, p.errorf("internal error: kind %v", t.kind)
	}
	return v, nil
}

func (d *decoder) structValue(tok json.Token, st *structType, p *path, depth int) (*Value, error) {
	if err := d.count(p, depth); err != nil {
		return nil, err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return nil, p.errorf("%s: want an object, got %s", st.name, strictjson.DescribeToken(tok))
	}
	fields := make([]Field, len(st.fields))
	var absent uint8 // bit i: domainFields[i] was skipped as absent
	for {
		tok, err := d.token(p)
		if err != nil {
			return nil, err
		}
		if delim, ok := tok.(json.Delim); ok && delim == '}' {
			break
		}
		key, ok := tok.(string)
		if !ok {
			return nil, p.errorf("invalid object key")
		}
		i, ok := st.index[key]
		if !ok {
			if p == d.domain {
				if j := domainFieldIndex(key); j >= 0 {
					if absent&(1<<j) != 0 {
						return nil, p.errorf("duplicate field %s", quote(key))
					}
					if err := d.absentDomainField(key, p); err != nil {
						return nil, err
					}
					absent |= 1 << j
					continue
				}
			}
			return nil, p.errorf("unknown field %s (not in type %s)", quote(key), st.name)
		}
		if fields[i].Value != nil {
			return nil, p.errorf("duplicate field %s", quote(key))
		}
		fp := p.field(key)
		if tok, err = d.token(fp); err != nil {
			return nil, err
		}
		f := st.fields[i]
		v, err := d.value(tok, f.typ, len(f.typ.dims), fp, depth+1)
		if err != nil {
			return nil, err
		}
		fields[i] = Field{Name: key, Value: v}
	}
	for i, f := range fields {
		if f.Value == nil {
			return nil, p.errorf("missing field %s of type %s", quote(st.fields[i].name), st.name)
		}
	}
	return &Value{Kind: KindStruct, Type: st.name, Fields: fields}, nil
}

// absentDomainField reads the value of key, one of the five standard
// EIP712Domain member names that the document's EIP712Domain type does not
// declare, and accepts it only if it is "" or null: such a field is absent,
// and plays no part in the hash. go-ethereum's apitypes.TypedDataDomain
// marshals every member it lacks that way ("salt": "", "chainId": null) and
// hashes the domain without them, so a document from a Go stack means the
// same to both. chainId is absent only as null: go-ethereum reads
// "chainId": "" as chain 0, present, so the same bytes would mean something
// else there, and it never emits it. Any other value is refused as the
// unknown field it is: the signer cannot tell whether the client meant it to
// be signed. ethers v6 and viem omit absent fields from the domain
// (JSON.stringify drops undefined members, and ethers skips null ones), so
// their documents never need this rule.
func (d *decoder) absentDomainField(key string, p *path) error {
	tok, err := d.token(p.field(key))
	if err != nil {
		return err
	}
	if s, ok := tok.(string); tok == nil || ok && s == "" && key != "chainId" {
		return nil
	}
	return p.errorf("unknown field %s (not in type %s)", quote(key), domainType)
}

func (d *decoder) arrayValue(tok json.Token, t *typeRef, n int, p *path, depth int) (*Value, error) {
	if err := d.count(p, depth); err != nil {
		return nil, err
	}
	typ := t.typeAt(n)
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return nil, p.errorf("%s: want an array, got %s", typ, strictjson.DescribeToken(tok))
	}
	want := t.dims[n-1] // 0 for dynamic
	limit := want
	if limit == 0 {
		limit = MaxArrayLength
	}
	elems := []*Value{}
	for i := 0; ; i++ {
		tok, err := d.token(p)
		if err != nil {
			return nil, err
		}
		if delim, ok := tok.(json.Delim); ok && delim == ']' {
			break
		}
		if i == limit {
			if want > 0 {
				return nil, p.errorf("%s: more than %d elements", typ, want)
			}
			return nil, p.errorf("%s: more than %d elements (limit)", typ, MaxArrayLength)
		}
		e, err := d.value(tok, t, n-1, p.elem(i), depth+1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, e)
	}
	if want > 0 && len(elems) != want {
		return nil, p.errorf("%s: %d elements, want exactly %d", typ, len(elems), want)
	}
	return &Value{Kind: KindArray, Type: typ, Elems: elems}, nil
}

// maxSafeInteger is the largest magnitude every JSON parser (JavaScript's
// included) reads exactly: 2^53-1.
const maxSafeInteger = 1<<53 - 1

// Digit caps of integers, checked before they are parsed: 2^53-1 has 16
// decimal digits, 2^256-1 has 64 hex digits and 78 decimal digits.
const (
	maxSafeIntegerDigits = 16
	maxUint256HexDigits  = 64
	maxUint256Digits     = 78
)

// parseInteger reads an integer value of type t (uintN or intN) from a JSON
// number or string and checks its range.
func parseInteger(tok json.Token, t *typeRef) (*big.Int, error) {
	var v *big.Int
	switch x := tok.(type) {
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			return nil, fmt.Errorf("number %s is not an integer (no fraction or exponent)", quote(s))
		}
		if s == "-0" {
			return nil, errors.New("negative zero")
		}
		digits := strings.TrimPrefix(s, "-")
		n, err := strconv.ParseInt(digits, 10, 64)
		if len(digits) > maxSafeIntegerDigits || err != nil || n > maxSafeInteger {
			return nil, fmt.Errorf("number %s is beyond 2^53-1 and may be rounded by the wallet: write it as a string", quote(s))
		}
		if s[0] == '-' {
			n = -n
		}
		v = big.NewInt(n)
	case string:
		var err error
		if v, err = parseIntegerString(x); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("want an integer (number or string), got %s", strictjson.DescribeToken(tok))
	}
	if t.kind == KindUint {
		if v.Sign() < 0 {
			return nil, fmt.Errorf("negative value %s for an unsigned type", v)
		}
		if v.BitLen() > t.bits {
			return nil, fmt.Errorf("value %s out of range (at most 2^%d-1)", v, t.bits)
		}
		return v, nil
	}
	// -2^(bits-1) <= v < 2^(bits-1): a non-negative v has at most bits-1
	// bits; a negative one satisfies |v|-1 < 2^(bits-1).
	mag := v
	if v.Sign() < 0 {
		mag = new(big.Int).Neg(v)
		mag.Sub(mag, big.NewInt(1))
	}
	if mag.BitLen() > t.bits-1 {
		return nil, fmt.Errorf("value %s out of range (-2^%d to 2^%d-1)", v, t.bits-1, t.bits-1)
	}
	return v, nil
}

// parseIntegerString reads "0x" and 1 to 64 hex digits, or a decimal integer
// with an optional minus sign, no leading zeros, at most 78 digits.
func parseIntegerString(s string) (*big.Int, error) {
	if hex, ok := strings.CutPrefix(s, "0x"); ok {
		if hex == "" || len(hex) > maxUint256HexDigits {
			return nil, fmt.Errorf("hex integer %s: want 1 to %d digits", quote(s), maxUint256HexDigits)
		}
		for i := 0; i < len(hex); i++ {
			if _, ok := hexDigit(hex[i]); !ok {
				return nil, fmt.Errorf("hex integer %s: invalid digit %q", quote(s), hex[i])
			}
		}
		v, _ := new(big.Int).SetString(hex, 16)
		return v, nil
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > maxUint256Digits || !allDigits(digits) {
		return nil, fmt.Errorf("integer string %s: want decimal digits or 0x-hex", quote(s))
	}
	if len(digits) > 1 && digits[0] == '0' {
		return nil, fmt.Errorf("integer string %s: leading zero", quote(s))
	}
	if s == "-0" {
		return nil, errors.New("negative zero")
	}
	v, _ := new(big.Int).SetString(s, 10)
	return v, nil
}

// stripPrefix wraps an error from another package, dropping its package
// prefix from the message so that ours reads "ethmsg: ..." once.
type stripPrefix struct {
	err    error
	prefix string
}

func (s stripPrefix) Error() string { return strings.TrimPrefix(s.err.Error(), s.prefix) }
func (s stripPrefix) Unwrap() error { return s.err }
