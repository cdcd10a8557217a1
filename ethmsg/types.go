package ethmsg

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// domainType is the name of the struct type of the domain.
const domainType = "EIP712Domain"

// domainFields lists the fields EIP712Domain may have, in the order EIP-712
// fixes, with the only type each may have.
var domainFields = [...]struct{ name, typ string }{
	{"name", "string"},
	{"version", "string"},
	{"chainId", "uint256"},
	{"verifyingContract", "address"},
	{"salt", "bytes32"},
}

// domainFieldIndex returns the index of name in domainFields, or -1.
func domainFieldIndex(name string) int {
	for i, f := range domainFields {
		if f.name == name {
			return i
		}
	}
	return -1
}

// structType is a validated struct type definition.
type structType struct {
	name   string
	fields []fieldDef
	index  map[string]int // field name → position in fields
	def    string         // Name(type1 name1,...), its part of encodeType
	deps   []string       // the struct types it refers to, sorted, itself excluded
}

type fieldDef struct {
	name string
	typ  *typeRef
}

// typeRef is a parsed field type such as "Person[][2]".
type typeRef struct {
	base   string // "Person", "uint256", ...
	kind   Kind   // of the base: KindStruct or an atomic kind
	bits   int    // N of uintN and intN
	size   int    // N of bytesN
	dims   []int  // array lengths as written, left to right; 0 = dynamic
	levels []string
}

// typeAt returns the type string of a value with n of the dimensions left
// (the n leftmost): levels[len(dims)] is the whole type, levels[0] its base.
func (t *typeRef) typeAt(n int) string { return t.levels[n] }

// dynamic reports whether any dimension of t is dynamic.
func (t *typeRef) dynamic() bool { return slices.Contains(t.dims, 0) }

// fieldJSON is one {"name": ..., "type": ...} entry of a type definition.
type fieldJSON struct {
	Name *string `json:"name"`
	Type *string `json:"type"`
}

// parseTypes validates every type definition and returns them by name.
func parseTypes(raw map[string][]fieldJSON) (map[string]*structType, error) {
	if raw == nil {
		return nil, errors.New("ethmsg: types: missing")
	}
	if len(raw) > MaxTypes {
		return nil, fmt.Errorf("ethmsg: types: %d types, limit %d", len(raw), MaxTypes)
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names) // report the same first error for the same document

	types := make(map[string]*structType, len(raw))
	for _, name := range names {
		if err := checkTypeName(name); err != nil {
			return nil, fmt.Errorf("ethmsg: types%s: %w", keyPath(name), err)
		}
		types[name] = &structType{name: name}
	}
	for _, name := range names {
		st, defs := types[name], raw[name]
		if len(defs) == 0 {
			return nil, fmt.Errorf("ethmsg: types.%s: a struct type needs at least one field", name)
		}
		if len(defs) > MaxFields {
			return nil, fmt.Errorf("ethmsg: types.%s: %d fields, limit %d", name, len(defs), MaxFields)
		}
		st.index = make(map[string]int, len(defs))
		folded := make(map[string]string, len(defs))
		var def strings.Builder
		def.WriteString(name)
		def.WriteByte('(')
		for i, f := range defs {
			// fail reports a problem with the field's name or type.
			fail := func(key, format string, args ...any) error {
				return fmt.Errorf("ethmsg: types.%s[%d].%s: %s", name, i, key, fmt.Sprintf(format, args...))
			}
			if f.Name == nil {
				return nil, fail("name", "missing")
			}
			if f.Type == nil {
				return nil, fail("type", "missing")
			}
			fname, ftype := *f.Name, *f.Type
			if err := checkFieldName(fname); err != nil {
				return nil, fail("name", "%v", err)
			}
			if _, dup := st.index[fname]; dup {
				return nil, fail("name", "duplicate field name %q", fname)
			}
			lower := strings.ToLower(fname)
			if other, dup := folded[lower]; dup {
				return nil, fail("name", "field names %q and %q differ only in case", other, fname)
			}
			ref, err := parseTypeRef(ftype)
			if err != nil {
				return nil, fail("type", "%v", err)
			}
			if ref.kind == KindStruct && types[ref.base] == nil {
				return nil, fail("type", "undefined struct type %s", quote(ref.base))
			}
			st.index[fname] = i
			folded[lower] = fname
			st.fields = append(st.fields, fieldDef{name: fname, typ: ref})
			if i > 0 {
				def.WriteByte(',')
			}
			def.WriteString(ftype)
			def.WriteByte(' ')
			def.WriteString(fname)
		}
		def.WriteByte(')')
		st.def = def.String()
	}
	if err := checkDomainType(types); err != nil {
		return nil, err
	}
	if err := checkCycles(types, names); err != nil {
		return nil, err
	}
	if err := checkEncodeTypes(types, names); err != nil {
		return nil, err
	}
	return types, nil
}

