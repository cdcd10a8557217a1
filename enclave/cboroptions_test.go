package enclave

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestCheckpointDecModeUnchanged checks that the checkpoint decoder built
// by package strictcbor has the options the enclave defined for itself
// before (copied here verbatim), but for UTF8 (the old options left it at
// the library's default, which is UTF8RejectInvalid: the same) and
// FieldNameMatching: the old options let a text key match a field name
// case-insensitively, the shared ones do not. Every field of every struct a
// checkpoint holds is keyasint (checked below), so its names are decimal
// digits, which have no case: the two read every input alike.
// strictcbor's tests decode hostile inputs with both.
func TestCheckpointDecModeUnchanged(t *testing.T) {
	old, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  4096,
		MaxMapPairs:       64,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	want := old.DecOptions()
	want.FieldNameMatching = cbor.FieldNameMatchingCaseSensitive
	if got := checkpointDecMode.DecOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("decoding options changed:\n got %+v\nwant %+v", got, want)
	}
	if got, want := checkpointEncMode.EncOptions(), cbor.CoreDetEncOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("encoding options changed:\n got %+v\nwant %+v", got, want)
	}

	keyasint := regexp.MustCompile(`^[0-9]+,keyasint(,omitempty)?$`)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue // not encoded
			}
			if tag := f.Tag.Get("cbor"); !keyasint.MatchString(tag) {
				t.Errorf("%s.%s has tag %q, not keyasint: FieldNameMatching matters for it", typ, f.Name, tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[checkpoint]())
	if len(seen) < 4 {
		t.Errorf("walked only %d struct types", len(seen))
	}
}
