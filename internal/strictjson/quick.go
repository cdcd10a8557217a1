package strictjson

import (
	"bytes"
	"reflect"
	"sync"
)

// quickCheck reports whether check(data, target) would accept data, by one
// pass over the bytes that builds no tokens, paths or maps: the path every
// well-formed request takes. It is only ever sure of acceptance. At the first
// thing it is not sure about (any syntax or rule violation, and, to stay
// simple, a key with escapes or a non-ASCII key that would need case folding)
// it returns false, and Unmarshal runs check, which finds and words the
// problem; so it changes no result, only the time an accepted document
// takes. FuzzUnmarshal checks that it never accepts what check refuses.
//
// It applies check's rules in check's terms: the top-level value is an
// object; the syntax is JSON's; objects and arrays nest at most MaxDepth
// deep; strings hold no lone surrogate escape; keys are unique (under
// encoding/json's case folding where the target's reading of keys is
// unknown); a struct's keys name its fields exactly; null only where the
// target can hold it; nothing but whitespace follows the object.
func quickCheck(data []byte, target reflect.Type) bool {
	q := quick{data: data}
	q.space()
	if q.i >= len(q.data) || q.data[q.i] != '{' {
		return false
	}
	if !q.value(target, 1) {
		return false
	}
	q.space()
	return q.i == len(q.data)
}

type quick struct {
	data []byte
	i    int
}

// shape is what check needs to know of a target type, computed once per
// type: resolve's answer, and for a container the types of its parts.
type shape struct {
	// known is false where check ignores the type's structure: a custom
	// unmarshaler, behind any number of pointers.
	known bool
	// nullable is whether null is allowed for the type itself.
	nullable bool
	// kind is the kind after the pointers are stripped, as check strips
	// them before an object or array.
	kind   reflect.Kind
	fields map[string]reflect.Type // a struct's, from structFields
	elem   reflect.Type            // a map's, slice's or array's element
}

var shapes sync.Map // reflect.Type → *shape

func shapeOf(t reflect.Type) *shape {
	if t == nil {
		return &unknownShape
	}
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := &shape{}
	if r := resolve(t); r != nil {
		s.known, s.nullable = true, nullable(r)
		for r.Kind() == reflect.Pointer {
			r = r.Elem()
		}
		s.kind = r.Kind()
		switch s.kind {
		case reflect.Struct:
			s.fields = structFields(r)
		case reflect.Map, reflect.Slice, reflect.Array:
			s.elem = r.Elem()
		}
	}
	shapes.Store(t, s)
	return s
}

var unknownShape shape

func (q *quick) space() {
	for q.i < len(q.data) {
		switch q.data[q.i] {
		case ' ', '\t', '\n', '\r':
			q.i++
		default:
			return
		}
	}
}

// value checks the value at q.i, to be decoded into t, depth levels deep
// (check.value).
func (q *quick) value(t reflect.Type, depth int) bool {
	q.space()
	if q.i >= len(q.data) {
		return false
	}
	switch c := q.data[q.i]; c {
	case '{', '[':
		if depth > MaxDepth {
			return false
		}
		s := shapeOf(t)
		q.i++
		if c == '{' {
			return q.object(s, depth)
		}
		return q.array(s, depth)
	case '"':
		_, ok := q.str()
		return ok
	case 'n':
		s := shapeOf(t)
		if s.known && !s.nullable {
			return false
		}
		return q.literal("null")
	case 't':
		return q.literal("true")
	case 'f':
		return q.literal("false")
	default:
		return q.number()
	}
}

// maxLinearKeys is how many keys of one object are compared pairwise for
// duplicates; beyond it a map is used, so that no object costs quadratic
// time.
const maxLinearKeys = 16

