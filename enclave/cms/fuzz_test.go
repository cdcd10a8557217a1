package cms

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seeds in testdata/fuzz (TestDecryptOpenSSL rewrites the openssl-made ones)")

// updateHow is the command that rewrites the committed seeds.
const updateHow = "go test ./enclave/cms -run 'TestSeedCorpus|TestDecryptOpenSSL' -update-corpus"

// maxSeedSize keeps the committed corpus small: the table cases above it
// (the size caps) are tested by the tables only.
const maxSeedSize = 4096

// seeds returns the named seeds of FuzzParse that are the same on every
// run: the real KMS samples, the valid cases, and every refusal.
func seeds(t testing.TB) map[string][]byte {
	s := map[string][]byte{}
	add := func(name string, b []byte) {
		if len(b) > maxSeedSize {
			return
		}
		if _, dup := s[name]; dup {
			t.Fatalf("two seeds named %s", name)
		}
		s[name] = b
	}
	for name, v := range kmsVectors(t) {
		add("kms "+name, unhex(t, v.Input))
	}
	for _, v := range validCases() {
		add("valid "+v.name, v.in)
	}
	for _, r := range refusals(t) {
		add("bad "+r.name, r.in)
	}
	return s
}

// TestSeedCorpus checks that testdata/fuzz/FuzzParse holds every seed, and
// the envelopes openssl made (which differ on every run, so
// TestDecryptOpenSSL writes them with -update-corpus and this test only
// checks that each is there and parses). Files that are neither (such as
// failures found by fuzzing) are left alone.
func TestSeedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzParse", "seed_", '_', seeds(t), *updateCorpus, updateHow)
	if *updateCorpus {
		return
	}
	want := map[string]bool{}
	for _, form := range opensslForms {
		for _, n := range opensslLengths {
			path := fuzzseed.Path("FuzzParse", opensslSeedName(form, n))
			want[path] = true
			b, err := readSeed(path)
			if err != nil {
				t.Errorf("%v; run %s", err, updateHow)
				continue
			}
			if _, err := Parse(b); err != nil {
				t.Errorf("%s does not parse: %v", path, err)
			}
		}
	}
	files, _ := filepath.Glob(fuzzseed.Path("FuzzParse", "openssl-*"))
	for _, f := range files {
		if !want[f] {
			t.Errorf("%s is no longer a seed: remove it, or run %s", f, updateHow)
		}
	}
}

// readSeed returns the input in a corpus file holding one []byte.
func readSeed(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" || lines[2] != "" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		return nil, errors.New(path + " is not a corpus file holding one []byte")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		return nil, errors.New(path + ": " + err.Error())
	}
	return []byte(s), nil
}

// FuzzParse checks that Parse never panics, that it is deterministic and
// keeps nothing of its input, that its errors carry the package prefix and
// come without a result, and that what it accepts has the promised sizes
// and holds exactly the fields it returned: writing them again, in DER and
// in BER, parses to the same. The committed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		got, err := Parse(in)
		for i := range in {
			in[i] ^= 0xff
		}
		again, err2 := Parse(b)
		if !reflect.DeepEqual(got, again) || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("Parse is not deterministic, or keeps its input: %+v, %v; then %+v, %v", got, err, again, err2)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("Parse returned %+v and error %v", got, err)
			}
			if !strings.HasPrefix(err.Error(), "cms: ") {
				t.Fatalf("error without the package prefix: %q", err)
			}
			return
		}
		if got == nil {
			t.Fatal("Parse returned neither a result nor an error")
		}
		checkSizes(t, "Parse", got)
		for _, re := range [][]byte{specOf(got).der(), specOf(got).ber()} {
			if r, err := Parse(re); err != nil || !reflect.DeepEqual(r, got) {
				t.Fatalf("Parse accepted %x as %+v, whose re-encoding parses as %+v, %v", b, got, r, err)
			}
		}
	})
}
