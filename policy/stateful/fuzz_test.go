package stateful

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// FuzzRestore: the decoder never panics; what it accepts is canonical (it
// re-encodes to the same bytes) and restores, at the time it was taken and
// a day later, into a tracker whose own snapshot restores to the same usage
// (see sameTracks); what it refuses, Restore and Inspect refuse.
func FuzzRestore(f *testing.F) {
	rules, vels := sampleRules()
	opts := Options{MaxRefusalKeys: 3}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decode(b)
		gen, taken, ierr := Inspect(b)
		if (err == nil) != (ierr == nil) {
			t.Fatalf("decode: %v, Inspect: %v", err, ierr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "limits: snapshot") {
				t.Fatalf("error without prefix: %v", err)
			}
			if _, err := Restore(rules, vels, opts, b, time.Unix(0, 1<<62)); err == nil {
				t.Fatal("Restore accepts what decode refuses")
			}
			return
		}
		if !bytes.Equal(s.encode(), b) {
			t.Fatalf("accepted a non-canonical snapshot:\n  in %x\n out %x", b, s.encode())
		}
		if gen != s.gen || taken.UnixNano() != s.taken {
			t.Fatalf("Inspect: %d, %v", gen, taken)
		}
		for _, at := range []time.Time{taken, taken.Add(24 * time.Hour)} {
			tr, err := Restore(rules, vels, opts, b, at)
			if err != nil {
				if at.Before(maxTime) {
					t.Fatalf("restoring at %v: %v", at, err)
				}
				continue
			}
			if tr.Generation() != gen {
				t.Fatalf("restored generation %d, want %d", tr.Generation(), gen)
			}
			b1 := mustMarshal(t, tr)
			b2 := mustMarshal(t, mustRestore(t, rules, vels, opts, b1, at))
			sameTracks(t, b1, b2, tr)
		}
	})
}

// sameTracks checks that b1, a snapshot of tr, holds only tracks of tr's
// rules, and that b2, a snapshot of b1 restored, is b1 except that rules
// with no usage in b1 may have taken some from other tracks of their scope
// (the windows do not nest exactly, so restoring can only add usage).
func sameTracks(t *testing.T, b1, b2 []byte, tr *Tracker) {
	t.Helper()
	s1, err := decode(b1)
	if err != nil {
		t.Fatalf("a snapshot of a restored tracker: %v", err)
	}
	s2, err := decode(b2)
	if err != nil {
		t.Fatalf("a snapshot of a restored tracker: %v", err)
	}
	own := map[trackID]int64{}
	for _, x := range tr.tracks {
		own[x.id] = x.width
	}
	for _, st := range s1.tracks {
		if w, ok := own[st.id]; !ok || w != st.width {
			t.Fatalf("the snapshot holds a track no rule has: %+v", st.id)
		}
	}
	i := 0
	for _, st := range s2.tracks {
		if i < len(s1.tracks) && s1.tracks[i].id == st.id {
			if !slices.Equal(s1.tracks[i].buckets, st.buckets) {
				t.Fatalf("restoring changed the usage of %+v:\n%v\n%v", st.id, s1.tracks[i].buckets, st.buckets)
			}
			i++
		}
	}
	if i != len(s1.tracks) {
		t.Fatalf("restoring lost the track %+v", s1.tracks[i].id)
	}
	s1.tracks, s2.tracks = nil, nil
	if !bytes.Equal(s1.encode(), s2.encode()) {
		t.Fatalf("restoring changed the refusal counts or the header:\n%x\n%x", b1, b2)
	}
}

// seedRestore returns named seeds for FuzzRestore: snapshots of the sample
// tracker and of smaller ones, and every strictness case.
func seedRestore(t testing.TB) map[string][]byte {
	tr, now := sampleTracker(t)
	sample := mustMarshal(t, tr)
	_, ckpt, err := tr.Checkpoint(now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{
		"valid_sample":     sample,
		"valid_checkpoint": ckpt,
		"valid_empty":      mustMarshal(t, mustNew(t, nil, nil, Options{})),
		"valid_one_bucket": rawSnapshot([]byte{1, 5}, 1),
		"valid_no_dest":    rawSnapshot([]byte{2, 1, 0}, 0),
	}
	// A tracker with other windows and bucket counts than the fuzz
	// function's rules, so that restoring moves amounts between buckets.
	rules, vels := sampleRules()
	for i := range rules {
		rules[i].Window = rules[i].Window/3 + time.Second
	}
	other := mustNew(t, rules, vels, Options{BucketsPerWindow: 7, RefusalWindow: time.Hour})
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 13 * time.Minute)
		spend(t, other, at, "hot", native(destA, 1), token(usdc, destB, int64(i)))
		other.RecordRefusal(at, "cold")
	}
	seeds["valid_other_windows"] = mustMarshal(t, other)
	for _, tc := range strictStructCases() {
		s, err := decode(sample)
		if err != nil {
			t.Fatal(err)
		}
		tc.spoil(s)
		seeds["bad_"+tc.name] = s.encode()
	}
	for _, tc := range strictByteCases(sample) {
		if tc.want != "" {
			seeds["bad_"+tc.name] = tc.b
		}
	}
	return seeds
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./policy/stateful -run TestSeedCorpus -update-corpus. Files that are not
// seeds (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzRestore", "seed_", '_', seedRestore(t), *updateCorpus, "go test ./policy/stateful -run TestSeedCorpus -update-corpus")
}
