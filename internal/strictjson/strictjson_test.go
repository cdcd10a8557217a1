package strictjson

import (
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

// writeCorpus writes one committed fuzz corpus entry in Go's corpus format.
func writeCorpus(t *testing.T, fuzz, name string, data []byte) {
	t.Helper()
	if len(data) > 1024 {
		return // large entries make the fuzzer spend its time minimizing
	}
	fuzzseed.Write(t, fuzz, "table-"+name, data)
}

type inner struct {
	Unsigned string `json:"unsigned"`
}

type target struct {
	RequestID string          `json:"request_id"`
	N         int64           `json:"n"`
	U         uint8           `json:"u"`
	F         float64         `json:"f"`
	B         bool            `json:"b"`
	P         *inner          `json:"p,omitempty"`
	L         []inner         `json:"l"`
	M         map[string]int  `json:"m"`
	A         any             `json:"a"`
	Raw       json.RawMessage `json:"raw"`
	Skipped   string          `json:"-"`
	//lint:ignore U1000 present so that the test can show it is not decoded
	hidden string
}

const limit = 4096

func TestUnmarshalAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want target
	}{
		{name: "empty object", in: `{}`, want: target{}},
		{name: "whitespace around", in: " \t\r\n{}\n ", want: target{}},
		{name: "fields", in: `{"request_id":"r1","n":-42,"u":255,"f":1.5e3,"b":true}`,
			want: target{RequestID: "r1", N: -42, U: 255, F: 1500, B: true}},
		{name: "nested", in: `{"p":{"unsigned":"0x01"},"l":[{"unsigned":"a"},{"unsigned":"b"}]}`,
			want: target{P: &inner{Unsigned: "0x01"}, L: []inner{{Unsigned: "a"}, {Unsigned: "b"}}}},
		{name: "null pointer", in: `{"p":null}`, want: target{}},
		{name: "null slice map any", in: `{"l":null,"m":null,"a":null}`, want: target{}},
		{name: "map keys differing in case", in: `{"m":{"a":1,"A":2}}`, want: target{M: map[string]int{"a": 1, "A": 2}}},
		{name: "any with keys differing in case", in: `{"a":{"k":1,"K":2}}`,
			want: target{A: map[string]any{"k": 1.0, "K": 2.0}}},
		{name: "raw message", in: `{"raw":{"x":[1,2]}}`, want: target{Raw: json.RawMessage(`{"x":[1,2]}`)}},
		{name: "surrogate pair", in: `{"request_id":"\ud83d\ude00"}`, want: target{RequestID: "😀"}},
		{name: "escaped backslash then u", in: `{"request_id":"\\ud800"}`, want: target{RequestID: `\ud800`}},
		{name: "utf8", in: `{"request_id":"héllo"}`, want: target{RequestID: "héllo"}},
		{name: "negative zero into int", in: `{"n":-0}`, want: target{}},
		{name: "max int64", in: `{"n":9223372036854775807}`, want: target{N: 1<<63 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if *update {
				writeCorpus(t, "FuzzUnmarshal", "ok-"+tt.name, []byte(tt.in))
			}
			got := target{Skipped: "old"} // replaced, not merged
			if err := Unmarshal([]byte(tt.in), &got, limit); err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unmarshal(%s)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1)
	deepArray := `{"l":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}`
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{name: "empty", in: ``, want: "empty input"},
		{name: "whitespace only", in: "  \n", want: "empty input"},
		{name: "too large", in: `{"request_id":"` + strings.Repeat("a", limit) + `"}`, want: "input too large"},
		{name: "invalid utf8", in: "{\"request_id\":\"\xff\"}", want: "invalid UTF-8 at byte 15"},
		{name: "invalid utf8 in key", in: "{\"\xc3\":1}", want: "invalid UTF-8"},
		{name: "top-level array", in: `[]`, want: "top-level value is an array"},
		{name: "top-level string", in: `"x"`, want: "top-level value is a string"},
		{name: "top-level number", in: `1`, want: "top-level value is a number"},
		{name: "top-level null", in: `null`, want: "top-level value is null"},
		{name: "top-level true", in: `true`, want: "top-level value is a boolean"},
		{name: "duplicate key", in: `{"request_id":"a","request_id":"b"}`, want: `duplicate key "request_id"`},
		{name: "duplicate key differing in case", in: `{"request_id":"a","REQUEST_ID":"b"}`, want: `unknown field "REQUEST_ID" at $`},
		{name: "duplicate nested key", in: `{"p":{"unsigned":"a","unsigned":"b"}}`, want: `duplicate key "unsigned" in $.p`},
		{name: "duplicate key in array element", in: `{"l":[{},{"unsigned":"a","unsigned":"b"}]}`, want: `duplicate key "unsigned" in $.l[1]`},
		{name: "duplicate map key", in: `{"m":{"a":1,"a":2}}`, want: `duplicate key "a" in $.m`},
		{name: "duplicate key inside any", in: `{"a":{"x":{"y":1,"y":2}}}`, want: `duplicate key "y" in $.a.x`},
		{name: "duplicate key inside raw", in: `{"raw":{"y":1,"y":2}}`, want: `duplicate key "y" in $.raw`},
		{name: "folded duplicate inside raw", in: `{"raw":{"y":1,"Y":2}}`, want: `duplicate key "Y" in $.raw`},
		{name: "kelvin sign folds to k inside raw", in: `{"raw":{"k":1,"` + "\u212a" + `":2}}`, want: `duplicate key`},
		{name: "unknown field", in: `{"nope":1}`, want: `unknown field "nope" at $`},
		{name: "unknown nested field", in: `{"p":{"signed":"x"}}`, want: `unknown field "signed" at $.p`},
		{name: "case-insensitive field match", in: `{"Request_Id":"a"}`, want: `unknown field "Request_Id"`},
		{name: "ignored field", in: `{"Skipped":"x"}`, want: `unknown field "Skipped"`},
		{name: "unexported field", in: `{"hidden":"x"}`, want: `unknown field "hidden"`},
		{name: "long unknown key is truncated", in: `{"` + strings.Repeat("k", 200) + `":1}`, want: `unknown field "` + strings.Repeat("k", maxQuoted) + `"...`},
		{name: "trailing object", in: `{}{}`, want: "trailing data at byte 2"},
		{name: "trailing garbage", in: `{} x`, want: "trailing data at byte 3"},
		{name: "trailing nul", in: "{}\x00", want: "trailing data"},
		{name: "truncated", in: `{"request_id":"a"`, want: "unexpected end of input"},
		{name: "syntax error", in: `{"request_id" "a"}`, want: "invalid JSON"},
		{name: "trailing comma", in: `{"n":1,}`, want: "invalid JSON"},
		{name: "single quotes", in: `{'n':1}`, want: "invalid JSON"},
		{name: "leading zero", in: `{"n":01}`, want: "invalid JSON"},
		{name: "too deep", in: deep, want: "nesting deeper than 32"},
		{name: "too deep arrays", in: deepArray, want: "nesting deeper than 32"},
		{name: "lone high surrogate", in: `{"request_id":"\ud800"}`, want: "lone high surrogate"},
		{name: "high surrogate then letter", in: `{"request_id":"\ud800x"}`, want: "lone high surrogate"},
		{name: "two high surrogates", in: `{"request_id":"\ud800\ud800"}`, want: "lone high surrogate"},
		{name: "lone low surrogate", in: `{"request_id":"\udc00"}`, want: "lone low surrogate"},
		{name: "lone surrogate in key", in: `{"\ud800":1}`, want: "lone high surrogate"},
		{name: "null string", in: `{"request_id":null}`, want: "null is not allowed at $.request_id"},
		{name: "null int", in: `{"n":null}`, want: "null is not allowed at $.n"},
		{name: "null bool", in: `{"b":null}`, want: "null is not allowed at $.b"},
		{name: "null nested", in: `{"l":[null]}`, want: "null is not allowed at $.l[0]"},
		{name: "float into int", in: `{"n":1.5}`, want: "cannot decode number 1.5 into int64 at $.n"},
		{name: "integral float into int", in: `{"n":1.0}`, want: "cannot decode number 1.0 into int64"},
		{name: "exponent into int", in: `{"n":1e3}`, want: "cannot decode number 1e3 into int64"},
		{name: "big exponent into int", in: `{"n":1e400}`, want: "cannot decode number 1e400"},
		{name: "int overflow", in: `{"n":9223372036854775808}`, want: "cannot decode number 9223372036854775808 into int64"},
		{name: "negative into uint", in: `{"u":-1}`, want: "cannot decode number -1 into uint8"},
		{name: "uint overflow", in: `{"u":256}`, want: "cannot decode number 256 into uint8"},
		{name: "string into int", in: `{"n":"1"}`, want: "cannot decode string into int64"},
		{name: "number into string", in: `{"request_id":1}`, want: "cannot decode number into string"},
		{name: "object into string", in: `{"request_id":{}}`, want: "cannot decode object into string"},
		{name: "nested type error", in: `{"p":{"unsigned":true}}`, want: "at $.p.unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if *update {
				writeCorpus(t, "FuzzUnmarshal", "bad-"+tt.name, []byte(tt.in))
			}
			got := target{RequestID: "unchanged"}
			err := Unmarshal([]byte(tt.in), &got, limit)
			if err == nil {
				t.Fatalf("Unmarshal(%q) = nil error, want %q", tt.in, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "strictjson: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Unmarshal(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
			}
			if got.RequestID != "unchanged" || got.N != 0 || got.P != nil {
				t.Errorf("receiver changed on error: %+v", got)
			}
		})
	}
}

