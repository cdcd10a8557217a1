// Package strictjson decodes JSON from untrusted parties with no ambiguity.
//
// The enclave parses request bodies and stamps that a possibly compromised host
// forwards. encoding/json is lenient in ways that let two parties read the same
// bytes differently: it keeps the last of duplicate keys, matches field names
// case-insensitively (so {"key":"a","KEY":"b"} is a duplicate in disguise),
// replaces invalid UTF-8 and lone surrogate escapes with U+FFFD, treats null
// as "leave unchanged" and accepts trailing values. [Unmarshal] refuses all of
// these, so that any input it accepts has exactly one meaning.
//
// # Checks
//
// [Unmarshal] refuses the following, reporting the first problem it finds
// (size and UTF-8 first, then in document order):
//   - input longer than maxSize bytes ([ErrTooLarge]);
//   - input that is not valid UTF-8;
//   - a top-level value that is not an object;
//   - invalid JSON syntax, and anything but whitespace after the value;
//   - nesting deeper than [MaxDepth];
//   - a string containing a lone UTF-16 surrogate escape (such as "\ud800");
//   - a duplicate key in any object at any depth; where the target is a
//     custom unmarshaler, whose reading of keys is unknown, keys equal under
//     encoding/json's case folding count as duplicates too;
//   - a key that does not name a field of the target struct exactly,
//     including one that matches only case-insensitively;
//   - null for a target that cannot hold it (anything but a pointer,
//     interface, map or slice);
//   - everything encoding/json refuses with DisallowUnknownFields, notably
//     type mismatches, and fractions, exponents or out-of-range values for
//     integer targets.
//
// Targets implementing [json.Unmarshaler] or [encoding.TextUnmarshaler]
// receive their bytes unchecked by the struct rules above (duplicate keys,
// depth, UTF-8 and surrogates are still checked).
//
// # Speed
//
// The enclave decodes a body and a stamp for every request, so the common
// case has a fast path that changes no result: a byte-level pass
// (quickCheck) accepts the documents it is sure of, and a plain struct
// (strings, integers, booleans, nested structs, unmarshalers) is then
// filled directly (decodePlain): in place when the receiver is zero, its
// string fields substrings of one copy of the document. Whatever either
// is not sure of (escapes, null, a number an integer field cannot hold,
// any refusal) goes the slow way: the token walk that finds and words the
// problem, and encoding/json. Fuzz targets compare the two ways.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays that [Unmarshal]
// accepts; the top-level object is depth 1.
const MaxDepth = 32

// ErrTooLarge is returned (wrapped) when the input is longer than maxSize, so
// that callers can answer "too large" rather than "malformed".
var ErrTooLarge = errors.New("strictjson: input too large")

// maxQuoted caps how much of an offending key is echoed into an error.
const maxQuoted = 64

// Unmarshal decodes the single JSON object in data into v, which must be a
// non-nil pointer, after the checks listed in the package documentation.
//
// v is replaced, not merged into: on success *v holds exactly what data says
// (fields absent from data are zero); on error *v is unchanged. Errors start
// with "strictjson: " and say where in the document the problem is, as a path
// such as $.eth_transaction.unsigned.
func Unmarshal(data []byte, v any, maxSize int) error {
	return unmarshal(data, v, maxSize, true)
}

// unmarshal is Unmarshal, with decodePlain when plain (tests compare
// the two ways).
func unmarshal(data []byte, v any, maxSize int, plain bool) error {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictjson: target must be a non-nil pointer, got %T", v)
	}
	if maxSize < 0 {
		maxSize = 0
	}
	if len(data) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("strictjson: invalid UTF-8 at byte %d", invalidUTF8Offset(data))
	}
	target := rv.Type().Elem()
	// quickCheck accepts the well-formed documents at a fraction of
	// check's cost; whatever it is not sure of, check decides and words.
	quick := quickCheck(data, target)
	if !quick {
		if err := check(data, target); err != nil {
			return err
		}
	}
	// A plain target is filled without encoding/json when the document
	// allows it (decodePlain); else, or when decodePlain is not sure,
	// encoding/json decodes.
	if plain && quick && target.Kind() == reflect.Struct {
		if info := plainInfo(target); info != nil {
			// A zero receiver is filled in place, which saves an
			// allocation a request: what decodePlain leaves half
			// filled when it is not sure is zeroed again before
			// encoding/json decodes, so an error still leaves the
			// receiver as it was. Another receiver is filled through a
			// fresh value, as encoding/json is.
			if rv.Elem().IsZero() {
				if decodePlain(data, info, rv.Elem()) {
					return nil
				}
				rv.Elem().SetZero()
			} else if fresh := reflect.New(target); decodePlain(data, info, fresh.Elem()) {
				rv.Elem().Set(fresh.Elem())
				return nil
			}
		}
	}
	return decodeStd(data, rv)
}

