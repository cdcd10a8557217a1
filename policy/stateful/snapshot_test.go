package stateful

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleRules are the rules of sampleTracker.
func sampleRules() ([]TrackedLimit, []TrackedVelocity) {
	toA := rule("to-a", "hot", time.Hour, 30)
	toA.Destination = ptr(destA)
	usdcDay := rule("usdc-day", "hot", 24*time.Hour, 5000)
	usdcDay.Asset = usdc
	return []TrackedLimit{
			rule("day", "hot", 24*time.Hour, 100),
			rule("hour", "hot", time.Hour, 50),
			toA,
			usdcDay,
			rule("cold", "cold", 24*time.Hour, 1000),
		}, []TrackedVelocity{
			{ID: vid("hot", "v-hot"), Key: "hot", Window: 10 * time.Minute, MaxTransactions: 100},
			{ID: vid("cold", "v-cold"), Key: "cold", Window: time.Hour, MaxTransactions: 100},
		}
}

// sampleTracker returns a tracker with usage in every rule and refusals,
// and the time of its last event.
func sampleTracker(t testing.TB) (*Tracker, time.Time) {
	rules, vels := sampleRules()
	tr := mustNew(t, rules, vels, Options{MaxRefusalKeys: 3})
	now := t0
	for i := range 40 {
		now = t0.Add(time.Duration(i) * 7 * time.Minute)
		spend(t, tr, now, "hot", native(destA, 1), native(destB, int64(i%3)), token(usdc, destB, 100))
		if i%5 == 0 {
			spend(t, tr, now, "cold", native(destB, 7))
			tr.RecordRefusal(now, []string{"hot", "cold", "warm", "cool", "lukewarm"}[i/5%5])
		}
	}
	// A reservation neither committed nor released is in the snapshot.
	if _, err := tr.Reserve(now, "hot", []Spend{native(destA, 2)}); err != nil {
		t.Fatal(err)
	}
	return tr, now
}

func TestSnapshotRoundTrip(t *testing.T) {
	rules, vels := sampleRules()
	tr, now := sampleTracker(t)
	b1 := mustMarshal(t, tr)
	if b := mustMarshal(t, tr); !bytes.Equal(b, b1) {
		t.Fatal("two snapshots of one state differ")
	}
	gen, taken, err := Inspect(b1)
	if err != nil || gen != 0 || !taken.Equal(now) {
		t.Fatalf("Inspect: %d, %v, %v", gen, taken, err)
	}
	back := mustRestore(t, rules, vels, Options{MaxRefusalKeys: 3}, b1, now)
	if b2 := mustMarshal(t, back); !bytes.Equal(b2, b1) {
		t.Fatalf("the restored tracker's snapshot differs:\n%x\n%x", b1, b2)
	}
	// Both trackers agree on everything from now on.
	ids := []string{"day", "hour", "to-a", "usdc-day", "cold", "v-hot", "v-cold"}
	for _, d := range []time.Duration{0, time.Minute, 30 * time.Minute, 2 * time.Hour, 20 * time.Hour, 25 * time.Hour} {
		at := now.Add(d)
		for _, id := range ids {
			if a, b := used(t, tr, at, id), used(t, back, at, id); a != b {
				t.Errorf("at +%v, %s: %d before, %d restored", d, id, a, b)
			}
		}
		for _, key := range []string{"hot", "cold", "warm", "cool", "lukewarm", "other"} {
			if a, b := tr.Refusals(at, key, 12*time.Hour), back.Refusals(at, key, 12*time.Hour); a != b {
				t.Errorf("at +%v, refusals of %s: %d before, %d restored", d, key, a, b)
			}
		}
	}
	// Everything has left every window: the snapshot is empty.
	late := mustMarshal(t, tr)
	if want := mustMarshal(t, mustNew(t, rules, vels, Options{MaxRefusalKeys: 3})); len(late) != len(want) {
		t.Fatalf("snapshot of %d bytes after every window, want %d", len(late), len(want))
	}
	// Restoring later drops what has left the windows.
	later := now.Add(2 * time.Hour)
	r2 := mustRestore(t, rules, vels, Options{MaxRefusalKeys: 3}, b1, later)
	if u := used(t, r2, later, "hour"); u != 0 {
		t.Fatalf("hour usage %d two hours later", u)
	}
	if u, want := used(t, r2, later, "day"), used(t, mustRestore(t, rules, vels, Options{MaxRefusalKeys: 3}, b1, now), later, "day"); u != want {
		t.Fatalf("day usage %d, want %d", u, want)
	}
	if b := mustMarshal(t, r2); len(b) >= len(b1) {
		t.Fatalf("the later snapshot (%d bytes) still holds the expired buckets (%d)", len(b), len(b1))
	}
}

