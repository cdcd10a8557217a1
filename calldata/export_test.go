package calldata

// The tables of calldata_test.go, for the external tests (decode_test.go,
// fuzz_test.go), which check decoded calls with testgen's encoder and
// printer: testgen imports this package, so its in-package tests cannot.

// ValidCase is an input Decode accepts, with its exact decoding.
type ValidCase struct {
	Name string
	Data []byte
	Want Call
}

// MalformedCase is an input Decode refuses, with its exact error.
type MalformedCase struct {
	Name string
	Data []byte
	Err  string
}

// ValidCases returns the table valid.
func ValidCases() []ValidCase {
	cases := make([]ValidCase, len(valid))
	for i, tt := range valid {
		cases[i] = ValidCase{tt.name, tt.data, tt.want}
	}
	return cases
}

// MalformedCases returns the table malformed.
func MalformedCases() []MalformedCase {
	cases := make([]MalformedCase, len(malformed))
	for i, tt := range malformed {
		cases[i] = MalformedCase{tt.name, tt.data, tt.err}
	}
	return cases
}

// SafeTransfer is a Safe execTransaction of an ERC-20 transfer.
var SafeTransfer = safe