func TestTooLargeSentinel(t *testing.T) {
	var v target
	err := Unmarshal([]byte(`{"n":1}`), &v, 6)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v, want ErrTooLarge", err)
	}
	if err := Unmarshal([]byte(`{"n":1}`), &v, 7); err != nil {
		t.Fatalf("input exactly maxSize: %v", err)
	}
}

func TestTypeErrorUnwraps(t *testing.T) {
	var v target
	err := Unmarshal([]byte(`{"n":1.5}`), &v, limit)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		t.Fatalf("error %v does not unwrap to *json.UnmarshalTypeError", err)
	}
}

func TestBadTarget(t *testing.T) {
	var v target
	for _, dst := range []any{nil, v, (*target)(nil)} {
		if err := Unmarshal([]byte(`{}`), dst, limit); err == nil || !strings.Contains(err.Error(), "non-nil pointer") {
			t.Errorf("Unmarshal into %T: error = %v", dst, err)
		}
	}
}

func TestMaxDepthAccepted(t *testing.T) {
	in := strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth)
	var v map[string]any
	if err := Unmarshal([]byte(in), &v, limit); err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
}

type Base struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

type Other struct {
	Kind string `json:"kind"`
}

type embedding struct {
	Base
	*Other
	Name string `json:"name"`
	Kind string `json:"kind"` // shallower: wins over Base.Kind and Other.Kind
}

