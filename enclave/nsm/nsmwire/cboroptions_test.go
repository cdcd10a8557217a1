package nsmwire

import (
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestDecModeUnchanged checks that the decoders built by package strictcbor
// have exactly the options package nsm defined for itself before the wire format moved here (copied here
// verbatim); strictcbor's tests decode hostile inputs with both.
func TestDecModeUnchanged(t *testing.T) {
	strict := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}
	lax := strict
	lax.ExtraReturnErrors = cbor.ExtraDecErrorNone
	for _, c := range []struct {
		name string
		dm   cbor.DecMode
		old  cbor.DecOptions
	}{{"strict", decMode, strict}, {"lax", laxDecMode, lax}} {
		old, err := c.old.DecMode()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.dm.DecOptions(), old.DecOptions(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s decoding options changed:\n got %+v\nwant %+v", c.name, got, want)
		}
	}
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	if got := encMode.EncOptions(); !reflect.DeepEqual(got, eo) {
		t.Errorf("encoding options changed:\n got %+v\nwant %+v", got, eo)
	}
}
