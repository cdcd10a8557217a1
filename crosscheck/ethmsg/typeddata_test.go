package ethmsg

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// readCorpus returns the inputs of the committed seed corpus of the fuzz
// target of ethmsg (the main module's package) named target, by file name.
// Each file holds one []byte value.
func readCorpus(t *testing.T, target string) map[string][]byte {
	t.Helper()
	dir := filepath.Join("..", "..", "ethmsg", "testdata", "fuzz", target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")\n")
		s, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not one []byte value: %v", e.Name(), err)
		}
		seeds[e.Name()] = []byte(s)
	}
	if len(seeds) == 0 {
		t.Fatalf("%s is empty", dir)
	}
	return seeds
}

// gethRefusesToo lists the seeds of ethmsg's TestRefuses and
// TestAbsentDomainFields (table-bad-*) that go-ethereum refuses as well. It
// accepts every other one: those are deliberate differences (strict JSON, no
// aliases, checksums, limits, ...), each documented by the case's error. A seed that moves between the two
// (go-ethereum changed) fails TestTableSeedsGoEthereum.
var gethRefusesToo = map[string]bool{
	"table-bad-absent-domain-absent-field-in-a-message-struct":          true,
	"table-bad-absent-domain-declared-chainid-null":                     true,
	"table-bad-absent-domain-declared-field-missing-beside-absent-ones": true,
	"table-bad-absent-domain-declared-name-null":                        true,
	"table-bad-absent-domain-declared-salt-empty":                       true,
	"table-bad-absent-domain-declared-salt-null":                        true,
	"table-bad-absent-domain-declared-verifyingcontract-empty":          true,
	"table-bad-absent-domain-undeclared-chainid-empty":                  true,
	"table-bad-absent-domain-undeclared-chainid-zero":                   true,
	"table-bad-absent-domain-undeclared-name-given":                     true,
	"table-bad-absent-domain-undeclared-salt-0x":                        true,
	"table-bad-absent-domain-undeclared-salt-array":                     true,
	"table-bad-absent-domain-undeclared-salt-false":                     true,
	"table-bad-absent-domain-undeclared-salt-given":                     true,
	"table-bad-absent-domain-undeclared-salt-object":                    true,
	"table-bad-absent-domain-undeclared-salt-space":                     true,
	"table-bad-absent-domain-undeclared-salt-zero":                      true,
	"table-bad-absent-domain-undeclared-verifyingcontract-zero":         true,
	"table-bad-absent-domain-undeclared-version-given":                  true,
	"table-bad-address-as-number":                                       true,
	"table-bad-address-short":                                           true,
	"table-bad-array-given-object":                                      true,
	"table-bad-array-null-element":                                      true,
	"table-bad-array-of-structs-with-bad-element":                       true,
	"table-bad-bool-as-number":                                          true,
	"table-bad-bool-as-string":                                          true,
	"table-bad-bytes-as-array":                                          true,
	"table-bad-bytes-bad-digit":                                         true,
	"table-bad-bytes-odd":                                               true,
	"table-bad-bytes-without-0x":                                        true,
	"table-bad-bytes0":                                                  true,
	"table-bad-bytes1-long":                                             true,
	"table-bad-bytes32-short":                                           true,
	"table-bad-bytes33":                                                 true,
	"table-bad-bytes4-empty":                                            true,
	"table-bad-direct-self-reference":                                   true,
	"table-bad-domain-chainid-negative":                                 true,
	"table-bad-domain-value-missing":                                    true,
	"table-bad-domain-value-not-in-the-type":                            true,
	"table-bad-duplicate-field-name":                                    true,
	"table-bad-duplicate-key-in-types":                                  true,
	"table-bad-empty-field-name":                                        true,
	"table-bad-empty-type-name":                                         true,
	"table-bad-extra-field":                                             true,
	"table-bad-field-in-another-case":                                   true,
	"table-bad-field-names-differing-in-case":                           true,
	"table-bad-field-without-name":                                      true,
	"table-bad-field-without-type":                                      true,
	"table-bad-fixed-point":                                             true,
	"table-bad-integer-as-bool":                                         true,
	"table-bad-junk-after-array":                                        true,
	"table-bad-missing-domain":                                          true,
	"table-bad-missing-eip712domain":                                    true,
	"table-bad-missing-field":                                           true,
	"table-bad-missing-message":                                         true,
	"table-bad-missing-nested-field":                                    true,
	"table-bad-missing-types":                                           true,
	"table-bad-not-an-object":                                           true,
	"table-bad-null-message":                                            true,
	"table-bad-null-value":                                              true,
	"table-bad-string-0x-alone":                                         true,
	"table-bad-string-as-number":                                        true,
	"table-bad-string-fraction":                                         true,
	"table-bad-string-negative-hex":                                     true,
	"table-bad-string-with-space":                                       true,
	"table-bad-struct-given-array":                                      true,
	"table-bad-top-level-key-in-another-case":                           true,
	"table-bad-trailing-data":                                           true,
	"table-bad-type-name-with-bracket":                                  true,
	"table-bad-type-named-like-an-atomic-type":                          true,
	"table-bad-type-with-space":                                         true,
	"table-bad-uint08":                                                  true,
	"table-bad-uint256-65-hex-digits":                                   true,
	"table-bad-uint256-max-plus-one":                                    true,
	"table-bad-uint264":                                                 true,
	"table-bad-uint7":                                                   true,
	"table-bad-uint8--1":                                                true,
	"table-bad-uint8-256":                                               true,
	"table-bad-unclosed-array":                                          true,
	"table-bad-undefined-array-element-type":                            true,
	"table-bad-undefined-field-type":                                    true,
	"table-bad-undefined-type-in-unused-type":                           true,
	"table-bad-unknown-domain-field":                                    true,
}

