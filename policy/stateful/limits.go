package stateful

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/ethtx"
)

// Bounds on what a Tracker holds, so that its memory and its snapshots have
// a known worst case.
const (
	// MaxRules caps len(rules) and, separately, len(velocities).
	MaxRules = 4096
	// MaxKeyLen caps the length of a key id in rules and snapshots. Refusals
	// of a longer key are counted in the overflow counter (see Refusals).
	MaxKeyLen = 255
	// MaxIDLen caps the length of a rule or velocity ID.
	MaxIDLen = 128
	// MaxWindow caps every window.
	MaxTrackedWindow = 400 * 24 * time.Hour
	// MaxBucketsPerWindow caps Options.BucketsPerWindow.
	MaxBucketsPerWindow = 1024
	// MaxRefusalKeys caps Options.MaxRefusalKeys.
	MaxRefusalKeys = 16384
	// MaxCheckpointEvery caps Options.CheckpointEvery.
	MaxCheckpointEvery = 1_000_000
	// MaxMaxSkew caps Options.MaxSkew.
	MaxMaxSkew = time.Hour
	// MaxSnapshotSize caps a snapshot. New refuses a configuration whose
	// worst-case snapshot would be larger, so MarshalBinary always fits.
	MaxSnapshotSize = 16 << 20
)

// Defaults of Options.
const (
	DefaultBucketsPerWindow   = 64               // Options.BucketsPerWindow
	DefaultCheckpointEvery    = 64               // Options.CheckpointEvery
	DefaultCheckpointInterval = 10 * time.Second // Options.CheckpointInterval
	DefaultMaxSkew            = 5 * time.Second  // Options.MaxSkew
	DefaultRefusalWindow      = 24 * time.Hour   // Options.RefusalWindow
	DefaultMaxRefusalKeys     = 1024             // Options.MaxRefusalKeys
)

// refusalBuckets is how many time buckets divide Options.RefusalWindow.
const refusalBuckets = 64

// maxRefusalCount caps a refusal count (per bucket and in all).
const maxRefusalCount = 1<<32 - 1

// maxPendingCheckpoints is how many checkpoints awaiting acknowledgement a
// Tracker remembers; acknowledging an older one is an error.
const maxPendingCheckpoints = 64

// Rule is a rolling spending limit: the spends of Key on ChainID in Asset
// (to Destination, or to any destination if Destination is nil) in any
// window of length Window may add up to at most Max.
type TrackedLimit struct {
	// ID names the rule in refusals and audit records: a KindRollingLimit
	// ID of Key, unique among rules and velocities, whose string form is
	// at most MaxIDLen bytes ([TrackerRules] gives each limit of a policy
	// its own).
	ID RuleID
	// Key is the signing key id the rule limits, 1 to MaxKeyLen bytes.
	Key string
	// ChainID is the chain of the spends counted.
	ChainID uint64
	// Asset is the token contract; the zero address means the chain's
	// native currency.
	Asset ethtx.Address
	// Destination, if not nil, limits only spends to this address.
	Destination *ethtx.Address
	// Window is the length of the rolling window, up to MaxWindow.
	Window time.Duration
	// Max is the most the window may hold, in the asset's smallest unit,
	// 0 to 2^256−1.
	Max *big.Int
}

// Velocity limits how many transactions Key may make in any window of
// length Window: each Reserve for the key is one transaction, whatever its
// spends.
type TrackedVelocity struct {
	// ID names the limit in refusals, like TrackedLimit.ID: a
	// KindVelocity ID of Key.
	ID RuleID
	// Key is the signing key id, 1 to MaxKeyLen bytes.
	Key string
	// Window is the length of the rolling window, up to MaxWindow.
	Window time.Duration
	// MaxTransactions is the most transactions the window may hold (0
	// refuses every transaction).
	MaxTransactions uint64
}

// Spend is one movement of value a transaction makes: Amount of Asset (the
// zero address for the native currency) on ChainID to To. A transaction
// may make several (a native value and token transfers, a batch).
type Spend struct {
	// ChainID is the chain the transaction is for.
	ChainID uint64
	// Asset is the token contract, or the zero address for the native
	// currency.
	Asset ethtx.Address
	// To is the destination: the recipient of the value or tokens.
	To ethtx.Address
	// Amount is non-negative and below 2^256.
	Amount *big.Int
}