// checkDomainType enforces the fixed shape of EIP712Domain.
func checkDomainType(types map[string]*structType) error {
	st := types[domainType]
	if st == nil {
		return errors.New("ethmsg: types: missing EIP712Domain")
	}
	next := 0 // index in domainFields the next field may have, at least
	for i, f := range st.fields {
		path := fmt.Sprintf("types.%s[%d]", domainType, i)
		j := domainFieldIndex(f.name)
		if j < 0 {
			return fmt.Errorf("ethmsg: %s.name: %q is not an EIP712Domain field (name, version, chainId, verifyingContract, salt)", path, f.name)
		}
		if j < next {
			return fmt.Errorf("ethmsg: %s.name: %q out of order (EIP-712 order: name, version, chainId, verifyingContract, salt)", path, f.name)
		}
		if got := f.typ.typeAt(len(f.typ.dims)); got != domainFields[j].typ {
			return fmt.Errorf("ethmsg: %s.type: %s has type %s, want %s", path, f.name, quote(got), domainFields[j].typ)
		}
		next = j + 1
	}
	return nil
}

// checkCycles refuses a struct that refers to itself, directly or through
// other structs, other than through an array with a dynamic dimension: such a
// type has no finite value.
func checkCycles(types map[string]*structType, names []string) error {
	const (
		unvisited = iota
		onPath
		done
	)
	state := make(map[string]int, len(types))
	var path []string
	var visit func(name string) error
	visit = func(name string) error {
		state[name] = onPath
		path = append(path, name)
		for i, f := range types[name].fields {
			if f.typ.kind != KindStruct || f.typ.dynamic() {
				continue
			}
			switch state[f.typ.base] {
			case onPath:
				start := slices.Index(path, f.typ.base)
				cycle := strings.Join(append(slices.Clone(path[start:]), f.typ.base), " -> ")
				return fmt.Errorf("ethmsg: types.%s[%d].type: recursive struct %s has no finite value (recursion needs a dynamic array, such as %s[])", name, i, cycle, f.typ.base)
			case unvisited:
				if err := visit(f.typ.base); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		return nil
	}
	for _, name := range names {
		if state[name] == unvisited {
			if err := visit(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// dependencies returns the struct types that name refers to, transitively,
// other than name itself, sorted by name (byte order) as encodeType lists
// them.
func dependencies(types map[string]*structType, name string) []string {
	seen := map[string]bool{name: true}
	var deps []string
	var walk func(st *structType)
	walk = func(st *structType) {
		for _, f := range st.fields {
			if f.typ.kind == KindStruct && !seen[f.typ.base] {
				seen[f.typ.base] = true
				deps = append(deps, f.typ.base)
				walk(types[f.typ.base])
			}
		}
	}
	walk(types[name])
	slices.Sort(deps)
	return deps
}

// checkEncodeTypes records the dependencies of every type and refuses one
// whose encodeType would be longer than MaxEncodeTypeLength, before any is
// built: hashing long encodings for many types costs far more than parsing
// the document.
func checkEncodeTypes(types map[string]*structType, names []string) error {
	for _, name := range names {
		st := types[name]
		st.deps = dependencies(types, name)
		n := len(st.def)
		for _, d := range st.deps {
			n += len(types[d].def)
		}
		if n > MaxEncodeTypeLength {
			return fmt.Errorf("ethmsg: types.%s: encodeType of %d bytes, limit %d", name, n, MaxEncodeTypeLength)
		}
	}
	return nil
}

// encodeType returns EIP-712's encodeType of the struct type name: its
// definition, then those of every struct type it refers to, transitively,
// other than itself, sorted by name.
func encodeType(types map[string]*structType, name string) string {
	st := types[name]
	var b strings.Builder
	b.WriteString(st.def)
	for _, d := range st.deps {
		b.WriteString(types[d].def)
	}
	return b.String()
}

// reachable returns the struct types that values of the given roots can
// contain, roots included.
func reachable(types map[string]*structType, roots ...string) []string {
	seen := make(map[string]bool)
	var out []string
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		out = append(out, name)
		for _, f := range types[name].fields {
			if f.typ.kind == KindStruct {
				walk(f.typ.base)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

// parseTypeRef parses a field type: a base type and array dimensions. It does
// not check that a struct base is defined.
func parseTypeRef(s string) (*typeRef, error) {
	if s == "" {
		return nil, errors.New("empty type")
	}
	if len(s) > 2*MaxNameLength+8*MaxDepth {
		return nil, fmt.Errorf("type of %d bytes is too long", len(s))
	}
	base, rest := s, ""
	if i := strings.IndexByte(s, '['); i >= 0 {
		base, rest = s[:i], s[i:]
	}
	t := &typeRef{base: base, levels: []string{base}}
	if err := t.parseBase(); err != nil {
		return nil, err
	}
	for rest != "" {
		if rest[0] != '[' {
			return nil, fmt.Errorf("type %s: want [ after ]", quote(s))
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, fmt.Errorf("type %s: unclosed [", quote(s))
		}
		n := 0
		if digits := rest[1:end]; digits != "" {
			v, err := parseLength(digits)
			if err != nil {
				return nil, fmt.Errorf("type %s: %w", quote(s), err)
			}
			n = v
		}
		if len(t.dims) == MaxDepth {
			return nil, fmt.Errorf("type %s: more than %d array dimensions", quote(s), MaxDepth)
		}
		t.dims = append(t.dims, n)
		rest = rest[end+1:]
		t.levels = append(t.levels, s[:len(s)-len(rest)])
	}
	return t, nil
}

// parseLength parses a fixed array length: decimal, no leading zeros, 1 to
// MaxArrayLength.
func parseLength(digits string) (int, error) {
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("array length %s is not a decimal number", quote(digits))
		}
	}
	if digits[0] == '0' {
		return 0, fmt.Errorf("array length %s: zero or leading zero", quote(digits))
	}
	if len(digits) > 4 {
		return 0, fmt.Errorf("array length %s exceeds %d", quote(digits), MaxArrayLength)
	}
	n, _ := strconv.Atoi(digits)
	if n > MaxArrayLength {
		return 0, fmt.Errorf("array length %d exceeds %d", n, MaxArrayLength)
	}
	return n, nil
}

// parseBase sets kind, bits and size from base.
func (t *typeRef) parseBase() error {
	b := t.base
	switch b {
	case "address":
		t.kind = KindAddress
		return nil
	case "bool":
		t.kind = KindBool
		return nil
	case "string":
		t.kind = KindString
		return nil
	case "bytes":
		t.kind = KindBytes
		return nil
	case "uint", "int":
		return fmt.Errorf("%s is not an EIP-712 type (no aliases; write %s256)", b, b)
	}
	for _, p := range [...]struct {
		prefix string
		kind   Kind
	}{{"bytes", KindFixedBytes}, {"uint", KindUint}, {"int", KindInt}} {
		digits, ok := strings.CutPrefix(b, p.prefix)
		if !ok || digits == "" || !allDigits(digits) {
			continue
		}
		n, err := strconv.Atoi(digits)
		if digits[0] == '0' || len(digits) > 3 || err != nil {
			return fmt.Errorf("invalid atomic type %s", quote(b))
		}
		if p.kind == KindFixedBytes {
			if n < 1 || n > 32 {
				return fmt.Errorf("invalid atomic type %s (bytesN needs 1 <= N <= 32)", quote(b))
			}
			t.kind, t.size = KindFixedBytes, n
			return nil
		}
		if n < 8 || n > 256 || n%8 != 0 {
			return fmt.Errorf("invalid atomic type %s (%sN needs N a multiple of 8 from 8 to 256)", quote(b), p.prefix)
		}
		t.kind, t.bits = p.kind, n
		return nil
	}
	if err := checkTypeName(b); err != nil {
		return err
	}
	t.kind = KindStruct
	return nil
}

// checkTypeName enforces the grammar of struct type names.
func checkTypeName(name string) error {
	if name == "" {
		return errors.New("empty type name")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("type name of %d bytes, limit %d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isLetter(c) || i > 0 && (isDigit(c) || c == '_')) {
			return fmt.Errorf("invalid type name %s (want [A-Za-z][A-Za-z0-9_]*)", quote(name))
		}
	}
	if reservedTypeName(name) {
		return fmt.Errorf("type name %s is reserved for an elementary type", quote(name))
	}
	return nil
}

// reservedTypeName reports whether name is, or looks like, a Solidity
// elementary type name, valid or not (such as bytes33 or int7).
func reservedTypeName(name string) bool {
	switch name {
	case "address", "bool", "string", "byte", "function":
		return true
	}
	for _, p := range [...]string{"bytes", "uint", "int", "ufixed", "fixed"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if strings.Trim(rest, "0123456789x") == "" {
				return true
			}
		}
	}
	return false
}

// checkFieldName enforces the grammar of field names: Solidity identifiers.
func checkFieldName(name string) error {
	if name == "" {
		return errors.New("empty field name")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("field name of %d bytes, limit %d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isLetter(c) || c == '_' || c == '$' || i > 0 && isDigit(c)) {
			return fmt.Errorf("invalid field name %s (want [A-Za-z_$][A-Za-z0-9_$]*)", quote(name))
		}
	}
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// maxQuoted caps how much of an attacker-chosen string an error echoes.
const maxQuoted = 64

// quote quotes an attacker-chosen string for an error message, escaped and
// truncated.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// keyPath renders a JSON object key as a path element: .key for names that
// checkTypeName or checkFieldName accept, ["key"] for others.
func keyPath(key string) string {
	if key != "" && len(key) <= MaxNameLength && checkFieldName(key) == nil {
		return "." + key
	}
	return "[" + quote(key) + "]"
}
