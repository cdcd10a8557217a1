package fuzzseed

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz from seeds")

func TestEncode(t *testing.T) {
	tests := []struct {
		name   string
		values []any
		want   string
	}{
		{name: "bytes", values: []any{[]byte("a\x00\xff\"\n")}, want: `[]byte("a\x00\xff\"\n")`},
		{name: "nil bytes", values: []any{[]byte(nil)}, want: `[]byte("")`},
		{name: "string", values: []any{"héllo\t\u2028"}, want: `string("héllo\t\u2028")`},
		{name: "bool", values: []any{true}, want: `bool(true)`},
		{name: "int", values: []any{-7}, want: `int(-7)`},
		{name: "int8", values: []any{int8(-128)}, want: `int8(-128)`},
		{name: "int16", values: []any{int16(300)}, want: `int16(300)`},
		{name: "int64", values: []any{int64(math.MinInt64)}, want: `int64(-9223372036854775808)`},
		{name: "uint", values: []any{uint(7)}, want: `uint(7)`},
		{name: "uint16", values: []any{uint16(65535)}, want: `uint16(65535)`},
		{name: "uint32", values: []any{uint32(1 << 31)}, want: `uint32(2147483648)`},
		{name: "uint64", values: []any{uint64(math.MaxUint64)}, want: `uint64(18446744073709551615)`},
		{name: "byte", values: []any{byte('\n')}, want: `byte('\n')`},
		{name: "rune", values: []any{'é'}, want: `rune('é')`},
		{name: "rune not valid", values: []any{rune(-1)}, want: `int32(-1)`},
		{name: "surrogate half", values: []any{rune(0xd800)}, want: `int32(55296)`},
		{name: "float32", values: []any{float32(1.5)}, want: `float32(1.5)`},
		{name: "float64 negative zero", values: []any{math.Copysign(0, -1)}, want: `float64(-0)`},
		{name: "float64 infinity", values: []any{math.Inf(1)}, want: `float64(+Inf)`},
		{name: "float64 NaN", values: []any{math.NaN()}, want: `float64(NaN)`},
		{name: "float64 other NaN", values: []any{math.Float64frombits(0x7ff8000000000002)}, want: `math.Float64frombits(0x7ff8000000000002)`},
		{name: "float32 other NaN", values: []any{math.Float32frombits(0x7fc00002)}, want: `math.Float32frombits(0x7fc00002)`},
		{name: "two values", values: []any{"h", []byte("b")}, want: "string(\"h\")\n[]byte(\"b\")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.values...)
			if err != nil {
				t.Fatal(err)
			}
			if want := "go test fuzz v1\n" + tt.want + "\n"; string(got) != want {
				t.Errorf("Encode(%#v)\n got %q\nwant %q", tt.values, got, want)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, values := range [][]any{nil, {nil}, {[]string{"a"}}, {"a", struct{}{}}, {complex(1, 2)}} {
		if got, err := Encode(values...); err == nil {
			t.Errorf("Encode(%#v) = %q, want an error", values, got)
		}
	}
}

func TestFileName(t *testing.T) {
	tests := []struct {
		name string
		sep  rune
		want string
	}{
		{name: "table-ok-plain", sep: '-', want: "table-ok-plain"},
		{name: "table-bad-Upper Case", sep: '-', want: "table-bad-upper-case"},
		{name: "r||s", sep: '-', want: "r--s"},
		{name: "under_score", sep: '-', want: "under-score"},
		{name: "../x/y", sep: '-', want: "---x-y"},
		{name: "ünï", sep: '-', want: "-n-"},
		{name: "seed_bad_non-shortest id", sep: '_', want: "seed_bad_non_shortest_id"},
		{name: "invalid utf-8", sep: '_', want: "invalid_utf_8"},
		{name: "", sep: '-', want: ""},
	}
	for _, tt := range tests {
		if got := FileName(tt.name, tt.sep); got != tt.want {
			t.Errorf("FileName(%q, %q) = %q, want %q", tt.name, tt.sep, got, tt.want)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Chdir(t.TempDir())
	Write(t, "FuzzSomething", "table-ok-A b", "h", []byte{0})
	got, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzSomething", "table-ok-a-b"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "go test fuzz v1\nstring(\"h\")\n[]byte(\"\\x00\")\n"; string(got) != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
	// Writing again replaces the file.
	Write(t, "FuzzSomething", "table-ok-A b", "i", []byte{})
	got, err = os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzSomething", "table-ok-a-b"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "go test fuzz v1\nstring(\"i\")\n[]byte(\"\")\n"; string(got) != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// seeds are the committed corpus of FuzzEncode: one value of every type a
// corpus file holds, so go test itself proves it reads what Encode writes.
var seeds = map[string][]any{
	"ordinary": {[]byte("b\x00\xff"), "s\n\"é", true, -1, int8(-8), int16(-16), 'r',
		int64(-64), uint(1), byte('\''), uint16(16), uint32(32), uint64(64), float32(0.25), 1e-300},
	"extremes": {[]byte(nil), "", false, math.MinInt, int8(math.MaxInt8), int16(math.MinInt16), rune(-1),
		int64(math.MaxInt64), uint(math.MaxUint), byte(0xff), uint16(math.MaxUint16), uint32(math.MaxUint32),
		uint64(math.MaxUint64), math.Float32frombits(0x7fc00002), math.Copysign(0, -1)},
	"specials": {[]byte{}, "\u2028\x7f", true, 0, int8(0), int16(0), rune(0xd800),
		int64(0), uint(0), byte(0), uint16(0), uint32(0), uint64(0), float32(math.Inf(-1)),
		math.Float64frombits(0x7ff8000000000002)},
}

// TestSeeds checks that testdata/fuzz/FuzzEncode holds seeds as Encode
// writes them; go test -run TestSeeds -update rewrites it.
func TestSeeds(t *testing.T) {
	for name, values := range seeds {
		if *update {
			Write(t, "FuzzEncode", name, values...)
			continue
		}
		want, err := Encode(values...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(Path("FuzzEncode", FileName(name, '-')))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is missing or stale; run go test ./internal/fuzzseed -run TestSeeds -update", name)
		}
	}
}

// FuzzEncode: Encode takes every type a fuzz function may, and writes each
// value on a line of its own. Run on the committed seeds, as go test does
// without -fuzz, it also checks that the values go test reads from each seed
// file encode to that very file; with TestSeeds, go test reads back what
// Encode wrote.
func FuzzEncode(f *testing.F) {
	committed := map[string]bool{}
	for name := range seeds {
		b, err := os.ReadFile(Path("FuzzEncode", FileName(name, '-')))
		if err != nil {
			f.Fatal(err)
		}
		committed[string(b)] = true
	}
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	f.Fuzz(func(t *testing.T, b []byte, s string, ok bool, i int, i8 int8, i16 int16, r rune,
		i64 int64, u uint, u8 byte, u16 uint16, u32 uint32, u64 uint64, f32 float32, f64 float64) {
		values := []any{b, s, ok, i, i8, i16, r, i64, u, u8, u16, u32, u64, f32, f64}
		got, err := Encode(values...)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(got), "\n")
		if len(lines) != len(values)+2 || lines[0] != "go test fuzz v1" || lines[len(lines)-1] != "" {
			t.Fatalf("Encode(%#v) is not one line a value:\n%s", values, got)
		}
		if !fuzzing && !committed[string(got)] {
			t.Errorf("go test read a seed as %#v, which Encode writes as\n%s", values, got)
		}
	})
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

func TestSync(t *testing.T) {
	t.Chdir(t.TempDir())
	seeds := map[string][]byte{"a": []byte("x"), "b c": []byte("y")}
	r := &recorder{TB: t}
	Sync(r, "FuzzX", "seed_", '_', seeds, false, "the update command")
	if len(r.errors) != 2 {
		t.Fatalf("missing seeds: %d errors %q, want 2", len(r.errors), r.errors)
	}
	Sync(t, "FuzzX", "seed_", '_', seeds, true, "")
	r = &recorder{TB: t}
	Sync(r, "FuzzX", "seed_", '_', seeds, false, "")
	if len(r.errors) != 0 {
		t.Fatalf("after update: %q", r.errors)
	}
	// A stale seed, an orphan seed, and a hand-written file.
	os.WriteFile(Path("FuzzX", "seed_a"), []byte("go test fuzz v1\n[]byte(\"z\")\n"), 0o644)
	os.WriteFile(Path("FuzzX", "seed_gone"), []byte("go test fuzz v1\n[]byte(\"z\")\n"), 0o644)
	os.WriteFile(Path("FuzzX", "crash1234"), []byte("go test fuzz v1\n[]byte(\"z\")\n"), 0o644)
	r = &recorder{TB: t}
	Sync(r, "FuzzX", "seed_", '_', seeds, false, "")
	if len(r.errors) != 2 || !strings.Contains(strings.Join(r.errors, "\n"), "seed_gone is no longer a seed") {
		t.Fatalf("stale and orphan: %q", r.errors)
	}
	Sync(t, "FuzzX", "seed_", '_', seeds, true, "")
	if _, err := os.Stat(Path("FuzzX", "seed_gone")); !os.IsNotExist(err) {
		t.Error("update left an orphan seed")
	}
	if _, err := os.Stat(Path("FuzzX", "crash1234")); err != nil {
		t.Error("update removed a file that is not a seed")
	}
}