// decodeStd decodes data, which check accepted, into the value rv points
// to with encoding/json.
func decodeStd(data []byte, rv reflect.Value) error {
	target := rv.Type().Elem()
	fresh := reflect.New(target)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(fresh.Interface()); err != nil {
		return decodeError(err)
	}
	rv.Elem().Set(fresh.Elem())
	return nil
}

// check walks the tokens of data, enforcing everything encoding/json does not.
func check(data []byte, target reflect.Type) error {
	w := &walker{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	tok, err := w.token()
	if err != nil {
		if err == io.EOF {
			return errors.New("strictjson: empty input, want an object")
		}
		return syntaxError(err, w.dec.InputOffset())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("strictjson: top-level value is %s, want an object", DescribeToken(tok))
	}
	if err := w.value(tok, target, "$", 1); err != nil {
		return err
	}
	end := int(w.dec.InputOffset())
	for i := end; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return fmt.Errorf("strictjson: trailing data at byte %d after the top-level object", i)
		}
	}
	return nil
}

type walker struct {
	data []byte
	dec  *json.Decoder
}

// token returns the next token, checking the escapes of string tokens.
func (w *walker) token() (json.Token, error) {
	start := w.dec.InputOffset()
	tok, err := w.dec.Token()
	if err != nil {
		return nil, err
	}
	if _, ok := tok.(string); ok {
		raw := w.data[start:w.dec.InputOffset()]
		if i := bytes.IndexByte(raw, '"'); i >= 0 {
			if err := checkSurrogates(raw[i:]); err != nil {
				return nil, fmt.Errorf("%w at byte %d", err, start+int64(i))
			}
		}
	}
	return tok, nil
}

// value checks the value that begins with tok, to be decoded into t (nil when
// unknown or opaque), found at path, nested depth levels deep.
func (w *walker) value(tok json.Token, t reflect.Type, path string, depth int) error {
	t = resolve(t)
	switch tok := tok.(type) {
	case nil:
		if t != nil && !nullable(t) {
			return fmt.Errorf("strictjson: null is not allowed at %s (type %s)", path, t)
		}
		return nil
	case json.Delim:
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if depth > MaxDepth {
			return fmt.Errorf("strictjson: nesting deeper than %d at %s", MaxDepth, path)
		}
		if tok == '{' {
			return w.object(t, path, depth)
		}
		return w.array(t, path, depth)
	default:
		return nil
	}
}

func (w *walker) object(t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	fold := true // compare keys the way encoding/json matches fields
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields, fold = structFields(t), false
		case reflect.Map:
			fold = false
		case reflect.Interface:
			fold, t = false, nil
		default:
			t = nil // a type mismatch; encoding/json reports it
		}
	}
	seen := make(map[string]bool)
	for {
		tok, err := w.token()
		if err != nil {
			return syntaxError(err, w.dec.InputOffset())
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("strictjson: object key at %s is %s", path, DescribeToken(tok))
		}
		norm := key
		if fold {
			norm = foldName(key)
		}
		if seen[norm] {
			if path == "$" {
				return fmt.Errorf("strictjson: duplicate key %s", quote(key))
			}
			return fmt.Errorf("strictjson: duplicate key %s in %s", quote(key), path)
		}
		seen[norm] = true

		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				ft, ok := fields[key]
				if !ok {
					return fmt.Errorf("strictjson: unknown field %s at %s", quote(key), path)
				}
				elem = ft
			case reflect.Map:
				elem = t.Elem()
			}
		}
		tok, err = w.token()
		if err != nil {
			return syntaxError(err, w.dec.InputOffset())
		}
		if err := w.value(tok, elem, childPath(path, key), depth+1); err != nil {
			return err
		}
	}
}

func (w *walker) array(t reflect.Type, path string, depth int) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; ; i++ {
		tok, err := w.token()
		if err != nil {
			return syntaxError(err, w.dec.InputOffset())
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return nil
		}
		if err := w.value(tok, elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
			return err
		}
	}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// resolve returns the type whose structure the JSON value must follow, or nil
// when that structure is not known (custom unmarshalers decide for themselves).
func resolve(t reflect.Type) reflect.Type {
	if t == nil || opaque(t) {
		return nil
	}
	return t
}

func opaque(t reflect.Type) bool {
	if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) {
		return true
	}
	if t.Kind() != reflect.Pointer {
		pt := reflect.PointerTo(t)
		return pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler)
	}
	return opaque(t.Elem())
}