// Options configures a Tracker. The zero value of a field means its
// default.
type Options struct {
	// BucketsPerWindow divides each window into this many time buckets
	// (default 64, at most MaxBucketsPerWindow): a spend counts against a
	// limit for at least its window and less than Window/BucketsPerWindow
	// longer (see the package documentation).
	BucketsPerWindow int
	// CheckpointEvery is C, the number of transactions after which a
	// checkpoint is due (NeedsCheckpoint), and with RequireFresh the most
	// transactions reserved beyond the newest acknowledged checkpoint
	// (default 64).
	CheckpointEvery int
	// CheckpointInterval is T: a checkpoint is due once a change has gone
	// this long without one (default 10 s, at most MaxWindow).
	CheckpointInterval time.Duration
	// RequireFresh makes Reserve and Check refuse (rule
	// refusal.RuleCheckpoint) once CheckpointEvery transactions have been
	// reserved since the newest acknowledged checkpoint.
	RequireFresh bool
	// MaxSkew is how far in the future of the restoring enclave's clock a
	// snapshot's time may be (default 5 s, at most 1 h).
	MaxSkew time.Duration
	// RefusalWindow is the longest window Refusals counts over; refusals
	// are kept this long (default 24 h, at most MaxWindow).
	RefusalWindow time.Duration
	// MaxRefusalKeys is how many keys have their own refusal counter
	// (default 1024, at most MaxRefusalKeys); refusals of further keys go
	// to the overflow counter.
	MaxRefusalKeys int
}

// Refusal is the error Reserve returns when a limit refuses a transaction.
type Refusal struct {
	// Rule is the rule the refusal names (error.rule in the HTTP API, see
	// package refusal): ID.Kind.Rule() when a TrackedLimit or a
	// TrackedVelocity refused (refusal.RuleRollingLimit,
	// refusal.RuleVelocity), refusal.RuleCheckpoint (Options.RequireFresh).
	Rule string
	// ID is the ID of the TrackedLimit or TrackedVelocity that refused;
	// the zero RuleID for refusal.RuleCheckpoint.
	ID RuleID
	// Msg says why, for humans.
	Msg string
}

// Error returns "limits: ID: MSG", or "limits: RULE: MSG" when there is no
// ID.
func (r *Refusal) Error() string {
	name := r.ID.String()
	if name == "" {
		name = r.Rule
	}
	return "limits: " + name + ": " + r.Msg
}

// Tracker holds the usage of every rule and velocity limit and the refusal
// counts, decides whether transactions fit, and writes and restores
// snapshots. It is safe for concurrent use. Every method takes the time
// from its caller; time never goes backward inside a Tracker: a now before
// the latest one seen (or before 1970, or from 2200 on) counts as the
// latest one seen.
type Tracker struct {
	mu     sync.Mutex
	opts   Options
	keys   map[string]*keyState
	tracks []*track // amount and velocity tracks, in snapshot order
	rules  map[RuleID]ruleRef
	// ruleOrder lists the rule IDs, then the velocity IDs, as New got them.
	ruleOrder []RuleID
	now       int64 // latest time seen, Unix ns

	refWindow, refWidth int64
	refusals            map[string]*track
	overflow            *track
	lastPurge           int64 // bucket index of the last sweep of idle refusal keys

	gen        uint64 // generation of the newest checkpoint (or restored snapshot)
	seq        uint64 // transactions reserved by this Tracker
	ckptSeq    uint64 // seq when the newest checkpoint was taken
	ackedSeq   uint64 // seq when the newest acknowledged checkpoint was taken
	ackedGen   uint64
	pending    []pendingCheckpoint
	dirty      bool
	dirtySince int64

	config uint64 // how many times Reconfigure has run
}

type pendingCheckpoint struct{ gen, seq uint64 }

// keyState holds what applies to one key.
type keyState struct {
	tracks  []*track // amount tracks
	vtracks []*track // velocity tracks
	rules   []amountRule
	vels    []velocityRule
}

type amountRule struct {
	id    RuleID
	max   u256
	track int // index into keyState.tracks
}

type velocityRule struct {
	id    RuleID
	max   u256
	track int // index into keyState.vtracks
}

type ruleRef struct {
	tr  *track
	max u256
}

var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// unixNano returns tm in Unix ns if it is from 1970 to 2199.
func unixNano(tm time.Time) (int64, bool) {
	if tm.Before(minTime) || !tm.Before(maxTime) {
		return 0, false
	}
	return tm.UnixNano(), true
}

