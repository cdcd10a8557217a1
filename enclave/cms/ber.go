package cms

import (
	"errors"
	"fmt"
)

// Limits of the decoder. A CiphertextForRecipient from KMS is about 500
// bytes for a data key and under 5 KiB for the largest plaintext KMS
// returns (4096 bytes from Decrypt; an RSA-4096 private key from
// GenerateDataKeyPair is smaller), nested 11 elements deep, in about 30
// elements; the limits leave room for that and bound everything else.
const (
	// MaxSize is the largest input [Parse] accepts, in bytes.
	MaxSize = 64 << 10
	// MaxCiphertextSize is the largest encrypted content [Parse] accepts,
	// in bytes (after the segments of a constructed encoding are joined).
	MaxCiphertextSize = 16 << 10
	// maxDepth is the deepest nesting of elements the decoder accepts, the
	// outermost element being at depth 1.
	maxDepth = 16
	// maxElements is the most elements the decoder accepts in one input,
	// end-of-contents markers not counted.
	maxElements = 1024
)

// Identifier classes and universal tag numbers used here.
const (
	classUniversal = 0
	classContext   = 2

	tagInteger     = 2
	tagOctetString = 4
	tagNull        = 5
	tagOID         = 6
	tagSequence    = 16
	tagSet         = 17
)

// element is one decoded BER element: its identifier, and either the
// contents of a primitive element or the children of a constructed one.
// A tree of elements is the DER reading of the input: lengths are resolved,
// and what a BER encoder may split (a constructed string) stays split until
// the one place that accepts it joins it.
type element struct {
	class       byte
	tag         byte
	constructed bool
	content     []byte    // primitive only; aliases the input
	children    []element // constructed only
}

// is reports whether e has the given class, tag number and form.
func (e element) is(class, tag byte, constructed bool) bool {
	return e.class == class && e.tag == tag && e.constructed == constructed
}

var errTruncated = errors.New("cms: input is truncated")

// decodeBER decodes in, which must be exactly one BER element, within the
// limits above.
func decodeBER(in []byte) (element, error) {
	if len(in) == 0 {
		return element{}, errors.New("cms: input is empty")
	}
	if len(in) > MaxSize {
		return element{}, fmt.Errorf("cms: input is %d bytes, more than the %d accepted", len(in), MaxSize)
	}
	d := decoder{}
	e, rest, err := d.element(in, 1)
	if err != nil {
		return element{}, err
	}
	if len(rest) != 0 {
		return element{}, fmt.Errorf("cms: %d trailing bytes after the content info", len(rest))
	}
	return e, nil
}

type decoder struct {
	elements int
}

// element decodes the element at the start of b, at nesting depth depth,
// and returns it with the bytes that follow it.
//
// It accepts the identifier and length forms of X.690 that CMS encoders
// use: low tag numbers (0 to 30) only; definite lengths in the shortest form
// (as DER requires; BER allows longer forms, which no encoder of this
// format emits); and indefinite lengths, on constructed elements only,
// ended by an end-of-contents marker.
func (d *decoder) element(b []byte, depth int) (element, []byte, error) {
	if depth > maxDepth {
		return element{}, nil, fmt.Errorf("cms: elements nest deeper than %d", maxDepth)
	}
	d.elements++
	if d.elements > maxElements {
		return element{}, nil, fmt.Errorf("cms: more than %d elements", maxElements)
	}
	if len(b) < 2 {
		return element{}, nil, errTruncated
	}
	id, lb := b[0], b[1]
	b = b[2:]
	if id == 0 {
		return element{}, nil, errors.New("cms: end-of-contents marker where an element belongs")
	}
	if id&0x1f == 0x1f {
		return element{}, nil, errors.New("cms: high tag numbers are not accepted")
	}
	e := element{class: id >> 6, tag: id & 0x1f, constructed: id&0x20 != 0}

	if lb == 0x80 {
		if !e.constructed {
			return element{}, nil, errors.New("cms: indefinite length on a primitive element")
		}
		for {
			if len(b) < 2 {
				return element{}, nil, errTruncated
			}
			if b[0] == 0 && b[1] == 0 {
				return e, b[2:], nil
			}
			c, rest, err := d.element(b, depth+1)
			if err != nil {
				return element{}, nil, err
			}
			e.children = append(e.children, c)
			b = rest
		}
	}

	n := int(lb)
	if lb > 0x80 {
		k := int(lb & 0x7f)
		if k > 3 {
			return element{}, nil, fmt.Errorf("cms: length of %d bytes is too long", k)
		}
		if len(b) < k {
			return element{}, nil, errTruncated
		}
		n = 0
		for _, c := range b[:k] {
			n = n<<8 | int(c)
		}
		if b[0] == 0 || n < 0x80 {
			return element{}, nil, errors.New("cms: length is not in its shortest form")
		}
		b = b[k:]
	}
	if n > len(b) {
		return element{}, nil, errTruncated
	}
	content, rest := b[:n], b[n:]
	if !e.constructed {
		e.content = content
		return e, rest, nil
	}
	for len(content) > 0 {
		c, more, err := d.element(content, depth+1)
		if err != nil {
			return element{}, nil, err
		}
		e.children = append(e.children, c)
		content = more
	}
	return e, rest, nil
}
