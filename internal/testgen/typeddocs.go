package testgen

import (
	"fmt"
	"strings"
)

// Fixed typed-data documents, shared by ethmsg's tests and crosscheck's
// (which check the same documents against go-ethereum).

// MailJSON is the example of the EIP-712 specification
// (assets/eip-712/Example.js).
const MailJSON = `{
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

// The digests the EIP-712 specification gives for MailJSON, in hex.
const (
	MailHash            = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
	MailDomainSeparator = "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
	MailMessageHash     = "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
	MailTypeHash        = "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2"
	MailEncodeType      = "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
)

// DocDomainType and DocDomain make up the domain of the documents Doc
// builds.
const (
	DocDomainType = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}]`
	DocDomain     = `{"name":"Test","chainId":1}`
)

// Doc builds a typed-data document from the definitions of the types other
// than EIP712Domain (a JSON object body), the primary type and the message.
func Doc(types, primary, message string) string {
	if types != "" {
		types = "," + types
	}
	return `{"types":{` + DocDomainType + types + `},"primaryType":"` + primary +
		`","domain":` + DocDomain + `,"message":` + message + `}`
}

// OneField builds a document whose primary type T has a single field v of
// type typ, with value.
func OneField(typ, value string) string {
	return Doc(`"T":[{"name":"v","type":"`+typ+`"}]`, "T", `{"v":`+value+`}`)
}

// ManyTypes builds a document of n types T0..Tn-1, each with fields
// referring to the next fields types through dynamic arrays, and a message
// for T0 (of empty arrays): a large type graph in a small message.
func ManyTypes(n, fields int) string {
	var defs, msg []string
	for i := range n {
		var fs []string
		for j := range fields {
			fs = append(fs, fmt.Sprintf(`{"name":"f%d","type":"T%d[]"}`, j, (i+j)%n))
		}
		defs = append(defs, fmt.Sprintf(`"T%d":[%s]`, i, strings.Join(fs, ",")))
	}
	for j := range fields {
		msg = append(msg, fmt.Sprintf(`"f%d":[]`, j))
	}
	return Doc(strings.Join(defs, ","), "T0", "{"+strings.Join(msg, ",")+"}")
}