// clock advances the tracker's time to now, if now is later, and returns
// the tracker's time.
func (t *Tracker) clock(now time.Time) int64 {
	if ns, ok := unixNano(now); ok && ns > t.now {
		t.now = ns
	}
	return t.now
}

// NewTracker returns a Tracker for rules and velocities with no usage.
func NewTracker(rules []TrackedLimit, velocities []TrackedVelocity, opts Options) (*Tracker, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if len(rules) > MaxRules || len(velocities) > MaxRules {
		return nil, fmt.Errorf("limits: at most %d rules and %d velocities", MaxRules, MaxRules)
	}
	t := &Tracker{
		opts:     o,
		keys:     map[string]*keyState{},
		rules:    map[RuleID]ruleRef{},
		refusals: map[string]*track{},
	}
	byID := map[trackID]*track{}
	getTrack := func(id trackID) *track {
		if tr, ok := byID[id]; ok {
			return tr
		}
		tr := newTrack(id, widthOf(id.window, o.BucketsPerWindow))
		tr.header = appendHeader(nil, id)
		byID[id] = tr
		t.tracks = append(t.tracks, tr)
		return tr
	}
	ks := func(key string) *keyState {
		k := t.keys[key]
		if k == nil {
			k = &keyState{}
			t.keys[key] = k
		}
		return k
	}
	for i, r := range rules {
		if err := t.checkCommon(r.ID, KindRollingLimit, r.Key, r.Window); err != nil {
			return nil, fmt.Errorf("limits: rules[%d]: %w", i, err)
		}
		max, ok := fromBig(r.Max)
		if !ok {
			return nil, fmt.Errorf("limits: rules[%d] (%s): max: want 0 to 2^256-1", i, r.ID)
		}
		sc := scope{kind: kindAmount, key: r.Key, chain: r.ChainID, asset: r.Asset}
		if r.Destination != nil {
			sc.hasDest, sc.dest = true, *r.Destination
		}
		tr := getTrack(trackID{sc, int64(r.Window)})
		k := ks(r.Key)
		idx := slices.Index(k.tracks, tr)
		if idx < 0 {
			idx = len(k.tracks)
			k.tracks = append(k.tracks, tr)
		}
		k.rules = append(k.rules, amountRule{id: r.ID, max: max, track: idx})
		t.rules[r.ID] = ruleRef{tr: tr, max: max}
		t.ruleOrder = append(t.ruleOrder, r.ID)
	}
	for i, v := range velocities {
		if err := t.checkCommon(v.ID, KindVelocity, v.Key, v.Window); err != nil {
			return nil, fmt.Errorf("limits: velocities[%d]: %w", i, err)
		}
		tr := getTrack(trackID{scope{kind: kindVelocity, key: v.Key}, int64(v.Window)})
		k := ks(v.Key)
		idx := slices.Index(k.vtracks, tr)
		if idx < 0 {
			idx = len(k.vtracks)
			k.vtracks = append(k.vtracks, tr)
		}
		max := u256{v.MaxTransactions}
		k.vels = append(k.vels, velocityRule{id: v.ID, max: max, track: idx})
		t.rules[v.ID] = ruleRef{tr: tr, max: max}
		t.ruleOrder = append(t.ruleOrder, v.ID)
	}
	slices.SortFunc(t.tracks, func(a, b *track) int { return bytes.Compare(a.header, b.header) })
	t.refWindow = int64(o.RefusalWindow)
	t.refWidth = widthOf(t.refWindow, refusalBuckets)
	t.overflow = t.newRefusalTrack("")
	if size := t.worstSnapshotSize(); size > MaxSnapshotSize {
		return nil, fmt.Errorf("limits: a snapshot could reach %d bytes, over the %d-byte limit: fewer rules, buckets or refusal keys", size, MaxSnapshotSize)
	}
	return t, nil
}

// checkCommon validates what rules and velocities have in common, and that
// the ID is new.
func (t *Tracker) checkCommon(id RuleID, kind Kind, key string, window time.Duration) error {
	switch {
	case key == "" || len(key) > MaxKeyLen:
		return fmt.Errorf("%s: key: want 1 to %d bytes", id, MaxKeyLen)
	case window <= 0 || window > MaxTrackedWindow:
		return fmt.Errorf("%s: window: want more than 0 and at most %v", id, MaxTrackedWindow)
	}
	if err := id.check(kind, key); err != nil {
		return err
	}
	if _, dup := t.rules[id]; dup {
		return fmt.Errorf("id %q used twice", id)
	}
	return nil
}

