package summary

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/policy"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus of FuzzBounded")

func TestQuoteWithin(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	zeros := strings.Repeat("\x00", 13200)
	for _, tc := range []struct {
		name, s, note string
		limit         int
		want          string
	}{
		{"short", "Hello, Bob!", "", 100, `"Hello, Bob!"`},
		{"short with note", "hi", "2 bytes", 100, `"hi" (2 bytes)`},
		{"exactly at the limit", "abcd", "", 8, `"abcd"`}, // each quote mark takes 2 bytes in the record
		{"one byte over", "abcd", "", 7, `""... (4 bytes, sha256 ` + sum("abcd") + `)`},
		{"zeros", zeros, "13200 bytes", 200,
			`"` + strings.Repeat(`\x00`, (200-4-3-len(" (13200 bytes, sha256 )")-64)/5) + `"... (13200 bytes, sha256 ` + sum(zeros) + `)`},
		{"no note: the length is added", strings.Repeat("a", 300), "", 120,
			`"` + strings.Repeat("a", 120-4-3-len(" (300 bytes, sha256 )")-64) + `"... (300 bytes, sha256 ` + sum(strings.Repeat("a", 300)) + `)`},
		{"quotes", strings.Repeat(`"`, 1000), "", 120,
			`"` + strings.Repeat(`\"`, (120-4-3-len(" (1000 bytes, sha256 )")-64)/4) + `"... (1000 bytes, sha256 ` + sum(strings.Repeat(`"`, 1000)) + `)`},
		{"cut between runes", strings.Repeat("€", 100), "", 100,
			`"` + strings.Repeat("€", (100-4-3-len(" (300 bytes, sha256 )")-64)/3) + `"... (300 bytes, sha256 ` + sum(strings.Repeat("€", 100)) + `)`},
		{"limit below the note", strings.Repeat("a", 300), "", 10,
			`""... (300 bytes, sha256 ` + sum(strings.Repeat("a", 300)) + `)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := quoteWithin(tc.s, tc.limit, tc.note)
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestHexWithin(t *testing.T) {
	b := make([]byte, 13200)
	h := sha256.Sum256(b)
	for _, tc := range []struct {
		name  string
		b     []byte
		limit int
		note  string
		want  string
	}{
		{"empty", nil, 10, "", "0x"},
		{"short", []byte{0x19, 0x01}, 100, "bytes, 2 bytes", "0x1901 (bytes, 2 bytes)"},
		{"long", b, 200, "13200 bytes, not UTF-8",
			"0x" + strings.Repeat("00", (200-2-3-len(" (13200 bytes, not UTF-8, sha256 )")-64)/2) + "... (13200 bytes, not UTF-8, sha256 " + hex.EncodeToString(h[:]) + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hexWithin(tc.b, tc.limit, tc.note); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestBuilderKeepsThePrefixAndTheDigest: past a cap, every later line is
// left out (what is shown is a prefix of the whole) and the digest stays
// last.
func TestBuilderKeepsThePrefixAndTheDigest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines int
		value string
		kept  int
	}{
		{"under the caps", 10, "v", 10},
		{"line cap", 500, "v", MaxLines - 2},
		{"size cap", 100, strings.Repeat(`"`, 200), (MaxSize - reserved) / (len("line[00]") + 2 + 400 + 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b builder
			for i := range tc.lines {
				b.add(fmt.Sprintf("line[%02d]", i%100), "%s", tc.value)
			}
			s := b.done("digest", "0x%x", [32]byte{1})
			if got := len(s.Lines) - 1; tc.kept == tc.lines && got != tc.kept {
				t.Fatalf("%d lines before the digest, want %d", got, tc.kept)
			}
			if tc.kept < tc.lines {
				if got := len(s.Lines) - 2; got != tc.kept {
					t.Fatalf("%d lines kept, want %d", got, tc.kept)
				}
				tr := s.Lines[len(s.Lines)-2]
				if want := fmt.Sprintf("%d more lines", tc.lines-tc.kept); tr.Key != "truncated" || !strings.HasPrefix(tr.Value, want) {
					t.Fatalf("truncated line %+v, want %q", tr, want)
				}
			}
			if last := s.Lines[len(s.Lines)-1]; last.Key != "digest" {
				t.Fatalf("last line %+v", last)
			}
			checkBounds(t, s)
		})
	}
}