func TestSnapshotEmpty(t *testing.T) {
	tr := mustNew(t, nil, nil, Options{})
	b := mustMarshal(t, tr)
	if len(b) != fixedHeaderSize+4+8+8+4+4 {
		t.Fatalf("empty snapshot of %d bytes", len(b))
	}
	back := mustRestore(t, nil, nil, Options{}, b, t0)
	if !bytes.Equal(mustMarshal(t, back)[fixedHeaderSize:], b[fixedHeaderSize:]) {
		t.Fatal("empty snapshot does not round-trip")
	}
}

// validSnapshot returns the decoded sample snapshot, for strictness cases
// to spoil.
func validSnapshot(t testing.TB) *snapshot {
	tr, _ := sampleTracker(t)
	s, err := decode(mustMarshal(t, tr))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// strictCase spoils a valid snapshot; the decoder must refuse the result
// with an error containing want.
type strictCase struct {
	name  string
	spoil func(s *snapshot)
	want  string
}

func strictStructCases() []strictCase {
	maxAmt := u256{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	return []strictCase{
		{"time before 1970", func(s *snapshot) { s.taken = -1 }, "before 1970"},
		{"time from 2200", func(s *snapshot) { s.taken = maxTime.UnixNano() }, "after 2199"},
		{"track of kind 3", func(s *snapshot) { s.tracks[0].id.kind = kindRefusals }, "kind 3"},
		{"track of kind 0", func(s *snapshot) { s.tracks[0].id.kind = 0 }, "kind 0"},
		{"empty key", func(s *snapshot) { s.tracks[0].id.key = "" }, "empty key"},
		{"zero window", func(s *snapshot) { s.tracks[0].id.window = 0 }, "window of 0"},
		{"negative window", func(s *snapshot) { s.tracks[0].id.window = -1 }, "window of -1"},
		{"window too long", func(s *snapshot) { s.tracks[0].id.window = int64(MaxTrackedWindow) + 1 }, "window of"},
		{"zero width", func(s *snapshot) { s.tracks[0].width = 0 }, "width of 0"},
		{"width over window", func(s *snapshot) { s.tracks[0].width = s.tracks[0].id.window + 1 }, "width"},
		{"tracks out of order", func(s *snapshot) { s.tracks[0], s.tracks[1] = s.tracks[1], s.tracks[0] }, "out of order"},
		{"track repeated", func(s *snapshot) { s.tracks = slices.Insert(s.tracks, 1, s.tracks[0]) }, "out of order"},
		{"same scope and window, other width", func(s *snapshot) {
			c := s.tracks[0]
			c.width++
			s.tracks = slices.Insert(s.tracks, 1, c)
		}, "out of order"},
		{"track without buckets", func(s *snapshot) { s.tracks[0].buckets = nil }, "no buckets"},
		{"buckets out of order", func(s *snapshot) { b := s.tracks[0].buckets; b[0], b[1] = b[1], b[0] }, "after bucket"},
		{"bucket repeated", func(s *snapshot) { s.tracks[0].buckets = slices.Insert(s.tracks[0].buckets, 1, s.tracks[0].buckets[0]) }, "after bucket"},
		{"bucket after the snapshot", func(s *snapshot) {
			tr := &s.tracks[0]
			tr.buckets = append(tr.buckets, bucket{floorDiv(s.taken, tr.width) + 1, one})
		}, "not live"},
		{"bucket expired at the snapshot", func(s *snapshot) {
			tr := &s.tracks[0]
			tr.buckets = slices.Insert(tr.buckets, 0, bucket{floorDiv(s.taken-tr.id.window+1, tr.width) - 1, one})
		}, "not live"},
		{"empty bucket", func(s *snapshot) { s.tracks[0].buckets[0].amt = u256{} }, "amount of 0 bytes"},
		{"sum over 256 bits", func(s *snapshot) {
			s.tracks[0].buckets[0].amt = maxAmt
			s.tracks[0].buckets[1].amt = one
		}, "overflow"},
		{"zero refusal window", func(s *snapshot) { s.refWindow = 0 }, "window of 0"},
		{"refusal width over window", func(s *snapshot) { s.refWidth = s.refWindow + 1 }, "width"},
		{"refusal keys out of order", func(s *snapshot) { k := s.refKeys; k[0], k[1] = k[1], k[0] }, "out of order"},
		{"refusal key repeated", func(s *snapshot) { s.refKeys = slices.Insert(s.refKeys, 1, s.refKeys[0]) }, "out of order"},
		{"refusal key without buckets", func(s *snapshot) { s.refKeys[0].buckets = nil }, "no buckets"},
		{"refusal count of 5 bytes", func(s *snapshot) { s.refKeys[0].buckets[0].amt = u256{1 << 32} }, "amount of 5 bytes"},
		{"overflow bucket after the snapshot", func(s *snapshot) {
			s.overflow = append(s.overflow, bucket{floorDiv(s.taken, s.refWidth) + 1, one})
		}, "not live"},
	}
}

// byteCase is a snapshot made byte by byte; the decoder must refuse it
// with an error containing want, or accept it if want is "".
type byteCase struct {
	name string
	b    []byte
	want string
}

func strictByteCases(valid []byte) []byteCase {
	return []byteCase{
		{"empty", nil, "not a limits snapshot"},
		{"bad magic", append([]byte("NSLIMITZ"), valid[8:]...), "not a limits snapshot"},
		{"version 0", withByte(valid, 8, 0), "version 0"},
		{"version 2", withByte(valid, 8, 2), "version 2"},
		{"trailing byte", append(slices.Clone(valid), 0), "trailing"},
		{"track count too large", withUint32(valid, fixedHeaderSize, 2*MaxRules+1), "at most"},
		{"track count beyond the data", withUint32(valid, fixedHeaderSize, 2*MaxRules), "do not fit"},
		{"leading zero in an amount", rawSnapshot([]byte{2, 0, 5}, 0), "leading zero"},
		{"amount of 33 bytes", rawSnapshot(append([]byte{33}, bytes.Repeat([]byte{1}, 33)...), 0), "amount of 33 bytes"},
		{"destination flag 2", rawSnapshot([]byte{1, 5}, 2), "destination flag 2"},
		{"raw control", rawSnapshot([]byte{1, 5}, 1), ""},
	}
}

// TestSnapshotStrict: the decoder refuses every snapshot that is not
// exactly what the encoder writes for some state.
func TestSnapshotStrict(t *testing.T) {
	if s := validSnapshot(t); len(s.tracks) < 2 || len(s.refKeys) < 2 || len(s.overflow) < 1 || len(s.tracks[0].buckets) < 2 {
		t.Fatalf("the sample snapshot is too small for the cases: %d tracks, %d refusal keys, %d overflow buckets", len(s.tracks), len(s.refKeys), len(s.overflow))
	}
	for _, tc := range strictStructCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := validSnapshot(t)
			tc.spoil(s)
			checkRefused(t, s.encode(), tc.want)
		})
	}

	valid := validSnapshot(t).encode()
	byteCases := append(strictByteCases(valid), byteCase{"too large", make([]byte, MaxSnapshotSize+1), "limit"})
	for _, tc := range byteCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if _, err := decode(tc.b); err != nil {
					t.Fatalf("the control case is refused: %v", err)
				}
				return
			}
			checkRefused(t, tc.b, tc.want)
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(valid) {
			if _, err := decode(valid[:n]); err == nil {
				t.Fatalf("accepted the first %d of %d bytes", n, len(valid))
			}
		}
		if _, err := decode(valid); err != nil {
			t.Fatal(err)
		}
	})
}

