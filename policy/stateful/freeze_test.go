package stateful

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var errFull = errors.New("the audit log is full")

// recorder appends records with seqs from next on, or fails while full.
type recorder struct {
	next uint64
	full bool
	got  []FreezeInfo
}

func (r *recorder) record(fi FreezeInfo) (uint64, error) {
	if r.full {
		return 0, errFull
	}
	r.got = append(r.got, fi)
	r.next++
	return r.next - 1, nil
}

// TestFreezesOwed: a freeze holds even when its record cannot be
// appended; the record is then owed, appended in target order by
// RecordOwed once there is room, and the freeze then names it.
func TestFreezesOwed(t *testing.T) {
	var f Freezes
	rec := &recorder{next: 10, full: true}
	fi, added, err := f.Freeze("hot", "hot", "3 refusals within 1h0m0s", t0, rec.record)
	if !added || !errors.Is(err, errFull) || fi.Seq != 0 || fi.Because != "hot" || fi.SinceMS != t0.UnixMilli() {
		t.Fatalf("Freeze: %+v, %v, %v", fi, added, err)
	}
	if _, added, _ := f.Freeze("hot", "hot", "again", t0, rec.record); added {
		t.Fatal("a frozen target frozen again")
	}
	f.Freeze(AllKeys, "", "a rollback detected at start", t0, rec.record)
	if !f.Owed() {
		t.Fatal("no record owed")
	}
	if got, ok := f.Get("cold"); !ok || got.Key != AllKeys {
		t.Fatalf("Get(cold) under a freeze of every key: %+v, %v", got, ok)
	}
	f.RecordOwed(rec.record) // still full
	if !f.Owed() || len(rec.got) != 0 {
		t.Fatal("RecordOwed without room")
	}
	rec.full = false
	f.RecordOwed(rec.record)
	if f.Owed() || len(rec.got) != 2 || rec.got[0].Key != AllKeys || rec.got[1].Key != "hot" {
		t.Fatalf("RecordOwed: owed %v, records %+v", f.Owed(), rec.got)
	}
	want := []FreezeInfo{{Key: AllKeys, Seq: 10, Reason: "a rollback detected at start"}, {Key: "hot", Seq: 11, Reason: "3 refusals within 1h0m0s"}}
	if got := f.List(); !slices.Equal(got, want) {
		t.Fatalf("List: %+v, want %+v", got, want)
	}
	var g Freezes
	g.Set([]FreezeInfo{{Key: "hot", Seq: 11}, {Key: "cold", Reason: "restored"}})
	if !g.Owed() {
		t.Fatal("a restored freeze without its record is not owed")
	}
}

// TestFreezesUnfreeze: an unfreeze names the record of the freeze it
// lifts, lifts it only once its own record is appended, and refusals
// before it no longer count toward the next freeze.
func TestFreezesUnfreeze(t *testing.T) {
	src := source{"hot": {Freeze: &Freeze{Refusals: 2, Window: 24 * time.Hour, Scope: FreezeKey}}}
	rules, vels := TrackerRules(src)
	tr := mustNew(t, rules, vels, TrackerOptions(src, 0))
	var f Freezes
	rec := &recorder{next: 5}
	if _, _, trips := f.AfterRefusal(tr, src, "hot", false, t0); trips {
		t.Fatal("one refusal froze")
	}
	target, reason, trips := f.AfterRefusal(tr, src, "hot", false, t0.Add(time.Minute))
	if !trips || target != "hot" || reason != "2 refusals within 24h0m0s" {
		t.Fatalf("AfterRefusal: %q, %q, %v", target, reason, trips)
	}
	f.Freeze(target, "hot", reason, t0.Add(time.Minute), rec.record)
	f.Set(append(f.List(), FreezeInfo{Key: "cold", Reason: "restored"})) // and one owed

	now := func() time.Time { return t0.Add(time.Hour) }
	if target, owed, err := f.Unfreeze(4, now(), func(string) error { t.Fatal("recorded"); return nil }); target != "" || err != nil || !slices.Equal(owed, []string{"cold"}) {
		t.Fatalf("Unfreeze of no freeze: %q, %v, %v", target, owed, err)
	}
	if target, _, err := f.Unfreeze(5, now(), func(string) error { return errFull }); target != "hot" || !errors.Is(err, errFull) {
		t.Fatalf("Unfreeze without room: %q, %v", target, err)
	}
	if _, ok := f.Get("hot"); !ok {
		t.Fatal("unfrozen without its record")
	}
	if target, _, err := f.Unfreeze(5, now(), func(got string) error {
		if got != "hot" {
			t.Fatalf("record of %q", got)
		}
		return nil
	}); target != "hot" || err != nil {
		t.Fatalf("Unfreeze: %q, %v", target, err)
	}
	if _, ok := f.Get("hot"); ok {
		t.Fatal("still frozen")
	}
	// The two refusals before the unfreeze are in the freeze's window (and
	// more than a refusal bucket, 22.5 min, before it), but do not count:
	// one more does not freeze, two do.
	if _, _, trips := f.AfterRefusal(tr, src, "hot", false, t0.Add(90*time.Minute)); trips {
		t.Fatal("refusals before the unfreeze counted")
	}
	if _, _, trips := f.AfterRefusal(tr, src, "hot", false, t0.Add(95*time.Minute)); !trips {
		t.Fatal("two refusals after the unfreeze did not freeze")
	}
}

// TestFreezesTrip: a limit breach freezes when the rule says so, and a
// rule of scope all freezes every key.
func TestFreezesTrip(t *testing.T) {
	src := source{
		"hot":  {Freeze: &Freeze{OnLimitBreach: true, Scope: FreezeAll}},
		"cold": {},
	}
	tr := mustNew(t, nil, nil, TrackerOptions(src, 0))
	var f Freezes
	if _, _, trips := f.AfterRefusal(tr, src, "hot", false, t0); trips {
		t.Fatal("a refusal that is no breach froze")
	}
	if target, reason, trips := f.AfterRefusal(tr, src, "hot", true, t0); !trips || target != AllKeys || reason != "an attempt over a limit" {
		t.Fatalf("breach: %q, %q, %v", target, reason, trips)
	}
	if _, _, trips := f.AfterRefusal(tr, src, "cold", true, t0); trips {
		t.Fatal("a key without a freeze rule froze")
	}
	if n := tr.Refusals(t0, "hot", time.Hour); n != 2 {
		t.Fatalf("refusals counted: %d", n)
	}
}