// TestTableSeedsGoEthereum cross-checks every document of ethmsg's table
// tests, which ethmsg commits to the seed corpora of FuzzParseTypedData
// (TestAccepts, TestRefuses, random documents) and FuzzPermit
// (TestPermitRecognised, TestPermitRefused, TestPermitNotAPermit) and
// checks there are in step with its tables: every document ParseTypedData
// accepts is accepted by go-ethereum with the same digest, domain separator,
// message hash and encodeType of its primary type (except one with an empty
// domain name or version, which go-ethereum refuses); go-ethereum's verdict
// on each refused table document is the one gethRefusesToo records.
func TestTableSeedsGoEthereum(t *testing.T) {
	accepted := 0
	for _, target := range []string{"FuzzParseTypedData", "FuzzPermit"} {
		for name, data := range readCorpus(t, target) {
			t.Run(target+"/"+name, func(t *testing.T) {
				td, err := ethmsg.ParseTypedData(data)
				_, gerr := gethHash(data)
				if err != nil {
					if !strings.HasPrefix(name, "table-bad-") {
						return
					}
					if want := gethRefusesToo[name]; (gerr != nil) != want {
						t.Fatalf("refused (%v); go-ethereum: %v; gethRefusesToo says refused = %v", err, gerr, want)
					}
					return
				}
				accepted++
				checkAccepted(t, td, data)
			})
		}
	}
	if accepted < 100 {
		t.Errorf("only %d accepted documents in the corpora", accepted)
	}
}

// checkAccepted checks a document ParseTypedData accepted against
// go-ethereum.
func checkAccepted(t *testing.T, td *ethmsg.TypedData, data []byte) {
	t.Helper()
	gh, gerr := gethHash(data)
	if d := td.Domain(); d.Name != nil && *d.Name == "" || d.Version != nil && *d.Version == "" {
		if gerr == nil {
			t.Fatalf("go-ethereum accepts an empty domain name or version now (hash %x)", gh)
		}
		return
	}
	if gerr != nil {
		t.Fatalf("accepted here, refused by go-ethereum: %v", gerr)
	}
	if td.Hash() != gh {
		t.Fatalf("Hash() = %x, go-ethereum %x", td.Hash(), gh)
	}
	ds, mh, enc := gethParts(t, data)
	if td.DomainSeparator() != ds || td.MessageHash() != mh {
		t.Fatalf("DomainSeparator %x MessageHash %x; go-ethereum %x %x", td.DomainSeparator(), td.MessageHash(), ds, mh)
	}
	if got, _ := td.EncodeType(td.PrimaryType()); got != enc {
		t.Fatalf("EncodeType = %q, go-ethereum %q", got, enc)
	}
}

// TestLargeRefusedAccepted checks the documents of ethmsg's TestRefuses too
// large for the corpus: each is refused for a limit of ethmsg's own, and
// go-ethereum accepts it.
func TestLargeRefusedAccepted(t *testing.T) {
	for _, tt := range []struct{ name, js, wantErr string }{
		{"too many types", testgen.ManyTypes(ethmsg.MaxTypes, 1), "ethmsg: types: 65 types, limit 64"},
		{"too many fields", testgen.ManyTypes(1, ethmsg.MaxFields+1), "ethmsg: types.T0: 65 fields, limit 64"},
		{"encodeType too long", testgen.ManyTypes(50, 50), "ethmsg: types.T0: encodeType of 24190 bytes, limit 16384"},
		{"dynamic array over the limit", one("bool[]", "["+strings.Repeat("true,", ethmsg.MaxArrayLength)+"true]"), "bool[]: more than 1024 elements (limit)"},
		{"too many values", one("bool[1024][]", "["+strings.Repeat("["+strings.Repeat("true,", 1023)+"true],", 8)+"[]]"), "more than 8192 values in all"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ethmsg.ParseTypedData([]byte(tt.js)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if _, err := gethHash([]byte(tt.js)); err != nil {
				t.Fatalf("go-ethereum refuses it too now: %v", err)
			}
		})
	}
}

