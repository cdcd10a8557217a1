package admin

import (
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/stamp"
)

// MaxMembers caps the number of admins in a [Set].
const MaxMembers = 32

// MaxConfigSize caps the JSON [Config] that [ParseConfig] reads.
const MaxConfigSize = 64 << 10

// Member is one admin: a unique name and the public key that verifies the
// admin's signatures.
type Member struct {
	// Name identifies the admin in envelopes and in the audit log: 1 to
	// 64 of [A-Za-z0-9._@+-], starting with a letter or digit. Names are
	// case-sensitive, and two names of a set may not differ only in case.
	Name string `json:"name"`
	// Scheme is the key's signature scheme, "ed25519" or "p256".
	Scheme stamp.Scheme `json:"scheme"`
	// PublicKey is the key in hex (either case): 32 bytes for Ed25519,
	// the 33-byte compressed point for P-256.
	PublicKey string `json:"public_key"`
}

// Config describes an admin set: its members, its quorum, and per-kind
// thresholds above the quorum.
type Config struct {
	// Members lists 1 to MaxMembers admins, names and keys unique.
	Members []Member `json:"members"`
	// Quorum is M, the number of distinct admins whose signatures a
	// command needs, 1 ≤ M ≤ len(Members), unless Thresholds or the kind
	// says otherwise (see [Set.Threshold]). A quorum of 1 lets one admin
	// act alone; production sets should use at least 2.
	Quorum int `json:"quorum"`
	// Thresholds raises the threshold of some kinds above Quorum (up to
	// len(Members)), for example a higher quorum for policy changes. It
	// may not name an unknown kind or a cancel kind, which always needs
	// exactly one signature. A kind that only stops ([Kind.OnlyStops]:
	// freeze) needs one signature by default; its entry may be 1 to
	// len(Members), whatever Quorum is.
	Thresholds map[Kind]int `json:"thresholds,omitempty"`
}

// Set is a checked admin set. Make one with [NewSet] or [ParseConfig]; a
// Set is immutable and safe for concurrent use.
type Set struct {
	members    []Member // normalized: lowercase hex
	keys       map[string]*Key
	quorum     int
	thresholds map[Kind]int
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("admin name %s: want 1 to 64 of [A-Za-z0-9._@+-], starting with a letter or digit", quote(name))
	}
	return nil
}

