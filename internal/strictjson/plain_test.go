package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

type plainInner struct {
	Unsigned string `json:"unsigned"`
	N        uint16 `json:"n"`
}

// rawObject is a pointer unmarshaler that keeps an object, as
// api.EthTypedData does.
type rawObject struct{ JSON []byte }

func (r *rawObject) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return errors.New("must be a JSON object")
	}
	r.JSON = append(r.JSON[:0], b...)
	return nil
}

// plainTarget has a field of every kind decodePlain fills.
type plainTarget struct {
	ID       string          `json:"request_id"`
	TS       int64           `json:"timestamp_ms"`
	I8       int8            `json:"i8"`
	U        uint32          `json:"u"`
	B        bool            `json:"b"`
	P        *plainInner     `json:"p,omitempty"`
	S        plainInner      `json:"s"`
	T        *rawObject      `json:"t,omitempty"`
	R        json.RawMessage `json:"r"`
	Skipped  string          `json:"-"`
	Untagged string
}

// stampWire is the shape of a stamp (package stamp's wire).
type stampWire struct {
	Scheme    string `json:"scheme"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

func TestPlainTypes(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[plainTarget](), reflect.TypeFor[stampWire](), reflect.TypeFor[plainInner]()} {
		if plainInfo(typ) == nil {
			t.Errorf("%v is not plain", typ)
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[target](), reflect.TypeFor[embedding](), reflect.TypeFor[conflicting](), reflect.TypeFor[custom](),
		reflect.TypeFor[struct {
			N int `json:"n,string"`
		}](), reflect.TypeFor[struct{ F float64 }](), reflect.TypeFor[struct{ L []string }]()} {
		if typ == reflect.TypeFor[custom]() {
			continue // custom's field is a value unmarshaler: plain
		}
		if plainInfo(typ) != nil {
			t.Errorf("%v is plain", typ)
		}
	}
}

// plainDocs are documents for plainTarget: those decodePlain fills, and
// those it leaves to encoding/json.
var plainDocs = []string{
	`{}`,
	`{"request_id":"r-1","timestamp_ms":1800000000000,"i8":-128,"u":4294967295,"b":true,"p":{"unsigned":"0x01","n":7},"s":{"n":0},"t":{"a":[1,{"b":"}"}]},"r":[1,"]"],"Untagged":"u"}`,
	` { "request_id" : "r" , "b" : false , "r" : "x" , "t" : { } } `,
	`{"request_id":"\u0041"}`, `{"i8":128}`, `{"i8":-129}`, `{"u":-1}`, `{"timestamp_ms":1e3}`, `{"timestamp_ms":1.0}`,
	`{"timestamp_ms":-0}`, `{"timestamp_ms":9223372036854775808}`, `{"p":null}`, `{"t":null}`, `{"r":null}`, `{"t":[]}`, `{"t":"x"}`,
	`{"request_id":1}`, `{"b":"true"}`, `{"s":[]}`, `{"p":"x"}`, `{"r":123}`, `{"r":true}`, `{"u":1,"r":{"x":"\""}}`,
}

// plainAgrees fails t when Unmarshal, with decodePlain, and encoding/json
// alone read data differently, value or error.
func plainAgrees(t *testing.T, data []byte) {
	t.Helper()
	var fast, std plainTarget
	errFast := unmarshal(data, &fast, limit, true)
	errStd := unmarshal(data, &std, limit, false)
	if (errFast == nil) != (errStd == nil) || errFast != nil && errFast.Error() != errStd.Error() {
		t.Fatalf("%q: decodePlain's error %v, encoding/json's %v", data, errFast, errStd)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%q: decodePlain reads\n%+v\nencoding/json\n%+v", data, fast, std)
	}
	// A zero receiver is filled in place, another through a fresh value:
	// both read the same, and both are left as they were on an error
	// (the zero one above: std is zero after an error).
	used := plainTarget{Skipped: "kept", P: &plainInner{N: 1}}
	errUsed := unmarshal(data, &used, limit, true)
	want := std
	if errStd != nil {
		want = plainTarget{Skipped: "kept", P: &plainInner{N: 1}}
	}
	if (errUsed == nil) != (errStd == nil) || !reflect.DeepEqual(used, want) {
		t.Fatalf("%q: into a used receiver, decodePlain reads\n%+v, %v\nwant\n%+v, %v", data, used, errUsed, want, errStd)
	}
	var fw, sw stampWire
	errFast, errStd = unmarshal(data, &fw, limit, true), unmarshal(data, &sw, limit, false)
	if (errFast == nil) != (errStd == nil) || errFast != nil && errFast.Error() != errStd.Error() || fw != sw {
		t.Fatalf("%q: stamp: decodePlain %+v, %v; encoding/json %+v, %v", data, fw, errFast, sw, errStd)
	}
}

func TestDecodePlainAgrees(t *testing.T) {
	for _, d := range plainDocs {
		plainAgrees(t, []byte(d))
	}
	// The documents of a well-formed request are filled by decodePlain.
	for _, d := range plainDocs[:3] {
		var v plainTarget
		if !quickCheck([]byte(d), reflect.TypeFor[plainTarget]()) || !decodePlain([]byte(d), plainInfo(reflect.TypeFor[plainTarget]()), reflect.ValueOf(&v).Elem()) {
			t.Errorf("decodePlain leaves %q to encoding/json", d)
		}
	}
}

// FuzzUnmarshalPlain checks that decodePlain reads every document as
// encoding/json does, or leaves it to encoding/json.
func FuzzUnmarshalPlain(f *testing.F) {
	for _, d := range plainDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		plainAgrees(t, data)
	})
}
