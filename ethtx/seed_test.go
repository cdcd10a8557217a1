package ethtx_test

import (
	"flag"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// TestSeedCorpus checks that testdata/fuzz/FuzzDecodeUnsigned holds every
// seed, as written by go test ./ethtx -run TestSeedCorpus -update-corpus.
// Files that are not seeds (hand-written cases, failures found by fuzzing)
// are left alone.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzDecodeUnsigned", "seed ", '-', ethtx.SeedCorpus(t, testgen.Tx), *updateCorpus, "go test ./ethtx -run TestSeedCorpus -update-corpus")
}
