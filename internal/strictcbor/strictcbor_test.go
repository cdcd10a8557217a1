package strictcbor

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// The options each user defined for itself before this package existed,
// copied verbatim. The users' own tests check that their decoders still
// have exactly these options (proto, nsm) or differ only in
// FieldNameMatching where every field of every decoded struct is keyasint
// (userdata, enclave checkpoints); this test checks that the options built
// here from the users' caps decode a set of hostile inputs exactly as the
// old ones did.
var oldOptions = []struct {
	name   string
	old    cbor.DecOptions
	limits Limits
	// caseInsensitive: the old options left FieldNameMatching at the
	// library's default (case-insensitive fallback).
	caseInsensitive bool
}{
	{
		name: "proto",
		old: cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			MaxNestedLevels:   8,
			MaxArrayElements:  1024,
			MaxMapPairs:       32,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
			UTF8:              cbor.UTF8RejectInvalid,
			FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		},
		limits: Limits{MaxNestedLevels: 8, MaxArrayElements: 1024, MaxMapPairs: 32},
	},
	{
		name: "userdata",
		old: cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			MaxNestedLevels:   4,
			MaxArrayElements:  16,
			MaxMapPairs:       16,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
			UTF8:              cbor.UTF8RejectInvalid,
		},
		limits:          Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16},
		caseInsensitive: true,
	},
	{
		name: "checkpoint",
		old: cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			MaxNestedLevels:   8,
			MaxArrayElements:  4096,
			MaxMapPairs:       64,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		},
		limits:          Limits{MaxNestedLevels: 8, MaxArrayElements: 4096, MaxMapPairs: 64},
		caseInsensitive: true,
	},
	{
		name: "nsm",
		old: cbor.DecOptions{
			DupMapKey:         cbor.DupMapKeyEnforcedAPF,
			IndefLength:       cbor.IndefLengthForbidden,
			TagsMd:            cbor.TagsForbidden,
			MaxNestedLevels:   4,
			MaxArrayElements:  16,
			MaxMapPairs:       16,
			ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
			UTF8:              cbor.UTF8RejectInvalid,
			FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		},
		limits: Limits{MaxNestedLevels: 4, MaxArrayElements: 16, MaxMapPairs: 16},
	},
}

// inner and outer are keyasint structs like the users' (every field
// keyasint), with an array of maps and a nested map.
type inner struct {
	A uint64 `cbor:"1,keyasint"`
	B string `cbor:"2,keyasint"`
}

type outer struct {
	N     uint64  `cbor:"1,keyasint"`
	S     string  `cbor:"2,keyasint"`
	Bytes []byte  `cbor:"3,keyasint"`
	List  []inner `cbor:"4,keyasint"`
	In    inner   `cbor:"5,keyasint"`
	Ints  []int   `cbor:"6,keyasint"`
}

// mapOf returns the hex of a map header for n pairs (n < 256) and n pairs
// of distinct unsigned keys from 32 with value 0.
func mapOf(n int) string {
	var b strings.Builder
	if n < 24 {
		b.WriteString(hex.EncodeToString([]byte{0xa0 + byte(n)}))
	} else {
		b.WriteString("b8 " + hex.EncodeToString([]byte{byte(n)}))
	}
	for i := range n {
		b.WriteString(" 18 " + hex.EncodeToString([]byte{byte(32 + i)}) + " 00")
	}
	return b.String()
}

// hostile returns inputs that probe every strict option and cap.
func hostile() map[string]string {
	rep := strings.Repeat
	return map[string]string{
		"valid":               "a3 01 01 02 61 78 05 a1 01 02",
		"empty map":           "a0",
		"duplicate int key":   "a2 01 01 01 02",
		"duplicate via text":  "a2 01 01 61 31 02",
		"text key for int":    "a1 61 31 07",
		"unknown int key":     "a1 09 01",
		"unknown text key":    "a1 61 7a 01",
		"case variant name":   "a1 61 41 01",
		"indefinite map":      "bf 01 01 ff",
		"indefinite bytes":    "a1 03 5f 41 00 ff",
		"indefinite array":    "a1 06 9f 01 ff",
		"tag":                 "a1 01 c1 01",
		"tag 24 bytes":        "a1 03 d8 18 41 00",
		"invalid utf8":        "a1 02 62 c3 28",
		"nested inner too":    "a1 05 a1 02 61 ff",
		"deep any":            rep("81", 9) + "00",
		"deep 5 any":          rep("81", 4) + "00",
		"deep 9":              "a1 04 81 a1 02 " + rep("81", 6) + "00",
		"array 17":            "a1 06 91" + rep(" 01", 17),
		"array 1025":          "a1 06 99 0401" + rep(" 01", 1025),
		"array 4097":          "a1 06 99 1001" + rep(" 01", 4097),
		"map 17 pairs":        mapOf(17),
		"map 33 pairs":        mapOf(33),
		"map 65 pairs":        mapOf(65),
		"trailing byte":       "a0 00",
		"truncated":           "a1 01",
		"wrong type":          "a1 01 61 78",
		"null field":          "a1 04 f6",
		"undefined field":     "a1 01 f7",
		"float for int":       "a1 01 f9 3c00",
		"negative for uint":   "a1 01 20",
		"overflowing length":  "a1 03 5b ffffffffffffffff",
		"byte string as text": "a1 02 41 78",
		"text as byte string": "a1 03 61 78",
		"simple value":        "a1 01 f0",
		"reserved ai":         "a1 01 1c",
		"break alone":         "ff",
	}
}