func TestBoundedBackstop(t *testing.T) {
	// A line too long as shown: its value and label are shown as one
	// shortened string, without labels.
	half := strings.Repeat("\x00", MaxLineLen/2)
	l := bounded(Line{Key: "k", Value: half, Labels: []Label{{At: MaxLineLen / 2, End: MaxLineLen / 2, Text: half}}})
	v := l.Value
	if len(l.Labels) != 0 || audit.EscapedLen(v) > MaxLineLen || !strings.HasSuffix(v, fmt.Sprintf("(%d bytes, sha256 %x)", MaxLineLen, sha256.Sum256(make([]byte, MaxLineLen)))) {
		t.Fatalf("backstop gave %d bytes, %d labels: %.80s…", audit.EscapedLen(v), len(l.Labels), v)
	}
	short := Line{Key: "k", Value: "0x00", Labels: []Label{{At: 4, End: 4, Text: " (label)"}}}
	if v := bounded(short); !reflect.DeepEqual(v, short) {
		t.Fatalf("a short line changed: %+v", v)
	}
}

// checkBounds checks what every summary keeps to, whatever the request.
func checkBounds(t testing.TB, s Summary) {
	t.Helper()
	text := s.String()
	if n := audit.EscapedLen(text); n > MaxSize {
		t.Fatalf("summary of %d escaped bytes, cap %d", n, MaxSize)
	}
	if len(s.Lines) > MaxLines {
		t.Fatalf("summary of %d lines, cap %d", len(s.Lines), MaxLines)
	}
	if strings.Count(text, "\n") != len(s.Lines) {
		t.Fatal("a value holds a line break")
	}
	for _, l := range s.Lines {
		if audit.EscapedLen(l.Shown()) > MaxLineLen {
			t.Fatalf("line %s of %d escaped bytes", l.Key, audit.EscapedLen(l.Shown()))
		}
		// The host protocol carries at most 8 labels a line
		// (proto.MaxSummaryLabels); an authorization has the most, 3.
		if len(l.Labels) > 3 {
			t.Fatalf("line %s has %d labels", l.Key, len(l.Labels))
		}
		if err := l.Check(); err != nil {
			t.Fatalf("line %s: %v", l.Key, err)
		}
	}
	if len(s.Lines) == 0 || s.Lines[len(s.Lines)-1].Key != "digest" {
		t.Fatal("the digest is not the last line")
	}
}

// typedDataOf builds typed data whose message is one array of values of
// type typ, each given as JSON.
func typedDataOf(typ string, values ...any) []byte {
	vs, _ := json.Marshal(values)
	return []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],"M":[{"name":"v","type":"` + typ + `[]"}]},` +
		`"primaryType":"M","domain":{"name":"n","chainId":1},"message":{"v":` + string(vs) + `}}`)
}

func repeatValues(v any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func txBytes(to *ethtx.Address, data []byte) []byte {
	tx := &ethtx.Tx{Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(1), Nonce: 1, GasLimit: 1e6,
		MaxFeePerGas: big.NewInt(2e10), MaxPriorityFeePerGas: big.NewInt(1e9), To: to, Value: new(big.Int), Data: data}
	return tx.EncodeUnsigned()
}

// boundedSeeds are the seeds of FuzzBounded: each input is tried as a
// personal message, as typed data and as a transaction.
func boundedSeeds() map[string][]byte {
	to := ethtx.Address{0x11}
	long := strings.Repeat("x", 2000)
	return map[string][]byte{
		"zeros_13200":             make([]byte, 13200),
		"text":                    []byte("Sign in to example.com\nnonce: 42"),
		"binary":                  {0x19, 0x01, 0xff, 0x00},
		"typed_quotes":            typedDataOf("string", repeatValues(strings.Repeat(`"`, 300), 5)...),
		"typed_control":           typedDataOf("string", repeatValues(strings.Repeat("\x01\t\x7f", 300), 5)...),
		"typed_labelled":          typedDataOf("address", repeatValues("0x1100000000000000000000000000000000000000", 100)...),
		"typed_long_strings":      typedDataOf("string", long, long, long),
		"typed_big_bytes":         typedDataOf("bytes", "0x"+strings.Repeat("ab", 3000)),
		"typed_many_small_values": typedDataOf("uint8", repeatValues(7, 300)...),
		"tx_huge_calldata":        txBytes(&to, make([]byte, 2000)),
		"tx_huge_init_code":       txBytes(nil, make([]byte, 2000)),
	}
}

// TestBoundedCorpus keeps the committed seed corpus in step with the seeds
// above (go test ./summary -run TestBoundedCorpus -update-corpus).
func TestBoundedCorpus(t *testing.T) {
	fuzzseed.Sync(t, "FuzzBounded", "seed_", '_', boundedSeeds(), *updateCorpus, "go test ./summary -run TestBoundedCorpus -update-corpus")
}

