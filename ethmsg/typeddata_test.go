package ethmsg

import (
	"bytes"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// writeTypedDataSeed commits a table case to FuzzParseTypedData's corpus
// (see commitSeed).
func writeTypedDataSeed(t *testing.T, name, js string) {
	t.Helper()
	commitSeed(t, "FuzzParseTypedData", "table-"+name, js)
}

func TestMailExample(t *testing.T) {
	td := mustParse(t, testgen.MailJSON)
	for _, c := range []struct {
		name string
		got  [32]byte
		want string
	}{
		{"Hash", td.Hash(), testgen.MailHash},
		{"DomainSeparator", td.DomainSeparator(), testgen.MailDomainSeparator},
		{"MessageHash", td.MessageHash(), testgen.MailMessageHash},
	} {
		if hexString(c.got) != c.want {
			t.Errorf("%s() = %x, want %s", c.name, c.got, c.want)
		}
	}
	if got, ok := td.EncodeType("Mail"); !ok || got != testgen.MailEncodeType {
		t.Errorf("EncodeType(Mail) = %q, %v", got, ok)
	}
	if th, ok := td.TypeHash("Mail"); !ok || hexString(th) != testgen.MailTypeHash {
		t.Errorf("TypeHash(Mail) = %x, %v", th, ok)
	}
	if _, ok := td.EncodeType("Nope"); ok {
		t.Error("EncodeType of an undefined type reported true")
	}
	if td.PrimaryType() != "Mail" {
		t.Errorf("PrimaryType() = %q", td.PrimaryType())
	}

	d := td.Domain()
	contract, _ := ethtx.ParseAddress("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")
	if d.Name == nil || *d.Name != "Ether Mail" || d.Version == nil || *d.Version != "1" ||
		d.ChainID == nil || d.ChainID.Cmp(big.NewInt(1)) != 0 ||
		d.VerifyingContract == nil || *d.VerifyingContract != contract || d.Salt != nil {
		t.Errorf("Domain() = %+v", d)
	}

	m := td.Message()
	if m.Kind != KindStruct || m.Type != "Mail" || len(m.Fields) != 3 {
		t.Fatalf("Message() = %+v", m)
	}
	for i, name := range []string{"from", "to", "contents"} {
		if m.Fields[i].Name != name {
			t.Errorf("field %d is %q, want %q (type order)", i, m.Fields[i].Name, name)
		}
	}
	to, ok := m.Field("to")
	if !ok || to.Kind != KindStruct || to.Type != "Person" {
		t.Fatalf("Field(to) = %+v, %v", to, ok)
	}
	wallet, ok := to.Field("wallet")
	bob, _ := ethtx.ParseAddress("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB")
	if !ok || wallet.Kind != KindAddress || wallet.Type != "address" || wallet.Address != bob {
		t.Errorf("to.wallet = %+v", wallet)
	}
	if _, ok := m.Field("nope"); ok {
		t.Error("Field(nope) reported true")
	}
	if _, ok := wallet.Field("x"); ok {
		t.Error("Field on an address reported true")
	}
	var nilValue *Value
	if _, ok := nilValue.Field("x"); ok {
		t.Error("Field on nil reported true")
	}
	contents, _ := m.Field("contents")
	if contents.Kind != KindString || contents.String != "Hello, Bob!" {
		t.Errorf("contents = %+v", contents)
	}
}

// TestAccessorsReturnCopies checks that nothing a caller does to what the
// accessors return changes the document or its hash.
func TestAccessorsReturnCopies(t *testing.T) {
	js := doc(`"T":[{"name":"n","type":"uint256"},{"name":"b","type":"bytes"},{"name":"l","type":"string[]"}]`,
		"T", `{"n":"7","b":"0x0102","l":["x"]}`)
	td := mustParse(t, js)
	want := td.Hash()

	m := td.Message()
	n, _ := m.Field("n")
	n.Int.SetInt64(8)
	b, _ := m.Field("b")
	b.Bytes[0] = 0xff
	l, _ := m.Field("l")
	l.Elems[0].String = "y"
	m.Fields[0].Name = "changed"
	d := td.Domain()
	d.ChainID.SetInt64(5)
	*d.Name = "changed"
	dv := td.DomainValue()
	dv.Fields[0].Value.String = "changed"

	if td.Hash() != want {
		t.Fatal("Hash() changed")
	}
	again := td.Message()
	if n2, _ := again.Field("n"); n2.Int.Int64() != 7 {
		t.Error("Message() shares big.Ints")
	}
	if b2, _ := again.Field("b"); b2.Bytes[0] != 1 {
		t.Error("Message() shares bytes")
	}
	if l2, _ := again.Field("l"); l2.Elems[0].String != "x" {
		t.Error("Message() shares elements")
	}
	if d2 := td.Domain(); d2.ChainID.Int64() != 1 || *d2.Name != "Test" {
		t.Error("Domain() shares pointers")
	}
	if dv2 := td.DomainValue(); dv2.Fields[0].Value.String != "Test" {
		t.Error("DomainValue() shares values")
	}
}

func TestDomainFields(t *testing.T) {
	js := `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},` +
		`{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"},{"name":"salt","type":"bytes32"}],` +
		`"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{"salt":"0x` + strings.Repeat("ab", 32) +
		`","verifyingContract":"0x000000000022d473030f116ddee9f6b43ac78ba3","chainId":"0x2105","version":"","name":""},"message":{"v":true}}`
	td := mustParse(t, js)
	d := td.Domain()
	permit2, _ := ethtx.ParseAddress("0x000000000022D473030F116dDEE9F6B43aC78BA3")
	if *d.Name != "" || *d.Version != "" || d.ChainID.Int64() != 8453 || *d.VerifyingContract != permit2 ||
		*d.Salt != [32]byte(bytes.Repeat([]byte{0xab}, 32)) {
		t.Errorf("Domain() = %+v", d)
	}
	// Only chainId.
	td = mustParse(t, `{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"T":[{"name":"v","type":"bool"}]},`+
		`"primaryType":"T","domain":{"chainId":1},"message":{"v":false}}`)
	if d := td.Domain(); d.Name != nil || d.Version != nil || d.VerifyingContract != nil || d.Salt != nil || d.ChainID.Int64() != 1 {
		t.Errorf("Domain() = %+v", d)
	}
}

// TestAccepts checks documents at the edges of the rules. (crosscheck/ethmsg
// checks that each hashes as go-ethereum hashes it, from the seeds the test
// commits; go-ethereum refuses the empty domain name.)
func TestAccepts(t *testing.T) {
	maxU256 := "0x" + strings.Repeat("f", 64)
	tests := []struct {
		name string
		js   string
	}{
		{name: "mail example", js: testgen.MailJSON},
		{name: "uint256 max hex", js: one("uint256", `"`+maxU256+`"`)},
		{name: "uint256 max decimal", js: one("uint256", `"115792089237316195423570985008687907853269984665640564039457584007913129639935"`)},
		{name: "uint8 255", js: one("uint8", "255")},
		{name: "uint8 0", js: one("uint8", "0")},
		{name: "int8 -128", js: one("int8", "-128")},
		{name: "int8 127", js: one("int8", `"127"`)},
		{name: "int8 -128 string", js: one("int8", `"-128"`)},
		{name: "int256 min", js: one("int256", `"-57896044618658097173705764928940457453580094610893421169502910395100885520384"`)},
		{name: "int256 max", js: one("int256", `"0x7`+strings.Repeat("f", 63)+`"`)},
		{name: "int64 -1 sign extended", js: one("int64", "-1")},
		{name: "safe integer max", js: one("uint64", "9007199254740991")},
		{name: "safe integer min", js: one("int64", "-9007199254740991")},
		{name: "hex integer with leading zeros", js: one("uint256", `"0x`+strings.Repeat("0", 63)+`1"`)},
		{name: "hex integer upper case digits", js: one("uint32", `"0xDEADBEEF"`)},
		{name: "bytes1", js: one("bytes1", `"0xab"`)},
		{name: "bytes31", js: one("bytes31", `"0x`+strings.Repeat("cd", 31)+`"`)},
		{name: "bytes32", js: one("bytes32", `"0x`+strings.Repeat("EF", 32)+`"`)},
		{name: "bytes empty", js: one("bytes", `"0x"`)},
		{name: "string empty", js: one("string", `""`)},
		{name: "string unicode", js: one("string", `"\u00e9\ud83d\ude80"`)},
		{name: "address lower case", js: one("address", `"0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826"`)},
		{name: "address upper case", js: one("address", `"0xCD2A3D9F938E13CD947EC05ABC7FE734DF8DD826"`)},
		{name: "bool false", js: one("bool", "false")},
		{name: "nested dynamic arrays", js: one("uint256[][]", `[[1,2],[],["0x3"]]`)},
		{name: "fixed array", js: one("uint8[3]", `[1,2,3]`)},
		{name: "fixed of dynamic", js: one("uint8[][2]", `[[1],[2,3]]`)},
		{name: "dynamic of fixed", js: one("uint8[2][]", `[[1,2],[3,4],[5,6]]`)},
		{name: "bytes1 array", js: one("bytes1[]", `["0x01","0xff"]`)},
		{name: "bytes nested", js: one("bytes[][]", `[["0x01","0x02"],["0x03"]]`)},
		{name: "empty dynamic array", js: one("address[]", `[]`)},
		{name: "array of structs", js: doc(`"P":[{"name":"n","type":"string"}],"T":[{"name":"v","type":"P[]"}]`, "T", `{"v":[{"n":"a"},{"n":"b"}]}`)},
		{name: "fixed array of structs", js: doc(`"P":[{"name":"n","type":"string"}],"T":[{"name":"v","type":"P[2]"}]`, "T", `{"v":[{"n":"a"},{"n":"b"}]}`)},
		{name: "recursion through dynamic array", js: doc(`"N":[{"name":"kids","type":"N[]"},{"name":"v","type":"uint8"}]`, "N", `{"v":1,"kids":[{"v":2,"kids":[]}]}`)},
		{name: "recursion through nested array with a dynamic dimension", js: doc(`"N":[{"name":"kids","type":"N[][2]"}]`, "N", `{"kids":[[{"kids":[[],[]]}],[]]}`)},
		{name: "mutual recursion through dynamic array", js: doc(`"A":[{"name":"b","type":"B"}],"B":[{"name":"a","type":"A[]"}]`, "A", `{"b":{"a":[{"b":{"a":[]}}]}}`)},
		{name: "unused well-formed type", js: doc(`"T":[{"name":"v","type":"bool"}],"Unused":[{"name":"x","type":"uint256"}]`, "T", `{"v":true}`)},
		{name: "dollar and underscore field names", js: doc(`"T":[{"name":"_a","type":"bool"},{"name":"$b","type":"bool"},{"name":"c_1$","type":"bool"}]`, "T", `{"_a":true,"$b":false,"c_1$":true}`)},
		{name: "fields in any order in the message", js: doc(`"T":[{"name":"a","type":"bool"},{"name":"b","type":"uint8"}]`, "T", `{"b":1,"a":true}`)},
		{name: "type named like Mail2", js: doc(`"Mail":[{"name":"m","type":"Mail2"}],"Mail2":[{"name":"x","type":"bool"}]`, "Mail", `{"m":{"x":true}}`)},
		{name: "empty domain name", js: `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{"name":""},"message":{"v":true}}`},
		{name: "whitespace around", js: " \n" + one("bool", "true") + "\n "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeTypedDataSeed(t, "ok-"+fuzzseed.FileName(tt.name, '-'), tt.js)
			td := mustParse(t, tt.js)
			ds, mh := td.DomainSeparator(), td.MessageHash()
			if keccak256([]byte{0x19, 0x01}, ds[:], mh[:]) != td.Hash() {
				t.Fatal("Hash() is not keccak256(0x19 0x01 || DomainSeparator() || MessageHash())")
			}
			again := mustParse(t, tt.js)
			if again.Hash() != td.Hash() {
				t.Fatal("hash not deterministic")
			}
		})
	}
}

