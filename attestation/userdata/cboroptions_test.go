package userdata

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestDecModeUnchanged checks that the decoder built by package strictcbor
// has the options userdata defined for itself before (copied here
// verbatim), but for FieldNameMatching: the old options let a text key
// match a field name case-insensitively, the shared ones do not. Every
// field of UserData is keyasint, so its names are decimal digits, which
// have no case: the two read every input alike. strictcbor's tests decode
// hostile inputs with both.
func TestDecModeUnchanged(t *testing.T) {
	old, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	want := old.DecOptions()
	want.FieldNameMatching = cbor.FieldNameMatchingCaseSensitive
	if got := decMode.DecOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("decoding options changed:\n got %+v\nwant %+v", got, want)
	}
	typ := reflect.TypeFor[UserData]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if tag := f.Tag.Get("cbor"); !strings.HasSuffix(tag, ",keyasint") {
			t.Errorf("field %s has tag %q, not keyasint: FieldNameMatching matters for it", f.Name, tag)
		}
	}
	if got, want := encMode.EncOptions(), cbor.CoreDetEncOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("encoding options changed:\n got %+v\nwant %+v", got, want)
	}
}