// FuzzBounded: whatever the request, a summary stays within its caps, and
// a value is either shown whole, exactly as strconv.Quote or hex shows it,
// or shortened to a prefix with its length and SHA-256.
func FuzzBounded(f *testing.F) {
	for _, s := range boundedSeeds() {
		f.Add(s)
	}
	p, err := policy.Parse([]byte(`{"version": 1, "clients": [], "keys": [{"key": "k", "chains": [1], "native_transfers": {
		"destinations": [{"address": "0x1100000000000000000000000000000000000000", "label": "` + strings.Repeat(`\"`, 128) + `"}],
		"max_per_transaction_wei": "1"}}]}`))
	if err != nil {
		f.Fatal(err)
	}
	key := Key{ID: "k", Path: "m/0"}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := string(data)
		for _, limit := range []int{1, 200, MaxValueLen} {
			q := quoteWithin(s, limit, "")
			whole := strconv.Quote(s)
			switch {
			case audit.EscapedLen(whole) <= limit:
				if q != whole {
					t.Fatalf("a value within the limit is not shown whole: %q", q)
				}
			default:
				if want := fmt.Sprintf("(%d bytes, sha256 %x)", len(data), sha256.Sum256(data)); !strings.HasSuffix(q, want) {
					t.Fatalf("shortened value %q does not end in %q", q, want)
				}
				prefix, err := strconv.QuotedPrefix(q)
				shown, _ := strconv.Unquote(prefix)
				if err != nil || !strings.HasPrefix(q[len(prefix):], "... (") || !strings.HasPrefix(s, shown) {
					t.Fatalf("the shortened value does not show a prefix: %q (%v)", q, err)
				}
				if limit >= 200 && audit.EscapedLen(q) > limit {
					t.Fatalf("shortened value of %d escaped bytes, limit %d", audit.EscapedLen(q), limit)
				}
			}
			hx := hexWithin(data, limit, "")
			if 2+2*len(data) <= limit {
				if hx != "0x"+hex.EncodeToString(data) {
					t.Fatalf("bytes within the limit are not shown whole: %s", hx)
				}
			} else if shown, ok := strings.CutSuffix(hx, fmt.Sprintf("... (%d bytes, sha256 %x)", len(data), sha256.Sum256(data))); !ok ||
				!strings.HasPrefix("0x"+hex.EncodeToString(data), shown) || limit >= 200 && len(hx) > limit {
				t.Fatalf("shortened bytes %s", hx)
			}
		}

		checkBounds(t, PersonalMessage(data, key, ethmsg.PersonalHash(data)))
		if utf8.Valid(data) && audit.EscapedLen(strconv.Quote(s)) < MaxMessageLen-20 {
			if !strings.Contains(PersonalMessage(data, key, [32]byte{}).String(), "message: "+strconv.Quote(s)+" (") {
				t.Fatal("a short message is not shown whole")
			}
		}
		if td, err := ethmsg.ParseTypedData(data); err == nil {
			checkBounds(t, TypedData(td, key, p))
			checkBounds(t, TypedData(td, key, nil))
		}
		if tx, err := ethtx.DecodeUnsigned(data); err == nil {
			var call calldata.Call
			if tx.To != nil {
				if call, err = calldata.Decode(tx.Data); err != nil {
					return
				}
			}
			checkBounds(t, Transaction(tx, call, key, tx.SigningHash(), p))
		}
	})
}

// TestSeedsReachTheCaps: the seeds of FuzzBounded reach what they are
// named for, so that the fuzz target starts from every cap.
func TestSeedsReachTheCaps(t *testing.T) {
	seeds := boundedSeeds()
	p, err := policy.Parse([]byte(`{"version": 1, "clients": [], "keys": [{"key": "k", "chains": [1], "native_transfers": {
		"destinations": [{"address": "0x1100000000000000000000000000000000000000", "label": "` + strings.Repeat(`\"`, 128) + `"}],
		"max_per_transaction_wei": "1"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	typed := func(name string, p *policy.Policy) string {
		td, err := ethmsg.ParseTypedData(seeds[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := TypedData(td, Key{ID: "k"}, p)
		checkBounds(t, s)
		return s.String()
	}
	for _, tc := range []struct {
		name, got, want string
		absent          bool
	}{
		{"zeros: shortened", PersonalMessage(seeds["zeros_13200"], Key{}, [32]byte{}).String(), `"... (13200 bytes, sha256 `, false},
		{"quotes: shortened", typed("typed_quotes", nil), `"... (300 bytes, sha256 `, false},
		{"control: shortened", typed("typed_control", nil), `"... (900 bytes, sha256 `, false},
		{"long strings: shortened", typed("typed_long_strings", nil), `"... (2000 bytes, sha256 `, false},
		{"big bytes: shortened", typed("typed_big_bytes", nil), `... (bytes, 3000 bytes, sha256 `, false},
		{"many values: line cap", typed("typed_many_small_values", nil), "truncated: 106 more lines", false},
		{"labels: size cap", typed("typed_labelled", p), "\ntruncated: ", false},
		{"no labels: within the caps", typed("typed_labelled", nil), "\ntruncated: ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.got, tc.want) == tc.absent {
				t.Fatalf("want %q (absent: %t) in\n%.2000s", tc.want, tc.absent, tc.got)
			}
		})
	}
}
