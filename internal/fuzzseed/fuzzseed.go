// Package fuzzseed writes seed files for Go's fuzzing corpus, so that table
// tests can commit their cases to testdata/fuzz/<FuzzTarget> behind an
// -update flag, and tests can check a committed file against the contents it
// should have.
//
// It is for _test.go files only: the enclave dependency test in
// cmd/nitrosign-enclave forbids it.
//
// # File format
//
// [Encode] writes the "go test fuzz v1" format that go test reads, in the
// form go test itself writes it (package internal/fuzz, marshalCorpusFile):
// one line per value, such as []byte("...") or int64(7).
package fuzzseed

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Encode returns the contents of a corpus file holding values, the
// arguments of one call of a fuzz function in order. It supports the types a
// fuzz function may take: []byte, string, bool, the integer types
// (byte and rune included) and float32 and float64.
func Encode(values ...any) ([]byte, error) {
	if len(values) == 0 {
		return nil, errors.New("fuzzseed: no values to encode")
	}
	b := bytes.NewBufferString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(b, "string(%q)\n", v)
		case int, int8, int16, int64, uint, uint16, uint32, uint64, bool:
			fmt.Fprintf(b, "%T(%v)\n", v, v)
		case byte: // uint8
			fmt.Fprintf(b, "byte(%q)\n", v)
		case rune: // int32; only valid runes have a rune literal
			if utf8.ValidRune(v) {
				fmt.Fprintf(b, "rune(%q)\n", v)
			} else {
				fmt.Fprintf(b, "int32(%v)\n", v)
			}
		case float32:
			if math.IsNaN(float64(v)) && math.Float32bits(v) != math.Float32bits(float32(math.NaN())) {
				fmt.Fprintf(b, "math.Float32frombits(0x%x)\n", math.Float32bits(v))
			} else {
				fmt.Fprintf(b, "%T(%v)\n", v, v)
			}
		case float64:
			if math.IsNaN(v) && math.Float64bits(v) != math.Float64bits(math.NaN()) {
				fmt.Fprintf(b, "math.Float64frombits(0x%x)\n", math.Float64bits(v))
			} else {
				fmt.Fprintf(b, "%T(%v)\n", v, v)
			}
		default:
			return nil, fmt.Errorf("fuzzseed: a corpus file cannot hold a %T", v)
		}
	}
	return b.Bytes(), nil
}

// FileName turns the name of a test case into a file name: name in lower
// case, with every rune other than a-z and 0-9 replaced by sep, which is
// '-' or '_'.
func FileName(name string, sep rune) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return sep
	}, strings.ToLower(name))
}

// Path returns the path of the corpus file named file for the fuzz function
// target, relative to the package directory: testdata/fuzz/<target>/<file>.
func Path(target, file string) string {
	return filepath.Join("testdata", "fuzz", target, file)
}

// Write writes values to the corpus file of the fuzz function target named
// after the test case name, Path(target, FileName(name, '-')), and fails the
// test if it cannot.
func Write(t testing.TB, target, name string, values ...any) {
	t.Helper()
	WriteFile(t, Path(target, FileName(name, '-')), values...)
}

// WriteFile writes values to the corpus file path, creating its directory,
// and fails the test if it cannot.
func WriteFile(t testing.TB, path string, values ...any) {
	t.Helper()
	data, err := Encode(values...)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Sync keeps the committed seed files of the fuzz function target in step
// with seeds, a map from case name to input. Each seed lives at
// Path(target, FileName(prefix+name, sep)). Without update, Sync fails the
// test for every seed file that is missing or stale and for every file with
// the prefix that is no longer a seed; with update, it writes and removes
// files to match. Files without the prefix (hand-written cases, failures
// found by fuzzing) are left alone. how is the command that updates, for
// the failure messages.
func Sync(t testing.TB, target, prefix string, sep rune, seeds map[string][]byte, update bool, how string) {
	t.Helper()
	want := map[string]bool{}
	for name, b := range seeds {
		path := Path(target, FileName(prefix+name, sep))
		if want[path] {
			t.Fatalf("fuzzseed: two seeds named %s", path)
		}
		want[path] = true
		if update {
			WriteFile(t, path, b)
			continue
		}
		enc, err := Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, enc) {
			t.Errorf("%s is missing or stale; run %s", path, how)
		}
	}
	old, _ := filepath.Glob(Path(target, FileName(prefix, sep)+"*"))
	for _, path := range old {
		if want[path] {
			continue
		}
		if update {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s is no longer a seed: remove it, or run %s", path, how)
	}
}
