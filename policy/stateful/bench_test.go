package stateful

import (
	"math/big"
	"testing"
	"time"
)

// benchTracker has the limits of a typical hot key: a daily and an hourly
// limit of the native currency, a per-destination daily limit, a token
// limit, and a velocity limit, none of which the benchmark reaches.
func benchTracker(b *testing.B) *Tracker {
	huge := new(big.Int).Lsh(big.NewInt(1), 200)
	toA := TrackedLimit{ID: lid("hot", "to-a"), Key: "hot", ChainID: 1, Destination: ptr(destA), Window: 24 * time.Hour, Max: huge}
	tok := TrackedLimit{ID: lid("hot", "usdc"), Key: "hot", ChainID: 1, Asset: usdc, Window: 24 * time.Hour, Max: huge}
	return mustNew(b, []TrackedLimit{
		{ID: lid("hot", "day"), Key: "hot", ChainID: 1, Window: 24 * time.Hour, Max: huge},
		{ID: lid("hot", "hour"), Key: "hot", ChainID: 1, Window: time.Hour, Max: huge},
		toA, tok,
	}, []TrackedVelocity{{ID: vid("hot", "v"), Key: "hot", Window: time.Minute, MaxTransactions: 1 << 31}}, Options{})
}

// BenchmarkReserveCommit: one ETH transfer reserved and committed, time
// moving 10 µs a transaction (so buckets fill and expire as in service).
func BenchmarkReserveCommit(b *testing.B) {
	tr := benchTracker(b)
	spends := []Spend{native(destA, 1_000_000_000)}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Microsecond)
		r, err := tr.Reserve(now, "hot", spends)
		if err != nil {
			b.Fatal(err)
		}
		r.Commit()
	}
}

// BenchmarkReserveCommitParallel: the same from all cores at once, which
// share the Tracker's lock.
func BenchmarkReserveCommitParallel(b *testing.B) {
	tr := benchTracker(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		spends := []Spend{native(destA, 1_000_000_000)}
		now := t0
		for pb.Next() {
			now = now.Add(10 * time.Microsecond)
			r, err := tr.Reserve(now, "hot", spends)
			if err != nil {
				b.Fatal(err)
			}
			r.Commit()
		}
	})
}

// BenchmarkCheckpoint: a snapshot of a tracker whose every bucket is used.
func BenchmarkCheckpoint(b *testing.B) {
	tr := benchTracker(b)
	spends := []Spend{native(destA, 1_000_000_000), token(usdc, destB, 5)}
	now := t0
	for range 100_000 {
		now = now.Add(time.Second)
		r, err := tr.Reserve(now, "hot", spends)
		if err != nil {
			b.Fatal(err)
		}
		r.Commit()
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tr.Checkpoint(now); err != nil {
			b.Fatal(err)
		}
	}
}