// nullable reports whether null is a meaningful value for t (rather than one
// that encoding/json silently ignores).
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return true
	}
	return false
}

// structFields returns the JSON names of the fields of struct type t with the
// types they decode into, following encoding/json's rules for tags and
// embedded structs. A name it cannot resolve is missing, so the key is refused.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	type candidate struct {
		typ    reflect.Type
		depth  int
		tagged bool
	}
	cands := make(map[string][]candidate)
	visited := map[reflect.Type]bool{}
	current := []reflect.Type{t}
	for depth := 0; len(current) > 0; depth++ {
		var next []reflect.Type
		for _, st := range current {
			if visited[st] {
				continue
			}
			visited[st] = true
			for i := range st.NumField() {
				sf := st.Field(i)
				ft := sf.Type
				if sf.Anonymous {
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if !validTag(name) {
					name = ""
				}
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, ft)
					continue
				}
				tagged := name != ""
				if !tagged {
					name = sf.Name
				}
				cands[name] = append(cands[name], candidate{typ: sf.Type, depth: depth, tagged: tagged})
			}
		}
		current = next
	}
	fields := make(map[string]reflect.Type)
	for name, cs := range cands {
		minDepth := cs[0].depth
		for _, c := range cs {
			minDepth = min(minDepth, c.depth)
		}
		var atMin, taggedAtMin []candidate
		for _, c := range cs {
			if c.depth == minDepth {
				atMin = append(atMin, c)
				if c.tagged {
					taggedAtMin = append(taggedAtMin, c)
				}
			}
		}
		switch {
		case len(atMin) == 1:
			fields[name] = atMin[0].typ
		case len(taggedAtMin) == 1:
			fields[name] = taggedAtMin[0].typ
		}
	}
	fieldCache.Store(t, fields)
	return fields
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// validTag mirrors encoding/json's isValidTag.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// foldName mirrors encoding/json's case folding of field names.
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}

// checkSurrogates refuses \uXXXX escapes that encode half of a UTF-16
// surrogate pair without the other half; encoding/json would silently turn
// them into U+FFFD. raw is a complete, syntactically valid string token.
func checkSurrogates(raw []byte) error {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if raw[i] != 'u' {
			continue
		}
		r := hex4(raw[i+1:])
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return errors.New("strictjson: lone low surrogate escape in string")
		case r >= 0xd800 && r <= 0xdbff:
			if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo := hex4(raw[i+3:]); lo >= 0xdc00 && lo <= 0xdfff {
					i += 6
					continue
				}
			}
			return errors.New("strictjson: lone high surrogate escape in string")
		}
	}
	return nil
}

// hex4 decodes four hex digits, which the JSON syntax check guarantees.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

func childPath(path, key string) string {
	simple := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			simple = false
			break
		}
	}
	if simple && len(key) <= maxQuoted {
		return path + "." + key
	}
	return path + "[" + quote(key) + "]"
}

// quote quotes an attacker-chosen string for an error message, escaped and
// truncated.
func quote(s string) string {
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// DescribeToken names what a JSON token is, for error messages: "null", "a
// boolean", "a number", "a string", "an array", "an object".
func DescribeToken(tok json.Token) string {
	switch tok := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		switch tok {
		case '[':
			return "an array"
		case '{':
			return "an object"
		}
		return strconv.Quote(tok.String())
	}
	return fmt.Sprintf("%T", tok)
}

func invalidUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

func syntaxError(err error, offset int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("strictjson: invalid JSON at byte %d: %w", se.Offset, stripPrefix{err})
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("strictjson: unexpected end of input at byte %d", offset)
	case strings.HasPrefix(err.Error(), "strictjson: "):
		return err
	}
	return fmt.Errorf("strictjson: invalid JSON at byte %d: %w", offset, stripPrefix{err})
}

// decodeError rewords an error from encoding/json's Decode, which after check
// can only be about types.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		where := "$"
		if te.Field != "" {
			where = "$." + te.Field
		}
		return &wrapped{msg: fmt.Sprintf("strictjson: cannot decode %s into %s at %s", te.Value, te.Type, where), err: err}
	}
	return fmt.Errorf("strictjson: %w", stripPrefix{err})
}

// stripPrefix wraps an encoding/json error, dropping its "json: " prefix from
// the message so that errors read "strictjson: ..." once.
type stripPrefix struct{ err error }

func (s stripPrefix) Error() string { return strings.TrimPrefix(s.err.Error(), "json: ") }
func (s stripPrefix) Unwrap() error { return s.err }

// wrapped is an error with its own message that still unwraps to the
// encoding/json error it replaces.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