// TestDomainOnlyChainID hashes a document whose domain has only a chainId.
func TestDomainOnlyChainID(t *testing.T) {
	js := `{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"T":[{"name":"v","type":"bool"}]},` +
		`"primaryType":"T","domain":{"chainId":1},"message":{"v":false}}`
	checkAccepted(t, mustParse(t, js), []byte(js))
}

// TestRegressionEncodings hashes the documents of ethmsg's test of the same
// name, encodings that implementations have got wrong, with go-ethereum.
func TestRegressionEncodings(t *testing.T) {
	docs := []string{
		one("uint256[][]", `[[1,2],[3]]`),
		one("uint8[2][3]", `[[1,2],[3,4],[5,6]]`),
		one("address[]", `[]`),
		doc(`"P":[{"name":"n","type":"uint8"}],"T":[{"name":"v","type":"P[]"}]`, "T", `{"v":[{"n":1},{"n":2}]}`),
		one("bytes", `"0x0102"`),
		one("string", `"héllo"`),
		one("int8", `-1`),
		one("int8", `-128`),
		one("bool", `true`),
		one("address", `"0x`+strings.Repeat("11", 20)+`"`),
		doc(`"Mail":[{"name":"x","type":"uint8"}],"Mail2":[{"name":"m","type":"Mail"}],"Mailbox":[{"name":"b","type":"bool"}]`, "Mail2", `{"m":{"x":1}}`),
		doc(`"Person":[{"name":"n","type":"string"}],"T":[{"name":"p","type":"Person"}]`, "T", `{"p":{"n":"x"}}`),
		doc(`"Human":[{"name":"n","type":"string"}],"T":[{"name":"p","type":"Human"}]`, "T", `{"p":{"n":"x"}}`),
		doc(`"T":[{"name":"a","type":"b"},{"name":"c","type":"B"},{"name":"d","type":"A_"}],"b":[{"name":"x","type":"bool"}],"B":[{"name":"x","type":"bool"}],"A_":[{"name":"x","type":"bool"}]`,
			"T", `{"a":{"x":true},"c":{"x":true},"d":{"x":true}}`),
	}
	for n := 1; n <= 32; n++ {
		docs = append(docs, one(fmt.Sprintf("bytes%d", n), `"0x`+strings.Repeat("ab", n)+`"`))
	}
	for _, js := range docs {
		checkAccepted(t, mustParse(t, js), []byte(js))
	}
}

// TestPrimaryTypeEIP712Domain shows why ethmsg refuses a document whose
// primaryType is EIP712Domain: wallets sign keccak256(0x19 0x01 ||
// domainSeparator), go-ethereum appends hashStruct(EIP712Domain, message)
// as well, so the same document means two different digests.
func TestPrimaryTypeEIP712Domain(t *testing.T) {
	js := doc(`"T":[{"name":"v","type":"bool"}]`, "EIP712Domain", testgen.DocDomain)
	if _, err := ethmsg.ParseTypedData([]byte(js)); err == nil || !strings.Contains(err.Error(), "primaryType: EIP712Domain is refused") {
		t.Fatalf("err = %v", err)
	}
	gh, err := gethHash([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	// The same domain under an ordinary primary type gives the separator.
	ds := mustParse(t, one("bool", "true")).DomainSeparator()
	if domainOnly := keccak256([]byte{0x19, 0x01}, ds[:]); gh == domainOnly {
		t.Fatal("go-ethereum now hashes the domain alone: revisit the refusal")
	}
}

// TestPersonalHash compares PersonalHash with go-ethereum's TextHash.
func TestPersonalHash(t *testing.T) {
	td := mustParse(t, testgen.MailJSON)
	h := td.Hash()
	ds, mh := td.DomainSeparator(), td.MessageHash()
	msgs := map[string][]byte{
		"empty":                  {},
		"text":                   []byte("Hello World"),
		"32-byte digest":         h[:],
		"starts with 0x19":       []byte("\x19Ethereum Signed Message:\n3abc"),
		"typed-data preimage":    append(append([]byte{0x19, 0x01}, ds[:]...), mh[:]...),
		"typed-data json":        []byte(testgen.MailJSON),
		"0x-hex text":            []byte("0x1234"),
		"length with many digit": bytes.Repeat([]byte{7}, 12345),
		"max":                    bytes.Repeat([]byte{0xff}, ethmsg.MaxPersonalMessage),
	}
	for name, msg := range msgs {
		if got, want := ethmsg.PersonalHash(msg), accounts.TextHash(msg); !bytes.Equal(got[:], want) {
			t.Errorf("%s: PersonalHash = %x, go-ethereum TextHash %x", name, got, want)
		}
	}
}