// NewSet checks c and returns the admin set it describes. It refuses an
// empty set or one of more than [MaxMembers], duplicate names, duplicate
// keys, keys that [NewKey] refuses (notably small-order or non-canonical
// Ed25519 keys and P-256 keys not on the curve), a quorum outside 1 to N,
// and thresholds that are not between the quorum and N (1 and N for a
// kind that only stops) or that name an unknown or cancel kind.
func NewSet(c Config) (*Set, error) {
	n := len(c.Members)
	if n == 0 || n > MaxMembers {
		return nil, fmt.Errorf("admin: set: want 1 to %d members, got %d", MaxMembers, n)
	}
	s := &Set{
		keys:       make(map[string]*Key, n),
		quorum:     c.Quorum,
		thresholds: make(map[Kind]int, len(c.Thresholds)),
	}
	seenKeys := map[string]string{}
	seenNames := map[string]string{} // lower case → as listed
	for i, m := range c.Members {
		if err := checkName(m.Name); err != nil {
			return nil, fmt.Errorf("admin: set: members[%d]: %v", i, err)
		}
		if other, dup := seenNames[strings.ToLower(m.Name)]; dup {
			if other == m.Name {
				return nil, fmt.Errorf("admin: set: members[%d]: name %q listed twice", i, m.Name)
			}
			return nil, fmt.Errorf("admin: set: members[%d]: name %q differs from %q only in case", i, m.Name, other)
		}
		seenNames[strings.ToLower(m.Name)] = m.Name
		if len(m.PublicKey) > 2*p256KeySize {
			return nil, fmt.Errorf("admin: set: members[%d] (%s): public_key is %d hex digits, too long for any key", i, m.Name, len(m.PublicKey))
		}
		raw, err := hex.DecodeString(m.PublicKey)
		if err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("admin: set: members[%d] (%s): public_key is not hex", i, m.Name)
		}
		k, err := NewKey(stamp.PublicKey{Scheme: m.Scheme, Key: raw})
		if err != nil {
			return nil, fmt.Errorf("admin: set: members[%d] (%s): %w", i, m.Name, err)
		}
		pub := k.pub
		id := pub.String()
		if other, dup := seenKeys[id]; dup {
			return nil, fmt.Errorf("admin: set: members[%d] (%s): same key as %s", i, m.Name, other)
		}
		seenKeys[id] = m.Name
		s.keys[m.Name] = k
		s.members = append(s.members, Member{Name: m.Name, Scheme: pub.Scheme, PublicKey: hex.EncodeToString(pub.Key)})
	}
	if c.Quorum < 1 || c.Quorum > n {
		return nil, fmt.Errorf("admin: set: quorum %d: want 1 to %d (the number of members)", c.Quorum, n)
	}
	for _, kind := range slices.Sorted(maps.Keys(c.Thresholds)) {
		t := c.Thresholds[kind]
		switch {
		case !kind.Known():
			return nil, fmt.Errorf("admin: set: thresholds: unknown kind %s", quote(string(kind)))
		case kind.IsCancel():
			return nil, fmt.Errorf("admin: set: thresholds: %s is a cancel kind, which any one admin may issue", kind)
		case kind.OnlyStops() && (t < 1 || t > n):
			return nil, fmt.Errorf("admin: set: thresholds: %s: %d, want 1 to %d (the number of members)", kind, t, n)
		case !kind.OnlyStops() && (t < c.Quorum || t > n):
			return nil, fmt.Errorf("admin: set: thresholds: %s: %d, want %d (the quorum) to %d (the number of members)", kind, t, c.Quorum, n)
		}
		s.thresholds[kind] = t
	}
	return s, nil
}

// ParseConfig strictly parses a JSON [Config] of at most [MaxConfigSize]
// bytes and returns the Set from [NewSet]:
//
//	{"members": [{"name": "alice", "scheme": "ed25519", "public_key": "HEX"}, ...],
//	 "quorum": 2, "thresholds": {"policy_change": 3}}
func ParseConfig(b []byte) (*Set, error) {
	var c Config
	if err := strictjson.Unmarshal(b, &c, MaxConfigSize); err != nil {
		return nil, fmt.Errorf("admin: set: %w", err)
	}
	return NewSet(c)
}

// Config returns the set's configuration, normalized (keys in lowercase
// hex), as a copy.
func (s *Set) Config() Config {
	c := Config{Members: slices.Clone(s.members), Quorum: s.quorum}
	if len(s.thresholds) > 0 {
		c.Thresholds = maps.Clone(s.thresholds)
	}
	return c
}

// Key returns the key of the admin called name.
func (s *Set) Key(name string) (*Key, bool) {
	if s == nil {
		return nil, false
	}
	k, ok := s.keys[name]
	return k, ok
}

// Threshold returns how many distinct admins must sign a command of the
// given kind: 1 for a cancel kind ([Kind.IsCancel]), the kind's entry in
// [Config.Thresholds] if it has one, 1 for another kind that only stops
// ([Kind.OnlyStops]: freeze), and the quorum otherwise. For a kind
// that is not [Kind.Known] it returns one more than the number of members,
// a threshold no envelope meets (and for an empty Set, MaxMembers+1).
func (s *Set) Threshold(kind Kind) int {
	switch {
	case s == nil || len(s.members) == 0:
		return MaxMembers + 1
	case !kind.Known():
		return len(s.members) + 1
	case kind.IsCancel():
		return 1
	}
	if t, ok := s.thresholds[kind]; ok {
		return t
	}
	if kind.OnlyStops() {
		return 1
	}
	return s.quorum
}