// object checks an object whose '{' has been read (check.object).
func (q *quick) object(s *shape, depth int) bool {
	fold := !s.known
	isStruct := s.known && s.kind == reflect.Struct
	var elem reflect.Type
	if s.known {
		switch s.kind {
		case reflect.Struct:
		case reflect.Map:
			elem = s.elem
		case reflect.Interface:
		default:
			fold = true // a type mismatch: encoding/json refuses it
		}
	}
	var small [maxLinearKeys][]byte
	seen := small[:0]
	var many map[string]bool
	q.space()
	if q.i < len(q.data) && q.data[q.i] == '}' {
		q.i++
		return true
	}
	for {
		q.space()
		if q.i >= len(q.data) || q.data[q.i] != '"' {
			return false
		}
		key, ok := q.str()
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return false // escaped keys are left to check
		}
		if fold {
			for _, c := range key {
				if c >= 0x80 {
					return false // non-ASCII folding is left to check
				}
			}
		}
		if many != nil {
			k := string(key)
			if fold {
				k = foldName(k)
			}
			if many[k] {
				return false
			}
			many[k] = true
		} else {
			for _, prev := range seen {
				if fold && bytes.EqualFold(prev, key) || !fold && bytes.Equal(prev, key) {
					return false
				}
			}
			if len(seen) < maxLinearKeys {
				seen = append(seen, key)
			} else {
				many = make(map[string]bool, 2*maxLinearKeys)
				for _, k := range append(seen, key) {
					name := string(k)
					if fold {
						name = foldName(name)
					}
					many[name] = true
				}
			}
		}
		var vt reflect.Type
		if isStruct {
			ft, ok := s.fields[string(key)]
			if !ok {
				return false
			}
			vt = ft
		} else {
			vt = elem
		}
		q.space()
		if q.i >= len(q.data) || q.data[q.i] != ':' {
			return false
		}
		q.i++
		if !q.value(vt, depth+1) {
			return false
		}
		q.space()
		if q.i >= len(q.data) {
			return false
		}
		switch q.data[q.i] {
		case ',':
			q.i++
		case '}':
			q.i++
			return true
		default:
			return false
		}
	}
}

// array checks an array whose '[' has been read (check.array).
func (q *quick) array(s *shape, depth int) bool {
	var elem reflect.Type
	if s.known && (s.kind == reflect.Slice || s.kind == reflect.Array) {
		elem = s.elem
	}
	q.space()
	if q.i < len(q.data) && q.data[q.i] == ']' {
		q.i++
		return true
	}
	for {
		if !q.value(elem, depth+1) {
			return false
		}
		q.space()
		if q.i >= len(q.data) {
			return false
		}
		switch q.data[q.i] {
		case ',':
			q.i++
		case ']':
			q.i++
			return true
		default:
			return false
		}
	}
}

// str reads the string at q.i (its opening quote) and returns its raw
// contents, between the quotes. It refuses control characters, invalid
// escapes and lone surrogate escapes (checkSurrogates).
func (q *quick) str() ([]byte, bool) {
	start := q.i + 1
	for i := start; i < len(q.data); i++ {
		switch c := q.data[i]; {
		case c == '"':
			q.i = i + 1
			return q.data[start:i], true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if i+1 >= len(q.data) {
				return nil, false
			}
			i++
			switch q.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				r, ok := quickHex4(q.data, i+1)
				if !ok {
					return nil, false
				}
				i += 4
				switch {
				case r >= 0xdc00 && r <= 0xdfff:
					return nil, false
				case r >= 0xd800 && r <= 0xdbff:
					if i+6 >= len(q.data) || q.data[i+1] != '\\' || q.data[i+2] != 'u' {
						return nil, false
					}
					lo, ok := quickHex4(q.data, i+3)
					if !ok || lo < 0xdc00 || lo > 0xdfff {
						return nil, false
					}
					i += 6
				}
			default:
				return nil, false
			}
		}
	}
	return nil, false
}

func quickHex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (q *quick) literal(lit string) bool {
	if !bytes.HasPrefix(q.data[q.i:], []byte(lit)) {
		return false
	}
	q.i += len(lit)
	return true
}

// number reads a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (q *quick) number() bool {
	d, i := q.data, q.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return false
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	q.i = i
	return true
}
