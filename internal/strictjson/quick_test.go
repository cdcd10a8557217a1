package strictjson

import (
	"reflect"
	"strings"
	"testing"
)

// quickTargets are the target types quickCheck is compared with check
// under: structs with every kind of field, a custom unmarshaler (whose
// keys fold), a map, an interface, and a type that mismatches objects.
var quickTargets = []reflect.Type{
	reflect.TypeFor[target](),
	reflect.TypeFor[custom](),
	reflect.TypeFor[embedding](),
	reflect.TypeFor[conflicting](),
	reflect.TypeFor[map[string]any](),
	reflect.TypeFor[map[string]*inner](),
	reflect.TypeFor[any](),
	reflect.TypeFor[struct {
		S string   `json:"s"`
		N []int64  `json:"n"`
		A [2]inner `json:"a"`
		P **inner  `json:"p"`
		C *custom  `json:"c"`
	}](),
}

// quickAgrees fails t when quickCheck accepts data for typ but check
// refuses it: quickCheck may leave a document to check, never decide one
// otherwise.
func quickAgrees(t *testing.T, data []byte, typ reflect.Type) (quick, slow bool) {
	t.Helper()
	quick = quickCheck(data, typ)
	err := check(data, typ)
	if quick && err != nil {
		t.Fatalf("quickCheck accepts %q for %v, check refuses it: %v", data, typ, err)
	}
	return quick, err == nil
}

func TestQuickCheckAgrees(t *testing.T) {
	docs := []string{
		`{}`, ` {} `, `{} x`, `[]`, `"x"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`,
		`{"request_id":"r1","n":-42,"u":255,"f":1.5e3,"b":true}`,
		`{"p":{"unsigned":"0x01"},"l":[{"unsigned":"a"},{"unsigned":"b"}]}`,
		`{"p":null}`, `{"l":null,"m":null,"a":null}`, `{"n":null}`, `{"s":null}`,
		`{"a":{"x":[1,"y",null,true,false,{"z":{}}]},"raw":[1,2]}`,
		`{"request_id":"\ud83d\ude00\u0041\n\"\\\/\b\f\r\t"}`,
		`{"request_id":"\ud83d"}`, `{"request_id":"\ude00"}`, `{"request_id":"\ud83d\u0041"}`,
		`{"request_id":"\x"}`, `{"request_id":"\u12"}`, "{\"request_id\":\"\x01\"}",
		`{"request_id":"a","request_id":"b"}`, `{"v":{"a":1,"A":1}}`, `{"v":{"a":1,"b":1}}`,
		`{"m":{"a":1,"A":2}}`, `{"a":{"k":1,"K":2}}`, `{"a":{"k":1,"\u212a":2}}`,
		`{"Request_ID":"x"}`, `{"request_\u0069d":"x"}`, `{"unknown":1}`, `{"Dup":"k"}`, `{"id":"x","name":"n","kind":"k"}`,
		`{"n":1e3}`, `{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`, `{"n":1e}`, `{"n":-0.5E+7}`, `{"n":tru}`, `{"n":nul}`,
		`{"p":"x"}`, `{"request_id":{"a":1,"A":1}}`, `{"request_id":[{"a":1,"a":1}]}`,
		`{"s":"x","n":[1,2],"a":[{"unsigned":"u"},{}],"p":{"unsigned":"v"},"c":{"v":[]}}`,
		`{"s":"x","a":[{"unsigned":"u","unsigned":"w"}]}`, `{"a":[{"nope":1}]}`, `{"p":{"unsigned":null}}`,
		strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth),
		strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1),
		strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1),
		`{"a":{` + manyKeys(40, "") + `}}`, `{"a":{` + manyKeys(40, `"k7":0`) + `}}`, `{"a":{` + manyKeys(40, `"K39":0`) + `}}`,
		`{"m":{` + manyKeys(40, `"k17":0`) + `}}`,
	}
	for _, typ := range quickTargets {
		for _, d := range docs {
			quickAgrees(t, []byte(d), typ)
		}
	}
	// The documents of every well-formed request take the quick path.
	for _, d := range []string{
		`{"request_id":"r1","n":-42,"u":255,"f":1.5e3,"b":true}`,
		`{"p":{"unsigned":"0x01"},"l":[{"unsigned":"a"},{"unsigned":"b"}],"m":{"a":1,"A":2},"a":{"x":[1,"y",null,true,{"z":{}}]},"raw":[1,2]}`,
		`{"request_id":"\ud83d\ude00\u0041\n"}`,
		`{"a":{` + manyKeys(40, "") + `}}`,
	} {
		if quick, _ := quickAgrees(t, []byte(d), reflect.TypeFor[target]()); !quick {
			t.Errorf("quickCheck leaves %q to check", d)
		}
	}
}

// manyKeys is n distinct keys k0..k(n-1) with value 0, then extra.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i/10) + string(rune('0'+i%10)) + `":0`)
	}
	if extra != "" {
		b.WriteString("," + extra)
	}
	return b.String()
}

// FuzzQuickCheck checks that quickCheck never accepts a document that
// check refuses, for each kind of target.
func FuzzQuickCheck(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"request_id":"r1","n":-42,"u":255,"f":1.5e3,"b":true}`,
		`{"p":{"unsigned":"0x01"},"l":[{"unsigned":"a"}],"m":{"a":1,"A":2}}`,
		`{"a":{"x":[1,"y",null,true,{"z":{}}]},"raw":[1,2]}`,
		`{"request_id":"\ud83d\ude00\u0041\n"}`,
		`{"request_id":"a","request_id":"b"}`,
		`{"v":{"a":1,"A":1}}`,
		`{"s":"x","n":[1,2],"a":[{"unsigned":"u"},{}],"p":{"unsigned":"v"},"c":{"v":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range quickTargets {
			quickAgrees(t, data, typ)
		}
	})
}