// widthOf returns the bucket width for a window divided in n buckets:
// window/n rounded up, so that n buckets cover the window.
func widthOf(window int64, n int) int64 {
	return (window + int64(n) - 1) / int64(n)
}

func (o Options) normalize() (Options, error) {
	def := func(v *int, d, max int, name string) error {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 || *v > max:
			return fmt.Errorf("limits: options: %s: want 1 to %d", name, max)
		}
		return nil
	}
	defDur := func(v *time.Duration, d, max time.Duration, name string) error {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 || *v > max:
			return fmt.Errorf("limits: options: %s: want more than 0 and at most %v", name, max)
		}
		return nil
	}
	return o, errors.Join(
		def(&o.BucketsPerWindow, DefaultBucketsPerWindow, MaxBucketsPerWindow, "BucketsPerWindow"),
		def(&o.CheckpointEvery, DefaultCheckpointEvery, MaxCheckpointEvery, "CheckpointEvery"),
		def(&o.MaxRefusalKeys, DefaultMaxRefusalKeys, MaxRefusalKeys, "MaxRefusalKeys"),
		defDur(&o.CheckpointInterval, DefaultCheckpointInterval, MaxTrackedWindow, "CheckpointInterval"),
		defDur(&o.MaxSkew, DefaultMaxSkew, MaxMaxSkew, "MaxSkew"),
		defDur(&o.RefusalWindow, DefaultRefusalWindow, MaxTrackedWindow, "RefusalWindow"),
	)
}

// Reservation is the budget a transaction holds between Reserve and the
// outcome of signing it: its amounts (and its one transaction for velocity
// limits) count against every applicable limit from Reserve on. Commit
// keeps them (the transaction was signed); Release gives them back (it was
// not). Only the first of the two calls has an effect; a Reservation that
// is neither committed nor released keeps its amounts until they leave the
// window, which is the safe side.
type Reservation struct {
	t       *Tracker
	done    bool
	config  uint64 // Tracker.config when reserved
	entries []entry
	buf     [6]entry
}

type entry struct {
	tr  *track
	k   int64
	amt u256
}

// Commit keeps the reservation's amounts: the transaction was signed.
func (r *Reservation) Commit() {
	r.t.mu.Lock()
	r.done = true
	r.t.mu.Unlock()
}

// Release gives the reservation's amounts back: the transaction was not
// signed. Amounts whose time bucket has already left the window are gone
// anyway.
func (r *Reservation) Release() {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	for _, e := range r.entries {
		e.tr.release(e.k, e.amt, r.config)
	}
}

// Reserve decides whether the transaction key makes at now, moving spends,
// fits every limit that applies to it, and if so reserves its amounts.
//
// A Rule applies to the spends of its key, chain and asset (and
// destination, if it names one); the transaction fits the rule if the sum
// of those spends plus the rule's usage in the window (now−Window, now]
// (reserved amounts included; see the package documentation for the
// bucketing that makes this a slight overestimate) is at most Max. A
// Velocity applies to every transaction of its key: the transaction fits if
// the transactions in the window plus this one are at most MaxTransactions.
//
// When a limit refuses, Reserve returns a *Refusal naming the first that
// does, in this order: refusal.RuleCheckpoint (which, with
// Options.RequireFresh, stops every key, like the audit backlog), the rules
// in the order New got them, the velocities in that order. A spend with an
// invalid amount is an error. Either way nothing is reserved.
func (t *Tracker) Reserve(now time.Time, key string, spends []Spend) (*Reservation, error) {
	return t.decide(now, key, spends, true)
}

// Check is Reserve without reserving: whether the transaction would fit
// now. It returns nil if it would, and otherwise what Reserve would: a
// *Refusal, or the error of an invalid amount. Check is for looking ahead
// (for example before asking approvers); to sign, use Reserve, which
// decides and reserves at once, so that concurrent transactions cannot
// together exceed a limit.
func (t *Tracker) Check(now time.Time, key string, spends []Spend) error {
	_, err := t.decide(now, key, spends, false)
	return err
}

