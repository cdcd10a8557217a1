package ethmsg

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"testing"

	"github.com/nitrosign/nitrosign/internal/fuzzseed"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz seeds from the table tests")

// mailJSON is the example of the EIP-712 specification (assets/eip-712/Example.js).
const mailJSON = `{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}`

// The digests the EIP-712 specification gives for mailJSON.
const (
	mailHash            = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
	mailDomainSeparator = "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
	mailMessageHash     = "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
	mailTypeHash        = "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2"
	mailEncodeType      = "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
)

// testDomainType and testDomain make up the domain of the documents doc builds.
const (
	testDomainType = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}]`
	testDomain     = `{"name":"Test","chainId":1}`
)

// doc builds a typed-data document from the definitions of the types other
// than EIP712Domain (a JSON object body), the primary type and the message.
func doc(types, primary, message string) string {
	if types != "" {
		types = "," + types
	}
	return `{"types":{` + testDomainType + types + `},"primaryType":"` + primary +
		`","domain":` + testDomain + `,"message":` + message + `}`
}

// one builds a document whose primary type T has a single field v of type typ.
func one(typ, value string) string {
	return doc(`"T":[{"name":"v","type":"`+typ+`"}]`, "T", `{"v":`+value+`}`)
}

func hexString(h [32]byte) string { return hex.EncodeToString(h[:]) }

// commitSeed commits the table case js to the corpus of the fuzz target
// under name, with -update. Without it, it checks that the committed file is
// there and current: crosscheck/ethmsg reads these corpora to check every
// table document against go-ethereum, so they must stay in step with the
// tables. Documents over 4 KiB are not seeds.
func commitSeed(t *testing.T, target, name, js string) {
	t.Helper()
	if len(js) > 4096 {
		return
	}
	if *update {
		fuzzseed.Write(t, target, name, []byte(js))
		return
	}
	want, err := fuzzseed.Encode([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	path := fuzzseed.Path(target, fuzzseed.FileName(name, '-'))
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("seed %s is missing or stale (%v): run go test ./ethmsg -update", path, err)
	}
}

func mustParse(t testing.TB, js string) *TypedData {
	t.Helper()
	td, err := ParseTypedData([]byte(js))
	if err != nil {
		t.Fatalf("ParseTypedData: %v\n%s", err, js)
	}
	return td
}

// preimage returns 0x19 0x01 || DomainSeparator() || MessageHash(), the bytes
// whose Keccak-256 is td.Hash().
func preimage(td *TypedData) []byte {
	ds, mh := td.DomainSeparator(), td.MessageHash()
	return append(append([]byte{0x19, 0x01}, ds[:]...), mh[:]...)
}
