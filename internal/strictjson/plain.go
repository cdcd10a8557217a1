package strictjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"sync"
)

// A plain type is one that decodePlain fills as encoding/json would,
// without encoding/json: a struct (not embedding any) whose fields, by
// their exact JSON names, are strings, integers, booleans, structs of the
// same sort or pointers to them, or custom unmarshalers (json.Unmarshaler,
// by value or pointer). The request bodies and stamps the enclave decodes
// for every request are plain.
//
// decodePlain runs only on documents quickCheck accepted (valid syntax,
// unique keys that each name a field exactly), and returns false at
// anything whose reading it does not copy from encoding/json exactly: a
// string with escapes, a null, a number an integer field does not hold, a
// value of another kind than its field's, an unmarshaler's error.
// Unmarshal then decodes with encoding/json as before, so that every
// result, error included, is encoding/json's. FuzzUnmarshalPlain compares
// the two.

// plainKind is how a field is filled.
type plainKind uint8

const (
	plainString plainKind = iota + 1
	plainInt
	plainUint
	plainBool
	plainStruct     // a plain struct
	plainPtrStruct  // a pointer to a plain struct
	plainUnmarshal  // a value whose pointer is a json.Unmarshaler
	plainPtrUnmarsh // a pointer that is a json.Unmarshaler
)

type plainField struct {
	index int
	kind  plainKind
	sub   *plainStructInfo // plainStruct, plainPtrStruct
}

type plainStructInfo struct {
	fields map[string]plainField
}

var (
	plainCache sync.Map // reflect.Type → *plainStructInfo, nil when not plain
	plainMu    sync.Mutex
)

// plainInfo returns how to fill struct type t, or nil when t is not plain.
func plainInfo(t reflect.Type) *plainStructInfo {
	if v, ok := plainCache.Load(t); ok {
		return v.(*plainStructInfo)
	}
	plainMu.Lock()
	defer plainMu.Unlock()
	info := buildPlain(t, map[reflect.Type]bool{})
	plainCache.Store(t, info)
	return info
}

func buildPlain(t reflect.Type, visiting map[reflect.Type]bool) *plainStructInfo {
	if t.Kind() != reflect.Struct || opaque(t) || visiting[t] {
		return nil
	}
	visiting[t] = true
	defer delete(visiting, t)
	names := structFields(t) // the names check accepts, with their types
	info := &plainStructInfo{fields: make(map[string]plainField, len(names))}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := bytes.Cut([]byte(tag), []byte(","))
		if len(opts) > 0 && string(opts) != "omitempty" {
			return nil // ",string" and the like change the reading
		}
		n := string(name)
		if !validTag(n) {
			n = sf.Name
		}
		if ft, ok := names[n]; !ok || ft != sf.Type {
			return nil
		}
		f := plainField{index: i}
		ft := sf.Type
		switch {
		case reflect.PointerTo(ft).Implements(jsonUnmarshaler) && ft.Kind() != reflect.Pointer:
			f.kind = plainUnmarshal
		case ft.Kind() == reflect.Pointer && ft.Implements(jsonUnmarshaler):
			f.kind = plainPtrUnmarsh
		case opaque(ft):
			return nil // a text unmarshaler, or unmarshalers deeper down
		case ft.Kind() == reflect.String:
			f.kind = plainString
		case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
			f.kind = plainInt
		case ft.Kind() >= reflect.Uint && ft.Kind() <= reflect.Uint64:
			f.kind = plainUint
		case ft.Kind() == reflect.Bool:
			f.kind = plainBool
		case ft.Kind() == reflect.Struct:
			if f.sub = buildPlain(ft, visiting); f.sub == nil {
				return nil
			}
			f.kind = plainStruct
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			if f.sub = buildPlain(ft.Elem(), visiting); f.sub == nil {
				return nil
			}
			f.kind = plainPtrStruct
		default:
			return nil
		}
		info.fields[n] = f
	}
	if len(info.fields) != len(names) {
		return nil
	}
	return info
}

// decodePlain fills v, a settable zero struct of plain type info, from
// data, which quickCheck accepted. It reports false when encoding/json is
// to decode instead (v may then be partly filled).
func decodePlain(data []byte, info *plainStructInfo, v reflect.Value) bool {
	d := plainDecoder{data: data}
	d.space()
	return d.object(info, v)
}