type DupA struct{ Dup string }
type DupB struct{ Dup string }

type conflicting struct {
	DupA
	DupB        // Dup at the same depth in both, both untagged: dropped
	ID   string `json:"id"`
}

func TestEmbeddedStructs(t *testing.T) {
	var e embedding
	if err := Unmarshal([]byte(`{"id":"x","name":"n","kind":"k"}`), &e, limit); err != nil {
		t.Fatal(err)
	}
	if e.ID != "x" || e.Name != "n" || e.Kind != "k" || e.Base.Kind != "" {
		t.Errorf("got %+v", e)
	}
	var c conflicting
	if err := Unmarshal([]byte(`{"id":"x"}`), &c, limit); err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal([]byte(`{"Dup":"k"}`), &c, limit); err == nil || !strings.Contains(err.Error(), `unknown field "Dup"`) {
		t.Errorf("ambiguous embedded field: error = %v", err)
	}
}

type custom struct {
	V upper `json:"v"`
}

type upper string

func (u *upper) UnmarshalJSON(b []byte) error {
	*u = upper(strings.ToUpper(string(b)))
	return nil
}

func TestCustomUnmarshaler(t *testing.T) {
	var c custom
	if err := Unmarshal([]byte(`{"v":{"anything":null}}`), &c, limit); err != nil {
		t.Fatal(err)
	}
	if c.V != `{"ANYTHING":NULL}` {
		t.Errorf("got %q", c.V)
	}
	if err := Unmarshal([]byte(`{"v":{"a":1,"A":1}}`), &c, limit); err == nil {
		t.Error("folded duplicate inside custom unmarshaler accepted")
	}
}

// FuzzUnmarshal checks that Unmarshal never panics and that whatever it
// accepts, encoding/json reads the same way, and survives a round trip.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"request_id":"r1","n":-42,"u":255,"f":1.5e3,"b":true}`,
		`{"p":{"unsigned":"0x01"},"l":[{"unsigned":"a"}],"m":{"a":1,"A":2}}`,
		`{"a":{"x":[1,"y",null,true,{"z":{}}]},"raw":[1,2]}`,
		`{"request_id":"\ud83d\ude00\u0041\n"}`,
		`{"request_id":"a","request_id":"b"}`,
		`{"n":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got target
		if err := Unmarshal(data, &got, limit); err != nil {
			if !strings.HasPrefix(err.Error(), "strictjson: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		var std target
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("strictjson accepted what encoding/json refuses: %v", err)
		}
		if !reflect.DeepEqual(got, std) {
			t.Fatalf("strictjson and encoding/json disagree:\n%+v\n%+v", got, std)
		}
		out, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var again target
		if err := Unmarshal(out, &again, 1<<20); err != nil {
			t.Fatalf("re-encoded value %s refused: %v", out, err)
		}
	})
}