// Renew decides again, at now and under the configuration in force, the
// transaction r reserved, as key's moving spends: for a transaction signed
// long after it was reserved (one held for approvals), which must fit the
// limits at the time it is signed, counted from then on. Under t's lock,
// r's amounts are given back (as Release does) and the spends reserved at
// now (as Reserve does), so that nothing else can take the budget between
// the two. It returns the new Reservation, which replaces r; or, when a
// limit refuses (a *Refusal) or a spend is invalid, the error, and r is
// released. A refusal by refusal.RuleCheckpoint changes nothing: r is
// kept, as it was (the refusal is about the host, not the transaction).
func (r *Reservation) Renew(now time.Time, key string, spends []Spend) (*Reservation, error) {
	amts, err := amounts(spends)
	if err != nil {
		r.Release()
		return nil, err
	}
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock(now)
	if err := t.checkpointRefusal(); err != nil {
		return nil, err
	}
	if !r.done {
		r.done = true
		for _, e := range r.entries {
			e.tr.release(e.k, e.amt, r.config)
		}
	}
	return t.decideLocked(now, key, spends, amts, true)
}

// amounts returns the spends' amounts, or an error naming an invalid one.
func amounts(spends []Spend) ([]u256, error) {
	amts := make([]u256, 0, len(spends))
	for i, s := range spends {
		a, ok := fromBig(s.Amount)
		if !ok {
			return nil, fmt.Errorf("limits: spends[%d]: amount: want 0 to 2^256-1", i)
		}
		amts = append(amts, a)
	}
	return amts, nil
}

// checkpointRefusal is the refusal.RuleCheckpoint refusal when it
// applies. t.mu is held.
func (t *Tracker) checkpointRefusal() error {
	if t.opts.RequireFresh && t.seq-t.ackedSeq >= uint64(t.opts.CheckpointEvery) {
		return &Refusal{Rule: refusal.RuleCheckpoint, Msg: fmt.Sprintf("%d transactions since the newest acknowledged checkpoint (generation %d), limit %d", t.seq-t.ackedSeq, t.ackedGen, t.opts.CheckpointEvery)}
	}
	return nil
}

