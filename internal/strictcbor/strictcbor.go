// Package strictcbor defines, once, how nitrosign decodes CBOR that a peer
// could have crafted (protocol frames, the NSM's answers, attestation
// user_data, sealed checkpoints) and how it encodes CBOR deterministically.
//
// Every strict decoder refuses: duplicate map keys (also those that are equal
// only after decoding, such as 1 and a text key naming the same field),
// indefinite-length items, tags, invalid UTF-8 in text strings, and map keys
// that name no field of the target struct; struct fields match text keys
// case-sensitively only. The caps on nesting depth, array elements and map
// pairs differ between uses (a protocol frame lists up to MaxKeys keys, an
// NSM message has no arrays), so each user states its own in a [Limits]; the
// zero value is not a cap (the library would read it as its large defaults),
// and [DecMode] refuses it. The library has no cap on the length of a byte
// or text string: each user bounds its input as a whole before decoding
// (frame size, user_data size, checkpoint size), and the decoder never
// allocates more for a string than the input holds.
//
// What a decoder accepts is not yet canonical: the users that need one
// encoding per value (proto, nsm, userdata) re-encode what they decoded with
// [EncOptions] and compare.
package strictcbor

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits are the caps of one strict decoder. Each must be within the
// library's range: MaxNestedLevels 4 to 65535, MaxArrayElements and
// MaxMapPairs 16 to 2147483647.
type Limits struct {
	MaxNestedLevels  int // depth of nested arrays and maps (the outermost item is level 1)
	MaxArrayElements int // elements in any one array
	MaxMapPairs      int // pairs in any one map
}

// DecOptions returns the strict decoding options with the caps of l.
func DecOptions(l Limits) cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   l.MaxNestedLevels,
		MaxArrayElements:  l.MaxArrayElements,
		MaxMapPairs:       l.MaxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}
}

// DecMode returns the strict decoding mode with the caps of l. It panics
// if a cap is zero or out of the library's range: the caps are constants,
// so this is a programming error that shows at start-up.
func DecMode(l Limits) cbor.DecMode {
	if l.MaxNestedLevels == 0 || l.MaxArrayElements == 0 || l.MaxMapPairs == 0 {
		panic(fmt.Sprintf("strictcbor: every cap must be stated: %+v", l))
	}
	dm, err := DecOptions(l).DecMode()
	if err != nil {
		panic("strictcbor: " + err.Error())
	}
	return dm
}

// EncOptions returns the deterministic encoding options: RFC 8949 core
// deterministic encoding (shortest integers, lengths and floats, map keys
// sorted bytewise), with nil slices and maps encoded as nilContainers says.
// The users differ there and cannot converge without changing bytes already
// sealed, signed or attested: proto and nsm encode nil as empty (one encoding
// for nil and empty), userdata and checkpoints as null.
func EncOptions(nilContainers cbor.NilContainersMode) cbor.EncOptions {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = nilContainers
	return eo
}

// EncMode returns the mode of EncOptions(nilContainers). It panics on error,
// which the fixed options cannot produce.
func EncMode(nilContainers cbor.NilContainersMode) cbor.EncMode {
	em, err := EncOptions(nilContainers).EncMode()
	if err != nil {
		panic("strictcbor: " + err.Error())
	}
	return em
}
