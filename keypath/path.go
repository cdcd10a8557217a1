// Package keypath is the BIP-32 derivation path format: "m/44'/60'/0'/0/0",
// parsed strictly so that one path has one spelling. The genesis
// configuration and admin commands name keys by path; the enclave derives
// them (package enclave/keys).
package keypath

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Path is a BIP-32 derivation path: the child indices from a key down to a
// descendant, hardened indices offset by Hardened.
type Path []uint32

// Hardened is the offset of hardened child indices: index i' is
// Hardened + i.
const Hardened uint32 = 1 << 31

// MaxDepth is the deepest key BIP-32 can serialize (depth is one byte), and
// so the most components a path may have.
const MaxDepth = 255

// maxPathLen bounds the text ParsePath looks at: "m" and MaxDepth
// components of "/" + 10 digits + a hardened mark.
const maxPathLen = 1 + MaxDepth*12

// ParsePath parses a path such as "m/44'/60'/0'/0/0". A component is a
// decimal index below 2^31 without leading zeros, followed by ' or h if it
// is hardened; "m" alone is the empty path. Anything else is refused: an
// empty component, a leading zero ("01"), an index of 2^31 or more, a
// missing "m", spaces, or more than MaxDepth components. A path names a
// key, so two spellings of one path would let a policy that allows one be
// bypassed with the other.
func ParsePath(s string) (Path, error) {
	if len(s) > maxPathLen {
		return nil, fmt.Errorf("keypath: path is %d characters, limit is %d", len(s), maxPathLen)
	}
	rest, ok := strings.CutPrefix(s, "m")
	if !ok {
		return nil, errors.New(`keys: path must start with "m"`)
	}
	p := Path{}
	if rest == "" {
		return p, nil
	}
	if rest[0] != '/' {
		return nil, errors.New(`keys: path must start with "m/"`)
	}
	for n, c := range strings.Split(rest[1:], "/") {
		if len(p) == MaxDepth {
			return nil, fmt.Errorf("keypath: path is deeper than %d", MaxDepth)
		}
		i, err := parseComponent(c)
		if err != nil {
			return nil, fmt.Errorf("keypath: path component %d: %w", n+1, err)
		}
		p = append(p, i)
	}
	return p, nil
}

func parseComponent(c string) (uint32, error) {
	var hardened bool
	if d, ok := strings.CutSuffix(c, "'"); ok {
		c, hardened = d, true
	} else if d, ok := strings.CutSuffix(c, "h"); ok {
		c, hardened = d, true
	}
	if c == "" {
		return 0, errors.New("empty index")
	}
	for i := range len(c) {
		if c[i] < '0' || c[i] > '9' {
			return 0, errors.New("index is not a decimal number")
		}
	}
	if len(c) > 1 && c[0] == '0' {
		return 0, errors.New("index has a leading zero")
	}
	v, err := strconv.ParseUint(c, 10, 32)
	if err != nil || v >= uint64(Hardened) {
		return 0, errors.New("index is 2^31 or more; write hardened indices with '")
	}
	if hardened {
		v += uint64(Hardened)
	}
	return uint32(v), nil
}

// String returns p in the form ParsePath reads, with ' marking hardened
// indices: "m/44'/60'/0'/0/0", or "m" for the empty path.
func (p Path) String() string {
	var b strings.Builder
	b.WriteByte('m')
	for _, i := range p {
		b.WriteByte('/')
		b.WriteString(FormatIndex(i))
	}
	return b.String()
}

// FormatIndex renders a child index as a path component: 5 or 44'.
func FormatIndex(i uint32) string {
	if i >= Hardened {
		return strconv.FormatUint(uint64(i-Hardened), 10) + "'"
	}
	return strconv.FormatUint(uint64(i), 10)
}