func (t *Tracker) decide(now time.Time, key string, spends []Spend, reserve bool) (*Reservation, error) {
	var abuf [4]u256
	amts := abuf[:0]
	for i, s := range spends {
		a, ok := fromBig(s.Amount)
		if !ok {
			return nil, fmt.Errorf("limits: spends[%d]: amount: want 0 to 2^256-1", i)
		}
		amts = append(amts, a)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock(now)
	if err := t.checkpointRefusal(); err != nil {
		return nil, err
	}
	return t.decideLocked(now, key, spends, amts, reserve)
}

// decideLocked is decide with t.mu held, the amounts checked and the
// checkpoint rule passed.
func (t *Tracker) decideLocked(now time.Time, key string, spends []Spend, amts []u256, reserve bool) (*Reservation, error) {
	ns := t.clock(now)
	ks := t.keys[key]
	if ks == nil {
		if reserve {
			return &Reservation{t: t, done: true}, nil
		}
		return nil, nil
	}

	// The request's sum for each amount track of the key.
	var rbuf [8]u256
	var req []u256
	if len(ks.tracks) <= len(rbuf) {
		req = rbuf[:len(ks.tracks)]
	} else {
		req = make([]u256, len(ks.tracks))
	}
	var over []bool // tracks whose request sum overflows 256 bits
	for i, s := range spends {
		for j, tr := range ks.tracks {
			id := &tr.id
			if id.chain != s.ChainID || id.asset != s.Asset || id.hasDest && id.dest != s.To {
				continue
			}
			sum, o := req[j].add(amts[i])
			if o {
				if over == nil {
					over = make([]bool, len(ks.tracks))
				}
				over[j] = true
			}
			req[j] = sum
		}
	}
	for _, tr := range ks.tracks {
		tr.advance(ns)
	}
	for _, tr := range ks.vtracks {
		tr.advance(ns)
	}
	for _, r := range ks.rules {
		tr := ks.tracks[r.track]
		sum, o := tr.total.add(req[r.track])
		if o || over != nil && over[r.track] || sum.cmp(r.max) > 0 {
			return nil, &Refusal{Rule: r.id.Kind.Rule(), ID: r.id, Msg: t.amountMsg(tr, req[r.track], r.max, o || over != nil && over[r.track])}
		}
	}
	for _, v := range ks.vels {
		tr := ks.vtracks[v.track]
		if sum, _ := tr.total.add(one); sum.cmp(v.max) > 0 {
			return nil, &Refusal{Rule: v.id.Kind.Rule(), ID: v.id, Msg: fmt.Sprintf("%s transactions in the last %v, limit %s", tr.total, time.Duration(tr.id.window), v.max)}
		}
	}
	if !reserve {
		return nil, nil
	}

	res := &Reservation{t: t, config: t.config}
	res.entries = res.buf[:0]
	for j, tr := range ks.tracks {
		if req[j].isZero() {
			continue
		}
		k := tr.bucket(ns)
		tr.add(k, req[j]) // cannot overflow: the total plus req[j] is at most a max
		res.entries = append(res.entries, entry{tr, k, req[j]})
	}
	for _, tr := range ks.vtracks {
		k := tr.bucket(ns)
		tr.add(k, one)
		res.entries = append(res.entries, entry{tr, k, one})
	}
	if len(res.entries) == 0 {
		res.done = true
		return res, nil
	}
	t.seq++
	t.touch(ns)
	return res, nil
}

// touch notes a change that the newest checkpoint does not hold.
func (t *Tracker) touch(ns int64) {
	if !t.dirty {
		t.dirty, t.dirtySince = true, ns
	}
}

func (t *Tracker) amountMsg(tr *track, req, max u256, overflow bool) string {
	var where string
	if tr.id.hasDest {
		where = " to " + ethtx.Address(tr.id.dest).Hex()
	}
	asset := "native"
	if tr.id.asset != ([20]byte{}) {
		asset = ethtx.Address(tr.id.asset).Hex()
	}
	if overflow {
		return fmt.Sprintf("%s on chain %d%s: the amounts overflow 256 bits", asset, tr.id.chain, where)
	}
	return fmt.Sprintf("%s on chain %d%s: %s used in the last %v, %s requested, max %s",
		asset, tr.id.chain, where, tr.total, time.Duration(tr.id.window), req, max)
}

// Usage returns the usage of the rule or velocity id in its window at now:
// the amount (or, for a velocity, the number of transactions) counted
// against it, reservations included, and its maximum.
func (t *Tracker) Usage(now time.Time, id RuleID) (used, max *big.Int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.rules[id]
	if !ok {
		return nil, nil, fmt.Errorf("limits: no rule or velocity %q", id)
	}
	r.tr.advance(t.clock(now))
	return r.tr.total.big(), r.max.big(), nil
}

// RecordRefusal counts a refusal of key at now, for sticky freezes. Keys
// beyond Options.MaxRefusalKeys (while every counted key has refusals in
// the window) and keys longer than MaxKeyLen are counted in the overflow
// counter, which Refusals adds to every key's count.
func (t *Tracker) RecordRefusal(now time.Time, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.clock(now)
	tr := t.refusalTrack(ns, key)
	tr.advance(ns)
	tr.addCount(floorDiv(ns, tr.width), one)
	t.touch(ns)
}

// Refusals returns the refusals of key recorded in the window
// (now−window, now], plus those in the overflow counter. window is capped
// at Options.RefusalWindow. Like limits, the count is bucketed: it may
// include refusals up to RefusalWindow/64 older than the window, never
// fewer than those in it.
func (t *Tracker) Refusals(now time.Time, key string, window time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.clock(now)
	if window <= 0 {
		return 0
	}
	w := min(int64(window), t.refWindow)
	t.overflow.advance(ns)
	n := t.overflow.sum(ns, w)
	if tr := t.refusals[key]; tr != nil {
		tr.advance(ns)
		n = n.addSat(tr.sum(ns, w))
	}
	if n[1]|n[2]|n[3] != 0 || n[0] > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n[0])
}

func (t *Tracker) newRefusalTrack(key string) *track {
	return newTrack(trackID{scope{kind: kindRefusals, key: key}, t.refWindow}, t.refWidth)
}

// refusalTrack returns the refusal counter of key, creating it if there is
// room, else the overflow counter.
func (t *Tracker) refusalTrack(ns int64, key string) *track {
	if tr := t.refusals[key]; tr != nil {
		return tr
	}
	if len(key) > MaxKeyLen {
		return t.overflow
	}
	if len(t.refusals) >= t.opts.MaxRefusalKeys {
		// Forget keys with no live refusals, at most once a bucket.
		if k := floorDiv(ns, t.refWidth); k != t.lastPurge {
			t.lastPurge = k
			for key, tr := range t.refusals {
				tr.advance(ns)
				if tr.sum(ns, t.refWindow).isZero() {
					delete(t.refusals, key)
				}
			}
		}
		if len(t.refusals) >= t.opts.MaxRefusalKeys {
			return t.overflow
		}
	}
	tr := t.newRefusalTrack(key)
	t.refusals[key] = tr
	return tr
}