func TestDecOptionsMatchOldOptions(t *testing.T) {
	for _, u := range oldOptions {
		t.Run(u.name, func(t *testing.T) {
			oldDM, err := u.old.DecMode()
			if err != nil {
				t.Fatal(err)
			}
			newDM := DecMode(u.limits)
			want := oldDM.DecOptions()
			if u.caseInsensitive {
				want.FieldNameMatching = cbor.FieldNameMatchingCaseSensitive
			}
			if got := newDM.DecOptions(); !reflect.DeepEqual(got, want) {
				t.Errorf("options differ:\n got %+v\nwant %+v", got, want)
			}
			for name, h := range hostile() {
				in, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
				if err != nil {
					t.Fatalf("%s: bad hex: %v", name, err)
				}
				for _, target := range []func() any{
					func() any { return new(outer) },
					func() any { return new(any) },
				} {
					vo, vn := target(), target()
					eo, en := oldDM.Unmarshal(in, vo), newDM.Unmarshal(in, vn)
					if errString(eo) != errString(en) {
						t.Errorf("%s into %T: old error %v, new error %v", name, vo, eo, en)
					}
					if eo == nil && !reflect.DeepEqual(vo, vn) {
						t.Errorf("%s into %T: old decoded %+v, new %+v", name, vo, vo, vn)
					}
				}
			}
		})
	}
}

// TestHostileInputsRefused checks that the inputs meant to be refused are
// refused by every user's options (so the comparison above compares
// refusals, not only acceptances). The decoder alone accepts a text key
// naming a keyasint field, null, undefined and simple values: the users
// that need one encoding per value refuse those by re-encoding.
func TestHostileInputsRefused(t *testing.T) {
	accepted := map[string]bool{
		"valid": true, "empty map": true, "text key for int": true,
		"null field": true, "undefined field": true, "simple value": true,
	}
	for _, u := range oldOptions {
		dm := DecMode(u.limits)
		for name, h := range hostile() {
			in, _ := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
			err := dm.Unmarshal(in, new(outer))
			if accepted[name] && err != nil {
				t.Errorf("%s: %s refused: %v", u.name, name, err)
			}
			capped := strings.HasPrefix(name, "array ") || strings.HasPrefix(name, "map ") || strings.HasPrefix(name, "deep")
			if !accepted[name] && !capped && err == nil {
				t.Errorf("%s: %s accepted", u.name, name)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDecModeRequiresEveryCap(t *testing.T) {
	for _, l := range []Limits{
		{MaxArrayElements: 16, MaxMapPairs: 16},
		{MaxNestedLevels: 4, MaxMapPairs: 16},
		{MaxNestedLevels: 4, MaxArrayElements: 16},
		{MaxNestedLevels: 3, MaxArrayElements: 16, MaxMapPairs: 16},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DecMode(%+v) did not panic", l)
				}
			}()
			DecMode(l)
		}()
	}
}

func TestEncOptionsAreCoreDeterministic(t *testing.T) {
	for _, nc := range []cbor.NilContainersMode{cbor.NilContainerAsNull, cbor.NilContainerAsEmpty} {
		want := cbor.CoreDetEncOptions()
		want.NilContainers = nc
		if got := EncOptions(nc); !reflect.DeepEqual(got, want) {
			t.Errorf("EncOptions(%v) = %+v, want %+v", nc, got, want)
		}
		a, _ := EncMode(nc).Marshal(struct{ B []byte }{})
		b, _ := func() ([]byte, error) { em, _ := want.EncMode(); return em.Marshal(struct{ B []byte }{}) }()
		if string(a) != string(b) {
			t.Errorf("EncMode(%v) encodes %x, want %x", nc, a, b)
		}
	}
}
