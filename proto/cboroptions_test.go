package proto

import (
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestDecModeUnchanged checks that the decoder built by package strictcbor
// has exactly the options proto defined for itself before (copied here
// verbatim); strictcbor's tests decode hostile inputs with both.
func TestDecModeUnchanged(t *testing.T) {
	old, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  MaxKeys,
		MaxMapPairs:       32,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decMode.DecOptions(), old.DecOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("decoding options changed:\n got %+v\nwant %+v", got, want)
	}
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	if got := encMode.EncOptions(); !reflect.DeepEqual(got, eo) {
		t.Errorf("encoding options changed:\n got %+v\nwant %+v", got, eo)
	}
}