// TestRefuses lists the documents ParseTypedData refuses, with the error
// each must give. (crosscheck/ethmsg records which of them go-ethereum
// accepts, deliberate differences, from the seeds the test commits.)
func TestRefuses(t *testing.T) {
	twoDomains := `{"types":{` + testgen.DocDomainType + `,"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":` + testgen.DocDomain
	tests := []struct {
		name    string
		js      string
		wantErr string
	}{
		// The document.
		{name: "not an object", js: `[]`, wantErr: "ethmsg: strictjson: top-level value is an array"},
		{name: "duplicate top-level key", js: `{"primaryType":"T",` + one("bool", "true")[1:], wantErr: `duplicate key "primaryType"`},
		{name: "duplicate key in message", js: doc(`"T":[{"name":"v","type":"bool"}]`, "T", `{"v":true,"v":false}`), wantErr: `duplicate key "v" in $.message`},
		{name: "duplicate key deep in message", js: doc(`"P":[{"name":"n","type":"string"}],"T":[{"name":"v","type":"P[]"}]`, "T", `{"v":[{"n":"a","n":"b"}]}`), wantErr: `duplicate key "n" in $.message.v[0]`},
		{name: "duplicate key in types", js: `{"types":{"T":[{"name":"v","type":"bool"}],` + testgen.DocDomainType + `,"T":[]},"primaryType":"T","domain":` + testgen.DocDomain + `,"message":{"v":true}}`, wantErr: `duplicate key "T" in $.types`},
		{name: "duplicate key in domain", js: `{"types":{` + testgen.DocDomainType + `,"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{"name":"a","chainId":1,"name":"b"},"message":{"v":true}}`, wantErr: `duplicate key "name" in $.domain`},
		{name: "unknown top-level key", js: twoDomains + `,"message":{"v":true},"extra":1}`, wantErr: `unknown field "extra"`},
		{name: "top-level key in another case", js: `{"Types":{},"primaryType":"T"}`, wantErr: `unknown field "Types"`},
		{name: "missing message", js: twoDomains + `}`, wantErr: "ethmsg: message: missing"},
		{name: "null message", js: twoDomains + `,"message":null}`, wantErr: "ethmsg: message: T: want an object, got null"},
		{name: "missing domain", js: `{"types":{` + testgen.DocDomainType + `,"T":[{"name":"v","type":"bool"}]},"primaryType":"T","message":{"v":true}}`, wantErr: "ethmsg: domain: missing"},
		{name: "missing types", js: `{"primaryType":"T","domain":{},"message":{}}`, wantErr: "ethmsg: types: missing"},
		{name: "missing primaryType", js: `{"types":{` + testgen.DocDomainType + `},"domain":` + testgen.DocDomain + `,"message":{}}`, wantErr: "ethmsg: primaryType: missing"},
		{name: "trailing data", js: one("bool", "true") + "{}", wantErr: "trailing data"},
		{name: "invalid utf8", js: one("string", "\"\xff\""), wantErr: "invalid UTF-8"},
		{name: "lone surrogate", js: one("string", `"\ud800"`), wantErr: "lone high surrogate"},

		// Type definitions.
		{name: "undefined field type", js: doc(`"Mail":[{"name":"to","type":"Persn"}]`, "Mail", `{"to":{}}`), wantErr: `ethmsg: types.Mail[0].type: undefined struct type "Persn"`},
		{name: "undefined array element type", js: doc(`"Mail":[{"name":"to","type":"Person[]"}]`, "Mail", `{"to":[]}`), wantErr: `types.Mail[0].type: undefined struct type "Person"`},
		{name: "undefined type in unused type", js: doc(`"T":[{"name":"v","type":"bool"}],"U":[{"name":"x","type":"Nope"}]`, "T", `{"v":true}`), wantErr: `types.U[0].type: undefined struct type "Nope"`},
		{name: "undefined primary type", js: doc(`"T":[{"name":"v","type":"bool"}]`, "Mail", `{}`), wantErr: `ethmsg: primaryType: undefined struct type "Mail"`},
		{name: "primary type EIP712Domain", js: doc(``, "EIP712Domain", testgen.DocDomain), wantErr: "ethmsg: primaryType: EIP712Domain is refused"},
		{name: "missing EIP712Domain", js: `{"types":{"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{},"message":{"v":true}}`, wantErr: "ethmsg: types: missing EIP712Domain"},
		{name: "alias uint", js: one("uint", "1"), wantErr: "types.T[0].type: uint is not an EIP-712 type (no aliases; write uint256)"},
		{name: "alias int array", js: one("int[]", "[1]"), wantErr: "int is not an EIP-712 type"},
		{name: "uint7", js: one("uint7", "1"), wantErr: `invalid atomic type "uint7"`},
		{name: "uint264", js: one("uint264", "1"), wantErr: `invalid atomic type "uint264"`},
		{name: "uint08", js: one("uint08", "1"), wantErr: `invalid atomic type "uint08"`},
		{name: "bytes0", js: one("bytes0", `"0x"`), wantErr: `invalid atomic type "bytes0"`},
		{name: "bytes33", js: one("bytes33", `"0x00"`), wantErr: `invalid atomic type "bytes33"`},
		{name: "fixed point", js: one("fixed128x18", "1"), wantErr: `type name "fixed128x18" is reserved`},
		{name: "type with space", js: one("uint256 ", "1"), wantErr: `invalid type name "uint256 "`},
		{name: "zero length array", js: one("uint8[0]", "[]"), wantErr: `array length "0": zero or leading zero`},
		{name: "leading zero array length", js: one("uint8[01]", "[1]"), wantErr: `array length "01": zero or leading zero`},
		{name: "array length not a number", js: one("uint8[x]", "[1]"), wantErr: `array length "x" is not a decimal number`},
		{name: "array length too large", js: one("uint8[1025]", "[]"), wantErr: "array length 1025 exceeds 1024"},
		{name: "unclosed array", js: one("uint8[", "[]"), wantErr: "unclosed ["},
		{name: "junk after array", js: one("uint8[]x", "[]"), wantErr: "want [ after ]"},
		{name: "too many dimensions", js: one("uint8"+strings.Repeat("[]", 17), "[]"), wantErr: "more than 16 array dimensions"},
		{name: "too many types", js: testgen.ManyTypes(MaxTypes, 1), wantErr: "ethmsg: types: 65 types, limit 64"},
		{name: "too many fields", js: testgen.ManyTypes(1, MaxFields+1), wantErr: "ethmsg: types.T0: 65 fields, limit 64"},
		{name: "encodeType too long", js: testgen.ManyTypes(50, 50), wantErr: "ethmsg: types.T0: encodeType of 24190 bytes, limit 16384"},
		{name: "long field name", js: doc(`"T":[{"name":"`+strings.Repeat("f", 65)+`","type":"bool"}]`, "T", `{"`+strings.Repeat("f", 65)+`":true}`), wantErr: "types.T[0].name: field name of 65 bytes, limit 64"},
		{name: "empty struct", js: doc(`"T":[]`, "T", `{}`), wantErr: "types.T: a struct type needs at least one field"},
		{name: "null fields", js: doc(`"T":null`, "T", `{}`), wantErr: "types.T: a struct type needs at least one field"},
		{name: "field without type", js: doc(`"T":[{"name":"v"}]`, "T", `{"v":1}`), wantErr: "types.T[0].type: missing"},
		{name: "field without name", js: doc(`"T":[{"type":"bool"}]`, "T", `{}`), wantErr: "types.T[0].name: missing"},
		{name: "field with extra key", js: doc(`"T":[{"name":"v","type":"bool","x":1}]`, "T", `{"v":true}`), wantErr: `unknown field "x" at $.types.T[0]`},
		{name: "empty field name", js: doc(`"T":[{"name":"","type":"bool"}]`, "T", `{"":true}`), wantErr: "types.T[0].name: empty field name"},
		{name: "field name injecting encodeType", js: doc(`"T":[{"name":"a,uint256 b","type":"bool"}]`, "T", `{"a,uint256 b":true}`), wantErr: `invalid field name "a,uint256 b"`},
		{name: "field name with space", js: doc(`"T":[{"name":"a b","type":"bool"}]`, "T", `{"a b":true}`), wantErr: `invalid field name "a b"`},
		{name: "duplicate field name", js: doc(`"T":[{"name":"v","type":"bool"},{"name":"v","type":"uint8"}]`, "T", `{"v":true}`), wantErr: `types.T[1].name: duplicate field name "v"`},
		{name: "field names differing in case", js: doc(`"T":[{"name":"to","type":"bool"},{"name":"To","type":"bool"}]`, "T", `{"to":true}`), wantErr: `types.T[1].name: field names "to" and "To" differ only in case`},
		{name: "message keys differing in case", js: doc(`"T":[{"name":"to","type":"bool"},{"name":"To","type":"bool"}]`, "T", `{"to":true,"To":false}`), wantErr: `strictjson: duplicate key "To" in $.message`},
		{name: "type name with bracket", js: doc(`"T[]":[{"name":"v","type":"bool"}]`, "T[]", `{}`), wantErr: `types["T[]"]: invalid type name`},
		{name: "type name starting with underscore", js: doc(`"_T":[{"name":"v","type":"bool"}]`, "_T", `{"v":true}`), wantErr: `types._T: invalid type name "_T"`},
		{name: "type named like an atomic type", js: doc(`"uint256":[{"name":"v","type":"bool"}],"T":[{"name":"x","type":"bool"}]`, "T", `{"x":true}`), wantErr: `type name "uint256" is reserved`},
		{name: "type named int7", js: doc(`"int7":[{"name":"v","type":"bool"}],"T":[{"name":"x","type":"int7"}]`, "T", `{"x":{"v":true}}`), wantErr: `type name "int7" is reserved`},
		{name: "type named address", js: doc(`"address":[{"name":"v","type":"bool"}],"T":[{"name":"x","type":"bool"}]`, "T", `{"x":true}`), wantErr: `type name "address" is reserved`},
		{name: "empty type name", js: doc(`"":[{"name":"v","type":"bool"}],"T":[{"name":"x","type":"bool"}]`, "T", `{"x":true}`), wantErr: `types[""]: empty type name`},
		{name: "long type name", js: doc(`"`+strings.Repeat("T", 65)+`":[{"name":"v","type":"bool"}],"T":[{"name":"x","type":"bool"}]`, "T", `{"x":true}`), wantErr: "type name of 65 bytes, limit 64"},
		{name: "direct self reference", js: doc(`"N":[{"name":"n","type":"N"}]`, "N", `{"n":{}}`), wantErr: "types.N[0].type: recursive struct N -> N has no finite value"},
		{name: "self reference through fixed array", js: doc(`"N":[{"name":"n","type":"N[2]"}]`, "N", `{"n":[]}`), wantErr: "recursive struct N -> N"},
		{name: "mutual recursion", js: doc(`"A":[{"name":"b","type":"B"}],"B":[{"name":"a","type":"A[1]"}]`, "A", `{"b":{"a":[]}}`), wantErr: "recursive struct A -> B -> A"},
		{name: "domain field out of order", js: `{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"},{"name":"name","type":"string"}],"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{"name":"a","chainId":1},"message":{"v":true}}`, wantErr: `types.EIP712Domain[1].name: "name" out of order`},
		{name: "unknown domain field", js: `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"foo","type":"string"}],"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{"name":"a","foo":"b"},"message":{"v":true}}`, wantErr: `types.EIP712Domain[1].name: "foo" is not an EIP712Domain field`},
		{name: "domain chainId of another type", js: `{"types":{"EIP712Domain":[{"name":"chainId","type":"uint64"}],"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":{"chainId":1},"message":{"v":true}}`, wantErr: `types.EIP712Domain[0].type: chainId has type "uint64", want uint256`},
		{name: "domain value not in the type", js: twoDomains[:len(twoDomains)-len(testgen.DocDomain)] + `{"name":"a","chainId":1,"salt":"0x00"},"message":{"v":true}}`, wantErr: `domain: unknown field "salt" (not in type EIP712Domain)`},
		{name: "domain value missing", js: twoDomains[:len(twoDomains)-len(testgen.DocDomain)] + `{"name":"a"},"message":{"v":true}}`, wantErr: `domain: missing field "chainId"`},
		{name: "domain chainId negative", js: twoDomains[:len(twoDomains)-len(testgen.DocDomain)] + `{"name":"a","chainId":-1},"message":{"v":true}}`, wantErr: "domain.chainId: uint256: negative value -1"},

		// Values.
		{name: "missing field", js: doc(`"T":[{"name":"a","type":"bool"},{"name":"b","type":"bool"}]`, "T", `{"a":true}`), wantErr: `ethmsg: message: missing field "b" of type T`},
		{name: "extra field", js: doc(`"T":[{"name":"a","type":"bool"}]`, "T", `{"a":true,"b":true}`), wantErr: `ethmsg: message: unknown field "b" (not in type T)`},
		{name: "field in another case", js: doc(`"T":[{"name":"a","type":"bool"}]`, "T", `{"A":true}`), wantErr: `message: unknown field "A"`},
		{name: "missing nested field", js: doc(`"P":[{"name":"n","type":"string"},{"name":"w","type":"address"}],"T":[{"name":"to","type":"P"}]`, "T", `{"to":{"n":"x"}}`), wantErr: `ethmsg: message.to: missing field "w" of type P`},
		{name: "bad address checksum", js: doc(`"P":[{"name":"wallet","type":"address"}],"T":[{"name":"to","type":"P"}]`, "T", `{"to":{"wallet":"0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"}}`), wantErr: "ethmsg: message.to.wallet: address: invalid EIP-55 checksum"},
		{name: "address without 0x", js: one("address", `"cd2a3d9f938e13cd947ec05abc7fe734df8dd826"`), wantErr: "message.v: address: want 0x prefix"},
		{name: "address short", js: one("address", `"0xcd2a"`), wantErr: "address: want 40 hex digits"},
		{name: "address as number", js: one("address", `1`), wantErr: "address: want a string, got a number"},
		{name: "null value", js: one("string", `null`), wantErr: "message.v: string: want a string, got null"},
		{name: "bool as string", js: one("bool", `"true"`), wantErr: "bool: want true or false, got a string"},
		{name: "bool as number", js: one("bool", `1`), wantErr: "bool: want true or false, got a number"},
		{name: "string as number", js: one("string", `1`), wantErr: "string: want a string, got a number"},
		{name: "bytes without 0x", js: one("bytes", `"0102"`), wantErr: "message.v: bytes: want 0x-prefixed hex"},
		{name: "bytes 0X", js: one("bytes", `"0X0102"`), wantErr: "want 0x-prefixed hex"},
		{name: "bytes odd", js: one("bytes", `"0x012"`), wantErr: "bytes: odd number of hex digits"},
		{name: "bytes bad digit", js: one("bytes", `"0x0g"`), wantErr: `bytes: invalid hex digit 'g' at position 3`},
		{name: "bytes as array", js: one("bytes", `[1,2]`), wantErr: "bytes: want a 0x-hex string, got an array"},
		{name: "bytes32 short", js: one("bytes32", `"0x01"`), wantErr: "bytes32: want 0x and 64 hex digits, got 4 characters"},
		{name: "bytes1 long", js: one("bytes1", `"0x0102"`), wantErr: "bytes1: want 0x and 2 hex digits"},
		{name: "bytes4 empty", js: one("bytes4", `"0x"`), wantErr: "bytes4: want 0x and 8 hex digits"},
		{name: "uint8 256", js: one("uint8", `256`), wantErr: "message.v: uint8: value 256 out of range (at most 2^8-1)"},
		{name: "uint8 -1", js: one("uint8", `-1`), wantErr: "uint8: negative value -1 for an unsigned type"},
		{name: "uint256 max plus one", js: one("uint256", `"115792089237316195423570985008687907853269984665640564039457584007913129639936"`), wantErr: "uint256: value 115792089237316195423570985008687907853269984665640564039457584007913129639936 out of range"},
		{name: "uint256 65 hex digits", js: one("uint256", `"0x1`+strings.Repeat("0", 64)+`"`), wantErr: "want 1 to 64 digits"},
		{name: "int8 128", js: one("int8", `128`), wantErr: "int8: value 128 out of range (-2^7 to 2^7-1)"},
		{name: "int8 -129", js: one("int8", `-129`), wantErr: "int8: value -129 out of range"},
		{name: "int8 255 hex", js: one("int8", `"0xff"`), wantErr: "int8: value 255 out of range"},
		{name: "int256 max plus one", js: one("int256", `"0x8`+strings.Repeat("0", 63)+`"`), wantErr: "int256: value 57896044618658097711785492504343953926634992332820282019728792003956564819968 out of range"},
		{name: "number with fraction", js: one("uint8", `5.0`), wantErr: `uint8: number "5.0" is not an integer`},
		{name: "number with exponent", js: one("uint256", `1e18`), wantErr: `number "1e18" is not an integer`},
		{name: "number beyond 2^53", js: one("uint64", `9007199254740993`), wantErr: `number "9007199254740993" is beyond 2^53-1`},
		{name: "number negative zero", js: one("int8", `-0`), wantErr: "int8: negative zero"},
		{name: "string negative zero", js: one("int8", `"-0"`), wantErr: "int8: negative zero"},
		{name: "string with leading zero", js: one("uint8", `"007"`), wantErr: `integer string "007": leading zero`},
		{name: "string with plus", js: one("uint8", `"+7"`), wantErr: `integer string "+7": want decimal digits or 0x-hex`},
		{name: "string empty integer", js: one("uint8", `""`), wantErr: `integer string "": want decimal digits`},
		{name: "string 0x alone", js: one("uint8", `"0x"`), wantErr: `hex integer "0x": want 1 to 64 digits`},
		{name: "string 0X", js: one("uint8", `"0X1"`), wantErr: `integer string "0X1"`},
		{name: "string negative hex", js: one("int8", `"-0x1"`), wantErr: `integer string "-0x1"`},
		{name: "string with space", js: one("uint8", `" 1"`), wantErr: `integer string " 1"`},
		{name: "string fraction", js: one("uint8", `"1.5"`), wantErr: `integer string "1.5"`},
		{name: "integer as bool", js: one("uint8", `true`), wantErr: "uint8: want an integer (number or string), got a boolean"},
		{name: "fixed array too short", js: one("uint8[3]", `[1,2]`), wantErr: "message.v: uint8[3]: 2 elements, want exactly 3"},
		{name: "fixed array too long", js: one("uint8[2]", `[1,2,3]`), wantErr: "message.v: uint8[2]: more than 2 elements"},
		{name: "fixed of dynamic wrong outer length", js: one("uint8[][2]", `[[1],[2],[3]]`), wantErr: "uint8[][2]: more than 2 elements"},
		{name: "dynamic of fixed wrong inner length", js: one("uint8[2][]", `[[1,2],[3]]`), wantErr: "message.v[1]: uint8[2]: 1 elements, want exactly 2"},
		{name: "nested array given flat", js: one("uint256[][]", `[1,2]`), wantErr: "message.v[0]: uint256[]: want an array, got a number"},
		{name: "flat array given nested", js: one("uint256[]", `[[1,2]]`), wantErr: "message.v[0]: uint256: want an integer (number or string), got an array"},
		{name: "array given object", js: one("uint8[]", `{}`), wantErr: "uint8[]: want an array, got an object"},
		{name: "struct given array", js: doc(`"P":[{"name":"n","type":"string"}],"T":[{"name":"v","type":"P"}]`, "T", `{"v":[]}`), wantErr: "message.v: P: want an object, got an array"},
		{name: "array of structs with bad element", js: doc(`"P":[{"name":"n","type":"string"}],"T":[{"name":"v","type":"P[]"}]`, "T", `{"v":[{"n":"a"},{"n":1}]}`), wantErr: "message.v[1].n: string: want a string, got a number"},
		{name: "array null element", js: one("uint8[]", `[null]`), wantErr: "message.v[0]: uint8: want an integer (number or string), got null"},
		{name: "dynamic array over the limit", js: one("bool[]", "["+strings.Repeat("true,", MaxArrayLength)+"true]"), wantErr: "bool[]: more than 1024 elements (limit)"},
		{name: "too many values", js: one("bool[1024][]", "["+strings.Repeat("["+strings.Repeat("true,", 1023)+"true],", 8)+"[]]"), wantErr: "more than 8192 values in all"},
		{name: "too deep", js: doc(`"N":[{"name":"k","type":"N[]"}]`, "N", strings.Repeat(`{"k":[`, 8)+`{"k":[]}`+strings.Repeat(`]}`, 8)), wantErr: "message.k[0].k[0].k[0].k[0].k[0].k[0].k[0].k[0]: nested deeper than 16 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeTypedDataSeed(t, "bad-"+fuzzseed.FileName(tt.name, '-'), tt.js)
			td, err := ParseTypedData([]byte(tt.js))
			if err == nil {
				t.Fatalf("accepted, hash %x", td.Hash())
			}
			if !strings.HasPrefix(err.Error(), "ethmsg: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant %q", err, tt.wantErr)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	js := one("string", `"`+strings.Repeat("a", MaxTypedDataSize)+`"`)
	_, err := ParseTypedData([]byte(js))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Just under the limit is fine.
	pad := MaxTypedDataSize - len(one("string", `""`))
	if _, err := ParseTypedData([]byte(one("string", `"`+strings.Repeat("a", pad)+`"`))); err != nil {
		t.Fatal(err)
	}
}

// TestRegressionEncodings pins encodings that implementations have got wrong,
// where the encoding is simple enough computed by hand. (crosscheck/ethmsg
// hashes the same documents with go-ethereum.)
func TestRegressionEncodings(t *testing.T) {
	word := func(b ...byte) []byte { w := make([]byte, 32); copy(w[32-len(b):], b); return w }
	k := func(parts ...[]byte) []byte { h := keccak256(parts...); return h[:] }

	t.Run("nested dynamic arrays uint256[][]", func(t *testing.T) {
		// enc = keccak(keccak(w1 w2) || keccak(w3))
		checkMessage(t, one("uint256[][]", `[[1,2],[3]]`), "T(uint256[][] v)", k(k(word(1), word(2)), k(word(3))))
	})
	t.Run("fixed array uint8[2][3]", func(t *testing.T) {
		// Three arrays of two: the last dimension is the outer one.
		checkMessage(t, one("uint8[2][3]", `[[1,2],[3,4],[5,6]]`), "T(uint8[2][3] v)", k(k(word(1), word(2)), k(word(3), word(4)), k(word(5), word(6))))
		if _, err := ParseTypedData([]byte(one("uint8[2][3]", `[[1,2,3],[4,5,6]]`))); err == nil {
			t.Fatal("uint8[2][3] accepted two arrays of three")
		}
	})
	t.Run("empty array", func(t *testing.T) {
		checkMessage(t, one("address[]", `[]`), "T(address[] v)", k())
	})
	t.Run("array of structs", func(t *testing.T) {
		pt := k([]byte("P(uint8 n)"))
		checkMessage(t, doc(`"P":[{"name":"n","type":"uint8"}],"T":[{"name":"v","type":"P[]"}]`, "T", `{"v":[{"n":1},{"n":2}]}`), "T(P[] v)P(uint8 n)", k(k(pt, word(1)), k(pt, word(2))))
	})
	t.Run("bytesN right padded", func(t *testing.T) {
		for n := 1; n <= 32; n++ {
			typ := "bytes" + itoa(n)
			val := bytes.Repeat([]byte{0xab}, n)
			want := make([]byte, 32)
			copy(want, val)
			checkMessage(t, one(typ, `"0x`+strings.Repeat("ab", n)+`"`), "T("+typ+" v)", want)
		}
	})
	t.Run("bytes and string hashed", func(t *testing.T) {
		checkMessage(t, one("bytes", `"0x0102"`), "T(bytes v)", k([]byte{1, 2}))
		checkMessage(t, one("string", `"héllo"`), "T(string v)", k([]byte("héllo")))
	})
	t.Run("negative int sign extended", func(t *testing.T) {
		checkMessage(t, one("int8", `-1`), "T(int8 v)", bytes.Repeat([]byte{0xff}, 32))
		want := bytes.Repeat([]byte{0xff}, 32)
		want[31] = 0x80
		checkMessage(t, one("int8", `-128`), "T(int8 v)", want)
	})
	t.Run("bool and address", func(t *testing.T) {
		checkMessage(t, one("bool", `true`), "T(bool v)", word(1))
		a := bytes.Repeat([]byte{0x11}, 20)
		checkMessage(t, one("address", `"0x`+strings.Repeat("11", 20)+`"`), "T(address v)", word(a...))
	})
	t.Run("type name collisions Mail and Mail2", func(t *testing.T) {
		// Mail2 is not a dependency of Mail because its name starts with
		// "Mail"; Mail is not one of Mail2's because Mail2 contains it.
		td := mustParse(t, doc(`"Mail":[{"name":"x","type":"uint8"}],"Mail2":[{"name":"m","type":"Mail"}],"Mailbox":[{"name":"b","type":"bool"}]`,
			"Mail2", `{"m":{"x":1}}`))
		if enc, _ := td.EncodeType("Mail"); enc != "Mail(uint8 x)" {
			t.Errorf("EncodeType(Mail) = %q", enc)
		}
		if enc, _ := td.EncodeType("Mail2"); enc != "Mail2(Mail m)Mail(uint8 x)" {
			t.Errorf("EncodeType(Mail2) = %q", enc)
		}
	})
	t.Run("same definition under different names", func(t *testing.T) {
		a := mustParse(t, doc(`"Person":[{"name":"n","type":"string"}],"T":[{"name":"p","type":"Person"}]`, "T", `{"p":{"n":"x"}}`))
		b := mustParse(t, doc(`"Human":[{"name":"n","type":"string"}],"T":[{"name":"p","type":"Human"}]`, "T", `{"p":{"n":"x"}}`))
		if a.Hash() == b.Hash() {
			t.Fatal("Person and Human hash alike")
		}
	})
	t.Run("dependencies sorted by byte order", func(t *testing.T) {
		js := doc(`"T":[{"name":"a","type":"b"},{"name":"c","type":"B"},{"name":"d","type":"A_"}],"b":[{"name":"x","type":"bool"}],"B":[{"name":"x","type":"bool"}],"A_":[{"name":"x","type":"bool"}]`,
			"T", `{"a":{"x":true},"c":{"x":true},"d":{"x":true}}`)
		td := mustParse(t, js)
		if enc, _ := td.EncodeType("T"); enc != "T(b a,B c,A_ d)A_(bool x)B(bool x)b(bool x)" {
			t.Errorf("EncodeType(T) = %q", enc)
		}
	})
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// checkMessage checks that the message, a T with the single field v, hashes
// as keccak256(keccak256(encType) || enc).
func checkMessage(t *testing.T, js, encType string, enc []byte) {
	t.Helper()
	td := mustParse(t, js)
	if got, _ := td.EncodeType("T"); got != encType {
		t.Errorf("EncodeType(T) = %q, want %q", got, encType)
	}
	th := keccak256([]byte(encType))
	if want := keccak256(th[:], enc); td.MessageHash() != want {
		t.Errorf("MessageHash() = %x, want %x", td.MessageHash(), want)
	}
}

func TestKindString(t *testing.T) {
	if KindFixedBytes.String() != "fixed bytes" || Kind(99).String() != "Kind(99)" {
		t.Errorf("Kind strings: %v %v", KindFixedBytes, Kind(99))
	}
}

// TestPrimaryTypeEIP712Domain shows why a document whose primaryType is
// EIP712Domain is refused: MetaMask (eth-sig-util), viem and hardware-wallet
// keyrings sign keccak256(0x19 0x01 || domainSeparator), go-ethereum appends
// hashStruct(EIP712Domain, message) as well (crosscheck/ethmsg checks that it
// still does), so the same document means two
// different digests.
func TestPrimaryTypeEIP712Domain(t *testing.T) {
	js := doc(`"T":[{"name":"v","type":"bool"}]`, "EIP712Domain", testgen.DocDomain)
	if _, err := ParseTypedData([]byte(js)); err == nil || !strings.Contains(err.Error(), "primaryType: EIP712Domain is refused") {
		t.Fatalf("err = %v", err)
	}
}

// withDomain builds a document whose EIP712Domain type is domainType (the
// JSON array of its fields), whose domain is domain, and whose message is
// T{v: true}.
func withDomain(domainType, domain string) string {
	return `{"types":{"EIP712Domain":` + domainType + `,"T":[{"name":"v","type":"bool"}]},"primaryType":"T","domain":` +
		domain + `,"message":{"v":true}}`
}

// Domain types for TestAbsentDomainFields.
const (
	domainNameChainID = `[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}]`
	domainName        = `[{"name":"name","type":"string"}]`
	domainChainID     = `[{"name":"chainId","type":"uint256"}]`
	domainAll         = `[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},` +
		`{"name":"verifyingContract","type":"address"},{"name":"salt","type":"bytes32"}]`
)

// TestAbsentDomainFields checks the one relaxation of the domain's
// strictness: a standard EIP712Domain member that the type does not declare,
// given as "" or null (chainId only as null), is absent, as go-ethereum's
// TypedDataDomain marshals it; the digest is that of the document without
// it. Every other undeclared or empty domain value keeps its error.
// (crosscheck/ethmsg hashes the accepted seeds with go-ethereum.)
func TestAbsentDomainFields(t *testing.T) {
	accepts := []struct {
		name, js string
		same     string // the document without the absent fields
	}{
		{"salt empty", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":""}`), testgen.OneField("bool", "true")},
		{"salt null", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":null}`), testgen.OneField("bool", "true")},
		{"salt empty first", withDomain(domainNameChainID, `{"salt":"","name":"Test","chainId":1}`), testgen.OneField("bool", "true")},
		{"version empty", withDomain(domainNameChainID, `{"name":"Test","version":"","chainId":1}`), testgen.OneField("bool", "true")},
		{"version null", withDomain(domainNameChainID, `{"name":"Test","version":null,"chainId":1}`), testgen.OneField("bool", "true")},
		{"verifyingContract empty", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"verifyingContract":""}`), testgen.OneField("bool", "true")},
		{"verifyingContract null", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"verifyingContract":null}`), testgen.OneField("bool", "true")},
		{"go-ethereum domain", withDomain(domainNameChainID, `{"name":"Test","version":"","chainId":1,"verifyingContract":"","salt":""}`), testgen.OneField("bool", "true")},
		{"chainId null", withDomain(domainName, `{"name":"Test","version":"","chainId":null,"verifyingContract":"","salt":""}`), withDomain(domainName, `{"name":"Test"}`)},
		{"name empty", withDomain(domainChainID, `{"name":"","version":"","chainId":1,"verifyingContract":"","salt":""}`), withDomain(domainChainID, `{"chainId":1}`)},
		{"name null", withDomain(domainChainID, `{"name":null,"chainId":1}`), withDomain(domainChainID, `{"chainId":1}`)},
	}
	for _, tt := range accepts {
		t.Run(tt.name, func(t *testing.T) {
			writeTypedDataSeed(t, "ok-absent-domain-"+fuzzseed.FileName(tt.name, '-'), tt.js)
			td, want := mustParse(t, tt.js), mustParse(t, tt.same)
			if td.Hash() != want.Hash() || td.DomainSeparator() != want.DomainSeparator() {
				t.Fatalf("Hash() = %x, without the absent fields %x", td.Hash(), want.Hash())
			}
			if got, want := td.Domain(), want.Domain(); !reflect.DeepEqual(got, want) {
				t.Fatalf("Domain() = %v, without the absent fields %v", got, want)
			}
			if len(td.DomainValue().Fields) != len(want.DomainValue().Fields) {
				t.Fatalf("DomainValue() has %d fields, want %d", len(td.DomainValue().Fields), len(want.DomainValue().Fields))
			}
		})
	}

	salt := `"0x` + strings.Repeat("ab", 32) + `"`
	refuses := []struct{ name, js, wantErr string }{
		// Undeclared standard names with a value keep the unknown-field error.
		{"undeclared salt given", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":`+salt+`}`), `ethmsg: domain: unknown field "salt" (not in type EIP712Domain)`},
		{"undeclared version given", withDomain(domainNameChainID, `{"name":"Test","version":"1","chainId":1}`), `ethmsg: domain: unknown field "version" (not in type EIP712Domain)`},
		{"undeclared verifyingContract zero", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"verifyingContract":"0x0000000000000000000000000000000000000000"}`), `domain: unknown field "verifyingContract"`},
		{"undeclared chainId empty", withDomain(domainName, `{"name":"Test","chainId":""}`), `ethmsg: domain: unknown field "chainId" (not in type EIP712Domain)`},
		{"undeclared chainId zero", withDomain(domainName, `{"name":"Test","chainId":0}`), `domain: unknown field "chainId"`},
		{"undeclared name given", withDomain(domainChainID, `{"name":"a","chainId":1}`), `domain: unknown field "name"`},
		{"undeclared salt false", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":false}`), `domain: unknown field "salt"`},
		{"undeclared salt zero", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":0}`), `domain: unknown field "salt"`},
		{"undeclared salt 0x", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":"0x"}`), `domain: unknown field "salt"`},
		{"undeclared salt space", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":" "}`), `domain: unknown field "salt"`},
		{"undeclared salt object", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":{}}`), `domain: unknown field "salt"`},
		{"undeclared salt array", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":[]}`), `domain: unknown field "salt"`},
		// Names other than the five standard ones, in any case, stay unknown.
		{"nonstandard name empty", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"foo":""}`), `ethmsg: domain: unknown field "foo" (not in type EIP712Domain)`},
		{"nonstandard name null", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"foo":null}`), `domain: unknown field "foo"`},
		{"standard name in another case", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"Salt":""}`), `domain: unknown field "Salt"`},
		// Declared fields keep their errors when empty or null.
		{"declared chainId empty", withDomain(domainNameChainID, `{"name":"Test","chainId":""}`), `ethmsg: domain.chainId: uint256: integer string ""`},
		{"declared chainId null", withDomain(domainNameChainID, `{"name":"Test","chainId":null}`), `ethmsg: domain.chainId: uint256: want an integer (number or string), got null`},
		{"declared name null", withDomain(domainNameChainID, `{"name":null,"chainId":1}`), `ethmsg: domain.name: string: want a string, got null`},
		{"declared salt empty", withDomain(domainAll, `{"name":"a","version":"1","chainId":1,"verifyingContract":"0x000000000022d473030f116ddee9f6b43ac78ba3","salt":""}`), `ethmsg: domain.salt: bytes32: want 0x and 64 hex digits, got 0 characters`},
		{"declared salt null", withDomain(domainAll, `{"name":"a","version":"1","chainId":1,"verifyingContract":"0x000000000022d473030f116ddee9f6b43ac78ba3","salt":null}`), `ethmsg: domain.salt: bytes32: want a 0x-hex string, got null`},
		{"declared verifyingContract empty", withDomain(domainAll, `{"name":"a","version":"1","chainId":1,"verifyingContract":"","salt":`+salt+`}`), `ethmsg: domain.verifyingContract: address:`},
		{"declared field missing beside absent ones", withDomain(domainNameChainID, `{"name":"Test","salt":""}`), `ethmsg: domain: missing field "chainId" of type EIP712Domain`},
		{"duplicate absent field", withDomain(domainNameChainID, `{"name":"Test","chainId":1,"salt":"","salt":null}`), `duplicate key "salt" in $.domain`},
		// Only the domain object itself: a struct of type EIP712Domain in
		// the message is as strict as any other.
		{"absent field in a message struct", doc(`"T":[{"name":"d","type":"EIP712Domain"}]`, "T", `{"d":{"name":"a","chainId":1,"salt":""}}`), `ethmsg: message.d: unknown field "salt" (not in type EIP712Domain)`},
	}
	for _, tt := range refuses {
		t.Run(tt.name, func(t *testing.T) {
			writeTypedDataSeed(t, "bad-absent-domain-"+fuzzseed.FileName(tt.name, '-'), tt.js)
			td, err := ParseTypedData([]byte(tt.js))
			if err == nil {
				t.Fatalf("accepted, hash %x", td.Hash())
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant %q", err, tt.wantErr)
			}
		})
	}
}

// TestAbsentDomainFieldTwice checks the decoder's own refusal of an absent
// field given twice, which strictjson's duplicate-key check otherwise
// catches before it.
func TestAbsentDomainFieldTwice(t *testing.T) {
	name, typ := "name", "string"
	types, err := parseTypes(map[string][]fieldJSON{domainType: {{Name: &name, Type: &typ}}})
	if err != nil {
		t.Fatal(err)
	}
	d := &decoder{types: types}
	_, err = d.decodeRoot([]byte(`{"name":"a","salt":"","salt":null}`), domainType, "domain")
	if err == nil || err.Error() != `ethmsg: domain: duplicate field "salt"` {
		t.Fatalf("err = %v", err)
	}
}