type plainDecoder struct {
	data []byte
	i    int
	// str is data as a string, made at the first string field: every
	// string field is a substring of it, one allocation a document
	// rather than one a field. The fields keep all of data alive as
	// long as any of them is, which a request's fields are anyway.
	str string
}

func (d *plainDecoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object fills v from the object at d.i.
func (d *plainDecoder) object(info *plainStructInfo, v reflect.Value) bool {
	if d.i >= len(d.data) || d.data[d.i] != '{' {
		return false
	}
	d.i++
	for {
		d.space()
		if d.i >= len(d.data) {
			return false
		}
		switch d.data[d.i] {
		case '}':
			d.i++
			return true
		case ',':
			d.i++
			d.space()
		}
		key, ok := d.plainString()
		if !ok {
			return false
		}
		f, ok := info.fields[string(key)]
		if !ok {
			return false
		}
		d.space()
		if d.i >= len(d.data) || d.data[d.i] != ':' {
			return false
		}
		d.i++
		d.space()
		if !d.field(f, v.Field(f.index)) {
			return false
		}
	}
}

// field fills fv, a field of kind f, from the value at d.i.
func (d *plainDecoder) field(f plainField, fv reflect.Value) bool {
	if d.i >= len(d.data) || d.data[d.i] == 'n' {
		return false // null: encoding/json's reading depends on the type
	}
	switch f.kind {
	case plainString:
		start := d.i + 1
		s, ok := d.plainString()
		if !ok {
			return false
		}
		if d.str == "" {
			d.str = string(d.data)
		}
		fv.SetString(d.str[start : start+len(s)])
	case plainInt:
		lit, ok := d.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil || fv.OverflowInt(n) {
			return false
		}
		fv.SetInt(n)
	case plainUint:
		lit, ok := d.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(string(lit), 10, 64)
		if err != nil || fv.OverflowUint(n) {
			return false
		}
		fv.SetUint(n)
	case plainBool:
		switch {
		case bytes.HasPrefix(d.data[d.i:], []byte("true")):
			fv.SetBool(true)
			d.i += 4
		case bytes.HasPrefix(d.data[d.i:], []byte("false")):
			fv.SetBool(false)
			d.i += 5
		default:
			return false
		}
	case plainStruct:
		return d.object(f.sub, fv)
	case plainPtrStruct:
		p := reflect.New(fv.Type().Elem())
		if !d.object(f.sub, p.Elem()) {
			return false
		}
		fv.Set(p)
	case plainUnmarshal, plainPtrUnmarsh:
		start := d.i
		if !d.skip() {
			return false
		}
		var u json.Unmarshaler
		if f.kind == plainUnmarshal {
			u = fv.Addr().Interface().(json.Unmarshaler)
		} else {
			p := reflect.New(fv.Type().Elem())
			fv.Set(p)
			u = p.Interface().(json.Unmarshaler)
		}
		if err := u.UnmarshalJSON(d.data[start:d.i]); err != nil {
			return false
		}
	default:
		return false
	}
	return true
}

// plainString reads a string without escapes at d.i and returns its
// contents: what encoding/json reads from valid UTF-8 without escapes.
func (d *plainDecoder) plainString() ([]byte, bool) {
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	end := bytes.IndexByte(d.data[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := d.data[start : start+end]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	d.i = start + end + 1
	return s, true
}

// number reads a number literal at d.i.
func (d *plainDecoder) number() ([]byte, bool) {
	start := d.i
	for d.i < len(d.data) {
		switch c := d.data[d.i]; {
		case c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || '0' <= c && c <= '9':
			d.i++
			continue
		}
		break
	}
	return d.data[start:d.i], d.i > start
}

// skip moves past the value at d.i, which quickCheck found valid: a
// string, object or array up to its end, a literal up to the delimiter
// after it.
func (d *plainDecoder) skip() bool {
	depth := 0
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case '"':
			d.i++
			for d.i < len(d.data) && d.data[d.i] != '"' {
				if d.data[d.i] == '\\' {
					d.i++
				}
				d.i++
			}
			d.i++ // the closing quote
		case '{', '[':
			depth++
			d.i++
			continue
		case '}', ']':
			if depth == 0 {
				return true // the end of a literal, at its container's end
			}
			depth--
			d.i++
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return true
			}
			d.i++
			continue
		default:
			d.i++
			continue
		}
		if depth == 0 {
			return d.i <= len(d.data)
		}
	}
	return depth == 0
}