func checkRefused(t *testing.T, b []byte, want string) {
	t.Helper()
	_, err := decode(b)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "limits: snapshot") {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	if _, err := Restore(nil, nil, Options{}, b, t0.Add(48*time.Hour)); err == nil {
		t.Fatal("Restore accepts it")
	}
	if _, _, err := Inspect(b); err == nil {
		t.Fatal("Inspect accepts it")
	}
}

func withByte(b []byte, i int, v byte) []byte {
	b = slices.Clone(b)
	b[i] = v
	return b
}

func withUint32(b []byte, i int, v uint32) []byte {
	b = slices.Clone(b)
	binary.BigEndian.PutUint32(b[i:], v)
	return b
}

// rawSnapshot builds by hand a snapshot taken at t0 with one amount track
// (key "hot", chain 1, native, destination flag flag, destA if 1, 1 h
// window in 64 buckets) holding one bucket, the one of t0, with amount
// encoded as amt.
func rawSnapshot(amt []byte, flag byte) []byte {
	const window, width = int64(time.Hour), int64(time.Hour) / 64
	b := append([]byte(snapshotMagic), snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint64(b, uint64(t0.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, kindAmount, 3, 'h', 'o', 't')
	b = binary.BigEndian.AppendUint64(b, 1)
	b = append(b, make([]byte, 20)...)
	b = append(b, flag)
	if flag == 1 {
		b = append(b, destA[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(window))
	b = binary.BigEndian.AppendUint64(b, uint64(width))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(t0.UnixNano()/width))
	b = append(b, amt...)
	b = binary.BigEndian.AppendUint64(b, uint64(DefaultRefusalWindow))
	b = binary.BigEndian.AppendUint64(b, uint64(DefaultRefusalWindow/refusalBuckets))
	b = binary.BigEndian.AppendUint32(b, 0)
	return binary.BigEndian.AppendUint32(b, 0)
}

// TestRestoreTime: snapshots from the future are refused beyond the skew;
// old buckets are dropped.
func TestRestoreTime(t *testing.T) {
	rules, vels := sampleRules()
	tr, now := sampleTracker(t)
	snap := mustMarshal(t, tr)
	tests := []struct {
		name string
		at   time.Time
		opts Options
		ok   bool
	}{
		{"same time", now, Options{}, true},
		{"later", now.Add(time.Hour), Options{}, true},
		{"within the skew", now.Add(-DefaultMaxSkew), Options{}, true},
		{"beyond the skew", now.Add(-DefaultMaxSkew - 1), Options{}, false},
		{"within a larger skew", now.Add(-time.Minute), Options{MaxSkew: time.Minute}, true},
		{"zero time", time.Time{}, Options{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restore(rules, vels, tc.opts, snap, tc.at)
			if (err == nil) != tc.ok {
				t.Fatalf("error %v", err)
			}
		})
	}
	// Restored within the skew, the tracker's clock starts at the
	// snapshot's time, not before.
	back := mustRestore(t, rules, vels, Options{}, snap, now.Add(-time.Second))
	if a, b := used(t, back, now.Add(-time.Second), "hour"), used(t, tr, now, "hour"); a != b {
		t.Fatalf("hour usage %d, want %d", a, b)
	}
}

// TestRestorePolicyChange: usage is kept by scope and window, not by rule
// ID, so it survives the rules changing between snapshot and restore.
func TestRestorePolicyChange(t *testing.T) {
	base := []TrackedLimit{rule("day", "hot", 24*time.Hour, 100)}
	withDest := func(r TrackedLimit, d [20]byte) TrackedLimit { r.Destination = ptr(d); return r }
	withAsset := func(r TrackedLimit, a [20]byte) TrackedLimit { r.Asset = a; return r }
	// 60 to A at t0, 20 to B at t0+12h; restore at t0+12h.
	restoreAt := t0.Add(12 * time.Hour)
	tests := []struct {
		name  string
		rules []TrackedLimit
		at    time.Duration // after restoreAt
		want  map[string]int64
	}{
		{"same rules", base, 0, map[string]int64{"day": 80}},
		{"renamed", []TrackedLimit{rule("daily", "hot", 24*time.Hour, 100)}, 0, map[string]int64{"daily": 80}},
		{"new max", []TrackedLimit{rule("day", "hot", 24*time.Hour, 50)}, 0, map[string]int64{"day": 80}},
		{"longer window keeps what the shorter kept", []TrackedLimit{rule("week", "hot", 7*24*time.Hour, 100)}, 0, map[string]int64{"week": 80}},
		{"longer window, after the old one", []TrackedLimit{rule("week", "hot", 7*24*time.Hour, 100)}, 13 * time.Hour, map[string]int64{"week": 80}},
		{"shorter window", []TrackedLimit{rule("hour", "hot", time.Hour, 100)}, 0, map[string]int64{"hour": 20}},
		{"shorter window, at its end", []TrackedLimit{rule("hour", "hot", time.Hour, 100)}, time.Hour, map[string]int64{"hour": 20}},
		{"shorter window, a bucket later", []TrackedLimit{rule("hour", "hot", time.Hour, 100)}, time.Hour + time.Hour/64, map[string]int64{"hour": 0}},
		{"both windows", []TrackedLimit{rule("hour", "hot", time.Hour, 100), rule("day", "hot", 24*time.Hour, 100)}, 0, map[string]int64{"hour": 20, "day": 80}},
		{"new destination rule starts empty", []TrackedLimit{base[0], withDest(rule("to-a", "hot", 24*time.Hour, 100), destA)}, 0, map[string]int64{"day": 80, "to-a": 0}},
		{"new asset rule starts empty", []TrackedLimit{withAsset(rule("usdc", "hot", 24*time.Hour, 100), usdc)}, 0, map[string]int64{"usdc": 0}},
		{"removed rule", nil, 0, map[string]int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustNew(t, base, nil, Options{})
			spend(t, tr, t0, "hot", native(destA, 60))
			spend(t, tr, restoreAt, "hot", native(destB, 20))
			snap := mustMarshal(t, tr)
			back := mustRestore(t, tc.rules, nil, Options{}, snap, restoreAt)
			for id, want := range tc.want {
				if got := used(t, back, restoreAt.Add(tc.at), id); got != want {
					t.Errorf("%s: usage %d, want %d", id, got, want)
				}
			}
			if len(tc.rules) == 0 {
				if n := len(mustMarshal(t, back)); n != fixedHeaderSize+4+8+8+4+4 {
					t.Errorf("a snapshot of %d bytes without rules", n)
				}
			}
		})
	}
}

// TestRestoreRebucketing: a window restored into buckets of another width
// keeps each amount at least as long as its spend's window requires.
func TestRestoreRebucketing(t *testing.T) {
	const W = 64 * time.Minute
	for _, tc := range []struct {
		name         string
		from, to     int // buckets per window before and after
		spendAt      time.Duration
		restoreAfter time.Duration
	}{
		{"finer", 4, 64, 5 * time.Minute, 30 * time.Second},
		{"coarser", 64, 4, 5*time.Minute + 30*time.Second, 0},
		{"same", 64, 64, 5 * time.Minute, 0},
		{"odd widths", 7, 13, 5*time.Minute + 7*time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := []TrackedLimit{rule("r", "hot", W, 10)}
			tr := mustNew(t, rules, nil, Options{BucketsPerWindow: tc.from})
			at := t0.Add(tc.spendAt)
			spend(t, tr, at, "hot", native(destA, 10))
			snapAt := at.Add(tc.restoreAfter)
			used(t, tr, snapAt, "r") // advance the clock
			back := mustRestore(t, rules, nil, Options{BucketsPerWindow: tc.to}, mustMarshal(t, tr), snapAt)
			// Counted through the last instant of the exact window.
			if u := used(t, back, at.Add(W-1), "r"); u != 10 {
				t.Fatalf("usage %d at the end of the spend's window", u)
			}
			// And gone one new bucket after the old bucket's end.
			oldWidth := time.Duration(widthOf(int64(W), tc.from))
			newWidth := time.Duration(widthOf(int64(W), tc.to))
			gone := at.Truncate(oldWidth).Add(oldWidth + W + newWidth)
			if u := used(t, back, gone, "r"); u != 0 {
				t.Fatalf("usage %d at %v", u, gone.Sub(at))
			}
		})
	}
}

// TestRestoreRefusalKeys: refusal counts of more keys than there is room
// for go to the overflow counter, not away.
func TestRestoreRefusalKeys(t *testing.T) {
	tr := mustNew(t, nil, nil, Options{MaxRefusalKeys: 4})
	for i, key := range []string{"a", "b", "c", "d"} {
		for range i + 1 {
			tr.RecordRefusal(t0, key)
		}
	}
	back := mustRestore(t, nil, nil, Options{MaxRefusalKeys: 2}, mustMarshal(t, tr), t0)
	for key, want := range map[string]int{"a": 1 + 7, "b": 2 + 7, "c": 7, "d": 7, "e": 7} {
		if got := back.Refusals(t0, key, time.Hour); got != want {
			t.Errorf("%s: %d refusals, want %d", key, got, want)
		}
	}
}
