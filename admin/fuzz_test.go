package admin

import (
	"errors"
	"flag"
	"slices"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// FuzzVerify: Verify never panics; it returns a command and signers only
// without error, and an error wrapping exactly one sentinel otherwise; what
// it accepts is bound to this deployment, valid now, well formed, and signed
// by enough distinct admins of the set.
func FuzzVerify(f *testing.F) {
	set := testSet(f)
	f.Fuzz(func(t *testing.T, envelope []byte) {
		cmd, names, err := set.Verify(envelope, testNow, testGenesis)
		if err != nil {
			if cmd != nil || names != nil {
				t.Fatalf("result with error %v", err)
			}
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d sentinels", err, n)
			}
			return
		}
		if cmd.GenesisHash != testGenesis {
			t.Fatal("accepted a command for another deployment")
		}
		if testNow.Before(cmd.NotBefore) || !testNow.Before(cmd.NotAfter) {
			t.Fatal("accepted a command outside its validity window")
		}
		if len(names) < set.Threshold(cmd.Kind) || len(names) == 0 {
			t.Fatalf("accepted %s with %d signers", cmd.Kind, len(names))
		}
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("signers %v not sorted and unique", names)
		}
		for _, n := range names {
			if _, ok := set.Key(n); !ok {
				t.Fatalf("signer %q is not an admin", n)
			}
		}
		var berr error
		switch cmd.Kind {
		case KindKeyCreate:
			_, berr = cmd.KeyCreate()
		case KindKeyImport:
			_, berr = cmd.KeyImport()
		case KindSealRotate:
			_, berr = cmd.SealRotate()
		case KindPolicyChange:
			_, berr = cmd.PolicyChange()
		case KindPolicyCancel:
			_, berr = cmd.PolicyCancel()
		case KindUnfreeze:
			_, berr = cmd.Unfreeze()
		case KindFreeze:
			var fb *FreezeBody
			fb, berr = cmd.Freeze()
			if berr == nil && ((fb.KeyID == "") == !fb.AllKeys || fb.Reason == "" || len(fb.Reason) > MaxFreezeReason) {
				t.Fatalf("accepted freeze body %+v", fb)
			}
		default:
			t.Fatalf("accepted unknown kind %q", cmd.Kind)
		}
		if berr != nil {
			t.Fatalf("accepted a command whose body does not decode: %v", berr)
		}
		// The envelope survives a round trip through Marshal.
		e, err := ParseEnvelope(envelope)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cmd2, names2, err := set.Verify(again, testNow, testGenesis)
		if err != nil || cmd2.Digest != cmd.Digest || !slices.Equal(names, names2) {
			t.Fatalf("re-marshalled envelope: %v", err)
		}
	})
}

// seedVerify returns named seeds for FuzzVerify: a valid envelope of every
// kind and every refusal case of TestVerifyRefuses that is small.
func seedVerify(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, kind := range Kinds() {
		seeds["valid_"+string(kind)] = signedBy(t, validCommand(kind), "alice", "bob", "carol")
	}
	seeds["valid_cancel_one_admin"] = signedBy(t, validCommand(KindPolicyCancel), "bob")
	seeds["valid_freeze_one_admin"] = signedBy(t, validCommand(KindFreeze), "carol")
	seeds["valid_freeze_all_keys"] = signedBy(t, rawCommand(KindFreeze, testGenesis, testNB, testNA, `{"all_keys":true,"reason":"incident 42"}`), "alice")
	for _, c := range freezeBodyCases {
		if c.err != "" {
			seeds["bad_freeze_"+c.name] = signedBy(t, rawCommand(KindFreeze, testGenesis, testNB, testNA, c.body), "alice")
		}
	}
	hour := int64(3600_000)
	seeds["bad_expired_command"] = signedBy(t, rawCommand(KindUnfreeze, testGenesis, testNB-2*hour, testNB, validBodies[KindUnfreeze]), "alice", "bob")
	seeds["bad_future_command"] = signedBy(t, rawCommand(KindUnfreeze, testGenesis, testNA, testNA+hour, validBodies[KindUnfreeze]), "alice", "bob")
	for _, r := range refusals(t) {
		if len(r.envelope) > 8<<10 || !r.now.IsZero() || r.genesis != ([32]byte{}) {
			continue // keep the corpus small; the fuzz target uses testNow and testGenesis
		}
		seeds["bad_"+r.name] = r.envelope
	}
	return seeds
}

// TestSeedCorpus checks that testdata/fuzz holds every seed, as written by
// go test ./admin -run TestSeedCorpus -update-corpus. Files that are not
// seeds (such as failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzVerify", "seed_", '_', seedVerify(t), *updateCorpus, "go test ./admin -run TestSeedCorpus -update-corpus")
}
